"""How many learners are available in each slot of a week, on the anchor zone's clock.

Used by `cohort plan` (hourly text heatmap) and later by the dashboard (30-minute cells).
Learners with the same zone and availability are counted as one group.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from scheduler.domain.availability import Availability
from scheduler.domain.cohort import CohortSpec
from scheduler.planning import LearnerInput
from scheduler.planning.fit import anchor_zone_name, slot_instant
from scheduler.timeutil import MINUTES_PER_DAY, zone


@dataclass(frozen=True, slots=True)
class Heatmap:
    anchor_zone: str
    week: int
    slot_minutes: int
    counts: tuple[tuple[int, ...], ...]  # [weekday][slot]: learners available for the whole slot
    zones: tuple[tuple[Counter[str], ...], ...]  # [weekday][slot]: those learners by zone

    @property
    def peak(self) -> int:
        return max((max(row) for row in self.counts), default=0)


def availability_heatmap(
    spec: CohortSpec, learners: Sequence[LearnerInput], *, week: int = 0, slot_minutes: int = 60
) -> Heatmap:
    anchor = anchor_zone_name(spec)
    tz = zone(anchor)
    groups: Counter[tuple[str, Availability]] = Counter((x.zone, x.availability) for x in learners)
    slots = MINUTES_PER_DAY // slot_minutes
    counts: list[tuple[int, ...]] = []
    by_zone: list[tuple[Counter[str], ...]] = []
    for weekday in range(7):
        row: list[int] = []
        zones_row: list[Counter[str]] = []
        for slot in range(slots):
            minute = slot * slot_minutes
            instant = slot_instant(spec, week, weekday, minute, tz)
            here: Counter[str] = Counter()
            for (zone_name, availability), n in groups.items():
                if availability.covers_at(instant, slot_minutes, zone(zone_name)):
                    here[zone_name] += n
            row.append(sum(here.values()))
            zones_row.append(here)
        counts.append(tuple(row))
        by_zone.append(tuple(zones_row))
    return Heatmap(anchor, week, slot_minutes, tuple(counts), tuple(by_zone))


def slot_of(
    weekday: int, minute: int, duration: timedelta, slot_minutes: int
) -> list[tuple[int, int]]:
    """The (weekday, slot) cells a session starting at ``weekday`` ``minute`` covers."""
    cells = []
    start = weekday * MINUTES_PER_DAY + minute
    end = start + int(duration / timedelta(minutes=1))
    cursor = start - start % slot_minutes
    while cursor < end:
        day, rest = divmod(cursor % (7 * MINUTES_PER_DAY), MINUTES_PER_DAY)
        cells.append((day, rest // slot_minutes))
        cursor += slot_minutes
    return cells
