"""Clock-change warnings: the weeks in which a series' wall time moves on some learners' clocks."""

from __future__ import annotations

from collections import Counter

import numpy as np

from scheduler.domain.labels import section_suffix
from scheduler.planning.context import Chosen, Context, sectioned, slots_in_week
from scheduler.planning.model import DstWarning
from scheduler.timeutil import MINUTES_PER_WEEK

__all__ = ["dst_warnings"]


def dst_warnings(ctx: Context, item: Chosen, member_classes: Counter[int]) -> list[DstWarning]:
    """Weeks in which the series' wall time moves on some learners' clocks, in words.

    The series keeps its anchor wall time; a learner sees it move when their UTC offset and the
    anchor's change on different dates (or only one of them changes)."""
    if not item.members:
        return []
    local, grid, weeks = ctx.classes.local, ctx.grid, ctx.spec.weeks
    region_ids, region_names = ctx.regions()
    size = len(region_names)
    pairs = ctx.class_of[item.members] * size + region_ids[item.members]
    found, counts = np.unique(pairs, return_counts=True)
    regions: dict[int, Counter[str]] = {}
    for pair, count in zip(found.tolist(), counts.tolist(), strict=True):
        regions.setdefault(pair // size, Counter())[region_names[pair % size]] += count
    half = MINUTES_PER_WEEK // 2
    events: Counter[tuple[int, int, str]] = Counter()
    for g in member_classes:
        seen_events: set[tuple[int, int]] = set()
        for slot in range(len(item.times)):
            for w in range(1, weeks):
                c_now, c_before = slots_in_week(item, w)[slot], slots_in_week(item, w - 1)[slot]
                wall = ((c_now - c_before) * grid.step) % MINUTES_PER_WEEK
                clock = int(local[g, c_now, w] - local[g, c_before, w - 1]) % MINUTES_PER_WEEK
                shift = (clock - wall + half) % MINUTES_PER_WEEK - half
                if shift:
                    seen_events.add((w, shift))
        for w, shift in seen_events:
            for region, count in regions[g].items():
                events[(w, shift, region)] += count
    out = []
    what = item.series.kind.value.replace("_", " ")
    label = f"this {what}" + (section_suffix(item.section, 2) if sectioned(item.series) else "")
    for (w, shift, region), count in sorted(events.items()):
        direction = "later" if shift > 0 else "earlier"
        text = (
            f"from week {w + 1} {label} is {_amount(abs(shift))} {direction} "
            f"for the {count} learner{'s' if count != 1 else ''} in {region}/*"
        )
        out.append(DstWarning(item.series.key, item.section, w, shift, f"{region}/*", count, text))
    return out


def _amount(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    words = {1: "one hour", 2: "two hours"}
    if not rest:
        return words.get(hours, f"{hours} hours")
    if not hours:
        return f"{rest} minutes"
    return f"{words.get(hours, f'{hours} hours')} {rest} minutes"
