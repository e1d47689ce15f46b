"""Feeds and invites: interoperability (icalendar, ical, recurring-ical-events), determinism,
time zones across DST, cancellations, invites, and a golden feed."""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import recurring_ical_events  # type: ignore[import-untyped]
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar, Timezone

from scheduler.outputs.ics import (
    CalendarEvent,
    FeedBuilder,
    deadline_event,
    feed_calendar,
    invite,
    sanitize_text,
)

STAMP = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
GOLDEN = Path(__file__).parent / "golden" / "personal_feed.ics"
ORGANIZER = ("Spring Cohort, Team", "courses@example.org")
LEARNER = ("Ana Lima", "ana@example.org")


def wall(day: date, clock: time, zone_name: str) -> datetime:
    """The UTC instant of a wall time that exists (tests pick such times)."""
    return datetime.combine(day, clock, ZoneInfo(zone_name)).astimezone(UTC)


@pytest.fixture
def make_event() -> Callable[..., CalendarEvent]:
    counter = iter(range(10_000))

    def build(**overrides: Any) -> CalendarEvent:
        n = next(counter)
        start = overrides.pop("start", datetime(2027, 3, 2, 17, 0, tzinfo=UTC) + timedelta(days=n))
        values: dict[str, Any] = {
            "uid": f"occ-{n}@cohort-scheduler",
            "sequence": 0,
            "start": start,
            "end": start + timedelta(minutes=90),
            "tzid": "Europe/Berlin",
            "summary": f"Live class {n}",
            "description": "Agenda:\n1. Recap\n2. Exercises",
            "location": "https://meet.example.org/j/123",
            "url": "https://cohort.example.org/sessions",
            "categories": ("Live class",),
        }
        values.update(overrides)
        return CalendarEvent(**values)

    return build


def parse_everywhere(data: bytes) -> Calendar:
    """Parse with icalendar and the stricter ical package; apply the checks parsers let through."""
    text = data.decode("utf-8")
    assert "\n" not in text.replace("\r\n", "")  # CRLF only
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    strict = IcsCalendarStream.calendar_from_ics(text)
    cal = Calendar.from_ical(data)
    assert isinstance(cal, Calendar)
    events = cal.walk("VEVENT")
    assert len(strict.events) == len(events)
    used: set[str] = set()
    for event in events:
        assert event.get("UID")
        assert event.get("DTSTAMP")
        assert event.end > event.start
        for name in ("DTSTART", "DTEND"):
            tzid = event[name].params.get("TZID")
            if tzid:
                used.add(tzid)
    timezones = [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")]
    assert sorted(timezones) == sorted(used)  # one per TZID used, no more, no fewer
    return cal


# --- feeds ------------------------------------------------------------------------------------


def test_feed_parses_everywhere_and_has_the_calendar_properties(make_event):
    events = [make_event(tzid=z) for z in ("Europe/Berlin", "Asia/Kolkata", "UTC")]
    data = FeedBuilder(stamp=STAMP).feed("Spring 2027: Ana", events, refresh=timedelta(hours=6))
    cal = parse_everywhere(data)
    text = data.decode()
    assert cal["VERSION"] == "2.0"
    assert cal["PRODID"] == "-//cohort-scheduler//EN"
    assert cal["CALSCALE"] == "GREGORIAN"
    assert "\r\nX-WR-CALNAME:Spring 2027: Ana\r\n" in text
    assert "\r\nNAME:Spring 2027: Ana\r\n" in text
    assert "\r\nREFRESH-INTERVAL;VALUE=DURATION:PT6H\r\n" in text
    assert "\r\nX-PUBLISHED-TTL:PT6H\r\n" in text
    assert "METHOD" not in cal  # PUBLISH would require an ORGANIZER in every event
    assert [str(e["UID"]) for e in cal.walk("VEVENT")] == [e.uid for e in events]
    assert all(e["DTSTAMP"].dt == STAMP for e in cal.walk("VEVENT"))
    utc_event = cal.walk("VEVENT")[2]
    assert "DTSTART:20270304T170000Z" in text and "TZID" not in utc_event["DTSTART"].params


def test_feed_is_byte_identical_to_the_icalendar_reference(make_event):
    events = [
        make_event(tzid="Australia/Lord_Howe", alarm_minutes=15),
        make_event(tzid="America/Bogota", summary="Q&A; week 1, part \\ 2 " + "é" * 60),
        make_event(status="CANCELLED", sequence=3, categories=("Live class", "a;b")),
        deadline_event(
            uid="dl-1@cohort-scheduler",
            sequence=1,
            due=datetime(2027, 3, 5, 18, 29, tzinfo=UTC),
            tzid="Asia/Kolkata",
            title="Reading 1",
        ),
    ]
    ours = FeedBuilder(stamp=STAMP).feed("Ana, Spring; 2027", events)
    reference = feed_calendar("Ana, Spring; 2027", events, stamp=STAMP).to_ical()
    assert ours == reference


def test_same_plan_gives_byte_identical_feeds_whatever_the_order(make_event):
    events = [make_event(tzid=z) for z in ("Europe/Berlin", "Asia/Kolkata", "America/Bogota")] * 1
    events += [make_event(start=events[0].start, uid="same-start@cohort-scheduler")]
    first = FeedBuilder(stamp=STAMP).feed("Feed", events)
    shuffled = events[:]
    random.Random(7).shuffle(shuffled)
    builder = FeedBuilder(stamp=STAMP)
    assert builder.feed("Feed", shuffled) == first
    assert builder.feed("Feed", list(reversed(events))) == first  # warm: from cached bytes
    starts = [e.start for e in parse_everywhere(first).walk("VEVENT")]
    assert starts == sorted(starts)


def test_a_new_stamp_changes_every_dtstamp_and_nothing_else(make_event):
    events = [make_event(), make_event()]
    old = FeedBuilder(stamp=STAMP).feed("Feed", events).decode()
    new = FeedBuilder(stamp=STAMP + timedelta(minutes=5)).feed("Feed", events).decode()
    assert old.replace("DTSTAMP:20270201T090000Z", "DTSTAMP:20270201T090500Z") == new


def test_cancelled_occurrence_stays_with_status_and_sequence(make_event):
    live = make_event(alarm_minutes=15)
    cancelled = replace(live, status="CANCELLED", sequence=live.sequence + 1)
    cal = parse_everywhere(FeedBuilder(stamp=STAMP).feed("Feed", [cancelled, make_event()]))
    event = next(e for e in cal.walk("VEVENT") if e["UID"] == live.uid)
    assert event["STATUS"] == "CANCELLED"
    assert event["SEQUENCE"] == 1
    assert event["TRANSP"] == "TRANSPARENT"
    assert not event.walk("VALARM")


def test_event_bytes_are_cached_by_value(make_event):
    builder = FeedBuilder(stamp=STAMP)
    event = make_event()
    first = builder.event_bytes(event)
    assert builder.event_bytes(replace(event)) is first
    moved = replace(
        event,
        start=event.start + timedelta(hours=1),
        end=event.end + timedelta(hours=1),
        sequence=1,
    )
    assert builder.event_bytes(moved) != first
    assert first.startswith(b"BEGIN:VEVENT\r\n") and first.endswith(b"END:VEVENT\r\n")


def test_alarm_and_transparency(make_event):
    cal = parse_everywhere(FeedBuilder(stamp=STAMP).feed("Feed", [make_event(alarm_minutes=90)]))
    (event,) = cal.walk("VEVENT")
    (alarm,) = event.walk("VALARM")
    assert alarm["ACTION"] == "DISPLAY"
    assert alarm["TRIGGER"].dt == timedelta(minutes=-90)
    assert event["TRANSP"] == "OPAQUE"


def test_deadline_is_a_transparent_block_ending_at_the_deadline():
    due = wall(date(2027, 3, 9), time(23, 59), "Asia/Kolkata")
    event = deadline_event(
        uid="dl@cohort-scheduler", sequence=0, due=due, tzid="Asia/Kolkata", title="Essay\r\n1"
    )
    cal = parse_everywhere(FeedBuilder(stamp=STAMP).feed("Feed", [event]))
    (parsed,) = cal.walk("VEVENT")
    assert parsed["SUMMARY"] == "Due: Essay 1"
    assert parsed["TRANSP"] == "TRANSPARENT"
    assert parsed.end == due
    assert (parsed.end.date(), parsed.end.time()) == (date(2027, 3, 9), time(23, 59))
    assert parsed.end - parsed.start == timedelta(minutes=30)
    assert not parsed.walk("VALARM")


def test_hostile_calendar_name_cannot_inject_lines(make_event):
    name = "Ana\r\nBEGIN:VEVENT\rUID:evil\nX-EVIL:1\x00\x1b"
    data = FeedBuilder(stamp=STAMP).feed(name, [make_event()])
    cal = parse_everywhere(data)
    assert len(cal.walk("VEVENT")) == 1
    assert "X-EVIL" not in cal
    assert b"\r\nX-WR-CALNAME:Ana BEGIN:VEVENT UID:evil X-EVIL:1\r\n" in data


def test_only_http_urls_are_kept(make_event):
    builder = FeedBuilder(stamp=STAMP)
    assert b"URL:" not in builder.event_bytes(make_event(url="javascript:alert(1)"))
    assert b"\r\nURL:https://x.org/a%20b\r\n" in builder.event_bytes(
        make_event(url=" https://x.org/a b")
    )


def test_duplicate_uids_are_refused(make_event):
    event = make_event()
    with pytest.raises(ValueError, match="same UID"):
        FeedBuilder(stamp=STAMP).feed("Feed", [event, replace(event, sequence=1)])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"start": datetime(2027, 3, 2, 17, 0)}, "aware", id="naive_start"),  # noqa: DTZ001
        pytest.param(
            {"end": datetime(2027, 3, 2, 17, 0, tzinfo=UTC)},
            "after start",
            id="end_not_after_start",
        ),
        pytest.param({"tzid": "Mars/Olympus"}, "unknown time zone", id="unknown_zone"),
        pytest.param({"status": "MAYBE"}, "status", id="unknown_status"),
        pytest.param({"sequence": -1}, "sequence", id="negative_sequence"),
        pytest.param({"uid": "a\nb"}, "uid", id="uid_with_newline"),
        pytest.param({"alarm_minutes": -5}, "alarm_minutes", id="negative_alarm"),
    ],
)
def test_invalid_events_are_refused(make_event, overrides, message):
    with pytest.raises(ValueError, match=message):
        make_event(**{"start": datetime(2027, 3, 2, 17, 0, tzinfo=UTC), **overrides})


# --- time zones -------------------------------------------------------------------------------

# (zone, first day, wall time): weekly at that wall time for 5 weeks, crossing the zone's change.
ZONE_CASES = [
    pytest.param("Europe/Berlin", date(2027, 3, 16), time(18, 0), id="berlin_spring_forward"),
    pytest.param("Europe/Berlin", date(2027, 10, 19), time(18, 0), id="berlin_fall_back"),
    pytest.param("America/New_York", date(2027, 3, 2), time(9, 30), id="new_york_spring_forward"),
    pytest.param("Asia/Kolkata", date(2027, 3, 16), time(19, 30), id="half_hour_kolkata"),
    pytest.param(
        "Australia/Lord_Howe", date(2027, 3, 23), time(7, 0), id="half_hour_dst_lord_howe"
    ),
    pytest.param("Australia/Sydney", date(2027, 3, 23), time(7, 0), id="southern_sydney"),
    pytest.param("America/Bogota", date(2027, 3, 16), time(12, 0), id="no_dst_bogota"),
]


@pytest.mark.parametrize(("zone_name", "first_day", "clock"), ZONE_CASES)
def test_expanding_the_feed_gives_the_planned_occurrences_at_local_times(
    zone_name, first_day, clock
):
    planned = {}
    events = []
    for week in range(5):
        day = first_day + timedelta(weeks=week)
        start = wall(day, clock, zone_name)
        uid = f"{zone_name}-{week}@cohort-scheduler"
        planned[uid] = (start, datetime.combine(day, clock))
        events.append(
            CalendarEvent(
                uid=uid,
                sequence=0,
                start=start,
                end=start + timedelta(hours=1),
                tzid=zone_name,
                summary=f"Week {week}",
            )
        )
    data = FeedBuilder(stamp=STAMP).feed("Feed", events)
    cal = parse_everywhere(data)

    expanded = recurring_ical_events.of(cal).between(
        datetime(2026, 1, 1, tzinfo=UTC), datetime(2029, 1, 1, tzinfo=UTC)
    )
    got = {str(e["UID"]): e.start for e in expanded}
    assert got.keys() == planned.keys()
    for uid, (instant, local_wall) in planned.items():
        assert got[uid] == instant
        assert got[uid].replace(tzinfo=None) == local_wall  # expressed in the zone's wall time
        assert got[uid].utcoffset() == ZoneInfo(zone_name).utcoffset(local_wall)

    strict = IcsCalendarStream.calendar_from_ics(data.decode())
    assert {e.uid: e.dtstart for e in strict.events} == {u: p[0] for u, p in planned.items()}
    offsets = {got[u].utcoffset() for u in planned}
    if zone_name in ("America/Bogota", "Asia/Kolkata"):
        assert len(offsets) == 1
    else:
        assert len(offsets) == 2  # the case really crosses a change


@pytest.mark.parametrize(
    "zone_name",
    [
        "Europe/Berlin",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "America/Bogota",
        "Africa/Casablanca",
        "Pacific/Chatham",
        "America/Santiago",
    ],
)
def test_vtimezone_read_by_icalendar_gives_zoneinfo_offsets(zone_name):
    """Our VTIMEZONE is no longer icalendar's ``Timezone.from_tzid`` text (that is RDATE-only,
    which Outlook mishandles: see scheduler/outputs/vtimezone.py). icalendar, turning our text
    into a tzinfo of its own (not looking the TZID up), gives zoneinfo's offset every 6 hours of
    the window (2026-2029) and on each side of every change."""
    ours = FeedBuilder(stamp=STAMP).timezone_bytes(zone_name)
    tz = Timezone.from_ical(ours).to_tz(lookup_tzid=False)
    assert not isinstance(tz, ZoneInfo)
    reference = ZoneInfo(zone_name)
    moment, end = datetime(2026, 1, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    changes = 0
    while moment < end:
        before = moment.astimezone(reference).utcoffset()
        assert moment.astimezone(tz).utcoffset() == before, moment
        after = (moment + timedelta(hours=6)).astimezone(reference).utcoffset()
        if after != before:  # find the change to the second, check both sides
            lo, hi = moment, moment + timedelta(hours=6)
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if mid.astimezone(reference).utcoffset() == before else (lo, mid)
            for probe in (lo, hi):
                assert probe.astimezone(tz).utcoffset() == probe.astimezone(reference).utcoffset()
            changes += 1
        moment += timedelta(hours=6)
    if zone_name in ("Asia/Kolkata", "America/Bogota"):
        assert changes == 0 and b"RRULE" not in ours
    elif zone_name in ("Europe/Berlin", "Australia/Lord_Howe", "Pacific/Chatham"):
        assert changes == 8 and b"RRULE:FREQ=YEARLY;BYDAY=" in ours and b"RDATE" not in ours
    else:  # Ramadan in Casablanca, Saturday 24:00 in Santiago: no BYDAY rule, RDATE form
        assert changes > 0 and b"RRULE" not in ours


def test_zone_without_dst_has_one_observance():
    tz = Timezone.from_ical(FeedBuilder(stamp=STAMP).timezone_bytes("America/Bogota"))
    assert len(tz.standard) == 1 and not tz.daylight
    assert FeedBuilder(stamp=STAMP).timezone_bytes("UTC") == b""


def test_vtimezone_window_widens_for_events_outside_it(make_event):
    late = make_event(start=datetime(2032, 6, 1, 17, 0, tzinfo=UTC))
    text = FeedBuilder(stamp=STAMP).feed("Feed", [late, make_event()]).decode()
    assert text.count("BEGIN:VTIMEZONE") == 1
    assert "only works from 2026-01-01 to 2033-01-01" in text
    # The 2032 spring change is described (by the yearly rule): read by icalendar as a tzinfo of
    # its own, the clocks go forward at 01:00 UTC on 28 March 2032.
    [vtimezone] = Calendar.from_ical(text.encode()).walk("VTIMEZONE")
    tz = vtimezone.to_tz(lookup_tzid=False)
    change = datetime(2032, 3, 28, 1, 0, tzinfo=UTC)
    assert (change - timedelta(seconds=1)).astimezone(tz).utcoffset() == timedelta(hours=1)
    assert change.astimezone(tz).utcoffset() == timedelta(hours=2)


def test_alias_zone_is_written_with_its_canonical_name(make_event):
    text = FeedBuilder(stamp=STAMP).feed("Feed", [make_event(tzid="Asia/Calcutta")]).decode()
    assert "TZID=Asia/Kolkata:" in text and "TZID:Asia/Kolkata\r\n" in text


# --- invites ----------------------------------------------------------------------------------


def test_request_invite(make_event):
    event = make_event(sequence=2)
    data = invite(event, method="REQUEST", organizer=ORGANIZER, attendee=LEARNER, stamp=STAMP)
    cal = parse_everywhere(data)
    assert cal["METHOD"] == "REQUEST"
    (vevent,) = cal.walk("VEVENT")
    assert vevent["UID"] == event.uid and vevent["SEQUENCE"] == 2
    assert str(vevent["ORGANIZER"]) == "mailto:courses@example.org"
    assert vevent["ORGANIZER"].params["CN"] == "Spring Cohort, Team"
    attendee = vevent["ATTENDEE"]
    assert str(attendee) == "mailto:ana@example.org"
    assert attendee.params["RSVP"] == "TRUE"
    assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
    assert attendee.params["CN"] == "Ana Lima"
    strict = IcsCalendarStream.calendar_from_ics(data.decode())
    assert strict.method == "REQUEST"
    assert strict.events[0].attendees[0].rsvp is True


def test_cancel_invite(make_event):
    event = make_event(sequence=3, alarm_minutes=15)
    data = invite(event, method="cancel", organizer=ORGANIZER, attendee=LEARNER, stamp=STAMP)
    cal = parse_everywhere(data)
    assert cal["METHOD"] == "CANCEL"
    (vevent,) = cal.walk("VEVENT")
    assert vevent["STATUS"] == "CANCELLED" and vevent["SEQUENCE"] == 3
    assert "RSVP" not in vevent["ATTENDEE"].params
    assert not vevent.walk("VALARM")


def test_invite_event_is_the_feed_event_plus_people(make_event):
    event = make_event()
    data = invite(event, method="REQUEST", organizer=ORGANIZER, attendee=LEARNER, stamp=STAMP)
    feed_event = Calendar.from_ical(FeedBuilder(stamp=STAMP).feed("F", [event])).walk("VEVENT")[0]
    invite_event = Calendar.from_ical(data).walk("VEVENT")[0]
    assert {k: invite_event[k] for k in feed_event} == dict(feed_event)
    assert set(invite_event) - set(feed_event) == {"ORGANIZER", "ATTENDEE"}


@pytest.mark.parametrize(
    ("method", "attendee", "message"),
    [
        pytest.param("PUBLISH", LEARNER, "method", id="unsupported_method"),
        pytest.param(
            "REQUEST", ("Ana", "ana@example.org\r\nBcc: x@y"), "email", id="email_injection"
        ),
        pytest.param("REQUEST", ("Ana", "not-an-email"), "email", id="no_at_sign"),
    ],
)
def test_invalid_invites_are_refused(make_event, method, attendee, message):
    with pytest.raises(ValueError, match=message):
        invite(make_event(), method=method, organizer=ORGANIZER, attendee=attendee, stamp=STAMP)


def test_invite_with_hostile_names(make_event):
    attendee = ('Ann "the\r\nBoss"; Lee: ^x', "ann@example.org")
    data = invite(
        make_event(), method="REQUEST", organizer=ORGANIZER, attendee=attendee, stamp=STAMP
    )
    cal = parse_everywhere(data)
    (vevent,) = cal.walk("VEVENT")
    assert vevent["ATTENDEE"].params["CN"] == "Ann 'the Boss'; Lee: ^x"
    assert str(vevent["ATTENDEE"]) == "mailto:ann@example.org"


# --- sanitising -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "multiline", "expected"),
    [
        pytest.param("a\r\nb\rc\nd", False, "a b c d", id="line_breaks_to_spaces"),
        pytest.param("a\r\nb\rc\nd", True, "a\nb\nc\nd", id="line_breaks_kept_in_descriptions"),
        pytest.param("a\x00b\x1b[31mc\x7fd\x9fe", False, "ab[31mcde", id="control_characters"),
        pytest.param("a\tb", False, "a b", id="tab"),
        pytest.param("a\u2028b\x85c", True, "a\nb\nc", id="unicode_line_separators"),
        pytest.param("  x  \n", True, "x", id="stripped"),
        pytest.param("שלום 👩‍👩‍👧 مرحبا", False, "שלום 👩‍👩‍👧 مرحبا", id="rtl_and_emoji_unchanged"),
        pytest.param("a\ud800b", False, "ab", id="lone_surrogate"),
    ],
)
def test_sanitize_text(raw, multiline, expected):
    assert sanitize_text(raw, limit=100, multiline=multiline) == expected


def test_sanitize_text_caps_length():
    assert sanitize_text("x" * 300, limit=255) == "x" * 254 + "…"
    assert sanitize_text("ab  cd", limit=4) == "ab…"
    with pytest.raises(ValueError, match="limit must be positive"):
        sanitize_text("x", limit=0)


def test_long_user_text_is_capped_in_the_feed(make_event):
    event = make_event(summary="S" * 1000, description="D" * 20_000, location="L" * 5000)
    (parsed,) = parse_everywhere(FeedBuilder(stamp=STAMP).feed("N" * 999, [event])).walk("VEVENT")
    assert len(parsed["SUMMARY"]) == 255
    assert len(parsed["DESCRIPTION"]) == 8000
    assert len(parsed["LOCATION"]) == 1000


# --- golden file ------------------------------------------------------------------------------


def golden_events() -> list[CalendarEvent]:
    start = wall(date(2027, 3, 23), time(18, 0), "Europe/Berlin")
    after_change = wall(date(2027, 3, 30), time(18, 0), "Europe/Berlin")
    return [
        CalendarEvent(
            uid="1f0e6b8c-5a52-5d8e-9a55-0d7c0f6c2a11@cohort-scheduler",
            sequence=1,
            start=start,
            end=start + timedelta(minutes=90),
            tzid="Europe/Berlin",
            summary="Week 2: Live class (section A)",
            description="Agenda:\n1. Recap, questions\n2. Pair exercise; bring your notes",
            location="https://meet.example.org/j/8413370042",
            url="https://cohort.example.org/c/spring-2027",
            categories=("Live class",),
            alarm_minutes=15,
        ),
        CalendarEvent(
            uid="7c9d1e2f-0b3a-5c4d-8e5f-6a7b8c9d0e1f@cohort-scheduler",
            sequence=2,
            start=after_change,
            end=after_change + timedelta(minutes=90),
            tzid="Europe/Berlin",
            summary="Week 3: Live class (section A)",
            status="CANCELLED",
        ),
        deadline_event(
            uid="3d2c1b0a-9f8e-5d7c-6b5a-4f3e2d1c0b9a@cohort-scheduler",
            sequence=0,
            due=wall(date(2027, 3, 25), time(23, 59), "Asia/Kolkata"),
            tzid="Asia/Kolkata",
            title="Week 2 reading",
            description="Soft deadline. The hard cut-off is 72 hours later.",
        ),
    ]


def test_golden_feed():
    data = FeedBuilder(stamp=STAMP).feed("Spring 2027 — Ana Lima", golden_events())
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_bytes(data)
    assert data == GOLDEN.read_bytes()
    parse_everywhere(data)
