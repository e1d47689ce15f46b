"""Series invitations queued in the outbox by diff, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date

import pytest
import recurring_ical_events
from icalendar import Calendar
from sqlalchemy import select

from scheduler.persistence.models import LiveSeriesRow, NotificationRow, OccurrenceRow
from scheduler.runtime import Runtime
from scheduler.services import publishing
from scheduler.services.changes import Change, apply_change, parse_wall_time
from scheduler.services.invites import invite_message, queue_invites, series_uid
from scheduler.services.plans import plan_cohort
from scheduler.services.roster import import_roster

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def _rows(runtime: Runtime, kind: str) -> list[NotificationRow]:
    with runtime.transaction() as db:
        rows = list(db.scalars(select(NotificationRow).where(NotificationRow.kind == kind)))
        for row in rows:
            db.expunge(row)
        return rows


def test_publish_invites_each_attendee_once_per_series(published: Runtime) -> None:
    invites = _rows(published, "invite")
    with published.transaction() as db:
        series = [s for s in db.scalars(select(LiveSeriesRow)) if s.kind != "coworking"]
        uids = {series_uid(SLUG, s) for s in series}
        again = queue_invites(db, SLUG, published.clock.now())
    assert invites
    assert {r.target for r in invites} <= uids
    assert len({(r.person_id, r.target) for r in invites}) == len(invites)
    assert {r.payload["method"] for r in invites} == {"REQUEST"}
    assert (again.invites, again.updates, again.cancellations) == (0, 0, 0)  # idempotent


def test_section_move_cancels_old_series_and_invites_new(
    published: Runtime, make_roster: Callable[..., bytes]
) -> None:
    moved = [
        ROWS[0],
        ["Sam", "sam@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "", ""],
        ROWS[2],
    ]
    now = published.clock.now()
    with published.transaction() as db:
        import_roster(db, SLUG, make_roster(moved), "r.csv", now)
        _, _, plan = plan_cohort(db, SLUG)
        publishing.publish(db, SLUG, plan, now)
    cancellations = _rows(published, "cancellation")
    assert cancellations  # Sam's old class section
    assert {r.payload["method"] for r in cancellations} == {"CANCEL"}
    invited = {(r.person_id, r.target) for r in _rows(published, "invite")}
    assert all((r.person_id, r.target) in invited for r in cancellations)


def test_update_carries_a_series_invite_that_expands_to_the_held_meetings(
    published: Runtime,
) -> None:
    now = published.clock.now()
    with published.transaction() as db:
        apply_change(db, SLUG, Change("class", week=2, to=parse_wall_time("Fri 09:00")), now)
        apply_change(db, SLUG, Change("class", week=4), now)  # and cancel week 5
        update = db.scalars(
            select(NotificationRow)
            .where(NotificationRow.kind == "update")
            .order_by(NotificationRow.id.desc())
        ).first()
        assert update is not None
        data = invite_message(db, update, ("Course team", "team@example.org"))
        held = sorted(
            (o.start, o.end)
            for o in db.scalars(
                select(OccurrenceRow).where(
                    OccurrenceRow.series_id == update.payload["series_id"],
                    OccurrenceRow.status == "scheduled",
                )
            )
        )
    cal = Calendar.from_ical(data)
    found = recurring_ical_events.of(cal).between(date(2027, 1, 1), date(2027, 12, 31))
    expanded = sorted(
        (e["DTSTART"].dt.astimezone(UTC), e["DTEND"].dt.astimezone(UTC)) for e in found
    )
    assert expanded == held  # the moved week at its new time, the cancelled one gone
    assert b"RECURRENCE-ID" in data
    assert b"EXDATE" in data
    assert f"SEQUENCE:{update.target_version}".encode() in data
