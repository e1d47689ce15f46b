"""Deadlines computed from the published plan, stored per shared list, shown per learner."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from scheduler.persistence.models import DeadlineGroupRow, DeadlineItemRow, LearnerDeadlinesRow
from scheduler.runtime import Runtime
from scheduler.services import publishing, schedule
from scheduler.services.deadlines import deadline_summary, publish_deadlines
from scheduler.services.plans import plan_cohort
from scheduler.services.roster import import_roster
from scheduler.timeutil import zone

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Ana", "ana@example.org", "America/Sao_Paulo", "Mon-Fri 12:00-18:00", "pt_BR", ""],
    ["Noor", "noor@example.org", "Asia/Kolkata", "Sat 02:00-03:00", "", ""],  # nothing fits
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def test_every_learner_gets_a_complete_async_path(published: Runtime) -> None:
    with published.transaction() as db:
        summary = deadline_summary(db, SLUG)
        noor = schedule.learner_schedule(db, SLUG, "noor@example.org")
        yuki = schedule.learner_schedule(db, SLUG, "yuki@example.org")
    assert summary.learners == 5
    assert summary.by_kind["assignment"] > 0
    # No class fits Noor: every class occurrence of her section comes as a replay.
    classes = [e for e in noor.entries if e.kind == "class"]
    replays = [e for e in noor.entries if e.kind == "replay"]
    assert classes
    assert len(replays) == len(classes)
    assert all(not e.fits for e in classes)
    # Yuki's deadlines sit on her own clock and never in her night.
    tz = zone("Asia/Tokyo")
    for entry in yuki.entries:
        if entry.kind == "assignment":
            local = entry.at.astimezone(tz)
            assert 7 <= local.hour < 22 or (local.hour, local.minute) == (22, 0), local
            assert entry.release is not None
            assert entry.release <= entry.at
            assert entry.hard is None or entry.hard >= entry.at


def test_recompute_is_a_no_op_and_lists_are_shared(published: Runtime) -> None:
    with published.transaction() as db:
        again = publish_deadlines(db, SLUG, published.clock.now())
        _, _, plan = plan_cohort(db, SLUG)
        _, _, via_publish = publishing.publish(db, SLUG, plan, published.clock.now())
        groups = db.scalar(select(func.count()).select_from(DeadlineGroupRow))
        links = db.scalar(select(func.count()).select_from(LearnerDeadlinesRow))
    assert again.changed_learners == 0
    assert again.new_groups == 0
    assert via_publish.changed_learners == 0
    assert links == 5
    assert groups == again.groups <= 5


def test_roster_change_recomputes_only_what_changed(
    published: Runtime, make_roster: Callable[..., bytes]
) -> None:
    moved = [
        *ROWS[:4],
        ["Lea", "lea@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ]
    with published.transaction() as db:
        result = import_roster(db, SLUG, make_roster(moved), "r.csv", published.clock.now())
        lea = schedule.learner_schedule(db, SLUG, "lea@example.org")
        stale = db.scalar(
            select(func.count())
            .select_from(DeadlineItemRow)
            .where(~DeadlineItemRow.group_id.in_(select(LearnerDeadlinesRow.group_id)))
        )
    assert result.deadlines is not None
    assert result.deadlines.changed_learners == 1  # Lea moved to Tokyo; nobody else changed
    assert lea.zone == "Asia/Tokyo"
    assert stale == 0  # lists nobody follows any more are deleted


def test_learner_not_in_cohort(published: Runtime) -> None:
    from scheduler.errors import NotFoundError

    with pytest.raises(NotFoundError), published.transaction() as db:
        schedule.learner_schedule(db, SLUG, "nobody@example.org")
