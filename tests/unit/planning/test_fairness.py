"""Fair rotation: pain curve, stretch windows, cost matrix, exact search, ledger."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest
from conftest import series
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.domain.availability import AvailabilityError, parse_availability
from scheduler.domain.cohort import Blackout, CohortSpec
from scheduler.planning import LearnerInput
from scheduler.planning.fair_search import best_reach, compositions, layout
from scheduler.planning.fairness import (
    DEFAULT_PAIN_CURVE,
    MISSED,
    NO_STRETCH,
    FairCosts,
    FairnessOptions,
    PainCurve,
    choose_rotation,
    evaluate_plan,
    fair_costs,
    meeting_pain,
    pain_table,
    parse_stretch,
    plan_fair_rotation,
    region_of,
)
from scheduler.planning.fit import slot_instant
from scheduler.timeutil import MINUTES_PER_DAY, UTC, zone

STEP = 15  # the default planning grid


def candidate(day: int, clock: str) -> int:
    hours, minutes = map(int, clock.split(":"))
    return (day * MINUTES_PER_DAY + hours * 60 + minutes) // STEP


def person(key: str, tz: str, text: str) -> LearnerInput:
    return LearnerInput(key, tz, parse_availability(text))


# --- the pain model -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "duration", "explicit", "pain"),
    [
        ("10:00", 60, False, 1),  # working day, but outside the preferred window: the floor
        ("07:00", 60, False, 1),  # early morning
        ("19:30", 90, False, 1),  # runs into the evening
        ("22:30", 60, False, 3),  # touches 23:00
        ("05:00", 60, False, 3),  # night
        ("00:30", 60, False, None),  # touches 01:00: never without stretch
        ("00:30", 60, True, 3),  # ... unless stretch names it
        ("04:30", 60, True, 3),
        ("23:00", 180, False, None),  # 23:00-02:00 crosses into the never hours
    ],
    ids=[
        "working_day",
        "early_morning",
        "into_evening",
        "late_evening",
        "dawn",
        "never_hour",
        "never_hour_stretched",
        "deep_night_stretched",
        "overnight",
    ],
)
def test_default_curve(start: str, duration: int, explicit: bool, pain: int | None) -> None:
    hours, minutes = map(int, start.split(":"))
    assert meeting_pain(DEFAULT_PAIN_CURVE, hours * 60 + minutes, duration, explicit=explicit) == (
        pain
    )


@given(
    st.integers(0, 7 * MINUTES_PER_DAY - 1),
    st.sampled_from([15, 60, 90, 120, 240]),
    st.booleans(),
)
def test_pain_table_matches_scalar(start: int, duration: int, explicit: bool) -> None:
    table = pain_table(DEFAULT_PAIN_CURVE, duration, explicit=explicit)
    scalar = meeting_pain(DEFAULT_PAIN_CURVE, start, duration, explicit=explicit)
    assert int(table[start]) == (MISSED if scalar is None else scalar)


def test_curve_is_validated() -> None:
    with pytest.raises(ValueError, match="24"):
        PainCurve((0,) * 23)
    with pytest.raises(ValueError, match="rotate_times"):
        FairnessOptions(rotate_times=5)


def test_stretch_uses_the_availability_grammar() -> None:
    text = "Mon-Fri 06:00-08:00; Mon-Thu 22:00-23:30"
    assert parse_stretch(text) == parse_availability(text)
    assert parse_stretch("  ") is None
    assert parse_stretch("none") == NO_STRETCH
    with pytest.raises(AvailabilityError):
        parse_stretch("Mon 25:00-26:00")


@pytest.mark.parametrize(
    ("tz", "region"),
    [
        ("Asia/Tokyo", "Asia"),
        ("Australia/Sydney", "Oceania"),
        ("Pacific/Auckland", "Oceania"),
        ("Atlantic/Reykjavik", "Europe"),
        ("Indian/Maldives", "Asia"),
        ("America/Sao_Paulo", "LatAm"),
        ("America/New_York", "Americas"),
        ("UTC", "UTC"),
    ],
    ids=[
        "asia",
        "australia",
        "pacific",
        "atlantic_island",
        "indian_ocean",
        "runner",
        "prefix",
        "utc",
    ],
)
def test_regions(tz: str, region: str) -> None:
    grouping = {"America": "Americas", "America/Sao_Paulo": "LatAm"}
    assert region_of(tz, grouping) == region


# --- the cost matrix --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start", [date(2027, 3, 8), date(2027, 10, 25)], ids=["spring_forward", "fall_back"]
)
def test_costs_match_per_learner_fit(make_spec: Callable[..., CohortSpec], start: date) -> None:
    """Every (learner, candidate, week) cost equals a direct computation on the learner's clock,
    across the US and EU clock changes, a half-hour zone, the south and a zone without DST."""
    spec = make_spec(start_date=start, weeks=4)
    stretch_text = "Mon-Fri 06:00-08:00; Mon-Thu 22:00-23:30; Sat 00:00-03:00"
    people = [
        person("berlin", "Europe/Berlin", "Mon-Fri 18:00-22:00"),
        person("ny", "America/New_York", "Mon-Fri 09:00-17:00"),
        person("kolkata", "Asia/Kolkata", "Tue-Thu 12:00-13:30"),
        person("sydney", "Australia/Sydney", "Mon-Fri 06:00-09:00"),
        person("bogota", "America/Bogota", "Sat 10:00-14:00"),
    ]
    stretch = {"ny": parse_availability(stretch_text), "bogota": NO_STRETCH}
    costs = fair_costs(spec, people, 60, stretch)
    owner = {i: g for g, members in enumerate(costs.members) for i in members}
    for i, p in enumerate(people):
        tz = zone(p.zone)
        own = stretch.get(p.key)
        for c in range(0, costs.grid.size, 5):
            for w in range(spec.weeks):
                local = costs.grid.instant(c, w).astimezone(tz)
                minute = local.hour * 60 + local.minute
                if p.availability.covers_at(local, 60, tz):
                    want = 0
                elif own is None:
                    want = meeting_pain(DEFAULT_PAIN_CURVE, minute, 60, explicit=False) or MISSED
                elif own.is_empty:
                    want = MISSED
                else:
                    union = parse_availability(f"{p.availability.to_text()}; {stretch_text}")
                    pain = meeting_pain(DEFAULT_PAIN_CURVE, minute, 60, explicit=True)
                    want = pain if union.covers_at(local, 60, tz) and pain else MISSED
                assert costs.cost[owner[i], c, w] == want, (p.key, c, w)


def test_learners_in_one_clock_share_a_class(make_spec: Callable[..., CohortSpec]) -> None:
    people = [
        person(f"p{i}", tz, "Mon-Fri 18:00-22:00")
        for i, tz in enumerate(["Europe/Berlin", "Europe/Paris", "Europe/Rome", "Asia/Tokyo"])
    ]
    costs = fair_costs(make_spec(), people, 60)
    assert sorted(costs.count.tolist()) == [1, 3]


# --- brute force on small cohorts -------------------------------------------------------------

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Sydney",
    "America/Bogota",
    "Asia/Tokyo",
]
WINDOWS = ["Mon-Fri 18:00-22:00", "Mon-Fri 09:00-17:00", "Mon,Wed 07:00-08:30; Sat 10:00-14:00"]
STRETCH = [None, "none", "Mon-Fri 06:00-08:00; Mon-Thu 22:00-23:30", "daily 00:00-04:00"]
CANDIDATES = [
    candidate(0, "02:00"),
    candidate(0, "07:00"),
    candidate(0, "12:00"),
    candidate(0, "18:00"),
    candidate(1, "00:30"),
    candidate(2, "21:00"),
    candidate(6, "02:30"),  # Sunday 02:30: a spring-forward gap in Berlin on 28 March
]
STARTS = [date(2027, 3, 8), date(2027, 3, 22), date(2027, 10, 25), date(2027, 5, 3)]


def reached(figures: Any) -> int:
    return sum(row.preferred + row.stretch for row in figures.ledger.regions)


def brute_force(
    costs: FairCosts, allowed: Sequence[int], k: int, loss: float
) -> tuple[float, int, int]:
    """Every week-by-week plan using at most ``k`` of ``allowed``: the best (worst share, pain,
    -reach) among those within ``loss`` of the best coverage."""
    weeks, people = costs.grid.weeks, len(costs.keys)
    plans = [p for p in itertools.product(allowed, repeat=weeks) if len(set(p)) <= k]
    figures = [evaluate_plan(costs, p) for p in plans]
    floor = max(reached(f) for f in figures) - int(loss * people * weeks + 1e-9)
    best = min((f.worst_share, f.total_pain, -reached(f)) for f in figures if reached(f) >= floor)
    return best[0], best[1], -best[2]


@st.composite
def cohorts(draw: st.DrawFn) -> dict[str, Any]:
    size = draw(st.integers(1, 6))
    people = [
        person(f"p{i}", draw(st.sampled_from(ZONES)), draw(st.sampled_from(WINDOWS)))
        for i in range(size)
    ]
    stretch = {p.key: parse_stretch(draw(st.sampled_from(STRETCH))) for p in people}
    return {
        "people": people,
        "stretch": stretch,
        "start": draw(st.sampled_from(STARTS)),
        "weeks": draw(st.integers(2, 4)),
        "allowed": draw(st.lists(st.sampled_from(CANDIDATES), min_size=2, max_size=3, unique=True)),
        "k": draw(st.integers(1, 3)),
        "loss": draw(st.sampled_from([0.0, 0.05, 0.2, 0.5])),
        "duration": draw(st.sampled_from([60, 90])),
    }


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cohorts())
def test_rotation_equals_brute_force(
    make_spec: Callable[..., CohortSpec], case: dict[str, Any]
) -> None:
    spec = make_spec(start_date=case["start"], weeks=case["weeks"])
    options = FairnessOptions(rotate_times=case["k"], max_coverage_loss=case["loss"])
    costs = fair_costs(spec, case["people"], case["duration"], case["stretch"], options)
    plan = choose_rotation(costs, options, case["allowed"])
    want = brute_force(costs, case["allowed"], case["k"], case["loss"])
    people, weeks = len(case["people"]), case["weeks"]
    got = (plan.worst_share, plan.total_pain, round(plan.coverage * people * weeks))
    assert got == want
    assert plan.exact
    assert plan.gap == 0
    assert plan.coverage >= plan.reference_coverage - case["loss"] - 1e-12
    assert len(plan.times) <= case["k"]
    assert set(plan.candidates) <= set(case["allowed"])
    assert sorted(set(plan.week_times)) == list(range(len(plan.times)))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cohorts())
def test_pruned_search_reports_an_honest_gap(
    make_spec: Callable[..., CohortSpec], case: dict[str, Any]
) -> None:
    """With a pool too small to search everything, the lower bound never exceeds the optimum."""
    spec = make_spec(start_date=case["start"], weeks=case["weeks"])
    k = max(2, case["k"])
    full = FairnessOptions(rotate_times=k, max_coverage_loss=case["loss"])
    small = FairnessOptions(rotate_times=k, max_coverage_loss=case["loss"], max_sets=1)
    costs = fair_costs(spec, case["people"], case["duration"], case["stretch"], full)
    optimum = choose_rotation(costs, full, CANDIDATES)
    pruned = choose_rotation(costs, small, CANDIDATES)
    assert optimum.exact
    assert pruned.lower_bound <= optimum.worst_share + 1e-9
    assert pruned.worst_share >= optimum.worst_share
    assert pruned.gap == pytest.approx(pruned.worst_share - pruned.lower_bound)
    assert pruned.coverage >= pruned.reference_coverage - case["loss"] - 1e-12


# --- behaviour on named cohorts -----------------------------------------------------------------


def test_single_time_when_rotation_does_not_help(make_spec: Callable[..., CohortSpec]) -> None:
    people = [person(f"p{i}", "Europe/Berlin", "Mon-Fri 18:00-22:00") for i in range(4)]
    plan = plan_fair_rotation(
        make_spec(weeks=4), series(), people, options=FairnessOptions(rotate_times=3)
    )
    assert len(plan.times) == 1
    assert plan.worst_share == 0.0
    assert plan.coverage == 1.0
    assert plan.exact


def test_two_regions_take_turns(make_spec: Callable[..., CohortSpec]) -> None:
    """Tokyo and New York evenings never meet: one time leaves one region in stretch hours every
    week; two alternating times halve the worst share and each side gets its turn."""
    spec = make_spec(start_date=date(2027, 5, 3), weeks=4, home_zone="UTC")
    people = [
        person("tokyo", "Asia/Tokyo", "Mon-Fri 19:00-22:00"),
        person("ny", "America/New_York", "Mon-Fri 19:00-22:00"),
    ]
    one = plan_fair_rotation(spec, series(), people, options=FairnessOptions(rotate_times=1))
    two = plan_fair_rotation(spec, series(), people, options=FairnessOptions(rotate_times=2))
    assert one.worst_share == 1.0
    assert two.worst_share == 0.5
    assert two.week_times in ((0, 1, 0, 1), (1, 0, 1, 0))
    for key in ("tokyo", "ny"):
        row = two.ledger.of(key)
        assert (row.preferred, row.stretch, row.missed) == (2, 2, 0)
    assert {r.name for r in two.ledger.regions} == {"Asia", "America"}
    assert two.ledger.of_region("Asia").share == 0.5


def test_coverage_floor_blocks_a_fairer_plan(make_spec: Callable[..., CohortSpec]) -> None:
    """Nine Berliners and one Tokyo learner with no stretch: sharing would cost the Berliners
    their weeks, so with a 5-point floor the plan stays on Berlin's evening."""
    spec = make_spec(start_date=date(2027, 5, 3), weeks=4)
    people = [person(f"b{i}", "Europe/Berlin", "Mon-Fri 18:00-22:00") for i in range(9)]
    people.append(person("tokyo", "Asia/Tokyo", "Mon-Fri 19:00-22:00"))
    stretch = {p.key: NO_STRETCH for p in people}
    tight = plan_fair_rotation(
        spec, series(), people, stretch, FairnessOptions(rotate_times=2, max_coverage_loss=0.05)
    )
    loose = plan_fair_rotation(
        spec, series(), people, stretch, FairnessOptions(rotate_times=2, max_coverage_loss=0.5)
    )
    assert tight.coverage == 0.9
    assert tight.ledger.of("tokyo").missed == 4
    assert loose.worst_share < tight.worst_share
    assert loose.coverage >= loose.reference_coverage - 0.5


def test_ledger_adds_up_with_a_blackout(make_spec: Callable[..., CohortSpec]) -> None:
    spec = make_spec(
        start_date=date(2027, 5, 3),
        weeks=3,
        blackouts=(Blackout(date(2027, 5, 10), date(2027, 5, 16)),),
    )
    people = [
        person("berlin", "Europe/Berlin", "Mon-Fri 18:00-22:00"),
        person("tokyo", "Asia/Tokyo", "Mon-Fri 19:00-22:00"),
    ]
    plan = plan_fair_rotation(spec, series(), people)
    for key in ("berlin", "tokyo"):
        row = plan.ledger.of(key)
        assert row.meetings == 3
        assert row.skipped == 1
    total = sum(r.preferred + r.stretch for r in plan.ledger.regions)
    assert plan.coverage == total / 6
    ledger = plan.ledger
    for region in ledger.regions:
        mine = [i for i, name in enumerate(ledger.region) if name == region.name]
        assert region.learners == len(mine)
        assert region.preferred == sum(ledger.preferred[i] for i in mine)
        assert region.missed == sum(ledger.missed[i] for i in mine)
        assert region.pain == sum(ledger.pain[i] for i in mine)


def test_start_follows_the_anchor_clock(make_spec: Callable[..., CohortSpec]) -> None:
    """Berlin anchor across the EU spring change: same wall time, one hour earlier in UTC."""
    spec = make_spec(start_date=date(2027, 3, 22), weeks=2)
    people = [person("berlin", "Europe/Berlin", "Mon-Fri 18:00-22:00")]
    plan = plan_fair_rotation(spec, series(), people, options=FairnessOptions(rotate_times=1))
    time = plan.times[0]
    for week in range(2):
        start = plan.start(spec, week)
        assert start == slot_instant(spec, week, time.weekday, time.minute, "Europe/Berlin")
        assert start.tzinfo == UTC
    assert plan.start(spec, 1) - plan.start(spec, 0) == timedelta(days=7, hours=-1)


def test_rotation_needs_learners(make_spec: Callable[..., CohortSpec]) -> None:
    with pytest.raises(ValueError, match="no learners"):
        plan_fair_rotation(make_spec(), series(), [])


def test_rotation_needs_one_meeting_a_week(make_spec: Callable[..., CohortSpec]) -> None:
    with pytest.raises(ValueError, match="per_week"):
        plan_fair_rotation(
            make_spec(), series(per_week=2), [person("a", "UTC", "daily 09:00-17:00")]
        )


# --- helpers of the search ------------------------------------------------------------------------


@given(
    st.integers(1, 6).flatmap(
        lambda c: st.integers(1, 4).flatmap(
            lambda t: st.tuples(
                st.lists(
                    st.lists(st.integers(0, 9), min_size=t, max_size=t), min_size=c, max_size=c
                ),
                st.lists(st.integers(1, 3), min_size=t, max_size=t),
                st.integers(1, 3),
            )
        )
    )
)
def test_best_reach_is_exact(case: tuple[list[list[int]], list[int], int]) -> None:
    rows, counts, k = case
    reach, weeks = np.array(rows, dtype=np.int64), np.array(counts, dtype=np.int64)
    value, times = best_reach(reach, weeks, range(len(rows)), k)
    want = max(
        int((reach[list(combo)] * weeks).max(axis=0).sum())
        for size in range(1, min(k, len(rows)) + 1)
        for combo in itertools.combinations(range(len(rows)), size)
    )
    assert value == want
    assert len(times) <= k
    assert int((reach[list(times)] * weeks).max(axis=0).sum()) == value


def test_compositions_and_layout() -> None:
    assert sorted(compositions(2, 2).tolist()) == [[0, 2], [1, 1], [2, 0]]
    assert len(compositions(8, 4)) == 165
    assert layout(np.array([[2], [2]]), [0, 0, 0, 0]) == (0, 1, 0, 1)
    assert layout(np.array([[2, 0], [1, 1]]), [0, 0, 0, 1]) == (0, 1, 0, 1)
