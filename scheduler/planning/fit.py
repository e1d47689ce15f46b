"""Fit data: which weekly candidate times fit which learner classes in which course week.

Candidates are start times on the planning grid, as wall time in the anchor zone (the cohort's
home zone, or UTC). Candidate ``c`` starts ``c * grid`` minutes after Monday 00:00 anchor time.

Course weeks: week 0 runs from ``spec.start_date`` for seven days, week ``w`` from
``start_date + 7w``. The occurrence of weekday ``d`` in week ``w`` is on
``start_date + 7w + (d - start_date.weekday()) % 7``; a course starting on a Wednesday therefore
holds its "Monday" class on the Monday five days later. Each occurrence is turned into a UTC
instant by :func:`scheduler.timeutil.wall_to_utc` (the DST policy: a nonexistent wall time moves
forward, an ambiguous one takes the first). A blackout date (anchor calendar) removes it.

An occurrence *fits* a learner when ``[local start, local start + duration)`` lies inside their
availability, where the local start is the UTC instant seen on the learner's clock that week.
(A session that itself straddles the learner's clock change is measured in elapsed minutes.)

Learners are grouped into *classes*: the same availability and the same UTC offset at every
candidate instant of the course (Berlin, Paris and Rome are one class). All arrays are indexed
by class, which is what makes 100k learners cost about as much as 10k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from scheduler.domain.availability import Availability
from scheduler.domain.cohort import Anchor, CohortSpec
from scheduler.timeutil import MINUTES_PER_DAY, MINUTES_PER_WEEK, wall_to_utc, zone

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

EDGE_CAP_MINUTES = 60  # slack beyond this from a window's edge counts the same


def anchor_zone_name(spec: CohortSpec) -> str:
    return "UTC" if spec.planning.anchor == Anchor.UTC else spec.home_zone


def occurrence_date(spec: CohortSpec, week: int, weekday: int) -> date:
    """The date of weekday ``weekday`` (0 = Monday) in course week ``week`` (0-based)."""
    return spec.start_date + timedelta(days=7 * week + (weekday - spec.start_date.weekday()) % 7)


def week_slot(
    week: int, slot: tuple[int, int], alternate: tuple[int, int] | None
) -> tuple[int, int]:
    """The (weekday, minute of the day) a weekly series uses in course week ``week``: a rotating
    series (one with an ``alternate`` time) uses its other time in odd weeks."""
    return alternate if alternate is not None and week % 2 == 1 else slot


def slot_instant(
    spec: CohortSpec, week: int, weekday: int, minute: int, tz: ZoneInfo | str
) -> datetime:
    """The UTC instant at which the weekly slot (``weekday``, ``minute`` after midnight on
    ``tz``'s wall clock) falls in course week ``week``: the one function that turns a series'
    slot into an instant (DST policy of :func:`scheduler.timeutil.wall_to_utc`)."""
    day = occurrence_date(spec, week, weekday)
    return wall_to_utc(
        day, time(minute // 60, minute % 60), zone(tz) if isinstance(tz, str) else tz
    )


@dataclass(frozen=True)
class Grid:
    """Candidate start instants.

    ``minutes[c, w]``: the UTC start of candidate ``c`` in week ``w`` as minutes after ``epoch``
    (a Monday 00:00 UTC); ``active[c, w]`` is False on blackout dates."""

    step: int
    weeks: int
    epoch: datetime
    anchor: str
    minutes: IntArray
    active: BoolArray

    @property
    def size(self) -> int:
        return int(self.minutes.shape[0])

    def instant(self, candidate: int, week: int) -> datetime:
        return self.epoch + timedelta(minutes=int(self.minutes[candidate, week]))


def build_grid(spec: CohortSpec) -> Grid:
    step = spec.planning.grid_minutes
    if step <= 0 or MINUTES_PER_WEEK % step:
        raise ValueError("grid_minutes must divide a week")
    anchor = anchor_zone_name(spec)
    tz = zone(anchor)
    first_monday = spec.start_date - timedelta(days=spec.start_date.weekday() + 7)
    epoch = datetime.combine(first_monday, time(0), tzinfo=UTC)
    count = MINUTES_PER_WEEK // step
    minutes = np.zeros((count, spec.weeks), dtype=np.int64)
    active = np.ones((count, spec.weeks), dtype=bool)
    for week in range(spec.weeks):
        for weekday in range(7):
            day = occurrence_date(spec, week, weekday)
            blocked = spec.is_blacked_out(day)
            for c in range(
                weekday * MINUTES_PER_DAY // step, (weekday + 1) * MINUTES_PER_DAY // step
            ):
                start = slot_instant(spec, week, weekday, c * step - weekday * MINUTES_PER_DAY, tz)
                minutes[c, week] = (start - epoch) // timedelta(minutes=1)
                active[c, week] = not blocked
    return Grid(step, spec.weeks, epoch, anchor, minutes, active)


def offsets_at(tz: ZoneInfo, epoch: datetime, minutes: IntArray) -> IntArray:
    """UTC offsets (minutes) of ``tz`` at the instants ``epoch + minutes``, vectorised.

    Clock changes are found by sampling every twelve hours and bisecting to the minute, so only a
    few hundred ``utcoffset`` calls are made per zone whatever the number of instants.
    """
    lo, hi = int(minutes.min()) - 720, int(minutes.max()) + 720

    def offset(m: int) -> int:
        delta = (epoch + timedelta(minutes=m)).astimezone(tz).utcoffset()
        return 0 if delta is None else int(delta // timedelta(minutes=1))

    points = list(range(lo, hi + 720, 720))
    values = [offset(m) for m in points]
    breaks: list[int] = []
    after: list[int] = []
    for i in range(1, len(points)):
        if values[i] != values[i - 1]:
            left, right = points[i - 1], points[i]  # offset(left) != offset(right)
            while right - left > 1:
                mid = (left + right) // 2
                if offset(mid) == values[i - 1]:
                    left = mid
                else:
                    right = mid
            breaks.append(right)
            after.append(offset(right))
    table = np.array([values[0], *after], dtype=np.int64)
    return table[np.searchsorted(np.array(breaks, dtype=np.int64), minutes, side="right")]


def slack_table(availability: Availability, duration: int) -> npt.NDArray[np.int16]:
    """``table[m]``: for a session starting at local minute-of-week ``m``, the minutes between it
    and the nearer edge of the window holding it (capped), or -1 when it does not fit."""
    table = np.full(MINUTES_PER_WEEK, -1, dtype=np.int16)
    for w_start, w_end in availability.joined():
        if w_end - w_start < duration:
            continue
        starts = np.arange(w_start, w_end - duration + 1)
        slack = np.minimum(starts - w_start, w_end - duration - starts)
        table[starts % MINUTES_PER_WEEK] = np.minimum(slack, EDGE_CAP_MINUTES)
    return table


@dataclass(frozen=True)
class FitData:
    """Fit of every candidate for every learner class, for one session duration.

    ``fits[g, c, w]``: candidate ``c`` fits class ``g`` in week ``w`` (False when inactive);
    ``full[g, c]``: it fits every active week (and there is one); ``occ[g, c]``: fitting weeks;
    ``edge[g, c]``: the smallest slack to a window edge over the active weeks when ``full``.
    """

    duration: int
    fits: BoolArray
    full: BoolArray
    occ: IntArray
    edge: IntArray
    active_weeks: IntArray


@dataclass(frozen=True)
class Classes:
    """Learners grouped by (offset trajectory, availability); ``members[g]`` are learner indices."""

    count: IntArray
    members: tuple[tuple[int, ...], ...]
    availability: tuple[Availability, ...]
    local: IntArray  # [g, c, w] local minute of week of each candidate instant


def build_classes(
    grid: Grid, zones: Sequence[str], availabilities: Sequence[Availability]
) -> Classes:
    by_zone: dict[str, IntArray] = {}
    trajectory: dict[str, bytes] = {}
    for name in sorted(set(zones)):
        offs = offsets_at(zone(name), grid.epoch, grid.minutes)
        by_zone[name] = offs
        trajectory[name] = offs.astype(np.int32).tobytes()
    keys: dict[tuple[bytes, Availability], int] = {}
    members: list[list[int]] = []
    first_zone: list[str] = []
    for i, (name, availability) in enumerate(zip(zones, availabilities, strict=True)):
        key = (trajectory[name], availability)
        g = keys.get(key)
        if g is None:
            g = keys[key] = len(members)
            members.append([])
            first_zone.append(name)
        members[g].append(i)
    local = np.zeros((len(members), *grid.minutes.shape), dtype=np.int64)
    for g, name in enumerate(first_zone):
        local[g] = (grid.minutes + by_zone[name]) % MINUTES_PER_WEEK
    return Classes(
        count=np.array([len(m) for m in members], dtype=np.int64),
        members=tuple(tuple(m) for m in members),
        availability=tuple(a for _, a in keys),
        local=local,
    )


def build_fit(grid: Grid, classes: Classes, duration: int) -> FitData:
    g_count = len(classes.members)
    fits = np.zeros((g_count, *grid.minutes.shape), dtype=bool)
    edge_by_week = np.zeros((g_count, *grid.minutes.shape), dtype=np.int64)
    tables: dict[Availability, npt.NDArray[np.int16]] = {}
    for g, availability in enumerate(classes.availability):
        table = tables.get(availability)
        if table is None:
            table = tables[availability] = slack_table(availability, duration)
        slack = table[classes.local[g]]
        fits[g] = (slack >= 0) & grid.active
        edge_by_week[g] = np.where(grid.active, slack, EDGE_CAP_MINUTES)
    active_weeks = grid.active.sum(axis=1).astype(np.int64)
    occ = fits.sum(axis=2).astype(np.int64)
    full = (occ == active_weeks[None, :]) & (active_weeks[None, :] > 0)
    edge = np.where(full, edge_by_week.min(axis=2), 0).astype(np.int64)
    return FitData(duration, fits, full, occ, edge, active_weeks)


def facilitator_fit(
    grid: Grid, zone_name: str, availability: Availability, duration: int
) -> BoolArray:
    """``ok[c]``: candidate ``c`` lies inside the facilitator's availability every active week."""
    local = (
        grid.minutes + offsets_at(zone(zone_name), grid.epoch, grid.minutes)
    ) % MINUTES_PER_WEEK
    fits = slack_table(availability, duration)[local] >= 0
    return np.asarray(((fits | ~grid.active).all(axis=1)) & grid.active.any(axis=1))
