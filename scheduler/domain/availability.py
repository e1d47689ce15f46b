"""Weekly availability windows in a person's own local time.

Grammar (case-insensitive; groups separated by ``;``)::

    Mon-Fri 18:00-22:00; Sat 09:00-12:00, 14:00-16:00
    Mon,Wed,Fri 07:00-09:00
    Fri 22:00-02:00          # crosses midnight: Friday 22:00 to Saturday 02:00
    daily 12:00-13:00        # also: weekdays, weekends; no day at all means every day

A window may cross midnight when it lasts at most 12 hours; a longer "backwards" window
(``Mon 18:00-09:00``) is reported as ending before it starts, since it is almost always a typo.
Overlapping and touching windows are merged. Times are minutes of a week starting Monday 00:00.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache

from scheduler.timeutil import MINUTES_PER_DAY, MINUTES_PER_WEEK, Weekday, parse_clock, week_minute

MAX_OVERNIGHT_MINUTES = 12 * 60

_DAY_WORDS: dict[str, tuple[Weekday, ...]] = {
    "daily": tuple(Weekday),
    "everyday": tuple(Weekday),
    "weekdays": tuple(Weekday)[:5],
    "weekends": (Weekday.SAT, Weekday.SUN),
}
_RANGE_RE = re.compile(r"^(\d{1,2}:\d{2})-(\d{1,2}:\d{2})$")
AVAILABILITY_HINT = "write windows like 'Mon-Fri 18:00-22:00; Sat 09:00-12:00'"


class AvailabilityError(ValueError):
    """The availability text cannot be read: ``str(e)`` says why, ``hint`` says how."""

    hint = AVAILABILITY_HINT


@dataclass(frozen=True, slots=True)
class Availability:
    """Merged, sorted, non-overlapping half-open windows ``[start, end)`` in minutes of the week.

    A window that wraps past Sunday midnight is stored as two pieces, ``[s, 10080)`` and ``[0, e)``.
    """

    windows: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        previous_end = -1
        for start, end in self.windows:
            if not 0 <= start < end <= MINUTES_PER_WEEK:
                raise ValueError(f"window {start}-{end} is outside the week")
            if start <= previous_end:
                raise ValueError("windows must be sorted, merged and not touching")
            previous_end = end

    @classmethod
    def from_windows(cls, windows: list[tuple[int, int]]) -> Availability:
        """Normalise raw ``(start, length)``-free windows: wrap past the week end, sort, merge."""
        pieces: list[tuple[int, int]] = []
        for start, end in windows:
            start %= MINUTES_PER_WEEK
            length = end - start if end > start else end + MINUTES_PER_WEEK - start
            stop = start + length
            if stop <= MINUTES_PER_WEEK:
                pieces.append((start, stop))
            else:
                pieces.append((start, MINUTES_PER_WEEK))
                pieces.append((0, stop - MINUTES_PER_WEEK))
        pieces.sort()
        merged: list[tuple[int, int]] = []
        for start, end in pieces:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return cls(tuple(merged))

    @property
    def is_empty(self) -> bool:
        return not self.windows

    @property
    def minutes(self) -> int:
        return sum(end - start for start, end in self.windows)

    def covers(self, start: int, duration: int) -> bool:
        """Whether ``[start, start + duration)`` (week minutes; may wrap) is inside a window."""
        start %= MINUTES_PER_WEEK
        for w_start, w_end in self.joined():
            # A joined window may reach into next week: try the session a week later too.
            for shifted in (start, start + MINUTES_PER_WEEK):
                if w_start <= shifted and shifted + duration <= w_end:
                    return True
        return False

    def covers_at(self, start: datetime, duration: int, tz: tzinfo) -> bool:
        """Whether a session of ``duration`` minutes starting at the instant ``start`` lies
        inside a window on the clock of ``tz`` (the person's zone) that week."""
        return self.covers(week_minute(start.astimezone(tz)), duration)

    def joined(self) -> list[tuple[int, int]]:
        """The windows with the piece that wraps past Sunday midnight joined back into one.

        A joined window may end after minute 10080 (i.e. on next Monday).
        """
        windows = list(self.windows)
        if windows == [(0, MINUTES_PER_WEEK)]:
            return [(0, 2 * MINUTES_PER_WEEK)]  # always available: every session fits
        if len(windows) >= 2 and windows[0][0] == 0 and windows[-1][1] == MINUTES_PER_WEEK:
            first, last = windows[0], windows[-1]
            windows = [*windows[1:-1], (last[0], first[1] + MINUTES_PER_WEEK)]
        return windows

    def to_text(self) -> str:
        """Canonical text that :func:`parse_availability` reads back into an equal value."""
        pieces: list[tuple[int, int, int]] = []  # (day, start-of-day minutes, end minutes)
        for start, end in self.joined():
            cursor = start
            while cursor < end:
                day_start = cursor - cursor % MINUTES_PER_DAY
                piece_end = min(end, day_start + MINUTES_PER_DAY)
                # Keep a short overnight window in one piece ("Fri 22:00-02:00").
                if piece_end < end and end - cursor <= MAX_OVERNIGHT_MINUTES:
                    piece_end = end
                day = (day_start // MINUTES_PER_DAY) % 7
                pieces.append((day, cursor - day_start, piece_end - day_start))
                cursor = piece_end
        by_range: dict[tuple[int, int], list[int]] = {}
        for day, s, e in pieces:
            by_range.setdefault((s, e), []).append(day)
        groups = []
        for (s, e), days in sorted(by_range.items(), key=lambda kv: (min(kv[1]), kv[0])):
            groups.append(f"{_days_text(sorted(set(days)))} {_clock(s)}-{_clock(e)}")
        return "; ".join(groups)


def _clock(minutes: int) -> str:
    if minutes > MINUTES_PER_DAY:
        minutes -= MINUTES_PER_DAY
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _days_text(days: list[int]) -> str:
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    parts = []
    for run in runs:
        first, last = Weekday(run[0]).label, Weekday(run[-1]).label
        parts.append(
            first if len(run) == 1 else f"{first}-{last}" if len(run) > 2 else f"{first},{last}"
        )
    return ",".join(parts)


def _parse_days(spec: str) -> tuple[Weekday, ...]:
    if spec in _DAY_WORDS:
        return _DAY_WORDS[spec]
    days: list[Weekday] = []
    for part in spec.split(","):
        if not part:
            raise AvailabilityError(f"empty day in {spec!r}")
        if "-" in part:
            first_text, _, last_text = part.partition("-")
            first, last = Weekday.parse(first_text), Weekday.parse(last_text)
            span = (last - first) % 7
            days.extend(Weekday((first + i) % 7) for i in range(span + 1))
        else:
            days.append(Weekday.parse(part))
    return tuple(days)


def _parse_range(token: str) -> tuple[int, int]:
    match = _RANGE_RE.match(token)
    if match is None:
        raise AvailabilityError(f"{token!r} is not a time range like 18:00-22:00")
    try:
        start = parse_clock(match.group(1))
        end = parse_clock(match.group(2), allow_24=True)
    except ValueError as e:
        raise AvailabilityError(str(e)) from e
    if start == end:
        raise AvailabilityError(f"the window {token} is empty")
    if end < start and end + MINUTES_PER_DAY - start > MAX_OVERNIGHT_MINUTES:
        raise AvailabilityError(
            f"the window {token} ends before it starts "
            "(a window crossing midnight may last at most 12 hours)"
        )
    return start, end if end > start else end + MINUTES_PER_DAY


@lru_cache(maxsize=4096)
def parse_availability(text: str) -> Availability:
    """Read availability text; raise :class:`AvailabilityError` naming every bad part at once."""
    errors: list[str] = []
    windows: list[tuple[int, int]] = []
    groups = [g.strip() for g in text.split(";")]
    if not any(groups):
        raise AvailabilityError("no windows given")
    for group in groups:
        if not group:
            continue
        normal = re.sub(r"\s*([-,])\s*", r"\1", group.lower().replace("every day", "everyday"))
        tokens = normal.split()
        days: tuple[Weekday, ...] = tuple(Weekday)
        if tokens and not tokens[0][:1].isdigit():
            try:
                days = _parse_days(tokens[0])
            except ValueError as e:
                errors.append(f"{group!r}: {e}")
                continue
            tokens = tokens[1:]
        ranges = [r for token in tokens for r in token.split(",") if r]
        if not ranges:
            errors.append(f"{group!r}: no time range")
            continue
        for token in ranges:
            try:
                start, end = _parse_range(token)
            except AvailabilityError as e:
                errors.append(str(e))
                break  # one problem per group: the rest of it is likely the same mistake
            for day in days:
                offset = day * MINUTES_PER_DAY
                windows.append((offset + start, offset + end))
    if errors:
        raise AvailabilityError("; ".join(errors))
    return Availability.from_windows(windows)


NO_STRETCH_TEXT = "none"
_NO_STRETCH_WORDS = ("none", "no", "-")
STRETCH_HINT = (
    "write windows like 'Mon-Fri 06:00-08:00; Mon-Thu 21:00-23:00', "
    "'none' for no stretch hours, or leave it blank for the cohort's default"
)


def stretch_text(text: str) -> str:
    """Normalise a ``stretch`` value (a roster cell or the cohort's ``default_stretch``):
    ``none`` (no stretch hours at all) or the availability grammar, written canonically.
    Raise :class:`AvailabilityError` when it is neither. Blank values mean "the default" and are
    the caller's to handle."""
    value = text.strip()
    if value.lower() in _NO_STRETCH_WORDS:
        return NO_STRETCH_TEXT
    return parse_availability(value).to_text()


def read_stretch(text: str | None) -> Availability | None:
    """A stored stretch value as windows: None (blank: the default applies), an empty
    :class:`Availability` (``none``: no stretch hours), or the windows."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    if value.lower() in _NO_STRETCH_WORDS:
        return Availability(())
    return parse_availability(value)
