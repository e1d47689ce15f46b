"""The planner's objective equals an independent exhaustive search on small random cohorts.

The brute force below recomputes every fit with plain datetime arithmetic (wall_to_utc, then
astimezone, then ``Availability.covers``) and tries every choice of times; it shares no code with
the planner's grouping, bounds or flows. A 60-minute grid keeps it exhaustive and quick.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, time, timedelta
from typing import Any

import pytest
from conftest import learner, series
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.domain.availability import Availability, parse_availability
from scheduler.domain.cohort import CohortSpec, Facilitator, PlanningOptions, SeriesKind
from scheduler.errors import PlanningError
from scheduler.planning import LearnerInput, LeftOutReason, make_plan
from scheduler.timeutil import MINUTES_PER_DAY, wall_to_utc, zone

ZONES = [
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
    "America/Sao_Paulo",
    "America/New_York",
    "Europe/Berlin",
    "UTC",
]
GRID = 60
STARTS = [date(2027, 3, 1), date(2027, 3, 22), date(2027, 3, 29), date(2027, 10, 25)]


@st.composite
def availabilities(draw: st.DrawFn) -> Availability:
    windows = []
    for _ in range(draw(st.integers(1, 3))):
        day = draw(st.integers(0, 6))
        start = draw(st.integers(0, 47)) * 30
        length = draw(st.integers(2, 12)) * 30
        windows.append((day * MINUTES_PER_DAY + start, day * MINUTES_PER_DAY + start + length))
    return Availability.from_windows(windows)


@st.composite
def cohorts(draw: st.DrawFn) -> tuple[CohortSpec, list[LearnerInput]]:
    count = draw(st.integers(1, 12))
    people = [
        LearnerInput(f"l{i:02d}", draw(st.sampled_from(ZONES)), draw(availabilities()))
        for i in range(count)
    ]
    spec = CohortSpec(
        slug="prop",
        title="Prop",
        start_date=draw(st.sampled_from(STARTS)),
        weeks=draw(st.integers(1, 3)),
        home_zone=draw(st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Kolkata"])),
        locale="en",
        default_availability=people[0].availability,
        planning=PlanningOptions(grid_minutes=GRID),
    )
    return spec, people


def fit_table(spec: CohortSpec, people: list[LearnerInput], minutes: int) -> list[list[list[bool]]]:
    """fits[i][c][w] by plain datetime arithmetic."""
    anchor = zone(spec.home_zone)
    out = []
    for person in people:
        tz = zone(person.zone)
        rows = []
        for c in range(7 * 24 * 60 // GRID):
            weekday, wall = divmod(c * GRID, MINUTES_PER_DAY)
            row = []
            for w in range(spec.weeks):
                day = spec.start_date + timedelta(
                    days=7 * w + (weekday - spec.start_date.weekday()) % 7
                )
                local = wall_to_utc(day, time(wall // 60, wall % 60), anchor).astimezone(tz)
                at = local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute
                row.append(person.availability.covers(at, minutes))
            rows.append(row)
        out.append(rows)
    return out


def distance_ok(times: tuple[int, ...], apart: int) -> bool:
    size = 7 * 24 * 60 // GRID
    return all(
        min((a - b) % size, (b - a) % size) >= apart for a, b in itertools.combinations(times, 2)
    )


FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(cohorts(), st.sampled_from([1, 2]), st.sampled_from([60, 120]), st.sampled_from([0, 24, 48]))
def test_whole_cohort_class_is_optimal(case, per_week, minutes, gap_hours):  # type: ignore[no-untyped-def]
    spec, people = case
    request = series(
        per_week=per_week, duration=timedelta(minutes=minutes), min_gap=timedelta(hours=gap_hours)
    )
    spec = _with(spec, series=(request,))
    plan = make_plan(spec, people)
    fits = fit_table(spec, people, minutes)
    score = [sum(sum(f[c]) for f in fits) for c in range(len(fits[0]))]
    apart = -(-max(gap_hours * 60, minutes) // GRID)
    best = max(
        sum(score[c] for c in combo)
        for combo in itertools.combinations(range(len(score)), per_week)
        if distance_ok(combo, apart)
    )
    assert dict(plan.objective)["class"] == best
    chosen = tuple(t.weekday * 24 + t.minute // 60 for t in plan.sections[0].times)
    assert sum(score[c] for c in chosen) == best and distance_ok(chosen, apart)


def max_matching(fitting: list[set[int]], sections: int, capacity: int) -> int:
    """Kuhn's augmenting paths, sections expanded into ``capacity`` seats each."""
    seat_owner: dict[tuple[int, int], int] = {}

    def try_place(i: int, seen: set[tuple[int, int]]) -> bool:
        for j in sorted(fitting[i]):
            for s in range(capacity):
                seat = (j, s)
                if seat in seen:
                    continue
                seen.add(seat)
                if seat not in seat_owner or try_place(seat_owner[seat], seen):
                    seat_owner[seat] = i
                    return True
        return False

    return sum(try_place(i, set()) for i in range(len(fitting)))


@FAST
@given(cohorts(), st.integers(1, 3), st.one_of(st.none(), st.integers(1, 6)))
def test_sections_are_optimal(case, k, capacity):  # type: ignore[no-untyped-def]
    spec, people = case
    request = series(sections=k, max_section_size=capacity)
    spec = _with(spec, series=(request,))
    plan = make_plan(spec, people)
    fits = fit_table(spec, people, 60)
    full = {
        frozenset(i for i, f in enumerate(fits) if all(f[c]))
        for c in range(len(fits[0]))
        if spec.weeks
    }
    cap = capacity if capacity is not None else len(people)
    best = 0
    for combo in itertools.combinations_with_replacement(sorted(full, key=sorted), k):
        fitting = [{j for j, s in enumerate(combo) if i in s} for i in range(len(people))]
        best = max(best, max_matching(fitting, k, cap))
    assert dict(plan.objective)["class"] == best
    # The assignment realises the value and respects capacity.
    sections = plan.series_sections("class")
    assert sum(s.fitted for s in sections) == best
    assert all(capacity is None or len(s.learners) <= capacity for s in sections)
    assigned = [key for s in sections for key in s.learners]
    assert len(assigned) == len(set(assigned)) == min(len(people), cap * k)


@FAST
@given(cohorts(), st.integers(1, 4))
def test_coworking_uses_fewest_blocks(case, max_blocks):  # type: ignore[no-untyped-def]
    spec, people = case
    request = series("cowork", kind=SeriesKind.COWORKING, max_blocks=max_blocks)
    spec = _with(spec, series=(request,))
    plan = make_plan(spec, people)
    fits = fit_table(spec, people, 60)
    sets = {frozenset(i for i, f in enumerate(fits) if all(f[c])) for c in range(len(fits[0]))}
    coverable = frozenset().union(*sets)
    best: tuple[int, int] | None = None  # (covered, -blocks)
    for k in range(1, max_blocks + 1):
        for combo in itertools.combinations(sorted(sets, key=sorted), min(k, len(sets))):
            covered = len(frozenset().union(*combo))
            if best is None or (covered, -k) > best:
                best = (covered, -k)
        if best is not None and best[0] == len(coverable):
            break
    assert best is not None
    blocks = plan.series_sections("cowork")
    covered = {key for b in blocks for key in b.learners}
    assert len(covered) == best[0]
    assert len(blocks) == -best[1]


def test_facilitator_load_limits_sections(make_spec) -> None:  # type: ignore[no-untyped-def]
    mei = Facilitator(
        "Mei", "mei@example.org", "Europe/Berlin", parse_availability("Mon-Fri 08:00-20:00"), 1
    )
    people = [
        learner("a", "Europe/Berlin", "Mon 09:00-10:00"),
        learner("b", "Europe/Berlin", "Tue 09:00-10:00"),
    ]
    capped = make_spec(facilitators=(mei,), series=(series(max_section_size=1),))
    plan = make_plan(capped, people)
    assert dict(plan.objective)["class"] == 1  # one section only: Mei has load for one
    assert [(o.learner, o.reason) for o in plan.left_out] == [("b", LeftOutReason.CAPACITY)]
    fixed = make_spec(facilitators=(mei,), series=(series(sections=2),))
    with pytest.raises(PlanningError, match="series 'class'"):
        make_plan(fixed, people)


def _with(spec: CohortSpec, **changes: Any) -> CohortSpec:
    return replace(spec, **changes)
