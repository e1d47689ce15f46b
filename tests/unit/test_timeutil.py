from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.timeutil import (
    Weekday,
    canonical_zone,
    format_duration,
    parse_clock,
    parse_duration,
    wall_to_utc,
    zone,
)


@pytest.mark.parametrize(
    ("given_name", "canonical"),
    [
        pytest.param("US/Eastern", "America/New_York", id="us_eastern_alias"),
        pytest.param("Asia/Calcutta", "Asia/Kolkata", id="calcutta_alias"),
        pytest.param("europe/berlin", "Europe/Berlin", id="lowercase"),
        pytest.param("Europe/Amsterdam", "Europe/Amsterdam", id="zone_tab_name_kept"),
        pytest.param("Etc/UTC", "UTC", id="etc_utc"),
        pytest.param("UTC", "UTC", id="utc"),
        pytest.param("Mars/Olympus", None, id="unknown"),
    ],
)
def test_canonical_zone(given_name: str, canonical: str | None) -> None:
    assert canonical_zone(given_name) == canonical


def test_zone_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        zone("Nowhere/Land")


@pytest.mark.parametrize(
    ("zone_name", "day", "wall", "expected_utc"),
    [
        # Berlin springs forward 2027-03-28 02:00 -> 03:00: 02:30 does not exist, moves to 03:30 CEST.
        pytest.param(
            "Europe/Berlin",
            date(2027, 3, 28),
            time(2, 30),
            datetime(2027, 3, 28, 1, 30, tzinfo=UTC),
            id="spring_forward_gap",
        ),
        # Berlin falls back 2027-10-31 03:00 -> 02:00: 02:30 happens twice, the first (CEST) wins.
        pytest.param(
            "Europe/Berlin",
            date(2027, 10, 31),
            time(2, 30),
            datetime(2027, 10, 31, 0, 30, tzinfo=UTC),
            id="fall_back_fold",
        ),
        pytest.param(
            "America/New_York",
            date(2027, 3, 14),
            time(2, 15),
            datetime(2027, 3, 14, 7, 15, tzinfo=UTC),
            id="new_york_gap",
        ),
        pytest.param(
            "America/New_York",
            date(2027, 11, 7),
            time(1, 30),
            datetime(2027, 11, 7, 5, 30, tzinfo=UTC),
            id="new_york_fold",
        ),
        pytest.param(
            "Asia/Kolkata",
            date(2027, 3, 28),
            time(18, 0),
            datetime(2027, 3, 28, 12, 30, tzinfo=UTC),
            id="half_hour_kolkata",
        ),
        pytest.param(
            "Australia/Sydney",
            date(2027, 4, 4),
            time(2, 30),
            datetime(2027, 4, 3, 15, 30, tzinfo=UTC),
            id="southern_fall_back_fold",
        ),
        pytest.param(
            "America/Bogota",
            date(2027, 3, 14),
            time(2, 30),
            datetime(2027, 3, 14, 7, 30, tzinfo=UTC),
            id="no_dst_bogota",
        ),
    ],
)
def test_wall_to_utc_policy(zone_name: str, day: date, wall: time, expected_utc: datetime) -> None:
    assert wall_to_utc(day, wall, ZoneInfo(zone_name)) == expected_utc


def test_gap_time_moves_forward_by_gap_length() -> None:
    instant = wall_to_utc(date(2027, 3, 28), time(2, 30), ZoneInfo("Europe/Berlin"))
    assert instant.astimezone(ZoneInfo("Europe/Berlin")).time() == time(3, 30)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(2040, 1, 1),  # noqa: DTZ001
        timezones=st.timezones(),
        allow_imaginary=False,
    )
)
def test_existing_wall_times_round_trip(moment: datetime) -> None:
    tz = moment.tzinfo
    assert isinstance(tz, ZoneInfo)
    if moment.fold == 1:  # the policy picks the first of two; only unambiguous times round-trip
        return
    back = wall_to_utc(moment.date(), moment.time(), tz)
    # Compare in UTC: Python's inter-zone == is always False for a time inside a fold (PEP 495).
    assert back == moment.astimezone(UTC)
    assert back.tzinfo is UTC


def test_fold_time_takes_the_first_occurrence() -> None:
    moment = datetime(2016, 11, 6, 1, 0, tzinfo=ZoneInfo("America/Dawson"))  # found by hypothesis
    assert wall_to_utc(moment.date(), moment.time(), ZoneInfo("America/Dawson")) == datetime(
        2016, 11, 6, 8, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("90m", 90),
        ("1h30m", 90),
        ("2h", 120),
        ("48h", 2880),
        ("3d", 4320),
        ("1w", 10080),
        ("45", 45),
        (30, 30),
    ],
)
def test_parse_duration(text: str | int, minutes: int) -> None:
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "90 minutes", "h", "0m", "-5", "1.5h", True])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - message checked elsewhere
        parse_duration(text)


@given(st.integers(min_value=1, max_value=60 * 24 * 30))
def test_format_duration_round_trips(minutes: int) -> None:
    assert parse_duration(format_duration(timedelta(minutes=minutes))) == timedelta(minutes=minutes)


def test_parse_clock() -> None:
    assert parse_clock("18:30") == 1110
    assert parse_clock("24:00", allow_24=True) == 1440
    for bad in ("24:00", "25:00", "12:60", "noon"):
        with pytest.raises(ValueError, match="time of day"):
            parse_clock(bad)


def test_weekday_parse() -> None:
    assert Weekday.parse("Mon") is Weekday.MON
    assert Weekday.parse("sunday") is Weekday.SUN
    assert Weekday.parse("TU") is Weekday.TUE
    with pytest.raises(ValueError, match="unknown weekday"):
        Weekday.parse("Funday")
