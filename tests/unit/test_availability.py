from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.domain.availability import Availability, AvailabilityError, parse_availability
from scheduler.timeutil import MINUTES_PER_DAY, MINUTES_PER_WEEK

MON, FRI, SAT, SUN = 0, 4 * MINUTES_PER_DAY, 5 * MINUTES_PER_DAY, 6 * MINUTES_PER_DAY


def hm(h: int, m: int = 0) -> int:
    return h * 60 + m


@pytest.mark.parametrize(
    ("text", "windows"),
    [
        pytest.param("Mon 18:00-22:00", [(hm(18), hm(22))], id="one_window"),
        pytest.param(
            "Mon-Fri 18:00-22:00; Sat 09:00-12:00",
            [(d * MINUTES_PER_DAY + hm(18), d * MINUTES_PER_DAY + hm(22)) for d in range(5)]
            + [(SAT + hm(9), SAT + hm(12))],
            id="weekday_range_and_saturday",
        ),
        pytest.param("Fri 22:00-02:00", [(FRI + hm(22), SAT + hm(2))], id="crosses_midnight"),
        pytest.param(
            "Sun 22:00-02:00", [(0, hm(2)), (SUN + hm(22), MINUTES_PER_WEEK)], id="wraps_the_week"
        ),
        pytest.param("Mon 09:00-12:00, 11:00-14:00", [(hm(9), hm(14))], id="overlap_merged"),
        pytest.param("Mon 09:00-12:00; mon 12:00-13:00", [(hm(9), hm(13))], id="touching_merged"),
        pytest.param(
            "mon , wed 07:00 - 08:00",
            [(hm(7), hm(8)), (2 * MINUTES_PER_DAY + hm(7), 2 * MINUTES_PER_DAY + hm(8))],
            id="spaces_and_case",
        ),
        pytest.param(
            "weekends 10:00-11:00",
            [(SAT + hm(10), SAT + hm(11)), (SUN + hm(10), SUN + hm(11))],
            id="weekends",
        ),
        pytest.param("Mon 20:00-24:00", [(hm(20), hm(24))], id="until_midnight"),
    ],
)
def test_parse(text: str, windows: list[tuple[int, int]]) -> None:
    assert parse_availability(text).windows == tuple(windows)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "no windows", id="empty"),
        pytest.param("Mon 18:00-09:00", "ends before it starts", id="ends_before_start"),
        pytest.param("Mon 10:00-10:00", "is empty", id="zero_length"),
        pytest.param("Funday 10:00-11:00", "unknown weekday", id="bad_day"),
        pytest.param("Mon 25:00-26:00", "between 00:00 and 24:00", id="bad_hour"),
        pytest.param("Mon 10:00", "not a time range", id="no_end"),
        pytest.param("Mon", "no time range", id="no_range"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(AvailabilityError, match=message):
        parse_availability(text)


def test_all_errors_in_one_message() -> None:
    with pytest.raises(AvailabilityError) as info:
        parse_availability("Mon 18:00-09:00; Xyz 10:00-11:00")
    assert "ends before it starts" in str(info.value)
    assert "unknown weekday" in str(info.value)


def test_covers_across_week_wrap() -> None:
    sunday_night = parse_availability("Sun 22:00-02:00")
    assert sunday_night.covers(SUN + hm(23), 120)  # Sun 23:00 to Mon 01:00
    assert sunday_night.covers(0, 100)  # Mon 00:00-01:40
    assert not sunday_night.covers(SUN + hm(23), 240)  # until 03:00: too long
    assert not sunday_night.covers(hm(1), 120)


def test_always_available_covers_sessions_across_sunday_midnight() -> None:
    always = parse_availability("daily 00:00-24:00")
    assert always.covers(SUN + hm(23, 45), 60)
    assert always.covers(0, 24 * 60)
    assert always.to_text() == "Mon-Sun 00:00-24:00"


def test_covers_needs_the_whole_session() -> None:
    evenings = parse_availability("Mon 18:00-22:00")
    assert evenings.covers(hm(18), 240)
    assert not evenings.covers(hm(18), 241)
    assert not evenings.covers(hm(17, 45), 30)


def test_rejects_unsorted_windows() -> None:
    with pytest.raises(ValueError, match="sorted"):
        Availability(((100, 200), (50, 60)))


windows = st.lists(
    st.tuples(st.integers(0, MINUTES_PER_WEEK // 15 - 1), st.integers(1, 12 * 4)).map(
        lambda t: (t[0] * 15, t[0] * 15 + t[1] * 15)
    ),
    min_size=1,
    max_size=6,
)


@given(windows)
def test_text_round_trip(raw: list[tuple[int, int]]) -> None:
    value = Availability.from_windows(raw)
    assert parse_availability(value.to_text()) == value


@given(windows, st.integers(0, MINUTES_PER_WEEK - 1), st.integers(1, 300))
def test_covers_matches_minute_by_minute_check(
    raw: list[tuple[int, int]], start: int, duration: int
) -> None:
    value = Availability.from_windows(raw)
    free = set()
    for s, e in raw:
        free.update(m % MINUTES_PER_WEEK for m in range(s, e))
    expected = all((start + i) % MINUTES_PER_WEEK in free for i in range(duration))
    assert value.covers(start, duration) == expected
