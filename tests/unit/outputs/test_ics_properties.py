"""Hypothesis: hostile user text never breaks parsing, the fast serialiser equals icalendar's,
and any instant in any zone comes back as the same instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar, vUnknown

from scheduler.outputs.ics import (
    CalendarEvent,
    FeedBuilder,
    feed_calendar,
    invite,
    sanitize_text,
)
from scheduler.timeutil import zone

STAMP = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
START = datetime(2027, 3, 2, 17, 0, tzinfo=UTC)
# st.datetimes takes naive bounds and attaches the zone itself.
FIRST = datetime(2026, 1, 1)  # noqa: DTZ001
LAST = datetime(2030, 12, 31)  # noqa: DTZ001
NASTY = [
    "\r",
    "\n",
    "\r\n",
    "\x00",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9b",
    "\t",
    "\u2028",
    "\u2029",
    "\u200f",
    "\u202e",
    "\ufeff",
    "😀",
    "👩‍👩‍👧",
    "שלום",
    "مرحبا",
    "\\",
    "\\n",
    "\\N",
    ";",
    ",",
    ":",
    '"',
    "^",
    "\ud800",
    "BEGIN:VEVENT",
    "END:VCALENDAR",
    "é" * 40,
    "x" * 80,
]
hostile = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=20)), max_size=12).map(
    "".join
)
# Sometimes longer than the caps (255 for summaries), rarely very long: parsing is the slow part.
long_hostile = st.one_of(
    hostile, hostile, hostile, st.builds(lambda s, n: (s + "é,") * n, hostile, st.integers(1, 60))
)
settings.register_profile(
    "ics", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ics")


def make(
    uid: int,
    summary: str,
    description: str,
    location: str,
    categories: tuple[str, ...],
    alarm: int | None,
    tzid: str = "Europe/Berlin",
    status: str = "CONFIRMED",
) -> CalendarEvent:
    start = START + timedelta(days=uid)
    return CalendarEvent(
        uid=f"occ-{uid}@cohort-scheduler",
        sequence=uid % 3,
        start=start,
        end=start + timedelta(hours=1),
        tzid=tzid,
        summary=summary,
        description=description,
        location=location,
        categories=categories,
        alarm_minutes=alarm,
        status=status,
    )


events = st.builds(
    make,
    uid=st.integers(0, 400),
    summary=long_hostile,
    description=long_hostile,
    location=hostile,
    categories=st.lists(hostile, max_size=3).map(tuple),
    alarm=st.one_of(st.none(), st.integers(0, 2880)),
    tzid=st.sampled_from(
        ["Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe", "America/Bogota", "UTC"]
    ),
    status=st.sampled_from(["CONFIRMED", "CANCELLED"]),
)
event_lists = st.lists(events, min_size=1, max_size=5, unique_by=lambda e: e.uid)


def expected_names(event: CalendarEvent) -> set[str]:
    names = {"DTSTART", "DTEND", "DTSTAMP", "UID", "SEQUENCE", "STATUS", "TRANSP"}
    if sanitize_text(event.summary, limit=255):
        names.add("SUMMARY")
    if sanitize_text(event.description, limit=8000, multiline=True):
        names.add("DESCRIPTION")
    if sanitize_text(event.location, limit=1000):
        names.add("LOCATION")
    if any(sanitize_text(c.replace(",", " "), limit=64) for c in event.categories):
        names.add("CATEGORIES")
    return names


def count_lines(data: bytes) -> tuple[int, int]:
    """(components, properties) from the unfolded content lines."""
    unfolded = data.decode().replace("\r\n ", "").split("\r\n")
    begins = sum(1 for line in unfolded if line.startswith("BEGIN:"))
    props = sum(1 for line in unfolded if line and not line.startswith(("BEGIN:", "END:")))
    return begins, props


def _text_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


@given(event_lists, hostile)
def test_hostile_text_never_breaks_parsing(evs, name):
    data = FeedBuilder(stamp=STAMP).feed(name, evs)
    cal = Calendar.from_ical(data)
    strict = IcsCalendarStream.calendar_from_ics(data.decode())

    # Same structure as built: components and properties survive the round trip.
    assert count_lines(data) == count_lines(cal.to_ical())
    parsed = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    assert len(parsed) == len(strict.events) == len(evs)
    for event in evs:
        got = parsed[event.uid]
        assert set(got) == expected_names(event)
        alarms = got.walk("VALARM")
        assert len(alarms) == (event.alarm_minutes is not None and event.status != "CANCELLED")
        assert not any(sub.name not in ("VALARM",) for sub in got.subcomponents)

    # Text comes back exactly as sanitised, capped; with the strict parser too.
    by_uid = {e.uid: e for e in strict.events}
    for event in evs:
        summary = sanitize_text(event.summary, limit=255)
        description = sanitize_text(event.description, limit=8000, multiline=True)
        assert len(summary) <= 255 and len(description) <= 8000
        assert (by_uid[event.uid].summary or "") == summary
        assert (by_uid[event.uid].description or "") == description
        if "\\" not in summary:  # icalendar's own unescaping is lossy for some backslash runs
            assert str(parsed[event.uid].get("SUMMARY", "")) == summary
    clean_name = sanitize_text(name, limit=255)
    raw_name = cal.get("X-WR-CALNAME", vUnknown("")).to_ical().decode()
    assert raw_name == _text_escape(clean_name)  # written as TEXT: commas etc. escaped
    assert (strict.name or [""])[0] == clean_name  # NAME is written as TEXT


@given(event_lists, hostile)
def test_fast_serialiser_equals_icalendar(evs, name):
    texts = [name] + [t for e in evs for t in (e.summary, e.description, e.location, *e.categories)]
    # icalendar turns a literal backslash-N into a line break; we keep the backslash (RFC 5545).
    assume(not any("\\N" in t for t in texts))
    ours = FeedBuilder(stamp=STAMP).feed(name, evs)
    assert ours == feed_calendar(name, evs, stamp=STAMP).to_ical()


@given(hostile, st.integers(1, 300), st.booleans())
def test_sanitize_text_is_idempotent_capped_and_clean(text, limit, multiline):
    clean = sanitize_text(text, limit=limit, multiline=multiline)
    assert len(clean) <= limit
    assert sanitize_text(clean, limit=limit, multiline=multiline) == clean
    assert "\r" not in clean
    assert multiline or "\n" not in clean
    assert all(
        c == "\n" or c.isprintable() or not (ord(c) < 32 or 0x7F <= ord(c) <= 0x9F) for c in clean
    )
    clean.encode("utf-8")  # no lone surrogates


@given(hostile, hostile, st.sampled_from(["REQUEST", "CANCEL"]))
@example("\\", "", "REQUEST")  # a name that is one backslash once swallowed the address
def test_invites_with_hostile_names_parse(organizer_name, attendee_name, method):
    event = make(1, organizer_name, attendee_name, "", (), 15)
    data = invite(
        event,
        method=method,
        organizer=(organizer_name, "team@example.org"),
        attendee=(attendee_name, "ana@example.org"),
        stamp=STAMP,
    )
    cal = Calendar.from_ical(data)
    strict = IcsCalendarStream.calendar_from_ics(data.decode())
    (vevent,) = cal.walk("VEVENT")
    assert str(vevent["ATTENDEE"]) == "mailto:ana@example.org"
    assert str(vevent["ORGANIZER"]) == "mailto:team@example.org"
    assert strict.events[0].attendees[0].uri == "mailto:ana@example.org"
    assert (strict.events[0].attendees[0].common_name or "") == sanitize_text(
        attendee_name, limit=200
    ).replace('"', "'").replace("\\", "/")
    assert count_lines(data) == count_lines(cal.to_ical())


@given(
    st.datetimes(min_value=FIRST, max_value=LAST, timezones=st.just(UTC)),
    st.timezone_keys(),
    st.integers(1, 600),
)
@settings(max_examples=60)
def test_any_instant_in_any_zone_round_trips(start, tzid, minutes):
    try:
        zone(tzid)
    except ValueError:
        assume(False)
    event = CalendarEvent(
        uid="u@cohort-scheduler",
        sequence=0,
        start=start,
        end=start + timedelta(minutes=minutes),
        tzid=tzid,
        summary="x",
    )
    data = FeedBuilder(stamp=STAMP).feed("Feed", [event])
    (parsed,) = Calendar.from_ical(data).walk("VEVENT")
    assert parsed.start == start.replace(microsecond=0)
    assert parsed.end == (start + timedelta(minutes=minutes)).replace(microsecond=0)
    strict = IcsCalendarStream.calendar_from_ics(data.decode()).events[0]
    assert strict.dtstart == start.replace(microsecond=0)
