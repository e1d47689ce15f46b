"""Series invitations: one recurring event whose expansion is exactly the planned meetings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import recurring_ical_events
from ical.calendar_stream import IcsCalendarStream
from icalendar import Calendar

from scheduler.outputs.ics import CalendarEvent, WeekOccurrence, series_invite
from scheduler.timeutil import wall_to_utc

BERLIN = ZoneInfo("Europe/Berlin")
STAMP = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
ORGANIZER = ("Course team", "team@example.org")
ATTENDEE = ("Ann Lee", "ann@example.org")


def weeks(count: int, first: date, wall: time) -> list[WeekOccurrence | None]:
    out: list[WeekOccurrence | None] = []
    for w in range(count):
        start = wall_to_utc(first + timedelta(weeks=w), wall, BERLIN)
        out.append(WeekOccurrence(start, start, start + timedelta(minutes=90)))
    return out


def series(held: list[WeekOccurrence | None]) -> CalendarEvent:
    first = next(w for w in held if w is not None)
    return CalendarEvent(
        uid="series-1@cohort-scheduler",
        sequence=2,
        start=first.start,
        end=first.start + timedelta(minutes=90),
        tzid="Europe/Berlin",
        summary="Live class",
    )


def expanded(data: bytes) -> list[tuple[datetime, datetime]]:
    cal = Calendar.from_ical(data)
    found = recurring_ical_events.of(cal).between(date(2027, 1, 1), date(2027, 12, 31))
    return sorted((e["DTSTART"].dt.astimezone(UTC), e["DTEND"].dt.astimezone(UTC)) for e in found)


def held_times(held: list[WeekOccurrence | None]) -> list[tuple[datetime, datetime]]:
    return sorted((w.start, w.end) for w in held if w is not None and not w.cancelled)


def test_expansion_across_the_march_change_is_the_planned_meetings() -> None:
    held = weeks(8, date(2027, 3, 2), time(18, 0))  # Tuesdays; Berlin changes on 28 March
    data = series_invite(
        series(held), held, method="REQUEST", organizer=ORGANIZER, attendee=ATTENDEE, stamp=STAMP
    )
    assert expanded(data) == held_times(held)
    assert {s.astimezone(BERLIN).hour for s, _ in expanded(data)} == {18}
    text = data.decode()
    assert "METHOD:REQUEST" in text
    assert "RRULE:FREQ=WEEKLY;COUNT=8" in text
    assert "RSVP=TRUE" in text
    IcsCalendarStream.calendar_from_ics(text)  # the strict parser accepts it


def test_moved_cancelled_and_blacked_out_weeks() -> None:
    held = weeks(6, date(2027, 3, 2), time(18, 0))
    moved = held[2]
    assert moved is not None
    new_start = moved.start + timedelta(days=1, hours=1)
    held[2] = WeekOccurrence(moved.rule_start, new_start, new_start + timedelta(minutes=90))
    cancelled = held[3]
    assert cancelled is not None
    held[3] = WeekOccurrence(cancelled.rule_start, cancelled.start, cancelled.end, cancelled=True)
    held[4] = None  # a blackout week
    data = series_invite(
        series(held), held, method="REQUEST", organizer=ORGANIZER, attendee=ATTENDEE, stamp=STAMP
    )
    assert expanded(data) == held_times(held)
    text = data.decode()
    assert text.count("BEGIN:VEVENT") == 2  # the series and one override
    assert "RECURRENCE-ID;TZID=Europe/Berlin:20270316T180000" in text
    assert "EXDATE" in text


def test_cancel_of_a_whole_series() -> None:
    held = weeks(4, date(2027, 3, 2), time(18, 0))
    data = series_invite(
        series(held), held, method="CANCEL", organizer=ORGANIZER, attendee=ATTENDEE, stamp=STAMP
    )
    text = data.decode()
    assert "METHOD:CANCEL" in text
    assert "STATUS:CANCELLED" in text
    assert "UID:series-1@cohort-scheduler" in text
    assert "RSVP=TRUE" not in text
