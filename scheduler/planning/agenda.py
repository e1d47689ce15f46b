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
than the block, the rest of the block is left free.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Phase", "agenda_phases", "parse_minutes"]

_DURATION = r"(?:(\d+)\s*h\s*(?:(\d+)\s*m(?:in)?)?|(\d+)\s*m(?:in)?)"
_REPEAT = re.compile(
    rf"^\s*(\d+)\s*[x×]\s*{_DURATION}\s+(.+?)(?:\s+with\s+{_DURATION}\s+(.+?))?\s*$", re.I
)
_SINGLE = re.compile(rf"^\s*{_DURATION}\b\s*[:\-–]?\s*(.*?)\s*$", re.I)
_MAX_ROUNDS = 24


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


def parse_minutes(hours: str | None, minutes_after_hours: str | None, minutes: str | None) -> int:
    """Minutes from the groups of one duration match (``1h30m``, ``1h``, ``90m``)."""
    if hours is not None:
        return int(hours) * 60 + int(minutes_after_hours or 0)
    return int(minutes or 0)


def _parse(line: str) -> list[tuple[str, int | None]]:
    """The phases one line makes: (label, minutes or None for untimed)."""
    repeat = _REPEAT.match(line)
    if repeat is not None:
        rounds = int(repeat.group(1))
        length = parse_minutes(*repeat.group(2, 3, 4))
        label = repeat.group(5).strip()
        if 1 <= rounds <= _MAX_ROUNDS and length > 0:
            pause = parse_minutes(*repeat.group(6, 7, 8)) if repeat.group(9) else 0
            pause_label = (repeat.group(9) or "").strip()
            phases: list[tuple[str, int | None]] = []
            for i in range(rounds):
                if i and pause > 0:
                    phases.append((pause_label, pause))
                phases.append((label, length))
            return phases
    single = _SINGLE.match(line)
    if single is not None:
        length = parse_minutes(*single.group(1, 2, 3))
        label = single.group(4).strip()
        if length > 0 and label:
            return [(label, length)]
    return [(line.strip(), None)]


def _fit(lengths: list[int], available: int) -> list[int]:
    """Shrink the longest lengths a minute at a time until they sum to ``available`` or less."""
    lengths = list(lengths)
    excess = sum(lengths) - available
    while excess > 0:
        longest = max(lengths)
        if longest <= 1:
            break
        for i, length in enumerate(lengths):
            if length == longest and excess > 0:
                lengths[i] -= 1
                excess -= 1
    return lengths


def agenda_phases(lines: Sequence[str], start: datetime, end: datetime) -> list[Phase]:
    """The phases of ``lines`` laid out from ``start``, never beyond ``end``.

    See the module docstring for the line forms and the rules. Blank lines are ignored.
    Raises ValueError when ``end`` is not after ``start`` or either is naive.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    if end <= start:
        raise ValueError("end must be after start")
    parsed = [phase for line in lines if line.strip() for phase in _parse(line)]
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
