"""Fairness benchmark: a fair rotation against the coverage-optimal single time and a naive
round-robin by region, on real-world learners.

Run: ``PYTHONPATH=. python bench/fairness.py [--quick] [--runs 5] [--size 10000]``. One 90-minute
class a week for 8 weeks from 1 March 2027 (the US, EU and Australian clock changes all fall
inside), anchored in Berlin, 15-minute grid, up to 4 rotating times. Two stretch settings: the
cohort default stretch ``Mon-Fri 06:00-08:00; Mon-Thu 22:00-23:30`` for everyone, and none at
all (the default pain curve decides). Prints, per method: coverage, the worst region's share of
inconvenient meetings (stretch or missed), total pain, and the median planning time over the
runs (end to end: grid, costs, search, ledger). The benchmark measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import date, timedelta
from typing import TypeVar

import numpy as np

from scheduler.domain.availability import Availability, parse_availability
from scheduler.domain.cohort import CohortSpec, SeriesKind, SeriesRequest
from scheduler.planning import LearnerInput
from scheduler.planning.fairness import (
    FairCosts,
    FairnessOptions,
    FairPlan,
    PlanFigures,
    evaluate_plan,
    fair_costs,
    fair_tallies,
    plan_fair_rotation,
)
from scheduler.sample import sample_learners

DEFAULT = "Mon-Fri 18:00-22:00; Sat 09:00-13:00"
STRETCH = "Mon-Fri 06:00-08:00; Mon-Thu 22:00-23:30"
WEEKS = 8
ROTATE = 4
T = TypeVar("T")
CLASS = SeriesRequest("class", "Live class", SeriesKind.CLASS, 1, timedelta(minutes=90))


def cohort() -> CohortSpec:
    return CohortSpec(
        slug="fair",
        title="Fairness bench",
        start_date=date(2027, 3, 1),
        weeks=WEEKS,
        home_zone="Europe/Berlin",
        locale="en_GB",
        default_availability=parse_availability(DEFAULT),
    )


def learners(size: int, seed: int = 7) -> list[LearnerInput]:
    default = parse_availability(DEFAULT)
    out = []
    for s in sample_learners(size, random.Random(seed)):
        given = bool(s.availability)
        availability = parse_availability(s.availability) if given else default
        out.append(LearnerInput(s.email, s.city.zone, availability, given))
    return sorted(out, key=lambda x: x.key)


def single_best(costs: FairCosts) -> list[int]:
    """The coverage-optimal single weekly time (ties: less pain, then earlier)."""
    tallies, _ = fair_tallies(costs)
    reach = tallies.reach @ tallies.weeks
    pain = tallies.pain @ tallies.weeks
    c = int(np.lexsort((np.arange(len(reach)), pain, -reach))[0])
    return [c] * WEEKS


def round_robin(costs: FairCosts) -> list[int]:
    """Naive: the ``ROTATE`` largest regions each get the time that puts most of their learners
    in preferred hours over the course; the weeks take those times in turn."""
    held = costs.grid.active[None, :, :]
    preferred = (costs.cost == 0) & held  # [g, c, w]
    per_class = preferred.sum(axis=2) * costs.count[:, None]  # [g, c]
    sizes = np.bincount(costs.region, weights=costs.count, minlength=len(costs.region_names))
    largest = np.argsort(-sizes, kind="stable")[:ROTATE]
    times = []
    for r in largest.tolist():
        score = per_class[costs.region == r].sum(axis=0)
        times.append(int(np.argmax(score)))
    return [times[w % len(times)] for w in range(WEEKS)]


def timed(run: Callable[[], T], runs: int) -> tuple[float, T]:
    """The median wall time of ``runs`` calls, and the last result."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def row(name: str, figures: PlanFigures, seconds: float, extra: str = "") -> str:
    return (
        f"  {name:<24} {figures.coverage:>8.1%} {figures.worst_share:>7.1%} "
        f"{figures.worst_region:<8} {figures.total_pain:>7} {seconds:>8.2f}  {extra}"
    )


def scenario(
    label: str, people: list[LearnerInput], stretch: Availability | None, runs: int
) -> None:
    spec = cohort()
    print(f"\n{label}: {len(people)} learners, {WEEKS} weeks")
    print(
        f"  {'method':<24} {'coverage':>8} {'worst':>7} {'region':<8} {'pain':>7} {'median s':>8}"
    )
    baseline = FairnessOptions(default_stretch=stretch)

    def costs() -> FairCosts:
        return fair_costs(spec, people, 90, None, baseline)

    baselines = {"coverage-optimal single": single_best, "round-robin by region": round_robin}
    for name, choose in baselines.items():

        def run(choose: Callable[[FairCosts], list[int]] = choose) -> PlanFigures:
            built = costs()
            return evaluate_plan(built, choose(built))

        seconds, figures = timed(run, runs)
        print(row(name, figures, seconds))
    last: FairPlan | None = None
    for k in (2, ROTATE):
        options = FairnessOptions(rotate_times=k, max_coverage_loss=0.05, default_stretch=stretch)

        def rotate(options: FairnessOptions = options) -> FairPlan:
            return plan_fair_rotation(spec, CLASS, people, None, options)

        seconds, plan = timed(rotate, runs)
        figures = evaluate_plan(costs(), [plan.candidates[i] for i in plan.week_times])
        times = ", ".join(t.label() for t in plan.times)
        proof = "exact" if plan.exact else f"gap <= {plan.gap:.1%}"
        print(row(f"fair rotation (k={k})", figures, seconds, f"{proof}; {times}"))
        last = plan
    assert last is not None
    floor = last.reference_coverage - 0.05
    print(f"  coverage floor (k={ROTATE}): {floor:.1%} (best plan {last.reference_coverage:.1%})")
    print(f"  ledger by region (k={ROTATE}):")
    for r in last.ledger.regions:
        print(
            f"    {r.name:<8} {r.learners:>5} learners  share {r.share:>6.1%}  preferred "
            f"{r.preferred:>6}  stretch {r.stretch:>6} (pain {r.pain:>6})  missed {r.missed:>6}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2 runs")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=10_000)
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs
    people = learners(args.size)
    print("worst = the largest share of a region's learner-meetings in stretch hours or missed")
    scenario("cohort stretch " + repr(STRETCH), people, parse_availability(STRETCH), runs)
    scenario("no stretch windows (default pain curve)", people, None, runs)


if __name__ == "__main__":
    main()
