"""Behaviour of the plan as a whole: determinism, sections, rotation, reasons, search helpers."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pytest
from conftest import learner, series
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.domain.cohort import CohortSpec, SeriesKind
from scheduler.planning import LeftOutReason, make_plan
from scheduler.planning.search import served

SpecFactory = Callable[..., CohortSpec]

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Asia/Tokyo", "America/Bogota"]
WINDOWS = ["Mon-Fri 09:00-17:00", "Mon-Thu 18:00-22:00", "Sat 10:00-14:00", "Tue,Thu 07:00-09:00"]


def roster(count: int, seed: int) -> list:  # type: ignore[type-arg]
    rng = random.Random(seed)
    return [
        learner(f"p{i:03d}", rng.choice(ZONES), rng.choice([*WINDOWS, None])) for i in range(count)
    ]


def test_same_input_in_any_order_gives_an_equal_plan(make_spec: SpecFactory) -> None:
    spec = make_spec(
        weeks=5,
        series=(
            series(per_week=2, min_gap=timedelta(hours=48), max_section_size=15),
            series("cowork", kind=SeriesKind.COWORKING, duration=timedelta(hours=2)),
        ),
    )
    people = roster(40, 1)
    shuffled = people[:]
    random.Random(2).shuffle(shuffled)
    assert make_plan(spec, people) == make_plan(spec, shuffled)


def test_auto_sections_stop_at_target_and_report_gains(make_spec: SpecFactory) -> None:
    people = [learner(f"b{i}", "Europe/Berlin", "Mon 09:00-10:00") for i in range(6)]
    people += [learner(f"t{i}", "Asia/Tokyo", "Mon 09:00-10:00") for i in range(3)]
    people += [learner("n0", "America/New_York", "Mon 09:00-10:00")]
    spec = make_spec(series=(series(auto_sections=True),))
    plan = make_plan(spec, people)
    (report,) = plan.auto_sections
    assert report.chosen == 2 and report.reached  # 9 of 10 reach the 90% target
    assert [(s.sections, s.fitted, s.gain) for s in report.steps] == [
        (1, 6, 6),
        (2, 9, 3),
        (3, 10, 1),
    ]
    assert [s.fitted for s in plan.sections] == [6, 3]  # the third step is only reported
    assert sum(len(s.learners) for s in plan.sections) == 10


def test_capacity_splits_one_popular_time_into_two_sections(make_spec: SpecFactory) -> None:
    people = [learner(f"b{i}", "Europe/Berlin", "Wed 18:00-19:00") for i in range(5)]
    plan = make_plan(make_spec(series=(series(max_section_size=3),)), people)
    assert [len(s.learners) for s in plan.sections] == [3, 2]
    assert {t.label() for s in plan.sections for t in s.times} == {"Wed 18:00"}
    assert plan.left_out == ()


def test_left_out_reasons(make_spec: SpecFactory) -> None:
    people = [learner(f"b{i}", "Europe/Berlin", "Mon 18:00-19:00") for i in range(3)]
    people.append(learner("late", "Europe/Berlin", "Mon 20:00-20:30"))  # too short for 60 min
    people.append(learner("other", "Europe/Berlin", "Tue 09:00-10:00"))
    people.append(learner("silent", "Asia/Tokyo", None))
    plan = make_plan(make_spec(), people)
    reasons = {o.learner: o.reason for o in plan.left_out}
    assert reasons == {
        "late": LeftOutReason.NO_FEASIBLE_TIME,
        "other": LeftOutReason.TIME_NOT_CHOSEN,
        "silent": LeftOutReason.NO_AVAILABILITY,
    }


def test_rotation_alternates_and_reports_shares(make_spec: SpecFactory) -> None:
    people = [learner(f"b{i}", "Europe/Berlin", "Mon 18:00-19:00") for i in range(3)]
    people += [learner(f"t{i}", "Asia/Tokyo", "Tue 09:00-10:00") for i in range(2)]
    plan = make_plan(make_spec(weeks=4, series=(series(rotate=True),)), people)
    (section,) = plan.sections
    assert {section.times[0].label(), section.alternate[0].label()} == {"Mon 18:00", "Tue 01:00"}
    assert plan.coverage_of("b0", "class").coverage == 0.5
    assert plan.coverage_of("t0", "class").coverage == 0.5
    weeks = [o.start.weekday() for o in plan.occurrences]
    assert weeks[0] != weeks[1] and weeks[0] == weeks[2]


def test_coworking_follows_the_sun(make_spec: SpecFactory) -> None:
    people = [learner(f"b{i}", "Europe/Berlin", "Mon 08:00-12:00") for i in range(2)]
    people += [learner("ny", "America/New_York", "Mon 08:00-12:00")]
    people += [learner("tk", "Asia/Tokyo", "Mon 08:00-12:00")]
    people += [learner("never", "Asia/Tokyo", "Sun 01:00-01:30")]
    cowork = series("cowork", kind=SeriesKind.COWORKING, duration=timedelta(hours=2))
    plan = make_plan(make_spec(series=(cowork,)), people)
    assert len(plan.sections) == 3
    assert {o.learner: o.reason for o in plan.left_out} == {"never": LeftOutReason.NO_FEASIBLE_TIME}


def test_start_midweek_puts_monday_class_on_the_next_monday(make_spec: SpecFactory) -> None:
    spec = make_spec(start_date=date(2027, 3, 3), weeks=1)  # a Wednesday
    plan = make_plan(spec, [learner("a", "Europe/Berlin", "Mon 18:00-19:00")])
    (occurrence,) = plan.occurrences
    assert occurrence.start.date() == date(2027, 3, 8)


def flow_by_brute_force(sets: np.ndarray, weights: list[int], capacity: int) -> int:
    best = 0
    k = sets.shape[0]
    # Every split of each class's learners over its fitting options (small numbers only).
    choices = [
        [
            split
            for split in itertools.product(range(w + 1), repeat=k)
            if sum(split) <= w and all(split[j] == 0 or sets[j, c] for j in range(k))
        ]
        for c, w in enumerate(weights)
    ]
    for combo in itertools.product(*choices):
        loads = [sum(split[j] for split in combo) for j in range(k)]
        if all(load <= capacity for load in loads):
            best = max(best, sum(loads))
    return best


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_served_equals_brute_force_flow(data: st.DataObject) -> None:
    k = data.draw(st.integers(1, 3))
    g = data.draw(st.integers(1, 3))
    sets = np.array(
        data.draw(st.lists(st.lists(st.booleans(), min_size=g, max_size=g), min_size=k, max_size=k))
    )
    weights = data.draw(st.lists(st.integers(0, 3), min_size=g, max_size=g))
    capacity = data.draw(st.integers(1, 4))
    expected = flow_by_brute_force(sets, weights, capacity)
    assert served(sets, np.array(weights, dtype=np.int64), capacity) == expected


def test_duplicate_learner_keys_are_refused(make_spec: SpecFactory) -> None:
    from scheduler.errors import PlanningError

    same = learner("a", "Europe/Berlin", "Mon 18:00-19:00")
    with pytest.raises(PlanningError, match="unique"):
        make_plan(make_spec(), [same, same])


def test_coworking_blocks_avoid_live_sessions_even_when_listed_first(
    make_spec: SpecFactory,
) -> None:
    # Everyone is free only Monday 09:00-13:00 Berlin: the class takes the best hour there and
    # the co-working block must use the rest of the window rather than sit on top of the class.
    people = [learner(f"b{i}", "Europe/Berlin", "Mon 09:00-13:00") for i in range(5)]
    cowork = series("cowork", kind=SeriesKind.COWORKING, duration=timedelta(hours=2))
    spec = make_spec(series=(cowork, series()))  # co-working listed before the class
    plan = make_plan(spec, people)
    (live,) = plan.series_sections("class")
    (block,) = plan.series_sections("cowork")
    class_start, block_start = live.times[0].minute, block.times[0].minute
    assert class_start + 60 <= block_start or block_start + 120 <= class_start
    assert block.fitted == 5
