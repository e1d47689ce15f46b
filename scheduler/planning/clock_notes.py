"""Clock changes explained to one person: the meetings of a series from which its time moves on
*their* clock, from what to what, and which clocks change to make it so.

A series keeps the wall time of its anchor zone (``Europe/Berlin``). A learner elsewhere sees it
move when their UTC offset and the anchor's change on different dates, or only one of them
changes: a Tokyo learner's 20:00 class is at 19:00 from the week Europe springs forward; a New
York learner's moves twice in March (the US changes two weeks before Europe); a Berlin learner's
never moves. :func:`clock_moves` finds those moves for one learner; :mod:`scheduler.planning.dst`
counts them per region for the course runner.

Pure: the occurrences (UTC instants) and zone names are arguments; no clock, no I/O. The words
are the caller's (the learner's page and emails say them in the learner's language).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduler.timeutil import zone

__all__ = ["ClockChange", "ClockMove", "clock_moves"]

_WEEK = timedelta(days=7)
_HALF_WEEK = timedelta(days=3, hours=12)


@dataclass(frozen=True, slots=True)
class ClockChange:
    """One zone changing clocks: ``zone`` (IANA name) on ``on`` (that zone's own date)."""

    zone: str
    on: date
    yours: bool  # the learner's own zone; else the zone the series is anchored in


@dataclass(frozen=True, slots=True)
class ClockMove:
    """From ``start`` on (the first meeting at the new time; ``day`` on the learner's clock) the
    series is at ``after`` for the learner instead of ``before`` (the time of ``previous``, the
    last meeting at the old time), ``minutes`` later (negative: earlier), because ``changes``
    (the anchor zone's change first, then the learner's; one or both)."""

    previous: datetime  # aware UTC
    start: datetime  # aware UTC
    day: date
    before: time
    after: time
    minutes: int
    changes: tuple[ClockChange, ...]

    @property
    def anchor(self) -> ClockChange | None:
        """The anchor zone's change, if it is one of the reasons."""
        return next((c for c in self.changes if not c.yours), None)

    @property
    def yours(self) -> ClockChange | None:
        """The learner's own zone's change, if it is one of the reasons."""
        return next((c for c in self.changes if c.yours), None)


def clock_moves(
    starts: Sequence[datetime],
    anchor_zone: str,
    learner_zone: str,
    groups: Sequence[Hashable] | None = None,
) -> list[ClockMove]:
    """The moves of one series on one learner's clock, in time order; ``[]`` when its time
    stays put for them (always so when they live in the anchor zone).

    ``starts`` are the series' meetings (aware instants, any order). Meetings are compared with
    the previous one *of the same group* (``groups[i]`` for ``starts[i]``; default: all one
    group): a series whose odd weeks meet at another time (rotation) passes the week's parity, so
    only like meetings are compared. A move is a change of the learner's local time of week
    between two meetings across which the anchor's or the learner's UTC offset changed; a
    change with no clock change behind it (a meeting the runner moved) is not a clock move and
    is left out. Where both offsets change and cancel out (a London learner, a Berlin anchor),
    nothing moves."""
    if groups is not None and len(groups) != len(starts):
        raise ValueError("groups must name the group of each start")
    anchor_tz, learner_tz = zone(anchor_zone), zone(learner_zone)
    same_zone = anchor_tz.key == learner_tz.key
    keyed = sorted(
        (_utc(start), None if groups is None else groups[i]) for i, start in enumerate(starts)
    )
    last: dict[Hashable, datetime] = {}
    moves: list[ClockMove] = []
    for start, group in keyed:
        previous = last.get(group)
        last[group] = start
        if previous is None or same_zone:
            continue
        before = previous.astimezone(learner_tz)
        after = start.astimezone(learner_tz)
        shift = _week_shift(after.replace(tzinfo=None) - before.replace(tzinfo=None))
        if not shift:
            continue
        changes = tuple(
            ClockChange(name, _change_day(tz, previous, start), yours)
            for name, tz, yours in (
                (anchor_zone, anchor_tz, False),
                (learner_zone, learner_tz, True),
            )
            if previous.astimezone(tz).utcoffset() != start.astimezone(tz).utcoffset()
        )
        if not changes:
            continue  # moved by hand, not by a clock change
        moves.append(
            ClockMove(
                previous,
                start,
                after.date(),
                before.time(),
                after.time(),
                int(shift / timedelta(minutes=1)),
                changes,
            )
        )
    moves.sort(key=lambda m: m.start)
    return moves


def _utc(instant: datetime) -> datetime:
    if instant.utcoffset() is None:
        raise ValueError(f"clock_moves needs aware instants, got {instant!r}")
    return instant.astimezone(UTC)


def _week_shift(delta: timedelta) -> timedelta:
    """``delta`` less whole weeks, in (-3.5 days, 3.5 days]: how far the time of week moved."""
    rest = delta % _WEEK
    return rest - _WEEK if rest > _HALF_WEEK else rest


def _change_day(tz: ZoneInfo, after: datetime, until: datetime) -> date:
    """The date, on ``tz``'s own clock, of the (last) change of its UTC offset in
    ``(after, until]``, found to the minute by halving the interval."""
    low, high = after, until  # offset(low) is the old one, offset(high) the new one
    final = until.astimezone(tz).utcoffset()
    while high - low > timedelta(minutes=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).utcoffset() == final:
            high = middle
        else:
            low = middle
    return high.astimezone(tz).date()
