"""Benchmark the pure deadline engine: 100k sample learners on the example cohort.

Occurrences are built here (not planned): 2 classes a week in 3 sections (Europe/Africa,
Asia/Pacific, Americas, by the learner's UTC offset), 4 follow-the-sun co-working blocks and one
office hour a week, 8 weeks, Easter Monday blacked out; 5% of learners join mid-course
(``--joiners``).
Prints the median wall time of ``compute_deadlines`` over several runs.

    PYTHONPATH=. python bench/deadlines_core.py [--learners 100000] [--runs 5] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

from scheduler.domain.availability import Availability, parse_availability
from scheduler.domain.cohort import CohortSpec
from scheduler.domain.cohort_file import parse_cohort_file
from scheduler.planning.deadlines import DeadlineLearner, compute_deadlines
from scheduler.planning.model import Occurrence
from scheduler.sample import sample_learners
from scheduler.timeutil import wall_to_utc, zone

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "cohort.toml"

# (series, section, weekly times as (weekday, hour) on the home clock)
SCHEDULE: list[tuple[str, int, list[tuple[int, int]]]] = [
    ("class", 0, [(0, 18), (3, 18)]),  # Europe / Africa
    ("class", 1, [(0, 10), (3, 10)]),  # Asia / Pacific
    ("class", 2, [(1, 2), (4, 2)]),  # the Americas (the evening before, their time)
    ("cowork", 0, [(2, 1)]),
    ("cowork", 1, [(2, 7)]),
    ("cowork", 2, [(2, 13)]),
    ("cowork", 3, [(2, 19)]),
    ("office-hours", 0, [(4, 16)]),
]


def build_occurrences(spec: CohortSpec) -> list[Occurrence]:
    home = zone(spec.home_zone)
    lengths = {s.key: s.duration for s in spec.series}
    out = []
    for series, section, times in SCHEDULE:
        for week in range(spec.weeks):
            for slot, (weekday, hour) in enumerate(times):
                day = spec.start_date + timedelta(days=7 * week + weekday)
                start = wall_to_utc(day, clock(hour), home)
                out.append(
                    Occurrence(
                        series,
                        section,
                        slot,
                        week,
                        start,
                        start + lengths[series],
                        spec.is_blacked_out(day),
                    )
                )
    return out


def build_learners(
    spec: CohortSpec, count: int, seed: int, joiners: float = 0.05
) -> list[DeadlineLearner]:
    rng = random.Random(seed)
    parsed: dict[str, Availability] = {}
    start = datetime.combine(spec.start_date, clock(0), tzinfo=UTC)
    joins = [start + timedelta(weeks=w, hours=9) for w in (1, 2, 3)]
    learners = []
    for person in sample_learners(count, rng):
        text = person.availability
        if text and text not in parsed:
            parsed[text] = parse_availability(text)
        availability = parsed[text] if text else spec.default_availability
        offset = start.astimezone(zone(person.city.zone)).utcoffset() or timedelta(0)
        hours = offset.total_seconds() / 3600
        section = 2 if hours < -2 else 1 if hours > 4 else 0
        enrolled = rng.choice(joins) if rng.random() < joiners else None
        learners.append(
            DeadlineLearner(
                person.email, person.city.zone, availability, {"class": section}, enrolled
            )
        )
    return learners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--joiners", type=float, default=0.05, help="share joining mid-course")
    args = parser.parse_args()
    spec = parse_cohort_file(EXAMPLE.read_text(encoding="utf-8"), str(EXAMPLE))
    occurrences = build_occurrences(spec)
    learners = build_learners(spec, args.learners, args.seed, args.joiners)
    timings = []
    result = {}
    for _ in range(args.runs):
        began = time.perf_counter()
        result = compute_deadlines(spec, occurrences, learners)
        timings.append(time.perf_counter() - began)
    groups = {
        (x.zone, x.availability, tuple(sorted(x.sections.items())), x.enrolled_at) for x in learners
    }
    distinct = {id(items): items for items in result.values()}
    items = sum(len(v) for v in result.values())
    print(
        f"{len(learners)} learners in {len(groups)} groups (zone, availability, sections, "
        f"enrolment) -> {len(distinct)} distinct item tuples; {len(occurrences)} occurrences; "
        f"{items} items ({sum(len(v) for v in distinct.values())} distinct)"
    )
    print(
        f"compute_deadlines: median {statistics.median(timings):.3f} s "
        f"(min {min(timings):.3f}, max {max(timings):.3f}, {args.runs} runs)"
    )


if __name__ == "__main__":
    main()
