"""Rescheduling and cancelling a published plan by hand, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from scheduler.errors import ConfigError, NotFoundError
from scheduler.persistence.models import LiveSeriesRow, NotificationRow, OccurrenceRow
from scheduler.runtime import Runtime
from scheduler.services.changes import Change, apply_change, parse_wall_time, preview_change
from scheduler.services.plans import CANCELLED

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def _occurrence(runtime: Runtime, week: int) -> OccurrenceRow:
    with runtime.transaction() as db:
        series = db.scalar(
            select(LiveSeriesRow).where(
                LiveSeriesRow.series_key == "class",
                LiveSeriesRow.section == 0,
                LiveSeriesRow.slot == 0,
            )
        )
        assert series is not None
        row = db.scalar(
            select(OccurrenceRow).where(
                OccurrenceRow.series_id == series.id, OccurrenceRow.week == week
            )
        )
        assert row is not None
        db.expunge(row)
        return row


def test_move_one_occurrence_keeps_uid_and_queues_updates(published: Runtime) -> None:
    before = _occurrence(published, 2)
    change = Change("class", week=2, to=parse_wall_time("Fri 09:00"))
    now = published.clock.now()
    with published.transaction() as db:
        preview = preview_change(db, SLUG, change, now)
        assert [m.week for m in preview.occurrences] == [2]
        assert preview.emails == preview.people >= 2  # its learners and the facilitator
        result = apply_change(db, SLUG, change, now)
    after = _occurrence(published, 2)
    assert after.uid == before.uid
    assert after.sequence == before.sequence + 1
    assert after.start != before.start
    assert after.end - after.start == before.end - before.start
    assert after.start.astimezone(ZoneInfo("Europe/Berlin")).hour == 9
    assert _occurrence(published, 3).sequence == 0  # the other weeks stay
    with published.transaction() as db:
        rows = list(db.scalars(select(NotificationRow).where(NotificationRow.kind == "update")))
    assert len(rows) == preview.emails == result.invites.updates  # one updated invitation each
    assert len({r.payload["uid"] for r in rows}) == 1  # the series' invitation
    assert all(r.target_version == 2 for r in rows)
    assert len({r.message_id for r in rows}) == len(rows)
    assert result.version == 2


def test_cancel_series_from_a_week(published: Runtime) -> None:
    now = published.clock.now()
    with published.transaction() as db:
        result = apply_change(db, SLUG, Change("class", from_week=5), now)
        cancelled = db.scalar(
            select(func.count()).select_from(OccurrenceRow).where(OccurrenceRow.status == CANCELLED)
        )
        kinds = set(
            db.scalars(select(NotificationRow.kind).where(NotificationRow.kind != "welcome"))
        )
    assert cancelled == len(result.preview.occurrences) == 3  # weeks 6, 7, 8
    assert kinds == {"invite", "update"}  # the rest of the series still meets: an update
    assert result.invites.updates == result.preview.people
    assert _occurrence(published, 4).status != CANCELLED


def test_past_occurrences_cannot_change(published: Runtime) -> None:
    first = _occurrence(published, 0)
    later = first.start + timedelta(minutes=1)
    with pytest.raises(NotFoundError, match="no future"), published.transaction() as db:
        preview_change(db, SLUG, Change("class", week=0), later)


def test_unknown_series_and_bad_time(published: Runtime) -> None:
    with pytest.raises(NotFoundError, match="published: class"), published.transaction() as db:
        preview_change(db, SLUG, Change("klass"), published.clock.now())
    with pytest.raises(ConfigError):
        parse_wall_time("Someday 25:00")
