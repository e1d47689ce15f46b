"""What the course runner's dashboard shows, read from the database into plain values.

Pure reads (no writes, no web): ``cohort_cards`` for the list of cohorts, ``cohort_overview``
for one cohort's page:

* the availability heatmap of a course week on the anchor zone's clock (30-minute cells, with
  per-zone counts) and the published weekly times marked on it (from the ``live_series`` rows,
  so a moved series shows where it is now);
* coverage per series and section, the learners left out and why, and the DST warnings: the
  report the planner wrote when the plan was published (``plan_version.summary``), plus the
  manual changes made since;
* the left-out learners summary first (one line per series: how many, where, why, how many get
  replays; clock changes as one line per series and week, grouped by
  :mod:`scheduler.planning.report` as the CLI does), then the per-learner detail narrowed by a
  :class:`LeftOutFilter` (series, reason, region) and capped at ``LEFT_OUT_SHOWN`` rows, with
  each learner's async path: how many replays they have and the next one due;
* the meetings of the next two weeks with host and expected attendance, flagged when more
  learners are expected than ``second_host_threshold``;
* delivery: outbox counts, recent failures, the worker's heartbeat.

Learners with the same zone and availability are read as one group (one query, one
availability parse per distinct text), so a 100k-learner cohort costs about as much as its
distinct availabilities. The left-out report reads every learner's zone and deadline group in
one query and the series each deadline group has replays of in another, whatever the number of
left-out learners; per-learner queries only for the (at most ``LEFT_OUT_SHOWN``) rows shown.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from scheduler.domain.availability import Availability, parse_availability
from scheduler.domain.cohort import CohortSpec, Role, SeriesKind
from scheduler.domain.status import EnrollmentStatus, OccurrenceStatus, SeriesStatus
from scheduler.errors import InputError, Problem
from scheduler.outputs.heatmap import Heatmap, availability_heatmap, slot_of
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
    DeadlineGroupRow,
    DeadlineItemRow,
    EnrollmentRow,
    LearnerDeadlinesRow,
    LiveSeriesRow,
    OccurrenceRow,
    PersonRow,
    PlanVersionRow,
    SectionMemberRow,
)
from scheduler.planning import LearnerInput
from scheduler.planning.fit import anchor_zone_name, occurrence_date
from scheduler.planning.model import DstWarning, LeftOut, LeftOutReason
from scheduler.planning.report import REASON_TEXT, dst_by_series_week, left_out_by_series, region
from scheduler.services.outbox import outbox_status, worker_status
from scheduler.timeutil import MINUTES_PER_DAY, Weekday, wall_to_utc, zone

SECOND_HOST_THRESHOLD = 15  # more expected learners than this: the meeting wants a second host
UPCOMING_WINDOW = timedelta(days=14)
SLOT_MINUTES = 30
HEAT_LEVELS = 8  # shades of a non-empty heatmap cell (CSS classes h1..h8; h0 is empty)
LEFT_OUT_SHOWN = 100  # learners listed on the page; the roster export has them all
ZONES_NAMED = 6  # zones named in a heatmap cell's description; the rest are counted


# --- the list of cohorts ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CohortCard:
    slug: str
    title: str
    start_date: date
    end_date: date  # the last day of the last week
    weeks: int
    home_zone: str
    learners: int
    facilitators: int
    published_version: int | None
    published_at: datetime | None


def cohort_cards(db: Session) -> list[CohortCard]:
    """Every cohort with its active learner and facilitator counts and its latest plan version."""
    counts: dict[tuple[int, str], int] = {
        (cohort_id, role): n
        for cohort_id, role, n in db.execute(
            select(EnrollmentRow.cohort_id, EnrollmentRow.role, func.count())
            .where(EnrollmentRow.status == EnrollmentStatus.ACTIVE)
            .group_by(EnrollmentRow.cohort_id, EnrollmentRow.role)
        )
    }
    latest = (
        select(PlanVersionRow.cohort_id, func.max(PlanVersionRow.version).label("version"))
        .group_by(PlanVersionRow.cohort_id)
        .subquery()
    )
    versions: dict[int, tuple[int, datetime]] = {
        cohort_id: (version, created)
        for cohort_id, version, created in db.execute(
            select(
                PlanVersionRow.cohort_id, PlanVersionRow.version, PlanVersionRow.created_at
            ).join(
                latest,
                (latest.c.cohort_id == PlanVersionRow.cohort_id)
                & (latest.c.version == PlanVersionRow.version),
            )
        )
    }
    cards = []
    for row in repo.list_cohorts(db):
        version, created = versions.get(row.id, (None, None))
        cards.append(
            CohortCard(
                row.slug,
                row.title,
                row.start_date,
                _end_date(row),
                row.weeks,
                row.home_zone,
                counts.get((row.id, Role.LEARNER.value), 0),
                counts.get((row.id, Role.FACILITATOR.value), 0),
                version,
                created,
            )
        )
    return cards


def _end_date(cohort: CohortRow) -> date:
    return cohort.start_date + timedelta(days=7 * cohort.weeks - 1)


# --- one cohort --------------------------------------------------------------------------------


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
        return _section_name(self.title, self.kind, self.section, self.sections)

    @property
    def label(self) -> str:
        return _wall_label(self.weekday, self.minute)

    @property
    def value(self) -> str:
        """How a form names it: ``series:section:slot`` (0-based)."""
        return f"{self.series}:{self.section}:{self.slot}"

    def at_week(self, week: int) -> tuple[int, int]:
        if self.alternate is not None and week % 2 == 1:
            return self.alternate
        return self.weekday, self.minute


@dataclass(frozen=True, slots=True)
class HeatCell:
    weekday: int
    slot: int
    count: int
    level: int  # 0 (nobody) .. HEAT_LEVELS (the peak)
    zones: tuple[tuple[str, int], ...]  # most learners first
    marks: tuple[LiveTime, ...]  # the live times that cover this cell
    description: str  # for a title / aria-label: who is available, what is scheduled

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m.kind for m in self.marks))


@dataclass(frozen=True, slots=True)
class HeatRow:
    minute: int
    label: str  # "18:30"
    cells: tuple[HeatCell, ...]  # Monday .. Sunday


@dataclass(frozen=True, slots=True)
class HeatmapView:
    anchor_zone: str
    week: int  # 0-based course week
    weeks: int
    slot_minutes: int
    learners: int
    peak: int
    days: tuple[tuple[str, date], ...]  # (weekday label, date in that week), Monday .. Sunday
    rows: tuple[HeatRow, ...]


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
        return _section_name(self.title, self.kind, self.section, self.sections)

    @property
    def weekly_range(self) -> str:
        weekly = [c for c in self.by_week if c is not None]
        if not weekly:
            return "-"
        low, high = min(weekly), max(weekly)
        return f"{low:.0%}" if low == high else f"{low:.0%}-{high:.0%}"


@dataclass(frozen=True, slots=True)
class LeftOutLearner:
    email: str
    name: str
    zone: str
    reasons: tuple[tuple[str, str], ...]  # (series title, why): the records the filter matched
    replays: int  # replay items on their list
    next_replay: datetime | None  # the soft deadline of the next replay after now
    next_replay_title: str = ""


@dataclass(frozen=True, slots=True)
class LeftOutSeries:
    """One line of the left-out summary: a series, its left-out learners by region and reason
    (``text``, from :meth:`scheduler.planning.report.SeriesLeftOut.describe` with the series'
    title), how many of the plan's learners every meeting fits, how many left out get replays."""

    series: str  # key: the filter's value
    title: str
    text: str  # "Office hours: 109 left out — 61 in Asia/*, …; 97: times that fit them …"
    left_out: int
    fit: int | None  # learners every meeting of the series fits (None: the report lacks it)
    planned: int | None  # learners the plan was made for (None: the report lacks it)
    replays: int | None  # of ``left_out``, how many have replays (None: a kind without replays)


@dataclass(frozen=True, slots=True)
class LeftOutChoices:
    """The values a :class:`LeftOutFilter` may take: those that occur among the left out."""

    series: tuple[tuple[str, str], ...] = ()  # (key, title)
    reasons: tuple[tuple[str, str], ...] = ()  # (LeftOutReason value, in words)
    regions: tuple[str, ...] = ()  # "Asia/*", "UTC"; "?" for a learner no longer stored


@dataclass(frozen=True, slots=True)
class LeftOutFilter:
    """Which left-out learners the detailed list shows: those left out of ``series`` (a key)
    for ``reason`` (a :class:`LeftOutReason` value), living in ``region`` (``Asia/*``). An empty
    field matches anything; series and reason must hold for the same record."""

    series: str = ""
    reason: str = ""
    region: str = ""

    @property
    def active(self) -> bool:
        return bool(self.series or self.reason or self.region)

    def matches(self, record: LeftOut, learner_region: str) -> bool:
        return (
            (not self.series or record.series == self.series)
            and (not self.reason or record.reason.value == self.reason)
            and (not self.region or learner_region == self.region)
        )

    def problems(self, choices: LeftOutChoices) -> list[Problem]:
        """Every field whose value is not one of ``choices`` (all of them at once)."""
        fields = (
            ("series", self.series, [key for key, _ in choices.series]),
            ("reason", self.reason, [value for value, _ in choices.reasons]),
            ("region", self.region, list(choices.regions)),
        )
        return [
            Problem(
                "no left-out learner has this value",
                field=name,
                value=given,
                hint="choose one of: " + ", ".join(allowed) if allowed else "nobody is left out",
            )
            for name, given, allowed in fields
            if given and given not in allowed
        ]


@dataclass(frozen=True, slots=True)
class LeftOutReport:
    """The left-out card: the summary per series, then the detail the filter asked for."""

    total: int  # learners left out of at least one series
    series: tuple[LeftOutSeries, ...]
    choices: LeftOutChoices
    filter: LeftOutFilter
    matching: int  # learners the filter matches (all left out when it is empty)
    rows: tuple[LeftOutLearner, ...]  # the first LEFT_OUT_SHOWN of them, by email


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


@dataclass(frozen=True, slots=True)
class DeliveryView:
    counts: dict[str, int]
    due: int
    failed: tuple[tuple[str, str, str], ...]  # kind, to, error
    workers_running: int
    heartbeat_age: float | None  # seconds since the freshest worker heartbeat; None: never ran
    last_tick_age: float | None


@dataclass(frozen=True, slots=True)
class CohortOverview:
    slug: str
    title: str
    start_date: date
    end_date: date
    weeks: int
    home_zone: str
    anchor_zone: str
    locale: str
    learners: int
    facilitators: int
    published_version: int | None
    published_at: datetime | None
    changes: tuple[str, ...]  # manual changes since the planner's report
    live_times: tuple[LiveTime, ...]
    heatmap: HeatmapView
    coverage: tuple[SectionCoverage, ...]
    left_out: LeftOutReport
    dst_lines: tuple[str, ...]  # one per series, week and shift (older plans: one per warning)
    notes: tuple[str, ...]
    upcoming: tuple[UpcomingMeeting, ...]
    upcoming_from: datetime
    upcoming_until: datetime
    second_host_threshold: int
    delivery: DeliveryView
    auto_sections: tuple[str, ...] = field(default=())


def current_week(cohort: CohortRow, now: datetime) -> int:
    """The course week ``now`` falls in (0 before the start, the last week after the end)."""
    today = now.astimezone(zone(cohort.home_zone)).date()
    return max(0, min(cohort.weeks - 1, (today - cohort.start_date).days // 7))


def cohort_overview(
    db: Session,
    slug: str,
    now: datetime,
    *,
    week: int | None = None,
    second_host_threshold: int = SECOND_HOST_THRESHOLD,
    window: timedelta = UPCOMING_WINDOW,
    left_out_filter: LeftOutFilter = LeftOutFilter(),
) -> CohortOverview:
    """Everything the cohort's dashboard page shows. ``week`` (0-based) picks the heatmap's
    week; by default the current course week (the first before the course starts).
    ``left_out_filter`` narrows the per-learner left-out list. Raises NotFoundError for an
    unknown cohort, InputError when the filter names a value no left-out learner has."""
    cohort = repo.get_cohort(db, slug)
    spec = repo.cohort_spec(db, cohort)
    shown_week = current_week(cohort, now) if week is None else max(0, min(cohort.weeks - 1, week))
    counts = repo.roster_counts(db, cohort.id)
    groups = _learner_groups(db, cohort)
    names = _facilitator_names(db, cohort.id)
    sizes = _section_sizes(db, cohort.id)
    live = _live_times(db, cohort.id, names, sizes, groups, spec, shown_week)
    version, published_at, summary, changes = _published_report(db, cohort.id)

    heat = _heatmap(spec, tuple(sorted(groups.items(), key=_group_order)), shown_week)
    heatmap = _heatmap_view(
        heat.counts,
        heat.zones,
        heat.peak,
        live,
        shown_week,
        cohort.weeks,
        anchor_zone_name(spec),
        sum(groups.values()),
        [occurrence_date(spec, shown_week, d) for d in range(7)],
    )
    left_out = _left_out(db, cohort.id, spec, summary, now, left_out_filter)
    upcoming, start, until = _upcoming(
        db, cohort.id, now, window, names, sizes, groups, second_host_threshold
    )
    return CohortOverview(
        slug=cohort.slug,
        title=cohort.title,
        start_date=cohort.start_date,
        end_date=_end_date(cohort),
        weeks=cohort.weeks,
        home_zone=cohort.home_zone,
        anchor_zone=anchor_zone_name(spec),
        locale=cohort.locale,
        learners=counts.get(Role.LEARNER.value, 0),
        facilitators=counts.get(Role.FACILITATOR.value, 0),
        published_version=version,
        published_at=published_at,
        changes=tuple(changes),
        live_times=tuple(live),
        heatmap=heatmap,
        coverage=_coverage(summary, live, names),
        left_out=left_out,
        dst_lines=_dst_lines(summary, _series_titles(spec)),
        notes=tuple(str(n) for n in summary.get("notes", [])),
        upcoming=tuple(upcoming),
        upcoming_from=start,
        upcoming_until=until,
        second_host_threshold=second_host_threshold,
        delivery=delivery_view(db, now),
        auto_sections=tuple(_auto_section_text(r) for r in summary.get("auto_sections", [])),
    )


Groups = Counter[tuple[str, Availability]]


@lru_cache(maxsize=16)
def _heatmap(
    spec: CohortSpec, groups: tuple[tuple[tuple[str, Availability], int], ...], week: int
) -> Heatmap:
    """The heatmap of these learner groups (memoised: the inputs are the whole key, so a roster
    or plan change is a new key; repeated views of a large cohort cost one computation)."""
    learners = [
        LearnerInput(f"{zone_name}#{i}", zone_name, availability)
        for (zone_name, availability), n in groups
        for i in range(n)
    ]
    return availability_heatmap(spec, learners, week=week, slot_minutes=SLOT_MINUTES)


def _group_order(item: tuple[tuple[str, Availability], int]) -> tuple[str, str]:
    (zone_name, availability), _ = item
    return zone_name, availability.to_text()


def _learner_groups(db: Session, cohort: CohortRow) -> Groups:
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


def _facilitator_names(db: Session, cohort_id: int) -> dict[str, str]:
    query = (
        select(PersonRow.email, PersonRow.name)
        .join(EnrollmentRow, EnrollmentRow.person_id == PersonRow.id)
        .where(EnrollmentRow.cohort_id == cohort_id, EnrollmentRow.role == Role.FACILITATOR.value)
    )
    return {email: name for email, name in db.execute(query)}


def _section_sizes(db: Session, cohort_id: int) -> dict[tuple[str, int], int]:
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


def _fitting(groups: Groups, start: datetime, minutes: int) -> int:
    """How many learners have ``start`` + ``minutes`` inside their window."""
    return sum(n for (z, a), n in groups.items() if a.covers_at(start, minutes, zone(z)))


def _live_times(
    db: Session,
    cohort_id: int,
    names: dict[str, str],
    sizes: dict[tuple[str, int], int],
    groups: Groups,
    spec: CohortSpec,
    week: int,
) -> list[LiveTime]:
    rows = list(
        db.scalars(
            select(LiveSeriesRow)
            .where(
                LiveSeriesRow.cohort_id == cohort_id, LiveSeriesRow.status != SeriesStatus.CANCELLED
            )
            .order_by(LiveSeriesRow.id)
        )
    )
    sections: dict[str, int] = {}
    for row in rows:
        sections[row.series_key] = max(sections.get(row.series_key, 0), row.section + 1)
    out = []
    for row in rows:
        alternate = (
            (row.alt_weekday, row.alt_wall_minute)
            if row.alt_weekday is not None and row.alt_wall_minute is not None
            else None
        )
        if row.kind == SeriesKind.COWORKING.value:
            day, minute = (
                alternate
                if alternate is not None and week % 2
                else (
                    row.weekday,
                    row.wall_minute,
                )
            )
            start = wall_to_utc(
                occurrence_date(spec, week, day),
                time(minute // 60, minute % 60),
                zone(row.anchor_zone),
            )
            size = _fitting(groups, start, row.duration_minutes)
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
                names.get(row.facilitator_email, row.facilitator_email)
                if row.facilitator_email
                else None,
                size,
                alternate,
            )
        )
    order = {SeriesKind.CLASS.value: 0, SeriesKind.OFFICE_HOURS.value: 1}
    out.sort(key=lambda t: (order.get(t.kind, 2), t.series, t.section, t.slot))
    return out


def _section_name(title: str, kind: str, section: int, sections: int) -> str:
    """``Live class · section 2``; co-working blocks are numbered (``Co-working block 3``)."""
    if sections <= 1:
        return title
    if kind == SeriesKind.COWORKING.value:
        return f"{title} {section + 1}"
    return f"{title} · section {section + 1}"


def _wall_label(weekday: int, minute: int) -> str:
    return f"{Weekday(weekday).label} {minute // 60:02d}:{minute % 60:02d}"


def _heatmap_view(
    counts: tuple[tuple[int, ...], ...],
    zones: tuple[tuple[Counter[str], ...], ...],
    peak: int,
    live: Sequence[LiveTime],
    week: int,
    weeks: int,
    anchor: str,
    learners: int,
    dates: list[date],
) -> HeatmapView:
    marks: dict[tuple[int, int], list[LiveTime]] = {}
    for t in live:
        day, minute = t.at_week(week)
        for cell in slot_of(day, minute, timedelta(minutes=t.duration_minutes), SLOT_MINUTES):
            marks.setdefault(cell, []).append(t)
    rows = []
    for slot in range(MINUTES_PER_DAY // SLOT_MINUTES):
        minute = slot * SLOT_MINUTES
        cells = []
        for day in range(7):
            n = counts[day][slot]
            by_zone = tuple(sorted(zones[day][slot].items(), key=lambda zn: (-zn[1], zn[0])))
            here = tuple(marks.get((day, slot), ()))
            level = 0 if n == 0 or peak == 0 else max(1, round(n / peak * HEAT_LEVELS))
            cells.append(
                HeatCell(
                    day,
                    slot,
                    n,
                    level,
                    by_zone,
                    here,
                    _cell_text(day, minute, n, learners, by_zone, here, anchor),
                )
            )
        rows.append(HeatRow(minute, f"{minute // 60:02d}:{minute % 60:02d}", tuple(cells)))
    days = tuple((Weekday(d).label, dates[d]) for d in range(7))
    return HeatmapView(anchor, week, weeks, SLOT_MINUTES, learners, peak, days, tuple(rows))


def _cell_text(
    day: int,
    minute: int,
    n: int,
    learners: int,
    by_zone: tuple[tuple[str, int], ...],
    marks: tuple[LiveTime, ...],
    anchor: str,
) -> str:
    end = minute + SLOT_MINUTES
    span = f"{_wall_label(day, minute)}-{end // 60:02d}:{end % 60:02d} {anchor}"
    text = f"{span}: {n} of {learners} learner{'s' if learners != 1 else ''} available"
    if by_zone:
        named = [f"{c} in {z}" for z, c in by_zone[:ZONES_NAMED]]
        rest = sum(c for _, c in by_zone[ZONES_NAMED:])
        if rest:
            named.append(f"{rest} elsewhere")
        text += " (" + ", ".join(named) + ")"
    if marks:
        text += "; scheduled: " + ", ".join(m.name for m in marks)
    return text


def _published_report(
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


def _coverage(
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
        facilitator = s.get("facilitator")
        out.append(
            SectionCoverage(
                key[0],
                titles.get(key[0], key[0]),
                str(s.get("kind", "")),
                key[1],
                sections[key[0]],
                ", ".join(t.label for t in now_times) if now_times else "cancelled",
                planned,
                names.get(facilitator, facilitator) if facilitator else None,
                int(s.get("size", 0)),
                int(s.get("fitted", 0)),
                tuple(s.get("coverage_by_week", [])),
            )
        )
    return tuple(out)


def _left_out(
    db: Session,
    cohort_id: int,
    spec: CohortSpec,
    summary: dict[str, Any],
    now: datetime,
    wanted: LeftOutFilter,
) -> LeftOutReport:
    """The report's left-out learners: one summary line per series, and the learners
    ``wanted`` matches (the first LEFT_OUT_SHOWN by email, with their replays). Raises
    InputError when ``wanted`` names a series, reason or region no left-out learner has."""
    records = _left_out_records(summary)
    people = _cohort_learners(db, cohort_id) if records else {}
    zones = {email: p.zone for email, p in people.items()}
    titles = _series_titles(spec)
    grouped = left_out_by_series(records, zones)
    left_of: dict[str, set[str]] = {}
    for x in records:
        left_of.setdefault(x.series, set()).add(x.learner)
    everyone = set().union(*left_of.values())
    regions = {e: region(zones.get(e, "?")) for e in everyone}
    reasons = {x.reason for x in records}
    choices = LeftOutChoices(
        tuple((g.series, titles.get(g.series, g.series)) for g in grouped),
        tuple((r.value, REASON_TEXT[r]) for r in LeftOutReason if r in reasons),
        tuple(sorted(set(regions.values()))),
    )
    if problems := wanted.problems(choices):
        raise InputError(problems, "the left-out filter cannot be read")

    replay_series = _replay_series(db, cohort_id) if records else {}
    fit, planned = _fit_by_series(summary)
    kinds = {s.key: s.kind for s in spec.series}
    lines = []
    for g in grouped:
        replays: int | None = None  # only classes are recorded
        if kinds.get(g.series) == SeriesKind.CLASS:
            groups = [people[e].group for e in left_of[g.series] if e in people]
            replays = sum(g.series in replay_series.get(n, ()) for n in groups if n is not None)
        title = titles.get(g.series, g.series)
        lines.append(
            LeftOutSeries(
                g.series,
                title,
                replace(g, series=title).describe(),
                g.learners,
                fit.get(g.series, 0) if planned is not None else None,
                planned,
                replays,
            )
        )

    matching: dict[str, list[LeftOut]] = {}
    for x in records:
        if wanted.matches(x, regions[x.learner]):
            matching.setdefault(x.learner, []).append(x)
    rows = _left_out_rows(db, cohort_id, matching, people, titles, now)
    return LeftOutReport(len(everyone), tuple(lines), choices, wanted, len(matching), rows)


def _left_out_rows(
    db: Session,
    cohort_id: int,
    matching: dict[str, list[LeftOut]],
    people: dict[str, _Learner],
    titles: dict[str, str],
    now: datetime,
) -> tuple[LeftOutLearner, ...]:
    """The first LEFT_OUT_SHOWN matching learners by email, with the records that matched and
    their replays (one query for them all)."""
    shown = sorted(matching)[:LEFT_OUT_SHOWN]
    replays = _replays_of(db, cohort_id, [people[e].id for e in shown if e in people], now)
    rows = []
    for email in shown:
        person = people.get(email)
        count, nxt = replays.get(person.id, (0, None)) if person else (0, None)
        rows.append(
            LeftOutLearner(
                email,
                person.name if person else email,
                person.zone if person else "",
                tuple((titles.get(x.series, x.series), _why(x)) for x in matching[email]),
                count,
                nxt[0] if nxt else None,
                nxt[1] if nxt else "",
            )
        )
    return tuple(rows)


def _left_out_records(summary: dict[str, Any]) -> list[LeftOut]:
    """The report's stored left-out records as the planner's values (a record whose reason this
    version does not know is left out of the summary and the list; none is written so)."""
    known = {r.value: r for r in LeftOutReason}
    out = []
    for x in summary.get("left_out", []):
        reason = known.get(str(x.get("reason")))
        if reason is not None:
            week = x.get("week")
            out.append(
                LeftOut(
                    str(x.get("learner")),
                    str(x.get("series")),
                    reason,
                    week if isinstance(week, int) else None,
                    str(x.get("detail") or ""),
                )
            )
    return out


def _why(record: LeftOut) -> str:
    """The stored detail (it names the week a clock change ends the fit), else the reason."""
    return record.detail or REASON_TEXT[record.reason]


@dataclass(frozen=True, slots=True)
class _Learner:
    id: int
    name: str
    zone: str
    group: int | None  # their deadline group; None before deadlines were built


def _cohort_learners(db: Session, cohort_id: int) -> dict[str, _Learner]:
    """Every learner ever enrolled in the cohort (withdrawn ones too: a plan may name them) by
    email, with their zone and deadline group: one query, whatever the cohort's size."""
    query = (
        select(
            PersonRow.email,
            PersonRow.id,
            PersonRow.name,
            PersonRow.zone,
            LearnerDeadlinesRow.group_id,
        )
        .join(EnrollmentRow, EnrollmentRow.person_id == PersonRow.id)
        .outerjoin(
            LearnerDeadlinesRow,
            (LearnerDeadlinesRow.person_id == PersonRow.id)
            & (LearnerDeadlinesRow.cohort_id == cohort_id),
        )
        .where(EnrollmentRow.cohort_id == cohort_id, EnrollmentRow.role == Role.LEARNER.value)
    )
    return {
        email: _Learner(person_id, name, zone_name, group)
        for email, person_id, name, zone_name, group in db.execute(query)
    }


def _replay_series(db: Session, cohort_id: int) -> dict[int, set[str]]:
    """The series each of the cohort's deadline groups has replays of (groups are shared by
    learners with identical lists: about a thousand for 100k learners)."""
    query = (
        select(DeadlineItemRow.group_id, DeadlineItemRow.series_key)
        .join(DeadlineGroupRow, DeadlineGroupRow.id == DeadlineItemRow.group_id)
        .where(DeadlineGroupRow.cohort_id == cohort_id, DeadlineItemRow.kind == "replay")
        .distinct()
    )
    out: dict[int, set[str]] = {}
    for group_id, series in db.execute(query):
        out.setdefault(group_id, set()).add(series)
    return out


def _replays_of(
    db: Session, cohort_id: int, person_ids: list[int], now: datetime
) -> dict[int, tuple[int, tuple[datetime, str] | None]]:
    """Per person: how many replay items they have, and the next one due after ``now``."""
    if not person_ids:
        return {}
    query = (
        select(LearnerDeadlinesRow.person_id, DeadlineItemRow.soft, DeadlineItemRow.title)
        .join(DeadlineItemRow, DeadlineItemRow.group_id == LearnerDeadlinesRow.group_id)
        .where(
            LearnerDeadlinesRow.cohort_id == cohort_id,
            LearnerDeadlinesRow.person_id.in_(person_ids),
            DeadlineItemRow.kind == "replay",
        )
    )
    counts: Counter[int] = Counter()
    upcoming: dict[int, tuple[datetime, str]] = {}
    for person_id, soft, title in db.execute(query):
        counts[person_id] += 1
        if soft >= now and (person_id not in upcoming or soft < upcoming[person_id][0]):
            upcoming[person_id] = (soft, title)
    return {pid: (n, upcoming.get(pid)) for pid, n in counts.items()}


def _fit_by_series(summary: dict[str, Any]) -> tuple[dict[str, int], int | None]:
    """Per series, the plan's learners every meeting of it fits; and how many learners the plan
    was made for (None when the report has no per-learner part)."""
    learners = summary.get("learners")
    if not isinstance(learners, list):
        return {}, None
    fit: dict[str, set[str]] = {}
    for entry in learners:
        for row in entry.get("series", []):
            if row.get("occurrences") and row.get("fitted") == row.get("occurrences"):
                fit.setdefault(str(row.get("series")), set()).add(str(entry.get("learner")))
    return {series: len(who) for series, who in fit.items()}, len(learners)


def _series_titles(spec: CohortSpec) -> dict[str, str]:
    return {s.key: s.title for s in spec.series}


def _dst_lines(summary: dict[str, Any], titles: dict[str, str]) -> tuple[str, ...]:
    """The clock changes, one line per series, course week and shift (from the report's
    ``dst`` records); a plan published before they were stored has its warnings' texts."""
    stored = summary.get("dst")
    if not isinstance(stored, list):
        return tuple(str(w) for w in summary.get("warnings", []))
    warnings = [
        DstWarning(
            str(w["series"]),
            int(w["section"]),
            int(w["week"]),
            int(w["shift_minutes"]),
            str(w["zone_pattern"]),
            int(w["learners"]),
            "",
        )
        for w in stored
    ]
    return tuple(
        replace(c, series=titles.get(c.series, c.series)).describe()
        for c in dst_by_series_week(warnings)
    )


def _upcoming(
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
    sections: dict[str, int] = {}
    for series, _ in rows:
        sections[series.series_key] = max(sections.get(series.series_key, 0), series.section + 1)
    out = []
    for series, o in rows:
        if series.kind == SeriesKind.COWORKING.value:
            expected = _fitting(groups, o.start, series.duration_minutes)
        else:
            expected = sizes.get((series.series_key, series.section), 0)
        many = series.kind != SeriesKind.COWORKING.value and sections[series.series_key] > 1
        out.append(
            UpcomingMeeting(
                o.start,
                o.end,
                o.week,
                series.title + (f" · section {series.section + 1}" if many else ""),
                series.kind,
                series.series_key,
                series.section,
                series.slot,
                names.get(series.facilitator_email, series.facilitator_email)
                if series.facilitator_email
                else None,
                expected,
                o.status == OccurrenceStatus.SCHEDULED and expected > threshold,
                o.status,
                o.status == OccurrenceStatus.SCHEDULED and o.sequence > 0,
            )
        )
    return out, start, until


def delivery_view(db: Session, now: datetime) -> DeliveryView:
    """The outbox (every cohort's) and the workers' heartbeat."""
    box = outbox_status(db, now)
    workers = worker_status(db, now)
    beats = [w.heartbeat_age for w in workers if not w.stopped] or [
        w.heartbeat_age for w in workers
    ]
    ticks = [w.last_tick_age for w in workers if w.last_tick_age is not None]
    return DeliveryView(
        dict(box.counts),
        box.due,
        tuple(box.failed_recent),
        sum(not w.stopped for w in workers),
        min(beats) if beats else None,
        min(ticks) if ticks else None,
    )


def _auto_section_text(report: dict[str, Any]) -> str:
    steps = ", ".join(
        f"{s['sections']}: {s['share']:.0%}" for s in report.get("steps", []) if "share" in s
    )
    verdict = "reached" if report.get("reached") else "not reached"
    return (
        f"{report.get('series')}: share of learners fitted by number of sections: {steps}; "
        f"chose {report.get('chosen')} (target {float(report.get('target', 0)):.0%} {verdict})"
    )


# --- forms and exports -------------------------------------------------------------------------


def series_choices(db: Session, cohort_id: int) -> list[tuple[str, str]]:
    """(form value ``series:section:slot``, label) of every published weekly time."""
    rows = list(
        db.scalars(
            select(LiveSeriesRow)
            .where(
                LiveSeriesRow.cohort_id == cohort_id, LiveSeriesRow.status != SeriesStatus.CANCELLED
            )
            .order_by(LiveSeriesRow.series_key, LiveSeriesRow.section, LiveSeriesRow.slot)
        )
    )
    sections: dict[str, int] = {}
    for r in rows:
        sections[r.series_key] = max(sections.get(r.series_key, 0), r.section + 1)
    out = []
    for r in rows:
        label = _section_name(r.title, r.kind, r.section, sections[r.series_key])
        out.append(
            (
                f"{r.series_key}:{r.section}:{r.slot}",
                f"{label} — {_wall_label(r.weekday, r.wall_minute)} {r.anchor_zone}",
            )
        )
    return out


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
    _, _, summary, _ = _published_report(db, cohort.id)
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
    sizes = _section_sizes(db, cohort.id)
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
