"""iCalendar output: personal feeds (RFC 5545 + RFC 7986) and emailed invites (iTIP, RFC 5546).

Decisions
---------

**One VEVENT per occurrence, never RRULE.** Every live occurrence and every deadline is its own
VEVENT with a stable UID (uuid5 of a stable key, chosen by the caller) and a SEQUENCE that grows
on every change. A recurring event (RRULE + EXDATE + RECURRENCE-ID overrides) would be smaller,
but it is what Gmail, Outlook and Apple Calendar disagree on:

- the occurrences are planned as UTC instants under our own DST policy (a nonexistent wall time
  moves forward, an ambiguous one takes the first); an RRULE hands that expansion to each client,
  and clients resolve DST gaps differently;
- changes map to one UID + a higher SEQUENCE. With a series, "move one session" needs a
  RECURRENCE-ID override, "from week 5 on" needs RANGE=THISANDFUTURE (ignored by Google and
  Outlook) or splitting the series, and Outlook drops overrides whose RECURRENCE-ID does not
  match its own expansion exactly (TZID differences included);
- each occurrence carries its own data (agenda, join link, replay), and cancelling one is simply
  STATUS:CANCELLED on its UID, kept in the feed (clients otherwise keep showing a removed event);
- occurrences are the unit of caching below, shared between all feeds that contain them.

Invites follow from this: one iTIP object carries one UID (RFC 5546 section 1.5), so an invite is
per occurrence; an update keeps the UID and raises SEQUENCE, a cancellation is METHOD:CANCEL with
STATUS:CANCELLED and a higher SEQUENCE.

**Deadlines** (see :func:`deadline_event`) are a 30-minute TRANSPARENT event *ending* at the
deadline, in the learner's own zone, summary ``Due: <title>`` (``Hard deadline: <title>`` for the
cut-off). Transparent, so they never block free/busy; ending at the deadline, so the block sits
in the time before it and a 23:59 deadline never spills into the next day; not all-day, because a
deadline is an instant in the learner's local time.

**Alarms**: none by default (``alarm_minutes=None``); the product sends reminder emails, Google
ignores VALARM in subscribed feeds and Apple strips them from subscriptions by default. When
set, a DISPLAY alarm fires ``alarm_minutes`` before the start (recommended: 15 minutes for
live sessions, none for deadlines). Cancelled events never carry an alarm.

**Time zones**: DTSTART/DTEND are written as local time with ``TZID`` (the canonical IANA name)
and the calendar carries one VTIMEZONE per TZID used; ``UTC`` is written as ``...Z`` and needs no
VTIMEZONE. A VTIMEZONE is written by :mod:`scheduler.outputs.vtimezone` in the form Outlook
reads (the zone's current rule as ``RRULE:FREQ=YEARLY;BYDAY=...;BYMONTH=...``, as Google writes
it; icalendar's ``Timezone.from_tzinfo`` writes RDATE lists only, which Outlook desktop
mishandles), valid for a window of whole years: by default from 1 January of the year before
the stamp to 1 January three years after it, widened when an event in that zone falls outside.
Changes inside the window that the current rule does not make (a zone that changed its rule)
are added as RDATE observances. It is cached per (zone, window) for the life of the process.

**Sanitising** (:func:`sanitize_text`): every user text (summary, description, location, URL,
categories, calendar name, attendee names) is cleaned before it goes in, X- properties included
(icalendar writes those unescaped): CRLF and a lone CR become LF; LF (and U+0085, U+2028, U+2029)
is kept as a line break only in multi-line fields (descriptions) and becomes a space elsewhere;
every other control character (Unicode Cc: C0, DEL, C1) and lone surrogates are removed; tabs
become spaces; leading/trailing whitespace is stripped; length is capped in code points, a cut
value ending in an ellipsis. Emoji and right-to-left text pass unchanged. URLs other than
http(s) are dropped; commas in category labels become spaces; a double quote in a person's name
(a parameter value) becomes a single quote. Caps: summary 255, location 1000, URL 2000,
description 8000, calendar name 255, person name 200, category 64 (at most 16).

Speed
-----

icalendar builds each VEVENT in ~0.5 ms, so a 50-event feed is ~25 ms. :class:`FeedBuilder`
therefore writes the few properties it emits with a small serialiser of its own, proven
byte-identical to icalendar's output by the test-suite (:func:`feed_calendar` is that icalendar
reference, also used for invites and the benchmark baseline). The one deliberate difference:
icalendar turns a literal backslash-N in text into a line break; we escape the backslash as RFC
5545 says. Serialised events are cached by the event value (per builder, i.e. per plan version
and DTSTAMP), so a reschedule re-serialises only changed occurrences and all feeds are assembled
from shared bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Final

from icalendar import Alarm, Calendar, Event, Timezone, vCalAddress, vDuration, vText

from scheduler.outputs.vtimezone import VTimezone, build_vtimezone
from scheduler.timeutil import zone

__all__ = [
    "CalendarEvent",
    "FeedBuilder",
    "deadline_event",
    "event_component",
    "feed_calendar",
    "invite",
    "sanitize_text",
]

PRODUCT_ID: Final = "-//cohort-scheduler//EN"
STATUSES: Final = frozenset({"CONFIRMED", "TENTATIVE", "CANCELLED"})
METHODS: Final = frozenset({"REQUEST", "CANCEL"})
DEADLINE_BLOCK: Final = timedelta(minutes=30)

# Length caps, in code points, applied to every user text at serialisation.
SUMMARY_LIMIT: Final = 255
DESCRIPTION_LIMIT: Final = 8000
LOCATION_LIMIT: Final = 1000
URL_LIMIT: Final = 2000
CATEGORY_LIMIT: Final = 64
MAX_CATEGORIES: Final = 16
NAME_LIMIT: Final = 255
PERSON_LIMIT: Final = 200

_UTC_KEY: Final = "UTC"
_FOLD_LIMIT: Final = 75  # icalendar folds before a line reaches 75 octets
_CRLF: Final = "\r\n"


# --- sanitising -------------------------------------------------------------------------------

# Unicode Cc (C0 without TAB/LF, DEL, C1 without NEL) and lone surrogates (Cs): removed.
_CONTROL: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff]")
_LINE_BREAK: Final = re.compile("[\n\x85\u2028\u2029]")
_TRAILING_SPACE: Final = re.compile("[ ]+\n")


def sanitize_text(value: str, *, limit: int, multiline: bool = False) -> str:
    """Make user text safe for any iCalendar property (X- properties included).

    CRLF and a lone CR become a line break; line breaks are kept only when ``multiline`` (for
    DESCRIPTION), otherwise they become a space; other control characters and lone surrogates
    are removed, tabs become spaces, the ends are stripped; at most ``limit`` code points remain
    (a cut value ends in "…"). Idempotent.
    """
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isprintable():
        text = _CONTROL.sub("", text).replace("\t", " ")
        text = _LINE_BREAK.sub("\n" if multiline else " ", text)
        if multiline:
            text = _TRAILING_SPACE.sub("\n", text)
    text = text.strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _clean_url(value: str) -> str:
    url = sanitize_text(value, limit=URL_LIMIT).replace(" ", "%20")
    return url if url.lower().startswith(("https://", "http://")) else ""


def _clean_email(value: str) -> str:
    email = value.strip()
    if (
        not email
        or "@" not in email
        or not email.isprintable()
        or any(char in email for char in ' "<>,;:\\')
    ):
        raise ValueError(f"not a usable email address: {value!r}")
    return email


def _clean_person(name: str) -> str:
    # A double quote cannot appear in a parameter value; RFC 6868 escapes are not read everywhere.
    # A backslash is legal there but parsers (icalendar's among them) read "\:" as an escape and
    # lose the address after it, so it becomes a slash.
    return sanitize_text(name, limit=PERSON_LIMIT).replace('"', "'").replace("\\", "/")


# --- the event value --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One VEVENT: a live occurrence, a co-working block, a replay item or a deadline.

    ``start``/``end`` are aware instants (stored UTC), expressed in the feed as local time in
    ``tzid``. Text fields may hold raw user text: they are sanitised when serialised.
    """

    uid: str
    sequence: int
    start: datetime
    end: datetime
    tzid: str
    summary: str
    description: str = ""
    location: str = ""
    url: str = ""
    status: str = "CONFIRMED"
    categories: tuple[str, ...] = ()
    transparent: bool = False
    alarm_minutes: int | None = None

    def __post_init__(self) -> None:
        if not self.uid or not self.uid.isprintable() or len(self.uid) > 255:
            raise ValueError(f"uid must be 1-255 printable characters, got {self.uid!r}")
        if self.sequence < 0:
            raise ValueError(f"sequence must not be negative, got {self.sequence}")
        if self.start.utcoffset() is None or self.end.utcoffset() is None:
            raise ValueError("start and end must be aware datetimes")
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        zone(self.tzid)  # ValueError when unknown
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, got {self.status!r}")
        if self.alarm_minutes is not None and self.alarm_minutes < 0:
            raise ValueError(f"alarm_minutes must not be negative, got {self.alarm_minutes}")


def deadline_event(
    *,
    uid: str,
    sequence: int,
    due: datetime,
    tzid: str,
    title: str,
    description: str = "",
    url: str = "",
    status: str = "CONFIRMED",
    hard: bool = False,
) -> CalendarEvent:
    """A deadline as it shows in calendars: 30 minutes, transparent, ending at ``due``."""
    prefix = "Hard deadline" if hard else "Due"
    return CalendarEvent(
        uid=uid,
        sequence=sequence,
        start=due - DEADLINE_BLOCK,
        end=due,
        tzid=tzid,
        summary=f"{prefix}: {sanitize_text(title, limit=SUMMARY_LIMIT)}",
        description=description,
        url=url,
        status=status,
        categories=("Deadline",),
        transparent=True,
    )


@dataclass(frozen=True, slots=True)
class _Clean:
    """The sanitised, serialisation-ready view of a :class:`CalendarEvent`."""

    tz_key: str
    start: datetime  # local time in tz_key (UTC when tz_key is UTC)
    end: datetime
    summary: str
    description: str
    location: str
    url: str
    categories: tuple[str, ...]
    transp: str
    alarm: timedelta | None


def _clean(event: CalendarEvent) -> _Clean:
    tz = zone(event.tzid)
    # Commas become spaces: some parsers (the ical package) split CATEGORIES on escaped commas.
    labels = (sanitize_text(c.replace(",", " "), limit=CATEGORY_LIMIT) for c in event.categories)
    categories = tuple(label for label in labels if label)[:MAX_CATEGORIES]
    cancelled = event.status == "CANCELLED"
    alarm = None
    if event.alarm_minutes is not None and not cancelled:
        alarm = -timedelta(minutes=event.alarm_minutes)
    return _Clean(
        tz_key=tz.key,
        start=event.start.astimezone(tz),
        end=event.end.astimezone(tz),
        summary=sanitize_text(event.summary, limit=SUMMARY_LIMIT),
        description=sanitize_text(event.description, limit=DESCRIPTION_LIMIT, multiline=True),
        location=sanitize_text(event.location, limit=LOCATION_LIMIT),
        url=_clean_url(event.url),
        categories=categories,
        transp="TRANSPARENT" if event.transparent or cancelled else "OPAQUE",
        alarm=alarm,
    )


# --- VTIMEZONE --------------------------------------------------------------------------------


def _window(stamp: datetime) -> tuple[int, int]:
    return stamp.year - 1, stamp.year + 3


def timezone_component(tz_key: str, first_year: int, last_year: int) -> Timezone:
    """The VTIMEZONE for ``tz_key`` valid from 1 Jan ``first_year`` to 1 Jan ``last_year``, as
    an icalendar component (read from :func:`_timezone_bytes`, so the two are the same text)."""
    component = Timezone.from_ical(_timezone_bytes(zone(tz_key).key, first_year, last_year))
    assert isinstance(component, Timezone)
    return component


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


# --- serialising (fast path, byte-identical to icalendar) -------------------------------------


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


def _sort_key(event: CalendarEvent) -> tuple[datetime, datetime, str]:
    return (event.start, event.end, event.uid)


def _check_unique(events: Sequence[CalendarEvent]) -> None:
    uids = {e.uid for e in events}
    if len(uids) != len(events):
        raise ValueError("a feed cannot hold two events with the same UID")


def _zone_span(event: CalendarEvent) -> tuple[str, int, int]:
    """The event's TZID and the local years it touches (end year + 1: windows end on 1 Jan)."""
    tz = zone(event.tzid)
    return tz.key, event.start.astimezone(tz).year, event.end.astimezone(tz).year + 1


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


# --- the icalendar reference, and invites -----------------------------------------------------


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
