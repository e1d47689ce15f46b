"""When to hand reminders to the mail server: as late as possible, earliest deadline first.

Every outbox row has a ``due`` instant (when it should be handed over) and a ``not_before``
instant (the earliest moment it may be handed over; for reminders ``due - early``). Workers
send at ``rate`` messages per second, one message every ``1 / rate`` seconds.

The rule: send in due order (earliest deadline first, EDF), and start each message at its
*latest* feasible moment. Working backwards from the last row, row ``i`` must start by
``s_i = min(due_i, s_(i+1) - 1/rate)``: a lone reminder goes exactly at its due time, while
20,000 reminders due at 18:00 start ``19,999 / rate`` seconds earlier so the last is handed
over at 18:00. :func:`release_horizon` turns this into "everything due up to D must start
now". It never releases a row before its ``not_before`` by itself: a worker still only picks
rows whose ``not_before`` has passed. The rule is exact when all rows share the same
``early`` (windows in the same order as deadlines); with mixed windows a row can miss its due
although some other order would have made it, which :func:`worst_burst` detects.

:func:`worst_burst` is the demand-bound check with release times: a schedule exists iff every
interval ``[a, b]`` holds at most ``rate * (b - a) + 1`` rows whose whole window lies in it
(the ``+ 1`` is a message at the interval's very start). It is exact when all instants lie
on the ``1 / rate`` grid (e.g. whole seconds at an integer rate), and a necessary condition
otherwise. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate, repeat
from operator import sub, truediv

_TOLERANCE_S = 1e-6  # one microsecond, the resolution of datetime
_MICROSECOND = timedelta(microseconds=1)
_BLOCK = 64  # dues per block in worst_burst


def _check_rate(rate: float) -> None:
    if math.isnan(rate) or rate <= 0:
        raise ValueError(f"rate must be a positive number of messages per second, got {rate}")


def release_horizon(
    pending: Sequence[tuple[datetime, int]], now: datetime, rate: float
) -> datetime:
    """Return D >= ``now``: every notification due at or before D must be started now.

    ``pending`` holds ``(due, count)`` groups of the rows not yet handed over, sorted by due
    (overdue ones included, counts >= 1). With the latest start times ``s_i`` of the module
    docstring, D is the due of the last row with ``s_i <= now`` (within a microsecond), or
    ``now`` when there is none, or when that due has already passed (overdue rows are due
    anyway). O(number of groups): a group of ``c`` rows spans ``(c - 1) / rate`` seconds.
    ``rate == inf`` means nothing needs to go early (returns ``now``); a rate that is not
    positive raises ``ValueError``, as do a count < 1 or unsorted groups among those walked
    (from the last group back to the first one that must start).
    """
    _check_rate(rate)
    if math.isinf(rate):
        return now
    step = 1.0 / rate
    next_start = math.inf  # latest start of the first row after the current group
    later_due: datetime | None = None
    for due, count in reversed(pending):
        if count < 1:
            raise ValueError(f"group counts must be >= 1, got {count}")
        if later_due is not None and due > later_due:
            raise ValueError("pending groups must be sorted by due")
        later_due = due
        last_start = min((due - now).total_seconds(), next_start - step)
        first_start = last_start - (count - 1) * step
        if first_start <= _TOLERANCE_S:
            return max(due, now)
        next_start = first_start
    return now


@dataclass(frozen=True)
class Burst:
    """``count`` rows whose windows lie inside ``[start, end]``, to be sent at ``rate``/s."""

    start: datetime
    end: datetime
    count: int
    rate: float

    @property
    def need(self) -> float:
        """Seconds of sending the rows take: ``count / rate``."""
        return self.count / self.rate

    @property
    def room(self) -> float:
        """Seconds the interval offers: ``end - start``."""
        return (self.end - self.start).total_seconds()

    @property
    def fits(self) -> bool:
        """Whether the rows can all go inside the interval (one message sits at its start)."""
        return self.count <= self.rate * self.room + 1 + 1e-9


def _tightness(count: int, room_us: int) -> float:
    """(count - 1) / room in rows per microsecond; no room is infinitely tight for 2+ rows."""
    if room_us > 0:
        return (count - 1) / room_us
    return math.inf if count > 1 else 0.0


def worst_burst(rows: Sequence[tuple[datetime, datetime, int]], rate: float) -> Burst | None:
    """Return the tightest interval for ``(not_before, due, count)`` groups, or None if empty.

    Candidates are ``[a, b]`` with ``a`` some not_before, ``b`` some due and ``a <= b``,
    holding the rows with ``a <= not_before`` and ``due <= b``. Tightness is
    ``(count - 1) / (rate * room)``: the need beyond the message at the interval's start
    over the room, so the result ``fits`` exactly when every interval does (a plain
    ``need / room`` can rank a feasible 3-in-2 window above an infeasible 100-in-98 one).
    An interval with no room and more than one row is infinitely tight (ties: more rows).
    O(A * B) at worst for A distinct not_before and B distinct due values, in C-level loops
    that skip blocks of dues which cannot beat the tightest interval found so far.
    Raises ``ValueError`` for a rate that is not positive, a count < 1 or not_before > due.
    """
    _check_rate(rate)
    if not rows:
        return None
    origin = min(row[0] for row in rows)
    dues = sorted({due for _, due, _ in rows})
    due_us = [(due - origin) // _MICROSECOND for due in dues]
    by_start: dict[datetime, list[tuple[int, int]]] = {}
    for not_before, due, count in rows:
        if count < 1 or not_before > due:
            raise ValueError(f"bad row: not_before={not_before}, due={due}, count={count}")
        by_start.setdefault(not_before, []).append((bisect_left(dues, due), count))

    # Keys are (count - 1) / room in rows per microsecond. Dues are cut into blocks; a block
    # is scanned only if its best case (all rows up to its end, room up to its first due) can
    # still beat both the tightest interval found so far and every group's own window.
    seed = max(_tightness(c, (d - nb) // _MICROSECOND) for nb, d, c in rows)
    per_due = [0] * len(dues)  # rows with not_before >= a, by due (all have due >= a)
    per_block = [0] * -(-len(dues) // _BLOCK)
    block_first = due_us[::_BLOCK]
    best_key, best_count, best = -1.0, 0, (origin, origin)
    for start in sorted(by_start, reverse=True):
        for index, count in by_start[start]:
            per_due[index] += count
            per_block[index // _BLOCK] += count
        a = (start - origin) // _MICROSECOND
        lower = bisect_left(due_us, a)
        if due_us[lower] == a:  # no room: fine for one row, impossible for more
            here = per_due[lower]
            key = math.inf if here > 1 else 0.0
            if key > best_key or (key == best_key and here > best_count):
                best_key, best_count, best = key, here, (start, dues[lower])
            lower += 1
        if lower == len(dues):
            continue
        first_block = lower // _BLOCK
        ends = list(accumulate(per_block))
        rooms = [due_us[lower] - a, *map(sub, block_first[first_block + 1 :], repeat(a))]
        bounds = list(map(truediv, map(sub, ends[first_block:], repeat(1)), rooms))
        for offset in sorted(range(len(bounds)), key=bounds.__getitem__, reverse=True):
            if bounds[offset] < max(seed, best_key) * (1 - 1e-9):
                break
            block = first_block + offset
            lo, hi = max(lower, block * _BLOCK), min(len(dues), (block + 1) * _BLOCK)
            totals = accumulate(
                per_due[block * _BLOCK : hi], initial=ends[block - 1] if block else 0
            )
            counts = list(totals)[lo - block * _BLOCK + 1 :]
            keys = list(
                map(truediv, map(sub, counts, repeat(1)), map(sub, due_us[lo:hi], repeat(a)))
            )
            top = max(keys)
            if top > best_key:
                pick = keys.index(top)
                best_key, best_count, best = top, counts[pick], (start, dues[lo + pick])
    return Burst(start=best[0], end=best[1], count=best_count, rate=rate)


def suggest_early(burst: Burst) -> timedelta:
    """Smallest whole-minute ``early`` that fits the burst: need + 10 % + 1 s, rounded up."""
    seconds = burst.need * 1.1 + 1
    return timedelta(minutes=math.ceil(seconds / 60))


def suggest_rate(burst: Burst) -> int:
    """Messages per second that fit the burst in its room: ``count / room`` + 10 %, rounded up.

    Raises ``ValueError`` when the burst has no room: no rate sends two rows at one instant,
    only a larger ``early`` (:func:`suggest_early`) helps.
    """
    if burst.room <= 0:
        raise ValueError("a burst without room cannot be fixed by a higher rate")
    return math.ceil(burst.count / burst.room * 1.1)
