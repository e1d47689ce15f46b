"""VTIMEZONE text: built by :mod:`scheduler.outputs.vtimezone`, serialised exactly as icalendar
writes it, cached per (zone, window of years) for the life of the process, and the windows a
feed or invitation needs for the zones its events use."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache

from scheduler.outputs.ics.lines import _CRLF, _UTC_KEY, _escape, _fold, _local_text
from scheduler.outputs.vtimezone import VTimezone, build_vtimezone


def _window(stamp: datetime) -> tuple[int, int]:
    return stamp.year - 1, stamp.year + 3


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{secs:02d}" if secs else "")


def _vtimezone_text(vtz: VTimezone) -> str:
    """The VTIMEZONE as icalendar writes it (properties in its order: TZID first, the rest
    alphabetical), so reading it with icalendar and writing it again gives the same bytes."""
    lines = [
        "BEGIN:VTIMEZONE",
        _fold("TZID:" + _escape(vtz.tzid)),
        f"COMMENT:This timezone only works from {date(vtz.first_year, 1, 1)}"
        f" to {date(vtz.last_year, 1, 1)}.",
    ]
    for o in vtz.observances:
        lines.append("BEGIN:" + o.kind)
        lines.append("DTSTART:" + _local_text(o.start))
        if o.rdates:
            lines.append(_fold("RDATE:" + ",".join(_local_text(d) for d in o.rdates)))
        if o.rule is not None:
            lines.append("RRULE:" + o.rule.rrule())
        lines.append(_fold("TZNAME:" + _escape(o.name)))
        lines.append("TZOFFSETFROM:" + _offset_text(o.offset_from))
        lines.append("TZOFFSETTO:" + _offset_text(o.offset_to))
        lines.append("END:" + o.kind)
    lines.append("END:VTIMEZONE")
    lines.append("")
    return _CRLF.join(lines)


@lru_cache(maxsize=2048)
def _timezone_bytes(tz_key: str, first_year: int, last_year: int) -> bytes:
    """The serialised VTIMEZONE of the canonical key ``tz_key`` (cached per zone and window)."""
    return _vtimezone_text(build_vtimezone(tz_key, first_year, last_year)).encode("ascii")


def _zone_windows(
    spans: Iterable[tuple[str, int, int]], stamp: datetime
) -> list[tuple[str, int, int]]:
    """Per TZID used (UTC excluded, sorted), the VTIMEZONE window (first year, last year)
    covering the default window of ``stamp`` and every event in that zone."""
    default = _window(stamp)
    windows: dict[str, tuple[int, int]] = {}
    for key, first_year, last_year in spans:
        if key == _UTC_KEY:
            continue
        first, last = windows.get(key, default)
        windows[key] = (min(first, first_year), max(last, last_year))
    return [(key, first, last) for key, (first, last) in sorted(windows.items())]
