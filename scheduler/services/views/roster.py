"""The roster and plan exports (rows for CSV) and the learner search of the roster page."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from scheduler.domain.cohort import Role, SeriesKind
from scheduler.domain.status import EnrollmentStatus
from scheduler.persistence import repo
from scheduler.persistence.models import (
    EnrollmentRow,
    LiveSeriesRow,
    OccurrenceRow,
    PersonRow,
    SectionMemberRow,
)
from scheduler.planning.model import LeftOutReason
from scheduler.planning.report import REASON_TEXT
from scheduler.services.views.common import published_report, section_sizes
from scheduler.timeutil import zone


@dataclass(frozen=True, slots=True)
class LearnerRow:
    name: str
    email: str
    zone: str
    locale: str | None
    availability: str | None  # None: the cohort's default


def find_learners(
    db: Session, cohort_id: int, q: str, limit: int = 50
) -> tuple[list[LearnerRow], int]:
    """Active learners whose name or email contains ``q`` (all when empty; case-insensitive
    for ASCII): the first ``limit`` by name, and how many match."""
    where = [
        EnrollmentRow.cohort_id == cohort_id,
        EnrollmentRow.role == Role.LEARNER.value,
        EnrollmentRow.status == EnrollmentStatus.ACTIVE,
    ]
    needle = q.strip()
    if needle:
        pattern = "%" + re.sub(r"([\\%_])", r"\\\1", needle) + "%"
        where.append(
            or_(
                PersonRow.name.ilike(pattern, escape="\\"),
                PersonRow.email.ilike(pattern, escape="\\"),
            )
        )
    joined = select(PersonRow).join(EnrollmentRow, EnrollmentRow.person_id == PersonRow.id)
    total = db.scalar(select(func.count()).select_from(joined.where(*where).subquery()))
    query = (
        select(
            PersonRow.name,
            PersonRow.email,
            PersonRow.zone,
            PersonRow.locale,
            PersonRow.availability,
        )
        .join(EnrollmentRow, EnrollmentRow.person_id == PersonRow.id)
        .where(*where)
        .order_by(PersonRow.name, PersonRow.email)
        .limit(limit)
    )
    return [LearnerRow(*row) for row in db.execute(query)], int(total or 0)


Table = tuple[tuple[str, ...], list[tuple[object, ...]]]


def roster_rows(db: Session, slug: str) -> Table:
    """Everyone enrolled, with their sections and why they were left out of a series."""
    cohort = repo.get_cohort(db, slug)
    sections: dict[int, list[str]] = {}
    for person_id, key, section in db.execute(
        select(SectionMemberRow.person_id, SectionMemberRow.series_key, SectionMemberRow.section)
        .where(SectionMemberRow.cohort_id == cohort.id)
        .order_by(SectionMemberRow.series_key)
    ):
        sections.setdefault(person_id, []).append(f"{key} {section + 1}")
    _, _, summary, _ = published_report(db, cohort.id)
    left: dict[str, list[str]] = {}
    known = {r.value: r for r in LeftOutReason}
    for x in summary.get("left_out", []):
        reason = known.get(str(x.get("reason")))
        why = x.get("detail") or (REASON_TEXT[reason] if reason else x.get("reason"))
        left.setdefault(str(x.get("learner")), []).append(f"{x.get('series')}: {why}")
    header = (
        "name",
        "email",
        "role",
        "status",
        "timezone",
        "locale",
        "availability",
        "sections",
        "left_out",
        "enrolled_at",
    )
    rows: list[tuple[object, ...]] = [
        (
            p.name,
            p.email,
            e.role,
            e.status,
            p.zone,
            p.locale or "",
            p.availability or "",
            "; ".join(sections.get(p.id, [])),
            "; ".join(left.get(p.email, [])),
            e.enrolled_at.isoformat(),
        )
        for e, p in repo.roster(db, cohort.id)
    ]
    return header, rows


def plan_rows(db: Session, slug: str) -> Table:
    """Every published occurrence (cancelled ones too), in time order."""
    cohort = repo.get_cohort(db, slug)
    sizes = section_sizes(db, cohort.id)
    header = (
        "series",
        "title",
        "kind",
        "section",
        "time",
        "week",
        "start_utc",
        "end_utc",
        "start_local",
        "zone",
        "status",
        "sequence",
        "facilitator",
        "section_size",
        "uid",
    )
    query = (
        select(LiveSeriesRow, OccurrenceRow)
        .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
        .where(LiveSeriesRow.cohort_id == cohort.id)
        .order_by(OccurrenceRow.start, LiveSeriesRow.series_key, LiveSeriesRow.section)
    )
    rows: list[tuple[object, ...]] = [
        (
            s.series_key,
            s.title,
            s.kind,
            s.section + 1,
            s.slot + 1,
            o.week + 1,
            o.start.isoformat(),
            o.end.isoformat(),
            o.start.astimezone(zone(s.anchor_zone)).isoformat(),
            s.anchor_zone,
            o.status,
            o.sequence,
            s.facilitator_email or "",
            sizes.get((s.series_key, s.section), "")
            if s.kind != SeriesKind.COWORKING.value
            else "",
            o.uid,
        )
        for s, o in db.execute(query)
    ]
    return header, rows
