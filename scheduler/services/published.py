"""Read models of what is stored and published, for the JSON API: a cohort's facts, its live
series with their members, and its occurrences with the attendance to expect.

Plain frozen values; it changes nothing. Sections, slots and weeks are numbered from 0 here
(the edges show them from 1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import Role, SeriesKind
from scheduler.domain.status import OccurrenceStatus, SeriesStatus
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
    LiveSeriesRow,
    OccurrenceRow,
    PlanVersionRow,
)
from scheduler.services.plans import published_version
from scheduler.services.views.common import section_sizes
from scheduler.timeutil import zone


@dataclass(frozen=True, slots=True)
class CohortFacts:
    slug: str
    title: str
    start_date: date
    weeks: int
    home_zone: str
    locale: str
    learners: int  # active
    facilitators: int  # active
    published_version: int | None  # None: nothing published yet


@dataclass(frozen=True, slots=True)
class PublishedSeries:
    """One weekly time of one section of a published series."""

    series: str
    title: str
    kind: SeriesKind
    section: int
    slot: int  # which weekly time of the section
    weekday: int  # in anchor_zone, Monday 0
    wall_minute: int  # minutes after midnight in anchor_zone
    anchor_zone: str
    duration_minutes: int
    facilitator: str | None  # email
    cancelled: bool
    members: int | None  # active learners in the section; None for co-working (open to all)


@dataclass(frozen=True, slots=True)
class PublishedOccurrence:
    uid: str
    series: str
    title: str
    kind: SeriesKind
    section: int
    slot: int
    week: int
    start: datetime
    end: datetime
    cancelled: bool
    sequence: int  # the iCalendar SEQUENCE
    facilitator: str | None
    expected_attendance: int  # section members; co-working: learners whose availability fits


def require_cohort(db: Session, slug: str) -> None:
    """Raise :class:`~scheduler.errors.NotFoundError` (naming the stored cohorts) unless a
    cohort ``slug`` is stored."""
    repo.get_cohort(db, slug)


def cohort_facts(db: Session, slug: str) -> CohortFacts:
    """The cohort's settings, active roster counts and latest published version."""
    return _facts(db, repo.get_cohort(db, slug))


def list_cohort_facts(db: Session) -> list[CohortFacts]:
    """:func:`cohort_facts` of every stored cohort, by start date, then slug."""
    return [_facts(db, cohort) for cohort in repo.list_cohorts(db)]


def published_series(db: Session, slug: str) -> list[PublishedSeries]:
    """The cohort's stored series (cancelled ones included), by series, section and slot."""
    cohort = repo.get_cohort(db, slug)
    members = section_sizes(db, cohort.id)
    rows = db.scalars(
        select(LiveSeriesRow)
        .where(LiveSeriesRow.cohort_id == cohort.id)
        .order_by(LiveSeriesRow.series_key, LiveSeriesRow.section, LiveSeriesRow.slot)
    )
    return [
        PublishedSeries(
            **_series_fields(s),
            weekday=s.weekday,
            wall_minute=s.wall_minute,
            anchor_zone=s.anchor_zone,
            duration_minutes=s.duration_minutes,
            cancelled=s.status == SeriesStatus.CANCELLED,
            members=None
            if s.kind == SeriesKind.COWORKING.value
            else members.get((s.series_key, s.section), 0),
        )
        for s in rows
    ]


def upcoming_occurrences(
    db: Session, slug: str, since: datetime, limit: int
) -> list[PublishedOccurrence]:
    """At most ``limit`` of the cohort's occurrences starting at ``since`` or later (cancelled
    ones included), in time order, then by series and section."""
    cohort = repo.get_cohort(db, slug)
    members = section_sizes(db, cohort.id)
    fitting: Callable[[datetime, int], int] | None = None
    query = (
        select(LiveSeriesRow, OccurrenceRow)
        .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
        .where(LiveSeriesRow.cohort_id == cohort.id, OccurrenceRow.start >= since)
        .order_by(OccurrenceRow.start, LiveSeriesRow.series_key, LiveSeriesRow.section)
        .limit(limit)
    )
    out = []
    for s, o in db.execute(query):
        if s.kind == SeriesKind.COWORKING.value:
            fitting = fitting or _fitting(db, cohort)
            expected = fitting(o.start, s.duration_minutes)
        else:
            expected = members.get((s.series_key, s.section), 0)
        out.append(
            PublishedOccurrence(
                **_series_fields(s),
                uid=o.uid,
                week=o.week,
                start=o.start,
                end=o.end,
                cancelled=o.status == OccurrenceStatus.CANCELLED,
                sequence=o.sequence,
                expected_attendance=expected,
            )
        )
    return out


def _facts(db: Session, cohort: CohortRow) -> CohortFacts:
    counts = repo.roster_counts(db, cohort.id)
    return CohortFacts(
        slug=cohort.slug,
        title=cohort.title,
        start_date=cohort.start_date,
        weeks=cohort.weeks,
        home_zone=cohort.home_zone,
        locale=cohort.locale,
        learners=counts.get(Role.LEARNER.value, 0),
        facilitators=counts.get(Role.FACILITATOR.value, 0),
        published_version=published_version(db, cohort.id),
    )


class SeriesFields(TypedDict):
    """What a published series and each of its occurrences say alike of the series."""

    series: str
    title: str
    kind: SeriesKind
    section: int
    slot: int
    facilitator: str | None


def _series_fields(s: LiveSeriesRow) -> SeriesFields:
    return SeriesFields(
        series=s.series_key,
        title=s.title,
        kind=SeriesKind(s.kind),
        section=s.section,
        slot=s.slot,
        facilitator=s.facilitator_email,
    )


def _fitting(db: Session, cohort: CohortRow) -> Callable[[datetime, int], int]:
    """How many active learners a block at ``start`` lasting ``minutes`` fits (learners with
    the same zone and availability counted together: one check per distinct pair)."""
    groups = Counter(
        (x.zone, repo.availability_text(x.availability, cohort))
        for x in repo.active_learners(db, cohort.id)
    )
    parsed = [(zone(z), parse_availability(a), n) for (z, a), n in groups.items()]

    def count(start: datetime, minutes: int) -> int:
        return sum(n for tz, windows, n in parsed if windows.covers_at(start, minutes, tz))

    return count


def fairness_ledgers(db: Session, slug: str) -> list[dict[str, Any]]:
    """The burden ledgers of the published plan's fairly rotated series (as
    :func:`scheduler.planning.report.fairness_report` wrote them), newest version; [] when none."""
    cohort = repo.get_cohort(db, slug)
    summary = db.scalar(
        select(PlanVersionRow.summary)
        .where(PlanVersionRow.cohort_id == cohort.id)
        .order_by(PlanVersionRow.version.desc())
        .limit(1)
    )
    found = summary.get("fairness", []) if isinstance(summary, dict) else []
    return [dict(x) for x in found if isinstance(x, dict)]
