"""The availability heatmap of a course week on the anchor zone's clock: 30-minute cells with
per-zone counts, a shade level per cell (the CSS classes ``h0``..``h8``), a description for
screen readers, and the published weekly times marked on it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from scheduler.domain.availability import Availability
from scheduler.domain.cohort import CohortSpec
from scheduler.outputs.heatmap import Heatmap, availability_heatmap, slot_of
from scheduler.planning import LearnerInput
from scheduler.planning.fit import anchor_zone_name, occurrence_date
from scheduler.services.views.common import Groups, wall_label
from scheduler.services.views.meetings import LiveTime
from scheduler.timeutil import MINUTES_PER_DAY, Weekday

SLOT_MINUTES = 30
HEAT_LEVELS = 8  # shades of a non-empty heatmap cell (CSS classes h1..h8; h0 is empty)
ZONES_NAMED = 6  # zones named in a heatmap cell's description; the rest are counted


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
    span = f"{wall_label(day, minute)}-{end // 60:02d}:{end % 60:02d} {anchor}"
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


def heatmap_view(
    spec: CohortSpec, groups: Groups, live: Sequence[LiveTime], week: int, weeks: int
) -> HeatmapView:
    """The heatmap of course ``week`` (0-based, of ``weeks``) for these learner groups, with the
    live times marked on it."""
    heat = _heatmap(spec, tuple(sorted(groups.items(), key=_group_order)), week)
    return _heatmap_view(
        heat.counts,
        heat.zones,
        heat.peak,
        live,
        week,
        weeks,
        anchor_zone_name(spec),
        sum(groups.values()),
        [occurrence_date(spec, week, d) for d in range(7)],
    )
