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
from typing import Any

from scheduler.planning.fairness import FairPlan
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


WORST_OFF_SHOWN = 5  # learners listed as the worst off of a fair rotation


def fairness_report(fair: FairPlan, worst: int = WORST_OFF_SHOWN) -> dict[str, Any]:
    """A fair rotation's burden ledger as JSON-ready data, what `cohort plan` prints, `--json`
    carries, the published plan keeps and the dashboard shows.

    Per region (worst share first): learners, meetings in preferred hours, in stretch hours,
    missed, and the share of inconvenient (stretch or missed) meetings; the ``worst`` learners
    with the most inconvenient meetings (then the most pain); coverage against the best single
    weekly time and the best plan with as many times; whether the rotation is proven optimal."""
    ledger = fair.ledger
    order = sorted(
        range(len(ledger.learners)),
        key=lambda i: (
            -(ledger.stretch[i] + ledger.missed[i]),
            -ledger.pain[i],
            ledger.learners[i],
        ),
    )
    shown = [i for i in order if ledger.stretch[i] + ledger.missed[i]][:worst]
    return {
        "series": fair.series,
        "anchor_zone": fair.anchor_zone,
        "times": [t.label() for t in fair.times],
        "week_times": list(fair.week_times),
        "coverage": round(fair.coverage, 4),
        "single_coverage": round(fair.single_coverage, 4),
        "reference_coverage": round(fair.reference_coverage, 4),
        "worst_region": fair.worst_region,
        "worst_share": round(fair.worst_share, 4),
        "total_pain": fair.total_pain,
        "exact": fair.exact,
        "gap": round(fair.gap, 4),
        "regions": [
            {
                "region": row.name,
                "learners": row.learners,
                "preferred": row.preferred,
                "stretch": row.stretch,
                "missed": row.missed,
                "skipped": row.skipped,
                "pain": row.pain,
                "share": round(row.share, 4),
            }
            for row in ledger.regions
        ],
        "worst_off": [
            {
                "learner": ledger.learners[i],
                "region": ledger.region[i],
                "preferred": ledger.preferred[i],
                "stretch": ledger.stretch[i],
                "missed": ledger.missed[i],
                "pain": ledger.pain[i],
            }
            for i in shown
        ],
    }


def describe_fairness(report: Mapping[str, Any]) -> list[str]:
    """The report of :func:`fairness_report` as lines for a course runner (English)."""
    times = report["times"]
    lines = [
        f"{report['series']}: rotates between {', '.join(times)} ({report['anchor_zone']})"
        if len(times) > 1
        else f"{report['series']}: one weekly time, {times[0]} ({report['anchor_zone']}): "
        "rotating would not share the burden better",
        f"  reaches {report['coverage']:.0%} of learner-meetings in available or stretch hours"
        f" (the best plan with {len(times)} time{'s' if len(times) > 1 else ''}: "
        f"{report['reference_coverage']:.0%}; the best single time: "
        f"{report['single_coverage']:.0%}); the worst-off region, {report['worst_region']}, "
        f"has {report['worst_share']:.0%} of its meetings inconvenient; "
        + (
            "proven the fairest"
            if report["gap"] == 0
            else f"within {report['gap'] * 100:.1f} points of the fairest"
        ),
    ]
    if len(times) > 1:
        lines.append(
            "  week by week: "
            + ", ".join(f"{w + 1} {times[t]}" for w, t in enumerate(report["week_times"]))
        )
    for row in report["regions"]:
        lines.append(
            f"  {row['region']}: {row['share']:.0%} inconvenient ({row['learners']} learners: "
            f"{row['preferred']} preferred, {row['stretch']} stretch, {row['missed']} missed)"
        )
    if report["worst_off"]:
        lines.append(
            "  worst off: "
            + ", ".join(
                f"{x['learner']} ({x['stretch']} stretch, {x['missed']} missed)"
                for x in report["worst_off"]
            )
        )
    return lines


def fairness_changes(
    before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]
) -> list[str]:
    """How a re-plan changes the burden of each fairly rotated series, in words (English):
    ``class: worst region 100% -> 75% (Europe -> Europe); coverage 100% -> 92%; Asia 0% -> 25%,
    Europe 100% -> 75%``. Only series whose figures change, or that start or stop rotating."""
    old = {str(r["series"]): r for r in before}
    new = {str(r["series"]): r for r in after}
    lines = []
    for key in [*new, *(k for k in old if k not in new)]:
        a, b = old.get(key), new.get(key)
        if a is None:
            assert b is not None
            lines.append(f"{key}: now rotates fairly (worst region {b['worst_share']:.0%})")
            continue
        if b is None:
            lines.append(f"{key}: no longer rotates (worst region was {a['worst_share']:.0%})")
            continue
        shares_a = {r["region"]: r["share"] for r in a["regions"]}
        shares_b = {r["region"]: r["share"] for r in b["regions"]}
        same = (a["times"], a["week_times"], shares_a, a["coverage"]) == (
            b["times"],
            b["week_times"],
            shares_b,
            b["coverage"],
        )
        if same:
            continue
        regions = ", ".join(
            f"{name} {shares_a.get(name, 0.0):.0%} -> {shares_b.get(name, 0.0):.0%}"
            for name in sorted({*shares_a, *shares_b})
            if shares_a.get(name) != shares_b.get(name)
        )
        line = (
            f"{key}: worst region {a['worst_share']:.0%} -> {b['worst_share']:.0%} "
            f"({a['worst_region']} -> {b['worst_region']}); "
            f"coverage {a['coverage']:.0%} -> {b['coverage']:.0%}"
        )
        if a["times"] != b["times"]:
            line += f"; times {', '.join(a['times'])} -> {', '.join(b['times'])}"
        lines.append(line + (f"; {regions}" if regions else ""))
    return lines
