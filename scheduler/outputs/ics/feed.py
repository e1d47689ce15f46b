"""The fast feed serialiser: :class:`FeedBuilder` writes personal feeds (RFC 5545 + RFC 7986)
byte-identical to icalendar's output, caching each serialised VEVENT by its value and sharing
the bytes between all feeds of one plan version."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scheduler.outputs.ics.events import (
    PRODUCT_ID,
    CalendarEvent,
    _check_unique,
    _Clean,
    _clean,
    _sort_key,
)
from scheduler.outputs.ics.lines import (
    _CRLF,
    _UTC_KEY,
    _duration,
    _escape,
    _fold,
    _stamp_text,
    _when,
)
from scheduler.outputs.ics.sanitise import NAME_LIMIT, sanitize_text
from scheduler.outputs.ics.timezones import _timezone_bytes, _window, _zone_windows
from scheduler.timeutil import zone


def _vevent_text(event: CalendarEvent, stamp: str, c: _Clean) -> str:
    """The VEVENT in icalendar's property order: canonical ones first, the rest alphabetical."""
    lines = ["BEGIN:VEVENT"]
    if c.summary:
        lines.append(_fold("SUMMARY:" + _escape(c.summary)))
    lines.append(_when("DTSTART", c.tz_key, c.start))
    lines.append(_when("DTEND", c.tz_key, c.end))
    lines.append("DTSTAMP:" + stamp)
    lines.append(_fold("UID:" + _escape(event.uid)))
    lines.append(f"SEQUENCE:{event.sequence}")
    if c.categories:
        lines.append(_fold("CATEGORIES:" + ",".join(_escape(x) for x in c.categories)))
    if c.description:
        lines.append(_fold("DESCRIPTION:" + _escape(c.description)))
    if c.location:
        lines.append(_fold("LOCATION:" + _escape(c.location)))
    lines.append("STATUS:" + event.status)
    lines.append("TRANSP:" + c.transp)
    if c.url:
        lines.append(_fold("URL:" + c.url))
    if c.alarm is not None:
        lines.append("BEGIN:VALARM")
        lines.append("ACTION:DISPLAY")
        lines.append(_fold("DESCRIPTION:" + _escape(c.summary or "Reminder")))
        lines.append("TRIGGER:" + _duration(c.alarm))
        lines.append("END:VALARM")
    lines.append("END:VEVENT")
    lines.append("")
    return _CRLF.join(lines)


@dataclass(frozen=True, slots=True)
class _Entry:
    """What a feed needs of one event, computed once per builder."""

    order: tuple[datetime, datetime, str]
    span: tuple[str, int, int]
    data: bytes


class FeedBuilder:
    """Builds feeds for one plan version, sharing serialised events between feeds.

    ``stamp`` (the plan version's time) is the DTSTAMP of every event, so the same plan gives
    byte-identical feeds. One builder per plan version: the event cache grows with the number
    of distinct events of that version and is dropped with the builder. VTIMEZONE text is cached
    process-wide (per zone and window of years).
    """

    def __init__(self, *, product_id: str = PRODUCT_ID, stamp: datetime) -> None:
        if stamp.utcoffset() is None:
            raise ValueError("stamp must be an aware datetime")
        self.product_id = sanitize_text(product_id, limit=NAME_LIMIT)
        self.stamp = stamp.astimezone(UTC)
        self._stamp_text = _stamp_text(stamp)
        self._events: dict[CalendarEvent, _Entry] = {}

    def _entry(self, event: CalendarEvent) -> _Entry:
        entry = self._events.get(event)
        if entry is None:
            c = _clean(event)
            data = _vevent_text(event, self._stamp_text, c).encode("utf-8")
            span = (c.tz_key, c.start.year, c.end.year + 1)
            entry = self._events[event] = _Entry(_sort_key(event), span, data)
        return entry

    def event_bytes(self, event: CalendarEvent) -> bytes:
        """The serialised VEVENT (CRLF line ends, folded), cached by the event value."""
        return self._entry(event).data

    def timezone_bytes(self, tzid: str, *, years: tuple[int, int] | None = None) -> bytes:
        """The serialised VTIMEZONE for ``tzid``, for ``years`` (first, last: from 1 Jan of the
        first to 1 Jan of the last) or by default the stamp's year -1 to +3. Empty for UTC."""
        key = zone(tzid).key
        if key == _UTC_KEY:
            return b""
        first, last = years or _window(self.stamp)
        return _timezone_bytes(key, first, last)

    def _header(self, name: str, refresh: timedelta) -> bytes:
        clean = sanitize_text(name, limit=NAME_LIMIT)
        duration = _duration(refresh)
        lines = [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            _fold("PRODID:" + _escape(self.product_id)),
            "CALSCALE:GREGORIAN",
        ]
        if clean:
            lines.append(_fold("NAME:" + _escape(clean)))
            lines.append(_fold("X-WR-CALNAME:" + _escape(clean)))
        lines.append("REFRESH-INTERVAL;VALUE=DURATION:" + duration)
        lines.append("X-PUBLISHED-TTL:" + duration)
        lines.append("")
        return _CRLF.join(lines).encode("utf-8")

    def feed(
        self,
        name: str,
        events: Sequence[CalendarEvent],
        *,
        refresh: timedelta = timedelta(hours=1),
    ) -> bytes:
        """The whole VCALENDAR: header, one VTIMEZONE per TZID used (sorted by TZID), then the
        events sorted by (start, end, UID), whatever their input order."""
        if refresh <= timedelta(0):
            raise ValueError("refresh must be positive")
        _check_unique(events)
        entries = sorted(map(self._entry, events), key=_entry_order)
        parts = [self._header(name, refresh)]
        for key, first, last in _zone_windows((e.span for e in entries), self.stamp):
            parts.append(_timezone_bytes(key, first, last))
        parts.extend(e.data for e in entries)
        parts.append(b"END:VCALENDAR\r\n")
        return b"".join(parts)


def _entry_order(entry: _Entry) -> tuple[datetime, datetime, str]:
    return entry.order
