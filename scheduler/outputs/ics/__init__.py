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
reference; :func:`event_component`, its VEVENT, also builds invites and the benchmark baseline).
The one deliberate difference: icalendar turns a literal backslash-N in text into a line break;
we escape the backslash as RFC 5545 says. Serialised events are cached by the event value (per
builder, i.e. per plan version and DTSTAMP), so a reschedule re-serialises only changed
occurrences and all feeds are assembled from shared bytes.

Modules
-------

- :mod:`.sanitise`: :func:`sanitize_text`, the length caps, URL, email and person-name cleaning;
- :mod:`.lines`: content-line primitives (escaping, folding, date-time and duration text);
- :mod:`.events`: :class:`CalendarEvent`, :func:`deadline_event` and the sanitised view of an
  event every writer shares;
- :mod:`.timezones`: VTIMEZONE text, cached per zone and window of years;
- :mod:`.feed`: :class:`FeedBuilder`, the fast feed serialiser;
- :mod:`.itip`: invitations and cancellations (:func:`invite`, :func:`series_invite`) and
  :func:`event_component`, built with icalendar;
- :mod:`.reference`: :func:`feed_calendar`, the icalendar-based reference the tests compare
  :class:`FeedBuilder` against, and :func:`timezone_component`.
"""

from scheduler.outputs.ics.events import CalendarEvent, deadline_event
from scheduler.outputs.ics.feed import FeedBuilder
from scheduler.outputs.ics.itip import WeekOccurrence, event_component, invite, series_invite
from scheduler.outputs.ics.reference import feed_calendar, timezone_component
from scheduler.outputs.ics.sanitise import sanitize_text

__all__ = [
    "CalendarEvent",
    "FeedBuilder",
    "WeekOccurrence",
    "deadline_event",
    "event_component",
    "feed_calendar",
    "invite",
    "sanitize_text",
    "series_invite",
    "timezone_component",
]
