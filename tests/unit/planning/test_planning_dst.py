"""Named DST cases: the plan follows clocks that change on different dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import pytest
from conftest import learner

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import Anchor, Blackout, CohortSpec, Facilitator, PlanningOptions
from scheduler.planning import LeftOutReason, local_start, make_plan
from scheduler.planning.fit import build_grid
from scheduler.timeutil import Weekday, wall_to_utc, zone

SpecFactory = Callable[..., CohortSpec]


def test_us_changed_europe_not_moves_class_for_new_york(make_spec: SpecFactory) -> None:
    # 2027: the US springs forward on 14 March, Europe on 28 March.
    spec = make_spec(start_date=date(2027, 3, 8), weeks=3)
    people = [learner(f"london{i}", "Europe/London", "Mon 17:00-18:00") for i in range(3)]
    people.append(learner("ny", "America/New_York", "Mon 12:00-13:00"))
    plan = make_plan(spec, people)
    (section,) = plan.sections
    assert [t.label() for t in section.times] == ["Mon 18:00"]
    assert plan.coverage_of("ny", "class").by_week == (1, 0, 0)
    assert plan.coverage_of("london0", "class").by_week == (1, 1, 1)
    (out,) = plan.left_out
    assert (out.learner, out.reason, out.week) == ("ny", LeftOutReason.DST_UNTIL_WEEK, 1)
    assert [w.text for w in plan.warnings] == [
        "from week 2 this class is one hour later for the 1 learner in America/*"
    ]
    assert local_start(plan, "class", 0, 0, "America/New_York").time() == time(12, 0)
    assert local_start(plan, "class", 0, 1, "America/New_York").time() == time(13, 0)
    assert local_start(plan, "class", 0, 2, "Europe/London").time() == time(17, 0)


def test_southern_hemisphere_sydney_falls_back_in_april(make_spec: SpecFactory) -> None:
    # Sydney leaves summer time on 4 April 2027 (UTC+11 -> UTC+10); the series keeps UTC.
    spec = make_spec(start_date=date(2027, 3, 29), planning=PlanningOptions(anchor=Anchor.UTC))
    plan = make_plan(spec, [learner("syd", "Australia/Sydney", "Tue 08:00-09:00")])
    (section,) = plan.sections
    assert section.anchor_zone == "UTC"
    assert [t.label() for t in section.times] == ["Mon 21:00"]
    assert local_start(plan, "class", 0, 0, "Australia/Sydney").time() == time(8, 0)
    assert local_start(plan, "class", 0, 1, "Australia/Sydney").time() == time(7, 0)
    (out,) = plan.left_out
    assert (out.reason, out.week) == (LeftOutReason.DST_UNTIL_WEEK, 1)
    assert plan.warnings[0].text == (
        "from week 2 this class is one hour earlier for the 1 learner in Australia/*"
    )


def test_no_dst_facilitator_bogota_limits_times_across_europes_change(
    make_spec: SpecFactory,
) -> None:
    diego = Facilitator(
        "Diego", "diego@example.org", "America/Bogota", parse_availability("Mon 10:00-12:00")
    )
    # Europe changes on 28 March: Bogota is Berlin - 6 h, then Berlin - 7 h.
    spec = make_spec(start_date=date(2027, 3, 22), facilitators=(diego,))
    people = [learner(f"b{i}", "Europe/Berlin", "Mon 16:00-17:00") for i in range(4)]
    people.append(learner("anyone", "Europe/Berlin", "Mon 08:00-23:00"))
    plan = make_plan(spec, people)
    (section,) = plan.sections
    assert [t.label() for t in section.times] == ["Mon 17:00"]
    assert section.facilitator == "diego@example.org"
    reasons = {o.learner: o.reason for o in plan.left_out}
    assert reasons == {f"b{i}": LeftOutReason.NO_FACILITATOR_OVERLAP for i in range(4)}
    assert plan.coverage_of("anyone", "class").fitted == 2


@pytest.mark.parametrize(
    ("day", "wall", "expected"),
    [
        (date(2027, 3, 28), time(2, 30), datetime(2027, 3, 28, 1, 30, tzinfo=UTC)),
        (date(2027, 10, 31), time(2, 30), datetime(2027, 10, 31, 0, 30, tzinfo=UTC)),
        (date(2027, 3, 21), time(2, 30), datetime(2027, 3, 21, 1, 30, tzinfo=UTC)),
    ],
    ids=["spring_forward_gap_moves_forward", "fall_back_fold_takes_first", "ordinary_sunday"],
)
def test_grid_expands_through_wall_to_utc(
    make_spec: SpecFactory, day: date, wall: time, expected: datetime
) -> None:
    spec = make_spec(start_date=day - timedelta(days=day.weekday()), weeks=1)
    grid = build_grid(spec)
    candidate = (Weekday.SUN * 24 * 60 + wall.hour * 60 + wall.minute) // grid.step
    assert grid.instant(candidate, 0) == expected
    assert grid.instant(candidate, 0) == wall_to_utc(day, wall, zone("Europe/Berlin"))


def test_blackout_occurrence_is_skipped_and_not_counted(make_spec: SpecFactory) -> None:
    spec = make_spec(weeks=3, blackouts=(Blackout(date(2027, 3, 8), date(2027, 3, 8), "Holiday"),))
    plan = make_plan(spec, [learner("a", "Europe/Berlin", "Mon 18:00-19:00")])
    skipped = [o for o in plan.occurrences if o.skipped]
    assert [(o.week, o.note) for o in skipped] == [(1, "Holiday")]
    row = plan.coverage_of("a", "class")
    assert (row.fitted, row.occurrences, row.coverage) == (2, 2, 1.0)
    assert plan.sections[0].coverage_by_week == (1.0, None, 1.0)
