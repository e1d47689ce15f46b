"""Learners: mid-course joiners, replays for the left-out, grouping, determinism.

Berlin cohort from Monday 1 March 2027, 4 weeks, classes Monday and Thursday 18:00-19:30."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from scheduler.planning.deadlines import DeadlineKind, OccurrenceRef, compute_deadlines
from scheduler.timeutil import zone

BERLIN = zone("Europe/Berlin")
CLASSES = ["Mon 18:00", "Thu 18:00"]


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, 3, day, hour, minute, tzinfo=BERLIN)


def test_mid_course_joiner_gets_paced_catch_up_and_replays_of_missed_classes(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec()
    joined = berlin(10, 12)  # Wednesday of week 1
    learner = make_learner("late", "Europe/Berlin", enrolled_at=joined)
    items = compute_deadlines(spec, make_occurrences(spec, CLASSES), [learner])["late"]
    catch_up = [i for i in items if i.release == joined and i.kind != DeadlineKind.ASSIGNMENT]
    # In the order of their original deadlines (a replay counts at the class's end); 3h of work a
    # day from the day after joining: efforts 2, 1.5, 2, 1.5, 3, 2, 3, 1.5, 2 hours add up to
    # 2, 3.5, 5.5, 7, 10, 12, 15, 16.5, 18.5 -> days 1, 2, 2, 3, 4, 4, 5, 6, 7 after joining.
    due = {i.key: i.soft_local for i in catch_up}
    assert due == {
        "reading/class/0/0/0": berlin(11, 20),
        "replay/class/0/0/0": berlin(12, 20),
        "reading/class/0/1/0": berlin(12, 20),
        "replay/class/0/1/0": berlin(13, 20),
        "exercise/class/0/0/0": berlin(14, 20),
        "reading/class/0/0/1": berlin(14, 20),
        "exercise/class/0/1/0": berlin(15, 20),
        "replay/class/0/0/1": berlin(16, 20),
        "reading/class/0/1/1": berlin(17, 20),
    }
    by_key = {i.key: i for i in catch_up}
    assert {i.kind for i in catch_up if i.assignment is None} == {DeadlineKind.REPLAY}
    assert {i.kind for i in catch_up if i.assignment} == {DeadlineKind.CATCH_UP}
    assert by_key["reading/class/0/0/0"].title == "Catch up: Read the week's notes"
    assert by_key["replay/class/0/0/0"].title == "Watch the replay: Live class (week 1)"
    assert by_key["reading/class/0/0/0"].hard == berlin(14, 20)  # soft + 72h
    assert by_key["exercise/class/0/0/0"].hard == datetime(2027, 3, 28, 23, 59, 59, tzinfo=BERLIN)
    # Released before joining, due after: the Monday 8 March exercise (due Thursday 11 March
    # 20:00) opens at enrolment and keeps its deadline.
    exercise = next(i for i in items if i.key == "exercise/class/0/0/1")
    assert exercise.kind == DeadlineKind.ASSIGNMENT
    assert (exercise.release, exercise.soft_local) == (joined, berlin(11, 20))
    assert all(i.release >= joined for i in items)
    assert len(items) == 16 + 3  # every assignment item, plus the three missed classes


def test_joiner_enrolled_before_the_course_is_like_everyone(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec()
    early = make_learner("early", "Europe/Berlin", enrolled_at=berlin(1, 0) - timedelta(days=9))
    usual = make_learner("usual", "Europe/Berlin")
    result = compute_deadlines(spec, make_occurrences(spec, CLASSES), [early, usual])
    assert result["early"] == result["usual"]


def test_joiner_due_too_soon_after_joining_gets_a_catch_up(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    # The Thursday 4 March reading is due Tuesday 2 March 20:00; joining at 19:00 leaves an hour
    # for 2h of work: a catch-up, not a deadline they cannot meet.
    spec = make_spec()
    learner = make_learner("x", "Europe/Berlin", enrolled_at=berlin(2, 19))
    items = compute_deadlines(spec, make_occurrences(spec, CLASSES), [learner])["x"]
    item = next(i for i in items if i.key == "reading/class/0/1/0")
    assert item.kind == DeadlineKind.CATCH_UP
    assert item.soft > item.release + timedelta(hours=2)


def test_learner_no_class_fits_gets_a_replay_per_class_occurrence(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec()
    occurrences = (
        make_occurrences(spec, CLASSES)
        + make_occurrences(spec, ["Fri 16:00"], series="office", length=timedelta(hours=1))
        + make_occurrences(spec, ["Wed 19:00"], series="cowork", length=timedelta(hours=2))
    )
    learner = make_learner("away", "Europe/Berlin", "Sat 09:00-10:00")
    items = compute_deadlines(spec, occurrences, [learner])["away"]
    replays = [i for i in items if i.kind == DeadlineKind.REPLAY]
    assert len(replays) == 8  # classes only: office hours and co-working are not recorded
    assert {r.target.series for r in replays} == {"class"}
    first = min(replays, key=lambda r: r.soft)
    assert first.key == "replay/class/0/0/0"
    assert first.title == "Watch the replay: Live class (week 1)"
    assert first.assignment is None
    assert first.release == berlin(1, 19, 30)  # when the class ends
    assert first.soft_local == berlin(4, 20)  # Thursday 19:30 (+72h) -> 20:00 that evening
    assert first.hard == datetime(2027, 3, 28, 23, 59, 59, tzinfo=BERLIN)
    assert first.effort == timedelta(minutes=90)
    assert first.coworking is None
    assert {r.title for r in replays} == {
        f"Watch the replay: Live class (week {w})" for w in range(1, 5)
    }


def test_replays_only_in_the_weeks_dst_pushes_a_class_out_of_the_window(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    # Monday 18:00 Berlin is 12:00 in New York until 14 March, 13:00 until Europe changes on
    # 28 March, then 12:00 again. Their window is Monday 12:00-13:30.
    spec = make_spec(weeks=6)
    learner = make_learner("ny", "America/New_York", "Mon 12:00-13:30")
    items = compute_deadlines(spec, make_occurrences(spec, ["Mon 18:00"]), [learner])["ny"]
    replays = [i for i in items if i.kind == DeadlineKind.REPLAY]
    assert [r.target for r in replays] == [OccurrenceRef("class", 0, 0, w) for w in (2, 3)]


def test_learners_with_the_same_inputs_share_one_tuple(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec()
    occurrences = make_occurrences(spec, CLASSES)
    learners = [
        make_learner("a", "Europe/Berlin"),
        make_learner("b", "Europe/Berlin"),
        # another availability, but the same sessions fit: the same items
        make_learner("c", "Europe/Berlin", "Mon-Fri 17:00-23:00"),
        make_learner("d", "Europe/Paris"),
        make_learner("e", "Europe/Berlin", sections={"class": 1}),
    ]
    result = compute_deadlines(spec, occurrences, learners)
    assert result["a"] is result["b"] is result["c"]
    assert result["d"] is not result["a"]  # the same instants, shown on another clock
    assert {i.soft_local.tzinfo for i in result["d"]} == {zone("Europe/Paris")}
    assert [i.soft for i in result["d"]] == [i.soft for i in result["a"]]
    assert result["e"] == ()  # section 1 has no sessions


def test_same_input_in_any_order_gives_the_same_output(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    spec = make_spec(weeks=6, start_date=date(2027, 3, 8))
    occurrences = make_occurrences(spec, CLASSES) + make_occurrences(
        spec, ["Tue 09:00", "Fri 09:00"], section=1
    )
    occurrences += make_occurrences(spec, ["Wed 19:00"], series="cowork", length=timedelta(hours=2))
    learners = [
        make_learner(f"l{i}", zone_name, text, {"class": i % 2}, enrolled)
        for i, (zone_name, text, enrolled) in enumerate(
            [
                ("Asia/Kathmandu", "Mon-Fri 12:00-16:00", None),
                ("America/St_Johns", "Mon-Fri 09:00-17:00", berlin(20, 9)),
                ("Pacific/Chatham", "daily 06:00-10:00", None),
                ("Europe/Berlin", "Mon-Fri 18:00-22:00", berlin(17, 9)),
                ("Australia/Lord_Howe", "Sat 09:00-12:00", None),
            ]
        )
    ]
    first = compute_deadlines(spec, occurrences, learners)
    rng = random.Random(4)
    for _ in range(3):
        shuffled_occurrences = list(occurrences)
        shuffled_learners = list(learners)
        rng.shuffle(shuffled_occurrences)
        rng.shuffle(shuffled_learners)
        assert compute_deadlines(spec, shuffled_occurrences, shuffled_learners) == first
