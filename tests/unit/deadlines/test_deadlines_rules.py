"""Named cases for each deadline rule, on a Berlin cohort from Monday 1 March 2027.

Europe moves its clocks forward on Sunday 28 March 2027; Los Angeles on 14 March.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from scheduler.domain.cohort import (
    Blackout,
    CohortSpec,
    HardKind,
    PlanningOptions,
    Release,
    ReleaseKind,
)
from scheduler.planning.deadlines import (
    DeadlineItem,
    DeadlineKind,
    DeadlineLearner,
    OccurrenceRef,
    compute_deadlines,
)
from scheduler.planning.model import Occurrence
from scheduler.timeutil import zone

BERLIN = zone("Europe/Berlin")


def berlin(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=BERLIN)


def only(
    spec: CohortSpec, occurrences: list[Occurrence], learner: DeadlineLearner
) -> tuple[DeadlineItem, ...]:
    return compute_deadlines(spec, occurrences, [learner])[learner.key]


def of_kind(
    items: tuple[DeadlineItem, ...], assignment: str | None, kind: DeadlineKind | None = None
) -> list[DeadlineItem]:
    return [i for i in items if i.assignment == assignment and (kind is None or i.kind == kind)]


def rule_spec(make_spec: Any, **changes: Any) -> CohortSpec:
    """The cohort with only the reading rule, changed by ``changes``."""
    spec: CohortSpec = make_spec()
    return replace(spec, assignments=(replace(spec.assignments[0], **changes),))


# --- counts, keys, sections, blackouts -------------------------------------------------------------


def test_two_classes_a_week_for_eight_weeks_give_sixteen_items_each(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec(weeks=8, start_date=date(2027, 5, 3))
    items = only(
        spec, make_occurrences(spec, ["Mon 18:00", "Thu 18:00"]), make_learner("a", "Europe/Berlin")
    )
    assert len(of_kind(items, "reading")) == 16
    assert len(of_kind(items, "exercise")) == 16
    assert len({i.key for i in items}) == len(items) == 32  # the default availability fits
    assert of_kind(items, "reading")[3].key == "reading/class/0/1/1"
    assert of_kind(items, "reading")[3].target == OccurrenceRef("class", 0, 1, 1)
    assert [i.soft for i in items] == sorted(i.soft for i in items)


def test_blacked_out_session_gets_no_item_and_no_replay(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec(blackouts=(Blackout(date(2027, 3, 29), date(2027, 3, 29), "Easter Monday"),))
    spec = replace(spec, weeks=5)
    occurrences = make_occurrences(spec, ["Mon 18:00", "Thu 18:00"])
    assert [o.week for o in occurrences if o.skipped] == [4]
    fits = only(spec, occurrences, make_learner("a", "Europe/Berlin"))
    no_fit = only(spec, occurrences, make_learner("b", "Europe/Berlin", "Sat 09:00-10:00"))
    for items in (fits, no_fit):
        assert "reading/class/0/0/4" not in {i.key for i in items}
        assert "exercise/class/0/0/4" not in {i.key for i in items}
        assert len(of_kind(items, "reading")) == 9
    assert "replay/class/0/0/4" not in {i.key for i in no_fit}
    assert len(of_kind(no_fit, None, DeadlineKind.REPLAY)) == 9
    # The Thursday reading after Easter Monday opens when the last session that happened ended.
    thursday = next(i for i in fits if i.key == "reading/class/0/1/4")
    assert thursday.release == berlin(25, 19, 30)


def test_learners_get_deadlines_from_their_own_section(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = rule_spec(make_spec)
    occurrences = make_occurrences(spec, ["Mon 18:00"]) + make_occurrences(
        spec, ["Wed 09:00"], section=1
    )
    evening = make_learner("evening", "Europe/Berlin", sections={"class": 0})
    morning = make_learner("morning", "Europe/Berlin", "Mon-Fri 08:00-12:00", {"class": 1})
    result = compute_deadlines(spec, occurrences, [evening, morning])
    first_evening, first_morning = result["evening"][1], result["morning"][1]
    assert first_evening.target == OccurrenceRef("class", 0, 0, 1)
    assert first_evening.soft_local == berlin(6, 20)  # Sunday 18:00 snapped back to Saturday 20:00
    assert first_morning.target == OccurrenceRef("class", 1, 0, 1)
    assert first_morning.key == "reading/class/1/0/1"
    assert first_morning.soft_local == berlin(8, 20)  # Tuesday 09:00 -> Monday 20:00
    assert first_morning.release == berlin(3, 10, 30)  # after section 1's previous session
    assert not [i for i in result["morning"] if i.kind == DeadlineKind.REPLAY]


def test_learner_without_a_section_follows_section_zero_and_gets_every_replay(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec()
    occurrences = make_occurrences(spec, ["Mon 18:00"]) + make_occurrences(
        spec, ["Wed 09:00"], section=1
    )
    items = only(spec, occurrences, make_learner("a", "Europe/Berlin", sections={}))
    readings = of_kind(items, "reading")
    assert {i.target.section for i in readings} == {0}
    assert all("no class section: dates follow section 0" in i.warnings for i in readings)
    # It fits them, but they have no seat: each session of section 0 comes as a replay.
    replays = of_kind(items, None, DeadlineKind.REPLAY)
    assert [r.key for r in replays] == [f"replay/class/0/0/{w}" for w in range(4)]


# --- release ------------------------------------------------------------------------------------


def test_release_after_previous_session_and_course_start_for_the_first(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec()
    items = only(
        spec, make_occurrences(spec, ["Mon 18:00", "Thu 18:00"]), make_learner("a", "Europe/Berlin")
    )
    readings = of_kind(items, "reading")
    assert readings[0].release == berlin(1, 0)
    assert readings[1].release == berlin(1, 19, 30)  # Monday's class ended
    assert readings[2].release == berlin(4, 19, 30)
    # Follow-up work opens when the session it follows ends.
    exercises = of_kind(items, "exercise")
    assert [e.release for e in exercises[:2]] == [berlin(1, 19, 30), berlin(4, 19, 30)]


def test_course_start_is_the_earlier_midnight_of_learner_and_session_clocks(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    # A Monday 08:00 Berlin class is Sunday 23:00 in Los Angeles: the work must be out by then.
    spec = rule_spec(make_spec, release=Release(ReleaseKind.COURSE_START))
    occurrences = make_occurrences(spec, ["Mon 08:00"])
    la = only(spec, occurrences, make_learner("la", "America/Los_Angeles"))
    la = tuple(of_kind(la, "reading"))
    assert {i.release for i in la} == {berlin(1, 0)}
    assert la[0].release.astimezone(zone("America/Los_Angeles")).hour == 15  # Sunday 15:00
    tokyo = of_kind(only(spec, occurrences, make_learner("tokyo", "Asia/Tokyo")), "reading")
    assert tokyo[0].release == datetime(2027, 3, 1, tzinfo=zone("Asia/Tokyo"))


def test_fixed_date_release_is_local_midnight_and_can_force_a_late_deadline(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = rule_spec(make_spec, release=Release(ReleaseKind.FIXED_DATE, on=date(2027, 3, 10)))
    items = only(
        spec, make_occurrences(spec, ["Mon 18:00", "Thu 18:00"]), make_learner("a", "Europe/Berlin")
    )
    by_key = {i.key: i for i in items}
    assert {i.release for i in items} == {berlin(10, 0)}
    # Monday 8 March's class was before the release: due release + 2h = 02:00, which is in the
    # quiet hours; 22:00 the evening before would precede the release, so 07:00 that morning.
    early = by_key["reading/class/0/0/1"]
    assert early.soft_local == berlin(10, 7)
    assert early.warnings == ("released after the rule's deadline (1d before the session)",)
    # Thursday 11 March: snapped (Tuesday 20:00) is before the release, the rule's own time
    # (Wednesday 18:00) leaves the effort: used, unsnapped.
    thursday = by_key["reading/class/0/1/1"]
    assert thursday.soft_local == berlin(10, 18)
    assert thursday.warnings == ("not snapped to 20:00, to leave the effort after release",)
    assert by_key["reading/class/0/0/2"].soft_local == berlin(13, 20)
    assert by_key["reading/class/0/0/2"].warnings == ()


def test_late_release_is_capped_at_the_session_start(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = rule_spec(make_spec, release=Release(ReleaseKind.FIXED_DATE, on=date(2027, 3, 8)))
    spec = replace(spec, planning=PlanningOptions(quiet_start=0, quiet_end=0))  # no quiet hours
    occurrences = make_occurrences(spec, ["Mon 01:00"])
    item = next(
        i
        for i in of_kind(only(spec, occurrences, make_learner("a", "Europe/Berlin")), "reading")
        if i.target.week == 1
    )
    assert item.release == berlin(8, 0)
    assert item.soft == berlin(8, 1)  # release + 2h would be after the class: the class start
    assert item.warnings == (
        "released after the rule's deadline (1d before the session)",
        "less than the effort (2h) between release and deadline",
    )


def test_drip_releases_on_the_learner_wall_clock(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = rule_spec(make_spec, release=Release(ReleaseKind.DRIP, every=timedelta(days=3)))
    items = only(
        spec, make_occurrences(spec, ["Mon 18:00", "Thu 18:00"]), make_learner("a", "Europe/Berlin")
    )
    releases = sorted(i.release for i in items)
    assert [r.astimezone(BERLIN).time() for r in releases] == [time(0)] * 8  # across 28 March
    assert [r.astimezone(BERLIN).day for r in releases] == [1, 4, 7, 10, 13, 16, 19, 22]


# --- soft: snapping, quiet hours, effort ------------------------------------------------------------


def test_prepares_snaps_back_and_follows_snaps_forward(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec()
    items = only(
        spec, make_occurrences(spec, ["Mon 18:00", "Thu 18:00"]), make_learner("a", "Europe/Berlin")
    )
    by_key = {i.key: i for i in items}
    # Thursday 18:00 minus 24h is Wednesday 18:00: the latest 20:00 before is Tuesday's.
    assert by_key["reading/class/0/1/0"].soft_local == berlin(2, 20)
    # Monday 19:30 plus 72h is Thursday 19:30: the first 20:00 after is Thursday's.
    assert by_key["exercise/class/0/0/0"].soft_local == berlin(4, 20)
    # Thursday 19:30 plus 72h is Sunday 19:30 -> Sunday 20:00.
    assert by_key["exercise/class/0/1/0"].soft_local == berlin(7, 20)


@pytest.mark.parametrize(
    ("class_at", "expected"),
    [
        pytest.param("Tue 22:00", berlin(8, 22), id="exactly_quiet_start_stays"),
        pytest.param("Tue 22:01", berlin(8, 22), id="one_minute_into_quiet_moves_back"),
        pytest.param("Wed 03:00", berlin(8, 22), id="after_midnight_moves_to_evening_before"),
        pytest.param("Wed 07:00", berlin(9, 7), id="exactly_quiet_end_stays"),
        pytest.param("Wed 06:59", berlin(8, 22), id="one_minute_before_quiet_end_moves_back"),
        pytest.param("Tue 21:59", berlin(8, 21, 59), id="before_quiet_start_stays"),
    ],
)
def test_quiet_hours_move_an_unsnapped_deadline_earlier(
    make_spec: Any, make_occurrences: Any, make_learner: Any, class_at: str, expected: datetime
) -> None:
    spec = rule_spec(make_spec, snap_to=None, release=Release(ReleaseKind.COURSE_START))
    all_items = only(spec, make_occurrences(spec, [class_at]), make_learner("a", "Europe/Berlin"))
    items = of_kind(all_items, "reading")
    assert items[1].target.week == 1
    assert items[1].soft_local == expected
    assert items[1].warnings == ()


def test_configured_quiet_hours_and_a_snap_inside_them(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = rule_spec(make_spec, snap_to=23 * 60 + 30)
    spec = replace(spec, planning=PlanningOptions(quiet_start=23 * 60, quiet_end=6 * 60))
    items = only(spec, make_occurrences(spec, ["Thu 18:00"]), make_learner("a", "Europe/Berlin"))
    # Wednesday 18:00 -> snapped back to Tuesday 23:30 -> inside 23:00-06:00 -> Tuesday 23:00.
    assert items[1].soft_local == berlin(9, 23)


def test_too_little_time_between_sessions_warns_about_the_effort(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = rule_spec(make_spec)
    occurrences = make_occurrences(spec, ["Mon 18:00", "Tue 20:00"])
    items = only(spec, occurrences, make_learner("a", "Europe/Berlin"))
    tuesday = next(i for i in items if i.key == "reading/class/0/1/0")
    assert tuesday.release == berlin(1, 19, 30)
    assert tuesday.soft_local == berlin(1, 20)  # 24h before Tuesday 20:00
    assert tuesday.warnings == ("less than the effort (2h) between release and deadline",)


# --- hard ---------------------------------------------------------------------------------------


def test_hard_after_soft_counts_on_the_wall_clock_across_the_change(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec(weeks=5)
    items = only(
        spec, make_occurrences(spec, ["Mon 18:00", "Thu 18:00"]), make_learner("a", "Europe/Berlin")
    )
    item = next(i for i in items if i.key == "reading/class/0/0/4")  # Monday 29 March
    assert item.soft_local == berlin(27, 20)
    assert item.hard is not None
    assert item.hard.astimezone(BERLIN) == berlin(30, 20)
    assert item.hard - item.soft == timedelta(hours=71)  # one hour was skipped on 28 March


def test_end_of_course_is_the_last_local_second_and_never_before_soft(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec()
    items = only(
        spec, make_occurrences(spec, ["Mon 18:00", "Thu 18:00"]), make_learner("a", "Europe/Berlin")
    )
    exercises = of_kind(items, "exercise")
    assert exercises[0].hard == datetime(2027, 3, 28, 23, 59, 59, tzinfo=BERLIN)
    # Thursday 25 March 19:30 + 72h on the wall clock is Sunday 19:30 (71h, the clocks went
    # forward): snapped forward to Sunday 20:00, the last evening of the course.
    last = exercises[-1]
    assert last.soft_local == berlin(28, 20)
    assert last.hard == exercises[0].hard
    spec_short = replace(spec, weeks=1, start_date=date(2027, 3, 23))  # ends Monday 29 March
    item = of_kind(
        only(
            spec_short,
            make_occurrences(spec_short, ["Sat 18:00"]),
            make_learner("a", "Europe/Berlin"),
        ),
        "exercise",
    )[0]
    assert item.soft_local == datetime(2027, 3, 30, 20, tzinfo=BERLIN)  # after the course end
    assert item.hard == item.soft


def test_no_hard_deadline_rule_gives_none(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = rule_spec(make_spec, hard=HardKind.NONE, hard_after=None)
    items = only(spec, make_occurrences(spec, ["Mon 18:00"]), make_learner("a", "Europe/Berlin"))
    assert {i.hard for i in of_kind(items, "reading")} == {None}


# --- co-working ---------------------------------------------------------------------------------


def test_items_carry_the_next_fitting_coworking_block_before_the_deadline(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec()
    occurrences = (
        make_occurrences(spec, ["Mon 18:00", "Thu 18:00"])
        + make_occurrences(
            spec, ["Wed 19:00"], series="cowork", section=0, length=timedelta(hours=2)
        )
        + make_occurrences(
            spec, ["Wed 07:00"], series="cowork", section=1, length=timedelta(hours=2)
        )
    )
    evening = make_learner("evening", "Europe/Berlin")
    tokyo = make_learner("tokyo", "Asia/Tokyo", "Mon-Fri 09:00-17:00")
    result = compute_deadlines(spec, occurrences, [evening, tokyo])
    exercise = next(i for i in result["evening"] if i.key == "exercise/class/0/0/0")
    assert exercise.coworking == berlin(3, 19)
    assert exercise.coworking_occurrence == OccurrenceRef("cowork", 0, 0, 0)
    reading = next(i for i in result["evening"] if i.key == "reading/class/0/1/0")
    assert reading.coworking is None  # due Tuesday 20:00, before Wednesday's block
    tokyo_exercise = next(i for i in result["tokyo"] if i.key == "exercise/class/0/0/0")
    assert tokyo_exercise.coworking_occurrence == OccurrenceRef("cowork", 1, 0, 0)
    for items in result.values():
        for item in items:
            if item.kind == DeadlineKind.REPLAY:
                assert item.coworking is None
            if item.coworking is not None:
                assert item.release <= item.coworking
                assert item.coworking + timedelta(hours=2) <= item.soft


def test_unknown_series_in_a_rule_is_an_error(make_spec: Any, make_learner: Any) -> None:
    spec = rule_spec(make_spec, series="lab")
    with pytest.raises(ValueError, match="unknown series: lab"):
        compute_deadlines(spec, [], [make_learner("a", "Europe/Berlin")])


def test_naive_enrolment_is_rejected(make_learner: Any) -> None:
    with pytest.raises(ValueError, match="aware"):
        make_learner("a", "Europe/Berlin", enrolled_at=datetime(2027, 3, 1))  # noqa: DTZ001


def test_enrolment_in_utc_or_local_is_the_same_instant(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec()
    occurrences = make_occurrences(spec, ["Mon 18:00"])
    a = make_learner("a", "Europe/Berlin", enrolled_at=berlin(10, 12))
    b = make_learner("b", "Europe/Berlin", enrolled_at=berlin(10, 12).astimezone(UTC))
    result = compute_deadlines(spec, occurrences, [a, b])
    assert result["a"] is result["b"]
