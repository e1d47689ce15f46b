"""RFC 5545 content lines as icalendar writes them: text escaping, line folding, date-time and
duration values, and the CRLF line end (the fast serialisers' shared primitives)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

from icalendar import vDuration

_UTC_KEY: Final = "UTC"
_FOLD_LIMIT: Final = 75  # icalendar folds before a line reaches 75 octets
_CRLF: Final = "\r\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 5545 folding exactly as icalendar does it (never splitting a backslash escape)."""
    if len(line) < _FOLD_LIMIT:
        if line.isascii() or len(line.encode()) < _FOLD_LIMIT:
            return line
    elif line.isascii():
        chunks: list[str] = []
        begin, width = 0, _FOLD_LIMIT - 1
        while len(line) - begin > width:
            end = begin + width
            if line[end - 1] in "\\^":
                end -= 1
            chunks.append(line[begin:end])
            begin = end
        chunks.append(line[begin:])
        return "\r\n ".join(chunks)
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for char in line:
        width = 1 if char < "\x80" else len(char.encode())
        if current and size + width >= _FOLD_LIMIT:
            if len(current) > 1 and current[-1] in "\\^":
                carried = current.pop()
                parts.append("".join(current))
                current = [carried]
                size = len(carried.encode())
            else:
                parts.append("".join(current))
                current = []
                size = 0
        current.append(char)
        size += width
    parts.append("".join(current))
    return "\r\n ".join(parts)


def _stamp_text(value: datetime) -> str:
    u = value.astimezone(UTC)
    return f"{u.year:04d}{u.month:02d}{u.day:02d}T{u.hour:02d}{u.minute:02d}{u.second:02d}Z"


def _local_text(value: datetime) -> str:
    return (
        f"{value.year:04d}{value.month:02d}{value.day:02d}"
        f"T{value.hour:02d}{value.minute:02d}{value.second:02d}"
    )


def _when(name: str, tz_key: str, value: datetime) -> str:
    if tz_key == _UTC_KEY:
        return f"{name}:{_stamp_text(value)}"
    return f"{name};TZID={tz_key}:{_local_text(value)}"


@lru_cache(maxsize=256)
def _duration(value: timedelta) -> str:
    # icalendar's own DURATION text (the method has no annotations).
    text: str = vDuration(value).to_ical().decode("ascii")  # type: ignore[no-untyped-call]
    return text
