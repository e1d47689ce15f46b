"""Named zone cases: odd offsets, clock changes on other dates than the cohort's, and a learner
whose calendar is a day ahead of the course's.

The cohort is in Berlin from Monday 1 March 2027 with one class on Mondays at 18:00 Berlin
(17:00Z in CET, 16:00Z from 28 March in CEST)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

from scheduler.domain.cohort import CohortSpec
from scheduler.planning.deadlines import DeadlineItem, DeadlineKind, compute_deadlines
from scheduler.timeutil import zone


def items_for(
    spec: CohortSpec, make_occurrences: Any, make_learner: Any, zone_name: str, **kw: Any
) -> tuple[DeadlineItem, ...]:
    times = kw.pop("times", ["Mon 18:00"])
    learner = make_learner("x", zone_name, **kw)
    return compute_deadlines(spec, make_occurrences(spec, times), [learner])["x"]


def readings(items: tuple[DeadlineItem, ...]) -> list[DeadlineItem]:
    return sorted((i for i in items if i.assignment == "reading"), key=lambda i: i.target.week)


def exercises(items: tuple[DeadlineItem, ...]) -> list[DeadlineItem]:
    return sorted((i for i in items if i.assignment == "exercise"), key=lambda i: i.target.week)


def offsets(items: list[DeadlineItem]) -> list[timedelta | None]:
    return [i.soft_local.utcoffset() for i in items]


def test_chatham_plus_12_45_and_13_45_keeps_sunday_20_00(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    # Chatham falls back from +13:45 to +12:45 on 4 April; the class is Tuesday 06:45 local in
    # March, 05:45 after Berlin's change and 04:45 after Chatham's.
    spec = make_spec(weeks=6)
    items = items_for(
        spec, make_occurrences, make_learner, "Pacific/Chatham", availability="daily 00:00-24:00"
    )
    weekly = readings(items)[1:]
    assert [(i.soft_local.weekday(), i.soft_local.time()) for i in weekly] == [(6, time(20))] * 5
    assert offsets(weekly) == [timedelta(hours=13, minutes=45)] * 4 + [
        timedelta(hours=12, minutes=45)
    ]
    assert [i.soft_local.day for i in weekly] == [7, 14, 21, 28, 4]
    # The first class is Tuesday 2 March 06:45 on their clock, released at their midnight on
    # Monday: "24h before" (Monday 06:45) is before 07:00, so quiet hours would pull it to Sunday
    # night, before the release: it is due at 07:00 on Monday, with a warning.
    first = readings(items)[0]
    assert first.release == datetime(2027, 3, 1, tzinfo=zone("Pacific/Chatham"))
    assert first.soft_local == datetime(2027, 3, 1, 7, tzinfo=zone("Pacific/Chatham"))
    assert first.warnings == ("released after the rule's deadline (1d before the session)",)
    assert [(e.soft_local.weekday(), e.soft_local.time()) for e in exercises(items)] == [
        (4, time(20))
    ] * 6


def test_kathmandu_plus_5_45_quiet_hours_on_the_local_hour(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    # The class ends Tuesday 00:15 Kathmandu time in March and Monday 23:15 from 29 March;
    # "48h after" without a snap lands at 00:15 / 23:15, both inside 22:00-07:00: moved back to
    # 22:00 on the evening the quiet night began (Wednesday both times).
    spec = make_spec(weeks=6)
    exercise = replace(spec.assignments[1], snap_to=None, soft_offset=timedelta(hours=48))
    spec = replace(spec, assignments=(spec.assignments[0], exercise))
    items = items_for(
        spec, make_occurrences, make_learner, "Asia/Kathmandu", availability="Mon-Fri 21:00-23:30"
    )
    done = exercises(items)
    assert [(e.soft_local.weekday(), e.soft_local.time()) for e in done] == [(2, time(22))] * 6
    assert {e.soft_local.utcoffset() for e in done} == {timedelta(hours=5, minutes=45)}
    assert all(i.warnings == () for i in done)
    # The class is 22:45-00:15 for them until Berlin's change, then 21:45-23:15: inside their
    # window only from week 4 (0-based), so weeks 0-3 come as replays.
    replays = [i for i in items if i.kind == DeadlineKind.REPLAY]
    assert sorted(r.target.week for r in replays) == [0, 1, 2, 3]
    assert all(r.soft_local.time() == time(20) for r in replays)


def test_st_johns_minus_3_30_with_its_own_dst_date(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    # St John's goes from -03:30 to -02:30 on 14 March: the class moves 13:30 -> 14:30 -> 13:30.
    spec = make_spec(weeks=6)
    items = items_for(spec, make_occurrences, make_learner, "America/St_Johns")
    weekly = readings(items)[1:]
    assert [(i.soft_local.weekday(), i.soft_local.time()) for i in weekly] == [(5, time(20))] * 5
    assert (
        offsets(weekly)
        == [timedelta(hours=-3, minutes=-30)] * 2 + [timedelta(hours=-2, minutes=-30)] * 3
    )
    # Saturday 13 March 20:00 NST + 72h on the wall clock: Tuesday 16 March 20:00 NDT (71h).
    over_the_change = weekly[1]
    assert over_the_change.soft_local.date() == date(2027, 3, 13)
    assert over_the_change.hard is not None
    hard_local = over_the_change.hard.astimezone(zone("America/St_Johns"))
    assert (hard_local.date(), hard_local.time()) == (date(2027, 3, 16), time(20))
    assert over_the_change.hard - over_the_change.soft == timedelta(hours=71)


def test_kiritimati_is_a_day_ahead_of_a_honolulu_course(
    make_spec: Any, make_occurrences: Any, make_learner: Any
) -> None:
    # The course starts Monday 1 March in Honolulu (-10); in Kiritimati (+14) it is already
    # Tuesday 2 March. Classes Monday and Sunday 10:00 Honolulu are Tuesday and Monday 10:00 there.
    spec = make_spec(home_zone="Pacific/Honolulu")
    kiri = zone("Pacific/Kiritimati")
    course_start = datetime(2027, 3, 1, tzinfo=zone("Pacific/Honolulu"))
    assert course_start.astimezone(kiri).date() == date(2027, 3, 2)
    items = items_for(
        spec,
        make_occurrences,
        make_learner,
        "Pacific/Kiritimati",
        availability="daily 08:00-20:00",
        times=["Mon 10:00", "Sun 10:00"],
    )
    first = min(readings(items), key=lambda i: i.soft)
    # Released at their own midnight on 1 March (their course start); the snapped time (Sunday
    # 28 February 20:00) precedes it, the rule's own time (Monday 10:00) leaves the effort.
    assert first.release == datetime(2027, 3, 1, tzinfo=kiri)
    assert first.soft_local == datetime(2027, 3, 1, 10, tzinfo=kiri)
    assert first.warnings == ("not snapped to 20:00, to leave the effort after release",)
    # Reading for a Sunday class (Monday 10:00 for them): Saturday 20:00 on their calendar.
    sunday = [i for i in readings(items) if i.target.slot == 1]
    assert [(i.soft_local.weekday(), i.soft_local.time()) for i in sunday] == [(5, time(20))] * 4
    # The Monday class (their Tuesday) comes 24h after the Sunday one: the work opens after its
    # "24h before" point and is due 2h after release.
    monday = [i for i in readings(items) if i.target.slot == 0 and i is not first]
    assert all(i.soft - i.release == timedelta(hours=2) for i in monday)
    assert monday[0].soft_local == datetime(2027, 3, 8, 13, 30, tzinfo=kiri)
    assert all(i.warnings[0].startswith("released after the rule's deadline") for i in monday)
    # The course ends on Sunday 28 March on their calendar, but the last Sunday class is Monday
    # 29 March 10:00 for them: the follow-up's hard deadline is its soft deadline.
    last = next(e for e in exercises(items) if e.target.slot == 1 and e.target.week == 3)
    assert last.soft_local == datetime(2027, 4, 1, 20, tzinfo=kiri)
    assert last.hard == last.soft
    other = next(e for e in exercises(items) if e.target.slot == 0 and e.target.week == 3)
    assert other.hard == datetime(2027, 3, 28, 23, 59, 59, tzinfo=kiri)
