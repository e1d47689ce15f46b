"""What several dashboard views read and label alike: the published plan's report, section
sizes, facilitator names, the active learners grouped by zone and availability, and the names
of sections and weekly times."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.domain.availability import Availability, parse_availability
from scheduler.domain.cohort import CohortSpec, Role
from scheduler.domain.status import EnrollmentStatus
from scheduler.persistence.models import (
    CohortRow,
    EnrollmentRow,
    PersonRow,
    PlanVersionRow,
    SectionMemberRow,
)
from scheduler.timeutil import Weekday, zone

Groups = Counter[tuple[str, Availability]]


def learner_groups(db: Session, cohort: CohortRow) -> Groups:
    """Active learners counted by (zone, availability), the default filled in."""
    query = (
        select(PersonRow.zone, PersonRow.availability, func.count())
        .join(EnrollmentRow, EnrollmentRow.person_id == PersonRow.id)
        .where(
            EnrollmentRow.cohort_id == cohort.id,
            EnrollmentRow.role == Role.LEARNER.value,
            EnrollmentRow.status == EnrollmentStatus.ACTIVE,
        )
        .group_by(PersonRow.zone, PersonRow.availability)
    )
    groups: Groups = Counter()
    for zone_name, text, n in db.execute(query):
        groups[(zone_name, parse_availability(text or cohort.default_availability))] += n
    return groups


def facilitator_names(db: Session, cohort_id: int) -> dict[str, str]:
    query = (
        select(PersonRow.email, PersonRow.name)
        .join(EnrollmentRow, EnrollmentRow.person_id == PersonRow.id)
        .where(EnrollmentRow.cohort_id == cohort_id, EnrollmentRow.role == Role.FACILITATOR.value)
    )
    return {email: name for email, name in db.execute(query)}


def section_sizes(db: Session, cohort_id: int) -> dict[tuple[str, int], int]:
    query = (
        select(SectionMemberRow.series_key, SectionMemberRow.section, func.count())
        .join(
            EnrollmentRow,
            (EnrollmentRow.person_id == SectionMemberRow.person_id)
            & (EnrollmentRow.cohort_id == SectionMemberRow.cohort_id),
        )
        .where(
            SectionMemberRow.cohort_id == cohort_id, EnrollmentRow.status == EnrollmentStatus.ACTIVE
        )
        .group_by(SectionMemberRow.series_key, SectionMemberRow.section)
    )
    return {(key, section): n for key, section, n in db.execute(query)}


def fitting(groups: Groups, start: datetime, minutes: int) -> int:
    """How many learners have ``start`` + ``minutes`` inside their window."""
    return sum(n for (z, a), n in groups.items() if a.covers_at(start, minutes, zone(z)))


def wall_label(weekday: int, minute: int) -> str:
    return f"{Weekday(weekday).label} {minute // 60:02d}:{minute % 60:02d}"


def published_report(
    db: Session, cohort_id: int
) -> tuple[int | None, datetime | None, dict[str, Any], list[str]]:
    """The latest plan version, when it was made, the planner's report it carries, and the
    manual changes made since the last version the planner wrote (read newest first, one
    version at a time: a report can be large)."""
    versions = list(
        db.execute(
            select(PlanVersionRow.id, PlanVersionRow.version, PlanVersionRow.created_at)
            .where(PlanVersionRow.cohort_id == cohort_id)
            .order_by(PlanVersionRow.version.desc())
        )
    )
    if not versions:
        return None, None, {}, []
    latest: dict[str, Any] = {}
    changes: list[str] = []
    for i, (row_id, _, _) in enumerate(versions):
        summary = db.scalar(select(PlanVersionRow.summary).where(PlanVersionRow.id == row_id))
        summary = summary if isinstance(summary, dict) else {}
        if i == 0:
            latest = summary
        change = summary.get("change")
        if not change:
            break
        changes.append(str(change))
    _, version, created = versions[0]
    return version, created, dict(latest), changes[::-1]


def series_titles(spec: CohortSpec) -> dict[str, str]:
    return {s.key: s.title for s in spec.series}


def end_date(cohort: CohortRow) -> date:
    return cohort.start_date + timedelta(days=7 * cohort.weeks - 1)
