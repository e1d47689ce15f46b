"""The icalendar-based reference serialiser: :func:`feed_calendar` builds a whole feed with
icalendar's API, nothing cached. The test-suite compares :class:`~scheduler.outputs.ics.feed.
FeedBuilder`'s fast output against it byte for byte; nothing in the application uses it.
:func:`timezone_component` is the VTIMEZONE as an icalendar component."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from icalendar import Calendar, Timezone, vText

from scheduler.outputs.ics.events import (
    PRODUCT_ID,
    CalendarEvent,
    _check_unique,
    _sort_key,
    _zone_span,
)
from scheduler.outputs.ics.itip import _calendar, event_component
from scheduler.outputs.ics.lines import _duration
from scheduler.outputs.ics.sanitise import NAME_LIMIT, sanitize_text
from scheduler.outputs.ics.timezones import _timezone_bytes, _zone_windows
from scheduler.timeutil import zone


def timezone_component(tz_key: str, first_year: int, last_year: int) -> Timezone:
    """The VTIMEZONE for ``tz_key`` valid from 1 Jan ``first_year`` to 1 Jan ``last_year``, as
    an icalendar component (read from :func:`_timezone_bytes`, so the two are the same text)."""
    component = Timezone.from_ical(_timezone_bytes(zone(tz_key).key, first_year, last_year))
    assert isinstance(component, Timezone)
    return component


def feed_calendar(
    name: str,
    events: Sequence[CalendarEvent],
    *,
    stamp: datetime,
    product_id: str = PRODUCT_ID,
    refresh: timedelta = timedelta(hours=1),
) -> Calendar:
    """The feed built entirely with icalendar, nothing cached (reference and baseline)."""
    _check_unique(events)
    cal = _calendar(product_id)
    clean = sanitize_text(name, limit=NAME_LIMIT)
    if clean:
        cal.add("NAME", vText(clean))  # RFC 7986 TEXT; icalendar would not escape it
        cal.add("X-WR-CALNAME", vText(clean))  # X- properties are TEXT too: commas escaped
    cal.add("REFRESH-INTERVAL", refresh, parameters={"VALUE": "DURATION"})
    cal.add("X-PUBLISHED-TTL", _duration(refresh))
    for key, first, last in _zone_windows(map(_zone_span, events), stamp):
        cal.add_component(timezone_component(key, first, last))
    for event in sorted(events, key=_sort_key):
        cal.add_component(event_component(event, stamp=stamp))
    return cal
