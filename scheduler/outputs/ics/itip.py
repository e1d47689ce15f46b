"""Invitations (iTIP, RFC 5546), built with icalendar: :func:`invite` for one occurrence,
:func:`series_invite` for a whole weekly series (REQUEST or CANCEL). Also
:func:`event_component`, the icalendar VEVENT of an event, which the invitations and the
icalendar reference (:mod:`scheduler.outputs.ics.reference`) are built from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from icalendar import Alarm, Calendar, Event, Timezone, vCalAddress

from scheduler.outputs.ics.events import PRODUCT_ID, CalendarEvent, _clean, _zone_span
from scheduler.outputs.ics.sanitise import NAME_LIMIT, _clean_email, _clean_person, sanitize_text
from scheduler.outputs.ics.timezones import _timezone_bytes, _zone_windows

METHODS: Final = frozenset({"REQUEST", "CANCEL"})


def event_component(event: CalendarEvent, *, stamp: datetime) -> Event:
    """The VEVENT built with icalendar's API (the reference for :class:`FeedBuilder`)."""
    c = _clean(event)
    vevent = Event()
    if c.summary:
        vevent.add("SUMMARY", c.summary)
    vevent.add("DTSTART", c.start)
    vevent.add("DTEND", c.end)
    vevent.add("DTSTAMP", stamp.astimezone(UTC))
    vevent.add("UID", event.uid)
    vevent.add("SEQUENCE", event.sequence)
    if c.categories:
        vevent.add("CATEGORIES", list(c.categories))
    if c.description:
        vevent.add("DESCRIPTION", c.description)
    if c.location:
        vevent.add("LOCATION", c.location)
    vevent.add("STATUS", event.status)
    vevent.add("TRANSP", c.transp)
    if c.url:
        vevent.add("URL", c.url)
    if c.alarm is not None:
        alarm = Alarm()
        alarm.add("ACTION", "DISPLAY")
        alarm.add("DESCRIPTION", c.summary or "Reminder")
        alarm.add("TRIGGER", c.alarm)
        vevent.add_component(alarm)
    return vevent


def _calendar(product_id: str) -> Calendar:
    cal = Calendar()
    cal.add("VERSION", "2.0")
    cal.add("PRODID", sanitize_text(product_id, limit=NAME_LIMIT))
    cal.add("CALSCALE", "GREGORIAN")
    return cal


def _address(person: tuple[str, str], **params: str) -> vCalAddress:
    name, email = person
    address = vCalAddress(f"mailto:{_clean_email(email)}")
    cn = _clean_person(name)
    if cn:
        address.params["CN"] = cn
    for key, value in params.items():
        address.params[key] = value
    return address


def invite(
    event: CalendarEvent,
    *,
    method: str,
    organizer: tuple[str, str],
    attendee: tuple[str, str],
    stamp: datetime,
    product_id: str = PRODUCT_ID,
) -> bytes:
    """An iTIP message (RFC 5546) for one occurrence and one attendee, built with icalendar.

    ``method`` is ``REQUEST`` (new or updated: same UID, higher SEQUENCE; ATTENDEE with
    RSVP=TRUE and PARTSTAT=NEEDS-ACTION) or ``CANCEL`` (STATUS:CANCELLED; the caller passes the
    raised SEQUENCE). ``organizer`` and ``attendee`` are (name, email). Carry it as a
    ``text/calendar; method=<METHOD>`` part.
    """
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if stamp.utcoffset() is None:
        raise ValueError("stamp must be an aware datetime")
    if method == "CANCEL" and event.status != "CANCELLED":
        event = replace(event, status="CANCELLED")
    vevent = event_component(event, stamp=stamp)
    vevent.add("ORGANIZER", _address(organizer))
    attendee_params = {"CUTYPE": "INDIVIDUAL", "ROLE": "REQ-PARTICIPANT"}
    if method == "REQUEST":
        attendee_params |= {"PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"}
    vevent.add("ATTENDEE", _address(attendee, **attendee_params))
    cal = _calendar(product_id)
    cal.add("METHOD", method)
    for key, first, last in _zone_windows([_zone_span(event)], stamp):
        cal.add_component(Timezone.from_ical(_timezone_bytes(key, first, last)))
    cal.add_component(vevent)
    data: bytes = cal.to_ical()
    return data


@dataclass(frozen=True, slots=True)
class WeekOccurrence:
    """Week ``week`` of a weekly series as held: when, and whether it was cancelled."""

    rule_start: datetime  # where the weekly rule puts it (the series' intended wall time)
    start: datetime
    end: datetime
    cancelled: bool = False


def series_invite(
    series: CalendarEvent,
    weeks: Sequence[WeekOccurrence | None],
    *,
    method: str,
    organizer: tuple[str, str],
    attendee: tuple[str, str],
    stamp: datetime,
    product_id: str = PRODUCT_ID,
) -> bytes:
    """An iTIP message for a whole weekly series: one recurring VEVENT, built with icalendar.

    Feeds carry one event per occurrence; an invitation cannot (an iTIP message holds one UID),
    and one email per meeting would bury learners. So an invitation is one event with
    ``RRULE:FREQ=WEEKLY;COUNT=<weeks>`` from the first week's intended wall time in the series'
    zone (RFC 5545 expands a nonexistent local time forward and an ambiguous one to the first,
    which is the planner's own DST policy, so the expansion lands on the planned instants),
    ``EXDATE`` for weeks without a meeting (``None``: a blackout) and cancelled ones, and a
    ``RECURRENCE-ID`` override for every week held at another time. Any change is sent as a new
    REQUEST of the whole series with a higher SEQUENCE (what Gmail, Outlook and Apple Calendar
    apply reliably); a series cancelled as a whole is a CANCEL of its UID.
    """
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {method!r}")
    if all(w is None for w in weeks):
        raise ValueError("a series needs at least one week")
    first = next(w for w in weeks if w is not None)
    length = series.end - series.start
    base = replace(series, start=first.rule_start, end=first.rule_start + length)
    if method == "CANCEL":
        base = replace(base, status="CANCELLED")
    tz: tzinfo = _clean(base).start.tzinfo or UTC  # the zone DTSTART is written in
    attendee_params = {"CUTYPE": "INDIVIDUAL", "ROLE": "REQ-PARTICIPANT"}
    if method == "REQUEST":
        attendee_params |= {"PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"}
    cal = _calendar(product_id)
    cal.add("METHOD", method)
    for key, f_year, l_year in _zone_windows([_zone_span(base)], stamp):
        cal.add_component(Timezone.from_ical(_timezone_bytes(key, f_year, l_year)))

    def people(vevent: Event) -> Event:
        vevent.add("ORGANIZER", _address(organizer))
        vevent.add("ATTENDEE", _address(attendee, **attendee_params))
        return vevent

    master = people(event_component(base, stamp=stamp))
    offset = weeks.index(first)
    master.add("RRULE", {"FREQ": "WEEKLY", "COUNT": len(weeks) - offset})

    def local(moment: datetime) -> datetime:
        return moment.astimezone(tz)

    excluded = [local(w.rule_start) for w in weeks[offset:] if w is not None and w.cancelled]
    # A blackout week has no meeting, but the rule still counts it: exclude its date too (same
    # wall time a whole number of weeks on: aware arithmetic in one zone keeps the wall clock).
    for i, w in enumerate(weeks[offset:]):
        if w is None:
            excluded.append(local(first.rule_start) + timedelta(weeks=i))
    if excluded and method == "REQUEST":
        master.add("EXDATE", sorted(excluded))
    cal.add_component(master)
    if method == "REQUEST":
        for w in weeks[offset:]:
            if (
                w is None
                or w.cancelled
                or (w.start, w.end) == (w.rule_start, w.rule_start + length)
            ):
                continue
            moved = people(event_component(replace(series, start=w.start, end=w.end), stamp=stamp))
            moved.add("RECURRENCE-ID", local(w.rule_start))
            cal.add_component(moved)
    data: bytes = cal.to_ical()
    return data
