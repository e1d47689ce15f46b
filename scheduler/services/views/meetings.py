"""The published weekly times (live times), their coverage per series and section, and the
meetings of the next two weeks with host and expected attendance (flagged when more learners
are expected than ``second_host_threshold``); the choice of a weekly time on a form."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from scheduler.domain.cohort import CohortSpec, SeriesKind
from scheduler.domain.labels import meeting_title, section_title
from scheduler.domain.status import OccurrenceStatus, SeriesStatus
from scheduler.persistence.models import (
    LiveSeriesRow,
    OccurrenceRow,
)
from scheduler.planning.fit import slot_instant, week_slot
from scheduler.services.views.common import Groups, fitting, wall_label

SECOND_HOST_THRESHOLD = 15  # more expected learners than this: the meeting wants a second host
UPCOMING_WINDOW = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class LiveTime:
    """One published weekly time: a slot of a section of a series, on the anchor zone's clock."""

    series: str
    title: str
    kind: str
    section: int  # 0-based
    slot: int  # 0-based
    sections: int  # how many sections the series has
    weekday: int
    minute: int
    duration_minutes: int
    anchor_zone: str
    facilitator: str | None  # name (email when the person is unknown)
    size: int  # section members; co-working: learners whose window it fits in the shown week
    alternate: tuple[int, int] | None = None  # rotation: (weekday, minute) in odd weeks

    @property
    def name(self) -> str:
        return section_title(self.title, self.kind, self.section, self.sections)

    @property
    def label(self) -> str:
        return wall_label(self.weekday, self.minute)

    @property
    def value(self) -> str:
        """How a form names it: ``series:section:slot`` (0-based)."""
        return f"{self.series}:{self.section}:{self.slot}"

    def at_week(self, week: int) -> tuple[int, int]:
        if self.alternate is not None and week % 2 == 1:
            return self.alternate
        return self.weekday, self.minute


@dataclass(frozen=True, slots=True)
class SectionCoverage:
    series: str
    title: str
    kind: str
    section: int
    sections: int
    times: str  # published now (after manual changes)
    planned_times: str  # as the planner chose them
    facilitator: str | None
    size: int
    fitted: int  # learners for whom every meeting fits (as planned)
    by_week: tuple[float | None, ...]

    @property
    def name(self) -> str:
        return section_title(self.title, self.kind, self.section, self.sections)

    @property
    def weekly_range(self) -> str:
        weekly = [c for c in self.by_week if c is not None]
        if not weekly:
            return "-"
        low, high = min(weekly), max(weekly)
        return f"{low:.0%}" if low == high else f"{low:.0%}-{high:.0%}"


@dataclass(frozen=True, slots=True)
class UpcomingMeeting:
    start: datetime
    end: datetime
    week: int
    title: str
    kind: str
    series: str
    section: int
    slot: int
    facilitator: str | None
    expected: int
    second_host: bool  # expected > second_host_threshold
    status: str  # scheduled, cancelled
    moved: bool  # changed since first published (SEQUENCE > 0) and not cancelled


def live_times(
    db: Session,
    cohort_id: int,
    names: dict[str, str],
    sizes: dict[tuple[str, int], int],
    groups: Groups,
    spec: CohortSpec,
    week: int,
) -> list[LiveTime]:
    rows = _live_series(db, cohort_id, LiveSeriesRow.id)
    sections = _section_counts(rows)
    out = []
    for row in rows:
        alternate = (
            (row.alt_weekday, row.alt_wall_minute)
            if row.alt_weekday is not None and row.alt_wall_minute is not None
            else None
        )
        if row.kind == SeriesKind.COWORKING.value:
            day, minute = week_slot(week, (row.weekday, row.wall_minute), alternate)
            start = slot_instant(spec, week, day, minute, row.anchor_zone)
            size = fitting(groups, start, row.duration_minutes)
        else:
            size = sizes.get((row.series_key, row.section), 0)
        out.append(
            LiveTime(
                row.series_key,
                row.title,
                row.kind,
                row.section,
                row.slot,
                sections[row.series_key],
                row.weekday,
                row.wall_minute,
                row.duration_minutes,
                row.anchor_zone,
                _name(names, row.facilitator_email),
                size,
                alternate,
            )
        )
    order = {SeriesKind.CLASS.value: 0, SeriesKind.OFFICE_HOURS.value: 1}
    out.sort(key=lambda t: (order.get(t.kind, 2), t.series, t.section, t.slot))
    return out


def section_coverage(
    summary: dict[str, Any], live: Sequence[LiveTime], names: dict[str, str]
) -> tuple[SectionCoverage, ...]:
    current: dict[tuple[str, int], list[LiveTime]] = {}
    for t in live:
        current.setdefault((t.series, t.section), []).append(t)
    titles = {t.series: t.title for t in live}
    sections: Counter[str] = Counter(str(s["series"]) for s in summary.get("sections", []))
    out = []
    for s in summary.get("sections", []):
        key = (str(s["series"]), int(s["section"]))
        now_times = sorted(current.get(key, []), key=lambda t: t.slot)
        planned = ", ".join(s.get("times", []))
        if s.get("alternate"):
            planned += " / " + ", ".join(s["alternate"])
        out.append(
            SectionCoverage(
                key[0],
                titles.get(key[0], key[0]),
                str(s.get("kind", "")),
                key[1],
                sections[key[0]],
                ", ".join(t.label for t in now_times) if now_times else "cancelled",
                planned,
                _name(names, s.get("facilitator")),
                int(s.get("size", 0)),
                int(s.get("fitted", 0)),
                tuple(s.get("coverage_by_week", [])),
            )
        )
    return tuple(out)


def upcoming_meetings(
    db: Session,
    cohort_id: int,
    now: datetime,
    window: timedelta,
    names: dict[str, str],
    sizes: dict[tuple[str, int], int],
    groups: Groups,
    threshold: int,
) -> tuple[list[UpcomingMeeting], datetime, datetime]:
    """Meetings in ``window`` from now; when there are none (the course has not started), the
    ``window`` from the next scheduled meeting."""
    start = now
    first = db.scalar(
        select(func.min(OccurrenceRow.start))
        .join(LiveSeriesRow, LiveSeriesRow.id == OccurrenceRow.series_id)
        .where(
            LiveSeriesRow.cohort_id == cohort_id,
            OccurrenceRow.status == OccurrenceStatus.SCHEDULED,
            OccurrenceRow.start >= now,
        )
    )
    if first is not None and first > now + window:
        start = first
    until = start + window
    query = (
        select(LiveSeriesRow, OccurrenceRow)
        .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
        .where(
            LiveSeriesRow.cohort_id == cohort_id,
            OccurrenceRow.start >= start,
            OccurrenceRow.start < until,
        )
        .order_by(OccurrenceRow.start, LiveSeriesRow.series_key, LiveSeriesRow.section)
    )
    rows = list(db.execute(query))
    sections = _section_counts(series for series, _ in rows)
    out = []
    for series, o in rows:
        if series.kind == SeriesKind.COWORKING.value:
            expected = fitting(groups, o.start, series.duration_minutes)
        else:
            expected = sizes.get((series.series_key, series.section), 0)
        out.append(
            UpcomingMeeting(
                o.start,
                o.end,
                o.week,
                meeting_title(
                    series.title, series.kind, series.section, sections[series.series_key]
                ),
                series.kind,
                series.series_key,
                series.section,
                series.slot,
                _name(names, series.facilitator_email),
                expected,
                o.status == OccurrenceStatus.SCHEDULED and expected > threshold,
                o.status,
                o.status == OccurrenceStatus.SCHEDULED and o.sequence > 0,
            )
        )
    return out, start, until


def series_choices(db: Session, cohort_id: int) -> list[tuple[str, str]]:
    """(form value ``series:section:slot``, label) of every published weekly time."""
    rows = _live_series(
        db, cohort_id, LiveSeriesRow.series_key, LiveSeriesRow.section, LiveSeriesRow.slot
    )
    sections = _section_counts(rows)
    out = []
    for r in rows:
        label = section_title(r.title, r.kind, r.section, sections[r.series_key])
        out.append(
            (
                f"{r.series_key}:{r.section}:{r.slot}",
                f"{label} — {wall_label(r.weekday, r.wall_minute)} {r.anchor_zone}",
            )
        )
    return out


def _live_series(
    db: Session, cohort_id: int, *order: InstrumentedAttribute[Any]
) -> list[LiveSeriesRow]:
    """The cohort's series that are not cancelled, in ``order``."""
    return list(
        db.scalars(
            select(LiveSeriesRow)
            .where(
                LiveSeriesRow.cohort_id == cohort_id, LiveSeriesRow.status != SeriesStatus.CANCELLED
            )
            .order_by(*order)
        )
    )


def _section_counts(rows: Iterable[LiveSeriesRow]) -> dict[str, int]:
    """How many sections each series has, by its key (from the highest section among ``rows``)."""
    sections: dict[str, int] = {}
    for row in rows:
        sections[row.series_key] = max(sections.get(row.series_key, 0), row.section + 1)
    return sections


def _name(names: dict[str, str], email: str | None) -> str | None:
    """A facilitator's name (their email when the person is unknown); None for no email."""
    return names.get(email, email) if email else None
