"""Clock moves on one learner's clock, with real tz data: the weeks a series' time moves for
them, from what to what, and which clocks change (the anchor's, theirs, or both)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from scheduler.planning.clock_notes import ClockChange, ClockMove, clock_moves
from scheduler.timeutil import wall_to_utc, zone

BERLIN = "Europe/Berlin"


def weekly(first: date, wall: time, anchor: str, weeks: int) -> list[datetime]:
    """A series at ``wall`` in ``anchor`` every week from ``first`` (the product's DST policy)."""
    tz = zone(anchor)
    return [wall_to_utc(first + timedelta(weeks=w), wall, tz) for w in range(weeks)]


# Mondays 1 Mar - 19 Apr 2027: Europe springs forward on Sun 28 Mar, the US on Sun 14 Mar,
# Sydney falls back on Sun 4 Apr.
SPRING = weekly(date(2027, 3, 1), time(12, 0), BERLIN, 8)


def test_tokyo_learner_sees_the_class_an_hour_earlier_from_the_week_europe_changes() -> None:
    (move,) = clock_moves(SPRING, BERLIN, "Asia/Tokyo")
    assert move == ClockMove(
        previous=datetime(2027, 3, 22, 11, 0, tzinfo=UTC),
        start=datetime(2027, 3, 29, 10, 0, tzinfo=UTC),
        day=date(2027, 3, 29),
        before=time(20, 0),
        after=time(19, 0),
        minutes=-60,
        changes=(ClockChange(BERLIN, date(2027, 3, 28), yours=False),),
    )
    assert move.anchor == ClockChange(BERLIN, date(2027, 3, 28), yours=False)
    assert move.yours is None


def test_new_york_learner_sees_two_moves_two_weeks_apart() -> None:
    first, second = clock_moves(SPRING, BERLIN, "America/New_York")
    # Their own clocks change first: 06:00 becomes 07:00 ...
    assert (first.day, first.before, first.after, first.minutes) == (
        date(2027, 3, 15),
        time(6, 0),
        time(7, 0),
        60,
    )
    assert first.changes == (ClockChange("America/New_York", date(2027, 3, 14), yours=True),)
    assert first.anchor is None and first.yours is not None
    # ... and Europe's change two weeks later takes it back to 06:00.
    assert (second.day, second.before, second.after, second.minutes) == (
        date(2027, 3, 29),
        time(7, 0),
        time(6, 0),
        -60,
    )
    assert second.changes == (ClockChange(BERLIN, date(2027, 3, 28), yours=False),)


@pytest.mark.parametrize(
    "learner_zone",
    [BERLIN, "Europe/Paris", "Europe/London"],
    ids=["same_zone_berlin", "same_rules_paris", "same_day_london"],
)
def test_nothing_moves_when_the_clocks_change_together(learner_zone: str) -> None:
    assert clock_moves(SPRING, BERLIN, learner_zone) == []


def test_no_dst_anchor_and_no_dst_learner_never_move() -> None:
    assert clock_moves(weekly(date(2027, 3, 1), time(9, 0), "America/Bogota", 8),
                       "America/Bogota", "Asia/Kolkata") == []  # fmt: skip


def test_sydney_learner_sees_europe_spring_forward_then_sydney_fall_back() -> None:
    first, second = clock_moves(SPRING, BERLIN, "Australia/Sydney")
    assert (first.day, first.before, first.after) == (date(2027, 3, 29), time(22), time(21))
    assert first.changes == (ClockChange(BERLIN, date(2027, 3, 28), yours=False),)
    assert (second.day, second.before, second.after) == (date(2027, 4, 5), time(21), time(20))
    assert second.changes == (ClockChange("Australia/Sydney", date(2027, 4, 4), yours=True),)


def test_both_clocks_change_between_two_meetings() -> None:
    """With the weeks around both changes cancelled, one move has both reasons."""
    starts = [s for s in SPRING if s.date() not in (date(2027, 3, 29), date(2027, 4, 5))]
    moves = clock_moves(starts, BERLIN, "Australia/Sydney")
    (both,) = [m for m in moves if len(m.changes) == 2]
    assert (both.day, both.before, both.after, both.minutes) == (
        date(2027, 4, 12),
        time(22),
        time(20),
        -120,
    )
    assert both.anchor == ClockChange(BERLIN, date(2027, 3, 28), yours=False)
    assert both.yours == ClockChange("Australia/Sydney", date(2027, 4, 4), yours=True)


def test_autumn_moves_back_for_a_tokyo_learner() -> None:
    """Europe falls back on Sun 31 Oct 2027: 19:00 in Tokyo becomes 20:00 again."""
    autumn = weekly(date(2027, 10, 18), time(12, 0), BERLIN, 4)
    (move,) = clock_moves(autumn, BERLIN, "Asia/Tokyo")
    assert (move.day, move.before, move.after, move.minutes) == (
        date(2027, 11, 1),
        time(19),
        time(20),
        60,
    )
    assert move.changes == (ClockChange(BERLIN, date(2027, 10, 31), yours=False),)


def test_a_whole_course_across_spring_and_autumn_moves_twice() -> None:
    year = weekly(date(2027, 3, 1), time(12, 0), BERLIN, 40)
    moves = clock_moves(year, BERLIN, "Asia/Kolkata")  # a half-hour zone with no DST
    assert [(m.day, m.before, m.after) for m in moves] == [
        (date(2027, 3, 29), time(16, 30), time(15, 30)),
        (date(2027, 11, 1), time(15, 30), time(16, 30)),
    ]


def test_a_move_can_change_the_learners_day() -> None:
    """A 16:30 Berlin class is 00:30 Tuesday in Tokyo, then 23:30 Monday."""
    late = weekly(date(2027, 3, 15), time(16, 30), BERLIN, 4)
    (move,) = clock_moves(late, BERLIN, "Asia/Tokyo")
    assert (move.day, move.before, move.after, move.minutes) == (
        date(2027, 3, 29),
        time(0, 30),
        time(23, 30),
        -60,
    )


def test_a_meeting_moved_by_hand_is_not_a_clock_move() -> None:
    starts = list(SPRING[:3])
    starts[1] += timedelta(hours=2)  # the runner moved week 2, no clock changed around it
    assert clock_moves(starts, BERLIN, "Asia/Tokyo") == []


def test_rotating_series_compare_like_weeks_only() -> None:
    """Odd weeks at another time (rotation): only odd weeks are compared with odd weeks."""
    even = weekly(date(2027, 3, 1), time(12, 0), BERLIN, 8)[::2]
    odd = weekly(date(2027, 3, 8), time(18, 0), BERLIN, 8)[::2][:4]
    starts = sorted(even + odd)
    groups = [0 if s in even else 1 for s in starts]
    moves = clock_moves(starts, BERLIN, "Asia/Tokyo", groups)
    assert [(m.day, m.before, m.after) for m in moves] == [
        (date(2027, 3, 29), time(20), time(19)),  # the even weeks' 20:00 ...
        (date(2027, 4, 6), time(2), time(1)),  # ... and the odd weeks' 02:00 (Tuesday)
    ]
    assert clock_moves(starts, BERLIN, BERLIN, groups) == []
    with pytest.raises(ValueError, match="groups"):
        clock_moves(starts, BERLIN, "Asia/Tokyo", groups[:-1])


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        clock_moves([datetime(2027, 3, 1, 12, 0)], BERLIN, "Asia/Tokyo")  # noqa: DTZ001


ZONES = [
    BERLIN,
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Sydney",
    "America/Bogota",
    "Asia/Tokyo",
    "Europe/London",
    "America/Santiago",
    "Australia/Lord_Howe",  # a half-hour DST shift
    "Pacific/Chatham",
]


@given(
    anchor=st.sampled_from(ZONES),
    learner=st.sampled_from(ZONES),
    first=st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)),
    minute=st.integers(min_value=0, max_value=24 * 60 - 1),
    weeks=st.integers(min_value=1, max_value=30),
)
def test_a_note_exactly_when_the_learners_wall_time_moves(
    anchor: str, learner: str, first: date, minute: int, weeks: int
) -> None:
    wall = time(minute // 60, minute % 60)
    starts = weekly(first, wall, anchor, weeks)
    anchor_tz, learner_tz = zone(anchor), zone(learner)
    # Only series whose every meeting exists at its wall time (none pushed out of a gap).
    assume(all(s.astimezone(anchor_tz).time() == wall for s in starts))
    local = [s.astimezone(learner_tz) for s in starts]
    moves = clock_moves(starts, anchor, learner)
    assert (moves == []) == (len({(t.weekday(), t.time()) for t in local}) == 1)
    if anchor == learner:
        assert moves == []
    for move in moves:  # each move is between two neighbouring meetings, as the learner sees them
        i = starts.index(move.start)
        assert move.previous == starts[i - 1]
        assert (move.before, move.after, move.day) == (
            local[i - 1].time(),
            local[i].time(),
            local[i].date(),
        )
        assert move.changes and all(c.on <= move.day + timedelta(days=1) for c in move.changes)
    # Between the moves the learner's wall time stays put.
    moved_at = {m.start for m in moves}
    for i in range(1, weeks):
        if starts[i] not in moved_at:
            assert (local[i].weekday(), local[i].time()) == (
                local[i - 1].weekday(),
                local[i - 1].time(),
            )
