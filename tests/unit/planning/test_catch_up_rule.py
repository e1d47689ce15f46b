"""Catching up, the pure rule: who may shift, and where the remaining soft deadlines move."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import CatchUpOptions, CohortSpec, PlanningOptions
from scheduler.planning.catch_up import (
    Refusal,
    Shift,
    apply_shifts,
    missed,
    refusal,
    remaining,
    shift_items,
)
from scheduler.planning.deadlines import DeadlineItem, DeadlineKind, OccurrenceRef
from scheduler.timeutil import wall_to_utc

ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Sydney",
    "America/Bogota",
]
START = date(2027, 3, 1)  # a Monday; Europe changes clocks on 28 March, the US on 14 March


def make_spec(
    weeks: int = 4,
    quiet: tuple[int, int] = (22 * 60, 7 * 60),
    catch_up: CatchUpOptions | None = None,
) -> CohortSpec:
    return CohortSpec(
        slug="test",
        title="Test",
        start_date=START,
        weeks=weeks,
        home_zone="Europe/Berlin",
        locale="en_GB",
        default_availability=parse_availability("Mon-Fri 18:00-22:00"),
        planning=PlanningOptions(quiet_start=quiet[0], quiet_end=quiet[1]),
        catch_up=CatchUpOptions(enabled=True) if catch_up is None else catch_up,
    )


def local(zone_name: str, day: date, hh: int, mm: int = 0) -> datetime:
    return wall_to_utc(day, time(hh, mm), ZoneInfo(zone_name))


def item(
    key: str,
    soft: datetime,
    hard: datetime | None,
    zone_name: str = "Europe/Berlin",
    release: datetime | None = None,
) -> DeadlineItem:
    return DeadlineItem(
        key=key,
        kind=DeadlineKind.ASSIGNMENT,
        title=key,
        assignment="reading",
        target=OccurrenceRef("class", 0, 0, 0),
        release=release or datetime(2027, 2, 20, tzinfo=UTC),
        soft=soft,
        soft_local=soft.astimezone(ZoneInfo(zone_name)),
        hard=hard,
        effort=timedelta(hours=2),
    )


def course_end(spec: CohortSpec, zone_name: str) -> datetime:
    return wall_to_utc(spec.end_date, time(23, 59, 59), ZoneInfo(zone_name))


BERLIN = "Europe/Berlin"


# --- examples ------------------------------------------------------------------------------------


def test_remaining_deadlines_move_the_days_asked_on_the_wall_clock_across_a_clock_change() -> None:
    spec = make_spec()
    items = [
        item("a", local(BERLIN, date(2027, 3, 8), 20), None),  # passed
        item("b", local(BERLIN, date(2027, 3, 24), 20), None),  # before the change on 28 March
        item("c", local(BERLIN, date(2027, 3, 25), 20), None),
    ]
    now = local(BERLIN, date(2027, 3, 10), 9)
    out = shift_items(spec, BERLIN, items, now, 3)
    assert out[0] == items[0]
    assert [x.soft for x in out[1:]] == [
        local(BERLIN, date(2027, 3, 27), 20),
        local(BERLIN, date(2027, 3, 28), 20),  # 20:00 CEST: 71 elapsed hours later, not 72
    ]
    assert out[2].soft - items[2].soft == timedelta(hours=71)
    assert [x.soft_local.hour for x in out] == [20, 20, 20]
    assert [x.hard for x in out] == [x.hard for x in items]


def test_a_deadline_never_passes_its_hard_deadline() -> None:
    spec = make_spec()
    soft = local(BERLIN, date(2027, 3, 10), 20)
    hard = soft + timedelta(hours=72)
    items = [item("a", local(BERLIN, date(2027, 3, 3), 20), None), item("b", soft, hard)]
    out = shift_items(spec, BERLIN, items, local(BERLIN, date(2027, 3, 5), 9), 7)
    assert out[1].soft == hard


def test_the_course_end_caps_it_then_quiet_hours_move_it_to_the_evening() -> None:
    spec = make_spec()
    items = [
        item("a", local(BERLIN, date(2027, 3, 3), 20), None),
        item("b", local(BERLIN, date(2027, 3, 26), 20), None),
    ]
    out = shift_items(spec, BERLIN, items, local(BERLIN, date(2027, 3, 5), 9), 7)
    # 23:59:59 on the last day (Sunday 28 March) is inside quiet hours: 22:00 that evening
    assert out[1].soft == local(BERLIN, date(2027, 3, 28), 22)


def test_a_near_cut_off_of_a_later_item_holds_earlier_ones_back() -> None:
    spec = make_spec()
    first = local(BERLIN, date(2027, 3, 10), 20)
    second = local(BERLIN, date(2027, 3, 11), 20)
    items = [
        item("past", local(BERLIN, date(2027, 3, 3), 20), None),
        item("a", first, None),  # would move to 17 March
        item("b", second, second + timedelta(hours=24)),  # capped at 12 March 20:00
    ]
    out = shift_items(spec, BERLIN, items, local(BERLIN, date(2027, 3, 5), 9), 6)
    assert out[2].soft == second + timedelta(hours=24)
    assert out[1].soft == out[2].soft  # not past it: the list keeps its order
    assert out[1].soft > first


def test_nothing_moves_when_everything_is_at_its_cap() -> None:
    spec = make_spec()
    soft = local(BERLIN, date(2027, 3, 10), 20)
    items = [item("past", local(BERLIN, date(2027, 3, 3), 20), None), item("a", soft, soft)]
    now = local(BERLIN, date(2027, 3, 5), 9)
    assert shift_items(spec, BERLIN, items, now, 3) == tuple(items)
    assert refusal(spec, BERLIN, items, now, 3, used=0) is Refusal.NOTHING_LEFT


@pytest.mark.parametrize(
    ("options", "days", "used", "now_day", "expected"),
    [
        (CatchUpOptions(), 3, 0, 5, Refusal.NOT_ENABLED),
        (CatchUpOptions(enabled=True, max_shifts=2), 3, 2, 5, Refusal.NO_SHIFTS_LEFT),
        (CatchUpOptions(enabled=True), 8, 0, 5, Refusal.TOO_MANY_DAYS),
        (CatchUpOptions(enabled=True), 0, 0, 5, Refusal.TOO_MANY_DAYS),
        (CatchUpOptions(enabled=True), 3, 0, 2, Refusal.NOTHING_MISSED),
        (CatchUpOptions(enabled=True), 3, 0, 27, Refusal.NOTHING_LEFT),
        (CatchUpOptions(enabled=True), 7, 1, 5, None),
        (CatchUpOptions(enabled=True, max_shift=timedelta(days=14)), 14, 0, 5, None),
    ],
    ids=[
        "not_enabled",
        "no_shifts_left",
        "too_many_days",
        "zero_days",
        "nothing_missed_yet",
        "nothing_left_ahead",
        "allowed",
        "allowed_up_to_the_limit",
    ],
)
def test_refusals(
    options: CatchUpOptions, days: int, used: int, now_day: int, expected: Refusal | None
) -> None:
    spec = make_spec(catch_up=options)
    items = [
        item("a", local(BERLIN, date(2027, 3, 3), 20), None),
        item("b", local(BERLIN, date(2027, 3, 10), 20), None),
    ]
    now = local(BERLIN, date(2027, 3, now_day), 9)
    assert refusal(spec, BERLIN, items, now, days, used) is expected


def test_missed_and_remaining_count_around_now() -> None:
    items = [
        item("a", local(BERLIN, date(2027, 3, 3), 20), None),
        item("b", local(BERLIN, date(2027, 3, 10), 20), None),
    ]
    assert missed(items, local(BERLIN, date(2027, 3, 3), 20)) == 1  # due now counts as passed
    assert remaining(items, local(BERLIN, date(2027, 3, 3), 20)) == 1


def test_stored_shifts_apply_in_the_order_they_were_made() -> None:
    spec = make_spec()
    items = [
        item("a", local(BERLIN, date(2027, 3, 3), 20), None),
        item("b", local(BERLIN, date(2027, 3, 9), 20), None),
        item("c", local(BERLIN, date(2027, 3, 16), 20), None),
    ]
    first = Shift(local(BERLIN, date(2027, 3, 5), 9), 3)  # b -> 12th, c -> 19th
    second = Shift(local(BERLIN, date(2027, 3, 13), 9), 2)  # b passed; c -> 21st
    expected = shift_items(
        spec, BERLIN, shift_items(spec, BERLIN, items, first.at, 3), second.at, 2
    )
    assert apply_shifts(spec, BERLIN, items, [second, first]) == expected
    assert [x.soft for x in expected] == [
        items[0].soft,
        local(BERLIN, date(2027, 3, 12), 20),
        local(BERLIN, date(2027, 3, 21), 20),
    ]


def test_a_shift_needs_a_day_and_an_aware_time() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        Shift(datetime(2027, 3, 1, tzinfo=UTC), 0)
    with pytest.raises(ValueError, match="aware"):
        Shift(datetime(2027, 3, 1), 1)  # noqa: DTZ001 - the point of the test


# --- properties --------------------------------------------------------------------------------

QUIET = st.one_of(
    st.just((22 * 60, 7 * 60)),
    st.tuples(st.integers(38, 47).map(lambda h: h * 30), st.integers(10, 18).map(lambda h: h * 30)),
    st.just((0, 0)),  # no quiet hours
)


@st.composite
def cases(draw: st.DrawFn) -> tuple[CohortSpec, str, list[DeadlineItem], datetime, int]:
    weeks = draw(st.integers(1, 8))
    spec = make_spec(weeks=weeks, quiet=draw(QUIET))
    zone_name = draw(st.sampled_from(ZONES))
    span = weeks * 7 * 24 * 60
    start = wall_to_utc(START, time(0), ZoneInfo(zone_name))
    end = course_end(spec, zone_name)
    offsets = sorted(draw(st.lists(st.integers(0, span + 3 * 24 * 60), min_size=1, max_size=8)))
    items = []
    for index, minutes in enumerate(offsets):
        soft = start + timedelta(minutes=minutes)
        hard = draw(
            st.one_of(
                st.none(),
                st.just(max(end, soft)),
                st.integers(0, 10 * 24).map(lambda h, s=soft: s + timedelta(hours=h)),
            )
        )
        items.append(item(f"item-{index:02d}", soft, hard, zone_name, release=start))
    now = start + timedelta(minutes=draw(st.integers(0, span)))
    days = draw(st.integers(1, 28))
    return spec, zone_name, items, now, days


def _in_quiet(spec: CohortSpec, zone_name: str, instant: datetime) -> bool:
    """Strictly inside quiet hours on the learner's clock (both ends allowed), seconds counted."""
    qs, qe = spec.planning.quiet_start * 60, spec.planning.quiet_end * 60
    wall = instant.astimezone(ZoneInfo(zone_name))
    second = wall.hour * 3600 + wall.minute * 60 + wall.second + (wall.microsecond > 0) * 0.5
    if qs > qe:
        return second > qs or second < qe
    return qs < second < qe


def _night_began(spec: CohortSpec, zone_name: str, instant: datetime) -> datetime:
    """quiet_start of the evening the quiet night around ``instant`` began."""
    wall = instant.astimezone(ZoneInfo(zone_name))
    day = wall.date()
    qs, qe = spec.planning.quiet_start, spec.planning.quiet_end
    if qs > qe and wall.hour * 60 + wall.minute < qe:
        day -= timedelta(days=1)
    return wall_to_utc(day, time(qs // 60, qs % 60), ZoneInfo(zone_name))


@given(cases())
def test_properties_of_a_shift(
    case: tuple[CohortSpec, str, list[DeadlineItem], datetime, int],
) -> None:
    spec, zone_name, items, now, days = case
    out = shift_items(spec, zone_name, items, now, days)
    end = course_end(spec, zone_name)
    assert [x.key for x in out] == [x.key for x in items]
    for old, new in zip(items, out, strict=True):
        assert (new.hard, new.release, new.effort, new.title) == (
            old.hard,
            old.release,
            old.effort,
            old.title,
        )
        assert new.soft_local == new.soft.astimezone(ZoneInfo(zone_name))
        if old.soft <= now:
            assert new == old  # passed deadlines stay
            continue
        assert new.soft >= old.soft  # never earlier than before
        cap = end if old.hard is None else min(old.hard, end)
        assert new.soft <= max(old.soft, cap)  # never past the hard deadline or the course end
        assert new.soft <= old.soft + timedelta(days=days, hours=1)  # at most the days asked
        if new.soft != old.soft and _in_quiet(spec, zone_name, new.soft):
            # only where the cap (or the order) left no time outside quiet hours since before
            assert _night_began(spec, zone_name, new.soft) < old.soft
    softs = [x.soft for x in out]
    assert softs == sorted(softs)  # the order is kept


@given(cases())
def test_a_shift_moves_everything_ahead_by_the_days_asked_when_nothing_is_in_the_way(
    case: tuple[CohortSpec, str, list[DeadlineItem], datetime, int],
) -> None:
    spec, zone_name, items, now, days = case
    loose = [
        item(x.key, x.soft, None, zone_name, release=x.release)
        for x in items
        if x.soft + timedelta(days=days + 1) < course_end(spec, zone_name)
    ]
    out = shift_items(spec, zone_name, loose, now, days)
    for old, new in zip(loose, out, strict=True):
        if old.soft <= now or _in_quiet(spec, zone_name, old.soft):
            continue
        wall = old.soft.astimezone(ZoneInfo(zone_name))
        later = wall.replace(tzinfo=None) + timedelta(days=days)
        expected = wall_to_utc(later.date(), later.time(), ZoneInfo(zone_name))
        if _in_quiet(spec, zone_name, expected):  # a wall time in a clock-change gap
            expected = _night_began(spec, zone_name, expected)
        assert new.soft == expected


@given(cases())
def test_refusal_and_shift_agree(
    case: tuple[CohortSpec, str, list[DeadlineItem], datetime, int],
) -> None:
    spec, zone_name, items, now, days = case
    days = min(days, spec.catch_up.max_days)
    reason = refusal(spec, zone_name, items, now, days, used=0)
    changed = shift_items(spec, zone_name, items, now, days) != tuple(items)
    if reason is None:
        assert changed and missed(items, now)
    else:
        assert reason in (Refusal.NOTHING_MISSED, Refusal.NOTHING_LEFT)
        assert reason is Refusal.NOTHING_MISSED or not changed
