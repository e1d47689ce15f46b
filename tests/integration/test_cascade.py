"""What follows a change, in one call: after a meeting moves, ``bring_up_to_date`` brings the
deadlines, invitations, reminders and feeds up to date; a second call writes nothing new.
On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
    LearnerDeadlinesRow,
    LiveSeriesRow,
    NotificationRow,
    OccurrenceRow,
    PlanVersionRow,
    SectionMemberRow,
)
from scheduler.runtime import Runtime
from scheduler.services.cascade import CascadeResult, bring_up_to_date
from scheduler.services.cohorts import load_cohort
from scheduler.services.deadlines import learner_items
from scheduler.services.invites import InviteCounts
from scheduler.services.plans import published_version
from scheduler.services.reminders import DEADLINE_REMINDER, LIVE_REMINDER, ReminderCounts
from scheduler.services.roster import import_roster

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]
HORIZON = timedelta(days=7)


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def _class_meeting(runtime: Runtime, week: int) -> tuple[int, str, datetime, int]:
    """(id, uid, start, sequence) of the class's section 1, slot 1 meeting in ``week``
    (0-based)."""
    with runtime.transaction() as db:
        row = db.execute(
            select(OccurrenceRow.id, OccurrenceRow.uid, OccurrenceRow.start, OccurrenceRow.sequence)
            .join(LiveSeriesRow, LiveSeriesRow.id == OccurrenceRow.series_id)
            .where(
                LiveSeriesRow.series_key == "class",
                LiveSeriesRow.section == 0,
                LiveSeriesRow.slot == 0,
                OccurrenceRow.week == week,
            )
        ).one()
        return row[0], row[1], row[2], row[3]


def _move_by_hand(runtime: Runtime, occurrence_id: int, by: timedelta, now: datetime) -> int:
    """What a change writes before its consequences: new times, SEQUENCE + 1, a new plan
    version. Returns that version."""
    with runtime.transaction() as db:
        cohort = repo.get_cohort(db, SLUG)
        version = (published_version(db, cohort.id) or 0) + 1
        row = db.get(OccurrenceRow, occurrence_id)
        assert row is not None
        row.start, row.end = row.start + by, row.end + by
        row.sequence += 1
        row.changed_in_version = version
        db.add(PlanVersionRow(cohort_id=cohort.id, version=version, created_at=now, summary={}))
        return version


def _feeds_version(runtime: Runtime) -> int:
    with runtime.transaction() as db:
        version = db.scalar(select(CohortRow.feeds_version).where(CohortRow.slug == SLUG))
        assert version is not None
        return version


def _outbox(runtime: Runtime) -> list[tuple[str, str, int, str, datetime]]:
    """Every notification row: (kind, target, target version, status, due)."""
    with runtime.transaction() as db:
        return sorted(
            (r.kind, r.target, r.target_version, r.status, r.due_at)
            for r in db.scalars(select(NotificationRow))
        )


def _deadlines(runtime: Runtime) -> dict[int, list[tuple[str, datetime]]]:
    """person id -> their (item key, soft deadline) list."""
    with runtime.transaction() as db:
        cohort = repo.get_cohort(db, SLUG)
        people = db.scalars(
            select(LearnerDeadlinesRow.person_id).where(LearnerDeadlinesRow.cohort_id == cohort.id)
        ).all()
        return {
            p: [(i.key, i.soft) for i in learner_items(db, cohort.id, p)] for p in sorted(people)
        }


def test_one_call_brings_everything_up_to_date_after_a_move(published: Runtime) -> None:
    occurrence_id, uid, start, sequence = _class_meeting(published, 2)
    now = start - timedelta(days=3)  # the meeting's reminders fall within the horizon
    with published.transaction() as db:  # the reminders as they are before the move
        bring_up_to_date(db, SLUG, now, horizon=HORIZON)
    with published.transaction() as db:
        cohort = repo.get_cohort(db, SLUG)
        section = set(
            db.scalars(
                select(SectionMemberRow.person_id).where(
                    SectionMemberRow.cohort_id == cohort.id,
                    SectionMemberRow.series_key == "class",
                    SectionMemberRow.section == 0,
                )
            )
        )
    assert section  # someone attends the meeting that moves
    old_reminders = [
        (status, due)
        for kind, target, version, status, due in _outbox(published)
        if kind == LIVE_REMINDER and target == uid and version == sequence
    ]
    assert old_reminders
    assert {status for status, _ in old_reminders} == {"pending"}
    deadlines_before = _deadlines(published)
    feeds_before = _feeds_version(published)

    moved = start + timedelta(days=1)
    version = _move_by_hand(published, occurrence_id, timedelta(days=1), now)
    with published.transaction() as db:
        done = bring_up_to_date(db, SLUG, now, horizon=HORIZON)

    assert _feeds_version(published) > feeds_before
    assert done.deadlines is not None
    deadlines_after = _deadlines(published)
    changed = {p for p in deadlines_after if deadlines_after[p] != deadlines_before.get(p)}
    assert changed  # the reading before the moved class is due later now
    assert changed <= section  # only the moved section's learners
    assert done.deadlines.changed_learners == len(changed)

    assert done.invites is not None
    assert done.invites.updates == len(section) + 1  # its learners and the facilitator
    assert (done.invites.invites, done.invites.cancellations) == (0, 0)
    updates = [v for kind, _, v, _, _ in _outbox(published) if kind == "update"]
    assert updates == [version] * done.invites.updates

    live = [
        (version_, status, due)
        for kind, target, version_, status, due in _outbox(published)
        if kind == LIVE_REMINDER and target == uid
    ]
    assert {(s, d) for v, s, d in live if v == sequence} == {
        ("cancelled", due) for _, due in old_reminders
    }
    new_due = {d for v, s, d in live if v == sequence + 1 and s == "pending"}
    assert new_due == {moved - timedelta(hours=24), moved - timedelta(hours=1)}
    assert done.reminders is not None
    assert done.reminders.queued >= len(section) + 1  # re-timed for everyone at the meeting
    # The moved deadlines' reminders are re-timed in the same call: reminders read the deadlines
    # stored just before them.
    deadline_cancelled = [
        status
        for kind, _, _, status, _ in _outbox(published)
        if kind == DEADLINE_REMINDER and status == "cancelled"
    ]
    assert deadline_cancelled
    assert done.reminders.cancelled == len(old_reminders) + len(deadline_cancelled)


def test_a_second_call_writes_nothing_new(published: Runtime) -> None:
    occurrence_id, _, start, _ = _class_meeting(published, 2)
    now = start - timedelta(days=3)
    _move_by_hand(published, occurrence_id, timedelta(hours=2), now)
    with published.transaction() as db:
        first = bring_up_to_date(db, SLUG, now, horizon=HORIZON)
    assert first.written > 0
    outbox, deadlines = _outbox(published), _deadlines(published)

    with published.transaction() as db:
        again = bring_up_to_date(db, SLUG, now, horizon=HORIZON)

    assert again.deadlines is not None
    assert again.deadlines.changed_learners == 0
    assert again.deadlines.new_groups == 0
    assert again.invites == InviteCounts(0, 0, 0)
    assert again.reminders == ReminderCounts(0, 0)
    assert again.written == 0
    assert _outbox(published) == outbox
    assert _deadlines(published) == deadlines


def test_without_a_published_plan_only_the_feeds_move(
    runtime: Runtime, example_cohort_text: str, make_roster: Callable[..., bytes]
) -> None:
    now = runtime.clock.now()
    with runtime.transaction() as db:
        load_cohort(db, example_cohort_text, "cohort.toml", now)
        import_roster(db, SLUG, make_roster(ROWS), "r.csv", now)
    before = _feeds_version(runtime)
    with runtime.transaction() as db:
        done = bring_up_to_date(db, SLUG, now, horizon=HORIZON)
        learners_with_deadlines = db.scalar(select(func.count()).select_from(LearnerDeadlinesRow))
    assert done == CascadeResult()
    assert _feeds_version(runtime) == before + 1
    assert learners_with_deadlines == 0
    assert _outbox(runtime) == []


class _Steps:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def step(self, description: str, total: int | None = None) -> None:
        self.seen.append(description)

    def advance(self, amount: int = 1) -> None:
        pass


@pytest.mark.parametrize(
    ("deadlines", "invites", "expected"),
    [
        pytest.param(
            True,
            True,
            [
                "recomputing deadlines",
                "queueing invitations for 3 learners",
                "queueing welcome emails and reminders",
            ],
            id="every_step",
        ),
        pytest.param(False, False, ["queueing welcome emails and reminders"], id="reminders_only"),
    ],
)
def test_each_step_that_runs_is_announced_and_the_rest_are_skipped(
    published: Runtime, deadlines: bool, invites: bool, expected: list[str]
) -> None:
    steps = _Steps()
    with published.transaction() as db:
        done = bring_up_to_date(
            db,
            SLUG,
            published.clock.now(),
            deadlines=deadlines,
            invites=invites,
            progress=steps,
        )
    assert steps.seen == expected
    assert (done.deadlines is not None, done.invites is not None) == (deadlines, invites)
    assert done.reminders is not None
