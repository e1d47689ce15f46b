"""The event value: :class:`CalendarEvent` (one VEVENT), :func:`deadline_event`, and the
sanitised, serialisation-ready view of an event that every writer (fast feed, icalendar
reference, invitations) shares, with feed ordering, UID uniqueness and zone spans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from scheduler.outputs.ics.sanitise import (
    CATEGORY_LIMIT,
    DESCRIPTION_LIMIT,
    LOCATION_LIMIT,
    MAX_CATEGORIES,
    SUMMARY_LIMIT,
    _clean_url,
    sanitize_text,
)
from scheduler.timeutil import zone

PRODUCT_ID: Final = "-//cohort-scheduler//EN"
STATUSES: Final = frozenset({"CONFIRMED", "TENTATIVE", "CANCELLED"})
DEADLINE_BLOCK: Final = timedelta(minutes=30)


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
