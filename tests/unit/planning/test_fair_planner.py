"""``make_plan`` with a fairly rotated series (``fairness = "rotate"``): the example cohort's
class taking turns between weekly times, at the right instants, with its burden ledger."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from pathlib import Path

from scheduler.domain.availability import Availability, parse_availability
from scheduler.domain.cohort import CohortSpec
from scheduler.domain.cohort_file import parse_cohort_file
from scheduler.planning import LearnerInput, Plan, make_plan
from scheduler.planning.burden import evaluate_plan
from scheduler.planning.pain import fair_costs
from scheduler.planning.report import describe_fairness, fairness_changes, fairness_report

EXAMPLE = (Path(__file__).resolve().parents[3] / "examples" / "cohort.toml").read_text("utf-8")
CLASS = re.compile(r'(?ms)^\[\[series\]\]\nkey = "class".*?(?=^\[\[series\]\])')
LOSS = 0.10

# Asia, Europe and America: no one weekly time is in everybody's preferred hours.
ROSTER = [
    *(("tokyo", "Asia/Tokyo", "Mon-Fri 19:00-23:00"),) * 3,
    *(("berlin", "Europe/Berlin", "Mon-Fri 18:00-22:00"),) * 4,
    *(("ny", "America/New_York", "Mon-Fri 07:00-09:00; Mon-Fri 18:00-22:00"),) * 3,
]


def learners() -> list[LearnerInput]:
    return [
        LearnerInput(f"{name}{i}@example.org", tz, parse_availability(text))
        for i, (name, tz, text) in enumerate(ROSTER)
    ]


def example(*, fair: bool) -> CohortSpec:
    """The example cohort, its class one whole-cohort meeting a week; rotated when ``fair``."""
    lines = ["[[series]]", 'key = "class"', 'kind = "class"', "per_week = 1", 'duration = "90m"']
    if fair:
        lines += ['fairness = "rotate"', "rotate_times = 2", f'max_coverage_loss = "{LOSS:.0%}"']
    return parse_cohort_file(CLASS.sub("\n".join(lines) + "\n\n", EXAMPLE))


def class_candidate(plan: Plan, spec: CohortSpec) -> int:
    (section,) = plan.series_sections("class")
    (time,) = section.times
    return (int(time.weekday) * 24 * 60 + time.minute) // spec.planning.grid_minutes


def test_rotation_shares_the_burden_at_a_bounded_coverage_cost() -> None:
    people = learners()
    plain_spec, fair_spec = example(fair=False), example(fair=True)
    plain = make_plan(plain_spec, people)
    assert plain.fairness == ()
    assert plain.series_sections("class")[0].rotation == ()
    costs = fair_costs(plain_spec, people, 90)
    before = evaluate_plan(costs, [class_candidate(plain, plain_spec)] * plain_spec.weeks)

    plan = make_plan(fair_spec, people)
    fair = plan.fairness_of("class")
    assert fair is not None and fair.series == "class"
    assert fair.worst_share < before.worst_share  # the worst-off region carries less
    assert fair.ledger.of_region(before.worst_region).share < before.worst_share
    assert fair.coverage >= fair.single_coverage - LOSS - 1e-9  # within max_coverage_loss
    assert fair.coverage >= before.coverage - LOSS - 1e-9
    assert fair.exact and fair.gap == 0


def test_occurrences_follow_the_rotation_at_planned_instants() -> None:
    spec = example(fair=True)
    plan = make_plan(spec, learners())
    fair = plan.fairness_of("class")
    assert fair is not None
    (section,) = plan.series_sections("class")
    assert section.rotation == fair.times and len(fair.times) == 2
    assert section.week_times == fair.week_times
    assert set(fair.week_times) == {0, 1}  # both times are used
    meetings = [o for o in plan.occurrences if o.series == "class"]
    assert [o.week for o in meetings] == list(range(spec.weeks))
    for o in meetings:
        assert o.slot == 0
        assert o.start == fair.start(spec, o.week)
        assert section.time_in_week(o.week) == fair.times[fair.week_times[o.week]]
        assert o.end - o.start == section.duration
    # The class's facilitator is booked at every time of the rotation: whatever else they lead
    # never overlaps it.
    theirs = {s.series for s in plan.sections if s.facilitator == section.facilitator} - {"class"}
    others = [o for o in plan.occurrences if o.series in theirs]
    assert all(not (o.start < m.end and m.start < o.end) for o in others for m in meetings)


def test_same_input_same_plan() -> None:
    spec = example(fair=True)
    people = learners()
    shuffled = people[:]
    random.Random(7).shuffle(shuffled)
    assert make_plan(spec, people) == make_plan(spec, shuffled)


def test_a_learner_without_stretch_hours_misses_instead() -> None:
    spec = example(fair=True)
    people = learners()
    fair = make_plan(spec, people).fairness_of("class")
    assert fair is not None
    stretched = [k for k in fair.ledger.learners if fair.ledger.of(k).stretch]
    assert stretched
    key = stretched[0]
    strict = [replace(x, stretch=Availability(())) if x.key == key else x for x in people]
    again = make_plan(spec, strict).fairness_of("class")
    assert again is not None
    assert again.ledger.of(key).stretch == 0


def test_the_report_in_numbers_and_words() -> None:
    fair = make_plan(example(fair=True), learners()).fairness_of("class")
    assert fair is not None
    report = fairness_report(fair)
    regions = {r["region"]: r for r in report["regions"]}
    assert set(regions) == {"Asia", "Europe", "America"}
    assert report["regions"][0]["share"] == report["worst_share"]
    for r in report["regions"]:
        assert r["preferred"] + r["stretch"] + r["missed"] + r["skipped"] == r["learners"] * 8
    assert report["worst_off"] and report["worst_off"][0]["region"] in regions
    lines = describe_fairness(report)
    assert lines[0].startswith("class: rotates between ")
    assert "proven the fairest" in lines[1]
    assert f"the best plan with 2 times: {report['reference_coverage']:.0%}" in lines[1]
    assert lines[2].startswith("  week by week: 1 ")
    assert any(line.strip().startswith("Europe: ") for line in lines)


def test_burden_changes_between_two_plans() -> None:
    spec = example(fair=True)
    people = learners()
    before = fairness_report(make_plan(spec, people).fairness[0])
    assert fairness_changes([before], [before]) == []  # nothing changed, nothing said
    more_asia = [
        *people,
        *(
            LearnerInput(
                f"osaka{i}@example.org", "Asia/Tokyo", parse_availability("Mon-Fri 19:00-23:00")
            )
            for i in range(6)
        ),
    ]
    after = fairness_report(make_plan(spec, more_asia).fairness[0])
    (line,) = fairness_changes([before], [after])
    assert line.startswith(
        f"class: worst region {before['worst_share']:.0%} -> {after['worst_share']:.0%} "
        f"({before['worst_region']} -> {after['worst_region']}); coverage "
    )
    assert fairness_changes([], [after]) == [
        f"class: now rotates fairly (worst region {after['worst_share']:.0%})"
    ]
    assert fairness_changes([before], [])[0].startswith("class: no longer rotates")
