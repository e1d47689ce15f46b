"""Planner benchmark: real-world learners, 2 classes a week in 3 capped sections + co-working.

Run: ``PYTHONPATH=. python bench/planner.py [--quick] [--runs 5]``. Prints, per cohort size, the
median wall time of ``make_plan`` end to end (grouping, fit data, search, plan values) and the
peak traced memory; then a naive per-learner CP-SAT model of the same section problem on 10k
learners, side by side with ours. The benchmark measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
import tracemalloc
from datetime import date, timedelta

import numpy as np

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import CohortSpec, Facilitator, SeriesKind, SeriesRequest
from scheduler.planning import LearnerInput, make_plan
from scheduler.planning.fit import build_classes, build_fit, build_grid, facilitator_fit
from scheduler.sample import sample_learners

DEFAULT = "Mon-Fri 18:00-22:00; Sat 09:00-13:00"


def cohort(size: int, *, coworking: bool = True) -> CohortSpec:
    """8 weeks over the March DST changes; each facilitator leads at most one section."""
    people = (
        Facilitator(
            "Amara",
            "amara@example.org",
            "Africa/Lagos",
            parse_availability("Mon-Fri 08:00-21:00"),
            2,
        ),
        Facilitator(
            "Diego",
            "diego@example.org",
            "America/Bogota",
            parse_availability("Mon-Sat 07:00-20:00"),
            2,
        ),
        Facilitator(
            "Mei", "mei@example.org", "Asia/Tokyo", parse_availability("Mon-Fri 07:00-23:00"), 2
        ),
    )
    series = [
        SeriesRequest(
            "class",
            "Live class",
            SeriesKind.CLASS,
            2,
            timedelta(minutes=90),
            min_gap=timedelta(hours=48),
            sections=3,
            max_section_size=math.ceil(size * 0.4),
        )
    ]
    if coworking:
        series.append(
            SeriesRequest(
                "cowork", "Co-working", SeriesKind.COWORKING, 1, timedelta(hours=2), max_blocks=6
            )
        )
    return CohortSpec(
        slug="bench",
        title="Bench",
        start_date=date(2027, 3, 1),
        weeks=8,
        home_zone="Europe/Berlin",
        locale="en_GB",
        default_availability=parse_availability(DEFAULT),
        facilitators=people,
        series=tuple(series),
    )


def learners(size: int, seed: int = 7) -> list[LearnerInput]:
    default = parse_availability(DEFAULT)
    out = []
    for s in sample_learners(size, random.Random(seed)):
        given = bool(s.availability)
        out.append(
            LearnerInput(
                s.email,
                s.city.zone,
                parse_availability(s.availability) if given else default,
                given,
            )
        )
    return out


def measure(spec: CohortSpec, people: list[LearnerInput], runs: int) -> tuple[float, float, int]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        plan = make_plan(spec, people)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    make_plan(spec, people)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    value = dict(plan.objective)["class"]
    return statistics.median(times), peak / 2**20, value


def reference(spec: CohortSpec, people: list[LearnerInput], limit: float) -> tuple[float, int, str]:
    """Naive model: one CP-SAT variable per (learner, section), per-learner fit constraints."""
    from ortools.sat.python import cp_model

    start = time.perf_counter()
    request = spec.series[0]
    duration = int(request.duration // timedelta(minutes=1))
    grid = build_grid(spec)
    classes = build_classes(grid, [p.zone for p in people], [p.availability for p in people])
    fit = build_fit(grid, classes, duration)
    ok = np.array(
        [facilitator_fit(grid, f.zone, f.availability, duration) for f in spec.facilitators]
    )
    cands = np.flatnonzero(ok.any(axis=0)).tolist()
    apart = math.ceil(max(request.min_gap, request.duration) / timedelta(minutes=grid.step))
    k, cap = request.sections or 1, request.max_section_size or len(people)
    model = cp_model.CpModel()
    y = {(j, c): model.new_bool_var(f"y{j}_{c}") for j in range(k) for c in cands}
    z = {(j, f): model.new_bool_var(f"z{j}_{f}") for j in range(k) for f in range(len(ok))}
    for j in range(k):
        model.add(sum(y[j, c] for c in cands) == request.per_week)
        model.add_exactly_one(z[j, f] for f in range(len(ok)))
        for c in cands:
            model.add(y[j, c] <= sum(z[j, f] for f in range(len(ok)) if ok[f, c]))
            window = [d for d in cands if 0 <= (d - c) % grid.size < apart]
            model.add(sum(y[j, d] for d in window) <= 1)
    for f in range(len(ok)):
        model.add(
            sum(z[j, f] for j in range(k)) * request.per_week
            <= spec.facilitators[f].max_sessions_per_week
        )
    full = fit.full
    owner = np.zeros(len(people), dtype=np.int64)
    for g, members in enumerate(classes.members):
        owner[list(members)] = g
    xs = []
    for i in range(len(people)):
        fitting = [c for c in cands if full[owner[i], c]]
        row = []
        for j in range(k):
            x = model.new_bool_var(f"x{i}_{j}")
            if fitting:
                model.add(request.per_week * x <= sum(y[j, c] for c in fitting))
            else:
                model.add(x == 0)
            row.append(x)
        model.add(sum(row) <= 1)
        xs.append(row)
    for j in range(k):
        model.add(sum(xs[i][j] for i in range(len(people))) <= cap)
    model.maximize(sum(x for row in xs for x in row))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = limit
    status = solver.solve(model)
    return time.perf_counter() - start, int(solver.objective_value), solver.status_name(status)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer runs, 10 s reference limit")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = 2 if args.quick else args.runs
    header = f"{'learners':>9} {'median s':>9} {'peak MiB':>9} {'fitted':>8}"
    print(f"{header}  (2 classes/week, 3 sections, co-working)")
    for size in (1_000, 10_000, 100_000):
        people = learners(size)
        median, peak, value = measure(cohort(size), people, runs)
        print(f"{size:>9} {median:>9.3f} {peak:>9.1f} {value:>8}")
    size = 10_000
    people = learners(size)
    spec = cohort(size, coworking=False)
    ours, _, value = measure(spec, people, runs)
    limit = 10.0 if args.quick else 60.0
    ref_time, ref_value, status = reference(spec, people, limit)
    print(f"\nsections only, {size} learners, k = 3, capacity {spec.series[0].max_section_size}:")
    print(f"  ours (grouped exact)      {ours:8.3f} s  fitted {value}")
    print(f"  naive per-learner CP-SAT  {ref_time:8.3f} s  fitted {ref_value}", end="")
    print(f"  ({status}, limit {limit:.0f} s)")
    print(f"  speed ratio {ref_time / ours:.0f}x; objective ours - reference = {value - ref_value}")


if __name__ == "__main__":
    main()
