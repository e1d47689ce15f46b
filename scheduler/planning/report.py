"""A plan's report for people: the summary first, the detail on demand.

A plan of a global cohort lists many learners left out of a series and many clock changes, one
record per learner, section and region. The runner first needs the shape: per series, how many
are left out, where they live and why; per series and course week, how the time moves on
learners' clocks. These functions group the planner's records so; the CLI (`cohort plan`, with
`--verbose` for the per-learner list) and the dashboard print the same groups. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scheduler.planning.model import DstWarning, LeftOut, LeftOutReason

REGIONS_SHOWN = 3  # per line; the rest are counted together as "elsewhere"

# Why a learner is left out, in words, for a count of learners ("97 ... serve fewer learners").
REASON_TEXT: dict[LeftOutReason, str] = {
    LeftOutReason.NO_AVAILABILITY: "gave no availability and the cohort default does not fit",
    LeftOutReason.NO_FEASIBLE_TIME: "no time fits their availability every week",
    LeftOutReason.NO_FACILITATOR_OVERLAP: "only times no facilitator can take fit them",
    LeftOutReason.CAPACITY: "every section was full",
    LeftOutReason.DST_UNTIL_WEEK: "a clock change moves the time out of their window",
    LeftOutReason.TIME_NOT_CHOSEN: "times that fit them serve fewer learners",
    LeftOutReason.BLOCK_LIMIT: "max_blocks was reached before a block reached them",
}


def region(zone: str) -> str:
    """The region of a time zone as a pattern: ``Asia/*`` for ``Asia/Tokyo`` (and for
    ``America/Argentina/Salta``, ``America/*``); a zone without a slash (``UTC``) as itself."""
    head, slash, _ = zone.partition("/")
    return f"{head}/*" if slash else zone


@dataclass(frozen=True, slots=True)
class SeriesLeftOut:
    """The learners left out of one series, counted by region and by reason (most first)."""

    series: str
    learners: int
    by_region: tuple[tuple[str, int], ...]
    by_reason: tuple[tuple[LeftOutReason, int], ...]

    def describe(self) -> str:
        """``office-hours: 107 left out — 61 in Asia/*, 20 in America/*, 26 elsewhere; 97:
        times that fit them serve fewer learners, 10: gave no availability …``"""
        return (
            f"{self.series}: {self.learners} left out \u2014 {_regions(self.by_region)}; "
            + ", ".join(f"{n}: {REASON_TEXT[reason]}" for reason, n in self.by_reason)
        )


def left_out_by_series(
    left_out: Iterable[LeftOut], zones: Mapping[str, str]
) -> list[SeriesLeftOut]:
    """Per series (in order of first appearance), its left-out learners grouped by the region
    of their zone (``zones``: learner -> zone; unknown: ``?``) and by reason. A learner counts
    once per series whatever the number of records."""
    seen: dict[str, dict[str, LeftOutReason]] = {}
    for x in left_out:
        seen.setdefault(x.series, {}).setdefault(x.learner, x.reason)
    out = []
    for series, learners in seen.items():
        regions = Counter(region(zones.get(learner, "?")) for learner in learners)
        reasons = Counter(learners.values())
        out.append(
            SeriesLeftOut(
                series,
                len(learners),
                tuple(sorted(regions.items(), key=lambda kv: (-kv[1], kv[0]))),
                tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0].value))),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class DstChange:
    """From course week ``week`` (0-based) a series' time is ``shift_minutes`` later (earlier if
    negative) on the clocks of ``learners`` learners, all its sections together."""

    series: str
    week: int
    shift_minutes: int
    learners: int
    by_region: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        """``class: from week 5, 1h earlier on the clocks of 141 learners (82 in Asia/*, …)``"""
        minutes = abs(self.shift_minutes)
        amount = f"{minutes // 60}h{minutes % 60:02d}".replace("h00", "h").removeprefix("0h")
        if amount.isdigit():
            amount += " min"
        direction = "later" if self.shift_minutes > 0 else "earlier"
        many = "s" if self.learners != 1 else ""
        return (
            f"{self.series}: from week {self.week + 1}, {amount} {direction} on the clocks of "
            f"{self.learners} learner{many} ({_regions(self.by_region)})"
        )


def dst_by_series_week(warnings: Iterable[DstWarning]) -> list[DstChange]:
    """The planner's clock-change warnings (one per section, week, shift and region) as one
    change per series, week and shift, sorted by series (first appearance), week, shift."""
    grouped: dict[tuple[str, int, int], Counter[str]] = {}
    order: dict[str, int] = {}
    for w in warnings:
        order.setdefault(w.series, len(order))
        grouped.setdefault((w.series, w.week, w.shift_minutes), Counter())[w.zone_pattern] += (
            w.learners
        )
    return [
        DstChange(
            series,
            week,
            shift,
            sum(regions.values()),
            tuple(sorted(regions.items(), key=lambda kv: (-kv[1], kv[0]))),
        )
        for (series, week, shift), regions in sorted(
            grouped.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])
        )
    ]


def _regions(counts: tuple[tuple[str, int], ...]) -> str:
    shown = [f"{n} in {r}" for r, n in counts[:REGIONS_SHOWN]]
    rest = sum(n for _, n in counts[REGIONS_SHOWN:])
    if rest:
        shown.append(f"{rest} elsewhere")
    return ", ".join(shown)
