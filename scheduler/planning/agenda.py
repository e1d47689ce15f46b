"""Agenda phases: a series' agenda lines laid out on one occurrence's time span.

Pure like the rest of ``planning``: no I/O, no clock. An agenda line may start with a duration:

* ``"10m check-in: say what you will work on"`` -> one phase of 10 minutes;
* ``"1h reading"``, ``"1h30m project work"`` -> hours and minutes;
* ``"2x50m focus with 10m break"`` -> ``focus`` 50m, ``break`` 10m, ``focus`` 50m (``N`` rounds
  of the first label with the second between them); ``"3x25m sprint"`` -> three sprints.

Lines without a duration share the time the timed phases leave free, evenly in whole minutes
(earlier lines get the odd minutes); when nothing is left they are listed untimed (``start`` and
``end`` are None). Phases run back to back from the block's start in line order.

Never beyond ``end``: when the timed phases add up to more than the block, the longest phases
give up one minute at a time (all phases of the longest length in turn, earlier first) until they
fit; a discussion or check-in keeps its minutes and the focus time shrinks. A phase keeps at
least one minute; phases that still do not fit are listed untimed. When the phases add up to less
than the block, the rest of the block is left free. The shrinking is computed in one step, so a
phase of a hundred million minutes costs no more than one of ten.

The line grammar itself lives in :mod:`scheduler.domain.cohort_file`, which also rejects, when a
cohort file is checked, any line that alone takes longer than its series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from scheduler.domain.cohort_file import agenda_line_phases, parse_minutes

__all__ = ["Phase", "agenda_phases", "parse_minutes"]


@dataclass(frozen=True, slots=True)
class Phase:
    """One agenda phase; ``start`` and ``end`` are both None for a phase listed untimed."""

    label: str
    start: datetime | None
    end: datetime | None

    def __post_init__(self) -> None:
        if (self.start is None) != (self.end is None):
            raise ValueError("a phase has both a start and an end, or neither")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"phase {self.label!r} ends before it starts")


def _fit(lengths: list[int], available: int) -> list[int]:
    """Shrink the longest lengths until they sum to ``available`` or less (each keeps 1 minute).

    The result of taking one minute at a time from the longest lengths (all of the longest length
    in turn, earlier first), computed in one step: lowering every length to a cap ``c`` leaves
    ``S(c) = sum(min(length, c))``; the minute-by-minute loop stops at the cap one above the
    largest ``c`` with ``S(c) <= available``, having taken the last ``S(cap) - available``
    minutes from the earliest lengths at the cap. Sorting finds ``c``: O(n log n) in the number
    of lengths, whatever their size.
    """
    fitted = list(lengths)
    if not fitted or sum(fitted) <= available or max(fitted) <= 1:
        return fitted
    cap = 1 + _largest_cap_within(sorted(fitted), available)
    if cap <= 1:  # too many phases for one minute each: all keep one, the layout drops the rest
        return [min(length, 1) for length in fitted]
    fitted = [min(length, cap) for length in fitted]
    take = sum(fitted) - available
    for i, length in enumerate(fitted):
        if take <= 0:
            break
        if length == cap:
            fitted[i] -= 1
            take -= 1
    return fitted


def _largest_cap_within(ordered: list[int], available: int) -> int:
    """The largest ``c`` with ``sum(min(x, c) for x in ordered) <= available``.

    ``ordered`` is sorted and sums to more than ``available``. Between two neighbouring values
    the capped sum grows linearly, ``below + c * count``, so each stretch is solved by division.
    """
    below = 0
    for k, value in enumerate(ordered):
        count = len(ordered) - k
        c = (available - below) // count
        if c < value:
            return c
        below += value
    raise AssertionError("the lengths sum to more than available")  # pragma: no cover


def agenda_phases(lines: Sequence[str], start: datetime, end: datetime) -> list[Phase]:
    """The phases of ``lines`` laid out from ``start``, never beyond ``end``.

    See the module docstring for the line forms and the rules. Blank lines are ignored.
    Raises ValueError when ``end`` is not after ``start`` or either is naive.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    if end <= start:
        raise ValueError("end must be after start")
    parsed = [phase for line in lines if line.strip() for phase in agenda_line_phases(line)]
    available = int((end - start) / timedelta(minutes=1))
    timed = [i for i, (_, minutes) in enumerate(parsed) if minutes is not None]
    fitted = _fit([parsed[i][1] or 0 for i in timed], available)
    minutes_of: dict[int, int | None] = dict(zip(timed, fitted, strict=True))
    untimed = [i for i, (_, minutes) in enumerate(parsed) if minutes is None]
    free = available - sum(fitted)
    if untimed and free >= len(untimed):
        share, odd = divmod(free, len(untimed))
        for n, i in enumerate(untimed):
            minutes_of[i] = share + (1 if n < odd else 0)
    phases: list[Phase] = []
    at = start
    for i, (label, _) in enumerate(parsed):
        minutes = minutes_of.get(i)
        stop = at + timedelta(minutes=minutes) if minutes else None
        if stop is None or stop > end:
            phases.append(Phase(label, None, None))
            continue
        phases.append(Phase(label, at, stop))
        at = stop
    return phases
