"""Rolling re-plans of a running cohort, on SQLite and PostgreSQL: the freeze horizon, the
improvement margin, the move cap, idempotence, one worker at a time, the audit log, and the
worker's re-plan within a tick of a roster change."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cli_run import cohort
from example_cohort import FOUR_LEARNERS, with_orchestration
from sqlalchemy import select
from sqlalchemy import text as sql

from jobs.worker import Worker
from scheduler.outputs.mailers import MemoryMailer
from scheduler.persistence.models import (
    AuditLogRow,
    LiveSeriesRow,
    NotificationRow,
    OccurrenceRow,
    PersonRow,
    SectionMemberRow,
)
from scheduler.runtime import Runtime
from scheduler.services import publishing
from scheduler.services.audit import REPLANNED, audit_log
from scheduler.services.cohorts import load_cohort
from scheduler.services.orchestration import assign_late_joiners, replan_cohort
from scheduler.services.plans import plan_cohort
from scheduler.services.roster import import_roster

SLUG = "ml-foundations-2027"
ORIGINAL = FOUR_LEARNERS
# Eight learners on the US east coast: the published times (planned for the four above) fit
# them badly, a fresh plan fits them well.
EAST = [
    [f"East {i}", f"east{i}@example.org", "America/New_York", "Mon-Fri 19:00-22:00", "en_US", ""]
    for i in range(8)
]
# Eight learners free around London's midday: office hours can move to fit them.
LONDON = [
    [f"Lon {i}", f"lon{i}@example.org", "Europe/London", "Mon-Fri 12:00-16:00", "en_GB", ""]
    for i in range(8)
]
SYDNEY = [
    [f"Syd {i}", f"syd{i}@example.org", "Australia/Sydney", "Mon-Fri 06:00-09:00", "en_AU", ""]
    for i in range(8)
]
WEEK_ONE = timedelta(days=30)  # the fixed clock starts 2027-02-01; the course on 2027-03-01


@pytest.fixture
def running(
    runtime: Runtime, example_cohort_text: str, make_roster: Callable[..., bytes]
) -> Callable[..., Runtime]:
    """The example cohort with ``[orchestration]`` options, published for ORIGINAL a month
    before it starts; then the clock moves into week 1 and ``joiners`` are imported and placed
    by the late-joiner rule, as the worker would."""

    def start(joiners: list[list[str]] = EAST, **options: Any) -> Runtime:
        now = runtime.clock.now()
        with runtime.transaction() as db:
            text = with_orchestration(example_cohort_text, **options)
            load_cohort(db, text, "cohort.toml", now)
            import_roster(db, SLUG, make_roster(ORIGINAL), "r.csv", now)
            _, _, plan = plan_cohort(db, SLUG)
            publishing.publish(db, SLUG, plan, now)
        runtime.clock.advance(WEEK_ONE)  # type: ignore[attr-defined]
        join(runtime, make_roster, ORIGINAL + joiners)
        return runtime

    return start


def join(runtime: Runtime, make_roster: Callable[..., bytes], rows: list[list[str]]) -> None:
    now = runtime.clock.now()
    with runtime.transaction() as db:
        import_roster(db, SLUG, make_roster(rows), "r.csv", now)
    with runtime.transaction() as db:
        assign_late_joiners(db, SLUG, now, runtime.horizon, actor="test")


def occurrences(runtime: Runtime) -> dict[str, tuple[datetime, int, str, str | None]]:
    """uid -> (start, SEQUENCE, status, host)."""
    with runtime.transaction() as db:
        return {
            o.uid: (o.start, o.sequence, o.status, host)
            for o, host in db.execute(
                select(OccurrenceRow, LiveSeriesRow.facilitator_email).join(
                    LiveSeriesRow, LiveSeriesRow.id == OccurrenceRow.series_id
                )
            )
        }


def audit_count(runtime: Runtime) -> int:
    with runtime.transaction() as db:
        return len(db.scalars(select(AuditLogRow.id)).all())


def replan(runtime: Runtime, actor: str = "test") -> Any:
    with runtime.transaction() as db:
        return replan_cohort(db, SLUG, runtime.clock.now(), runtime.horizon, actor=actor)


def test_nothing_happens_unless_the_cohort_asks_for_it(running: Callable[..., Runtime]) -> None:
    runtime = running()  # no auto_replan: the default is off
    before, logged = occurrences(runtime), audit_count(runtime)
    assert replan(runtime).outcome == "off"
    assert occurrences(runtime) == before
    assert audit_count(runtime) == logged


def test_a_replan_moves_the_future_and_nothing_inside_the_freeze_horizon(
    running: Callable[..., Runtime],
) -> None:
    runtime = running(joiners=LONDON, auto_replan=True)
    now = runtime.clock.now()
    boundary = now + timedelta(days=7)
    before = occurrences(runtime)
    with runtime.transaction() as db:
        sent_before = set(db.scalars(select(NotificationRow.message_id)))

    result = replan(runtime)

    assert result.outcome == "applied"
    decision = result.decision
    assert decision.after - decision.before >= 0.05
    after = occurrences(runtime)
    inside = [uid for uid, (start, *_) in before.items() if start < boundary]
    assert inside, "the fixture must have occurrences inside the horizon"
    for uid in inside:
        assert after[uid] == before[uid], uid  # same time, SEQUENCE, status and host
    for uid in after.keys() - before.keys():
        assert after[uid][0] >= boundary  # nothing new appears inside the horizon
    changed = [uid for uid in before if after[uid] != before[uid]]
    assert changed and all(before[uid][0] >= boundary for uid in changed)
    assert all(after[uid][1] == before[uid][1] + 1 for uid in changed)  # SEQUENCE bumped

    # the change went out as updated invitations, and the audit log says what happened
    with runtime.transaction() as db:
        queued = db.execute(
            select(PersonRow.email, NotificationRow.kind)
            .join(PersonRow, PersonRow.id == NotificationRow.person_id)
            .where(NotificationRow.message_id.not_in(sent_before))
        ).all()
        entry = audit_log(db, SLUG, limit=1, action=REPLANNED)[0]
    assert "office-hours" in decision.moves  # a sectioned series: its invitations are updated
    assert {kind for _, kind in queued} >= {"update"}
    assert entry.actor == "test"
    assert entry.detail["moved_series"] == sorted(decision.moves)
    assert entry.detail["coverage_before"] == round(decision.before, 4)
    assert entry.detail["coverage_after"] == round(decision.after, 4)
    assert entry.detail["moved"] == len(result.diff.moved)
    assert entry.detail["frozen_until"] == boundary.isoformat()


def test_a_section_whose_host_would_change_inside_the_horizon_is_held(
    running: Callable[..., Runtime],
) -> None:
    """The east-coast newcomers want class times no current host can take; a host is stored
    per section, so a new host would take over next week's meetings too: the series is held."""
    runtime = running(auto_replan=True)
    boundary = runtime.clock.now() + timedelta(days=7)
    before = occurrences(runtime)
    result = replan(runtime)
    verdicts = {v.key: v.verdict for v in result.decision.series}
    assert verdicts["class"] == "held"
    after = occurrences(runtime)
    assert all(after[uid] == old for uid, old in before.items() if old[0] < boundary)
    with runtime.transaction() as db:
        class_uids = set(
            db.scalars(
                select(OccurrenceRow.uid)
                .join(LiveSeriesRow, LiveSeriesRow.id == OccurrenceRow.series_id)
                .where(LiveSeriesRow.series_key == "class")
            )
        )
    assert all(after[uid] == before[uid] for uid in class_uids)  # held: not moved at all


def test_a_second_replan_finds_nothing_to_do_and_writes_nothing(
    running: Callable[..., Runtime],
) -> None:
    runtime = running(auto_replan=True)
    result = replan(runtime)
    assert result.outcome == "applied"
    before, logged = occurrences(runtime), audit_count(runtime)
    again = replan(runtime)
    assert again.outcome == "kept"
    assert again.decision.moves == ()
    verdicts = {v.key: v.verdict for v in again.decision.series}
    assert {verdicts[key] for key in result.decision.moves} == {"unchanged"}
    # a series held back the first time (its host inside the horizon) is still held
    assert set(verdicts.values()) <= {"unchanged", "held"}
    assert occurrences(runtime) == before
    assert audit_count(runtime) == logged


def test_a_gain_below_the_margin_moves_nothing(running: Callable[..., Runtime]) -> None:
    runtime = running(auto_replan=True, replan_margin=0.9)
    before, logged = occurrences(runtime), audit_count(runtime)
    with runtime.transaction() as db:
        members = set(db.execute(select(SectionMemberRow.person_id, SectionMemberRow.section)))
    result = replan(runtime)
    assert result.outcome == "kept"
    assert 0 < result.decision.after - result.decision.before < 0.9  # better, not enough
    assert {v.verdict for v in result.decision.series} & {"below_margin"}
    assert occurrences(runtime) == before
    assert audit_count(runtime) == logged
    with runtime.transaction() as db:
        assert set(db.execute(select(SectionMemberRow.person_id, SectionMemberRow.section))) == (
            members
        )


def test_a_series_moves_at_most_max_moves_times(
    running: Callable[..., Runtime], make_roster: Callable[..., bytes]
) -> None:
    runtime = running(auto_replan=True, max_moves=1)
    first = replan(runtime)
    assert first.outcome == "applied"
    moved_once = set(first.decision.moves)

    # a week later another group joins: a fresh plan would move things again
    runtime.clock.advance(timedelta(days=7))  # type: ignore[attr-defined]
    join(runtime, make_roster, ORIGINAL + EAST + SYDNEY)
    second = replan(runtime)
    verdicts = {v.key: v.verdict for v in second.decision.series}
    assert not moved_once & set(second.decision.moves)
    assert any(verdicts[key] == "capped" for key in moved_once)
    with runtime.transaction() as db:
        moves = [e.detail["moved_series"] for e in audit_log(db, SLUG, action=REPLANNED)]
    counts = {key: sum(key in m for m in moves) for key in moved_once}
    assert max(counts.values()) == 1


def test_max_moves_zero_never_moves(running: Callable[..., Runtime]) -> None:
    runtime = running(auto_replan=True, max_moves=0)
    before = occurrences(runtime)
    result = replan(runtime)
    assert result.outcome == "kept"
    assert {v.verdict for v in result.decision.series} <= {"capped", "unchanged"}
    assert occurrences(runtime) == before


def test_one_worker_at_a_time_replans_a_cohort(
    running: Callable[..., Runtime], db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL only (SQLite has one worker)")
    runtime = running(auto_replan=True)
    before = occurrences(runtime)
    with runtime.engine.connect() as other:
        other.execute(sql("SELECT id FROM cohort WHERE slug = :s FOR UPDATE"), {"s": SLUG})
        assert replan(runtime).outcome == "busy"  # the other transaction holds the cohort
        other.rollback()
    assert occurrences(runtime) == before
    assert replan(runtime).outcome == "applied"


def test_the_worker_replans_within_a_tick_of_a_roster_change(
    running: Callable[..., Runtime], make_roster: Callable[..., bytes]
) -> None:
    """The issue's acceptance: twenty learners added to the roster file and re-imported; one
    orchestrate tick later they have welcome emails, invitations and sections, and nothing in
    the next 7 days has moved."""
    runtime = running(joiners=[], auto_replan=True)
    worker = Worker(runtime, mailer=MemoryMailer())
    worker.orchestrate()  # the worker's first look: nothing has changed, nothing moves
    assert audit_count(runtime) == 1  # the publish only
    before = occurrences(runtime)
    twenty = [
        [f"New {i}", f"new{i}@example.org", zone, "Mon-Fri 19:00-22:00", "en_US", ""]
        for i, zone in enumerate(["America/New_York", "America/Chicago"] * 10)
    ]
    with runtime.transaction() as db:
        import_roster(db, SLUG, make_roster(ORIGINAL + twenty), "r.csv", runtime.clock.now())

    worker.orchestrate()  # one tick

    boundary = runtime.clock.now() + timedelta(days=7)
    after = occurrences(runtime)
    assert all(after[uid] == old for uid, old in before.items() if old[0] < boundary)
    new = {row[1] for row in twenty}
    with runtime.transaction() as db:
        queued = db.execute(
            select(PersonRow.email, NotificationRow.kind).join(
                PersonRow, PersonRow.id == NotificationRow.person_id
            )
        ).all()
        placed = set(
            db.scalars(
                select(PersonRow.email).join(
                    SectionMemberRow, SectionMemberRow.person_id == PersonRow.id
                )
            )
        )
        actions = {e.action for e in audit_log(db, SLUG, limit=200)}
    assert {e for e, kind in queued if kind == "welcome"} >= new
    assert {e for e, kind in queued if kind in ("invite", "update")} >= new
    assert placed >= new
    assert "late_joiner_assigned" in actions


def test_a_late_joiner_gets_each_deadline_reminder_once(
    running: Callable[..., Runtime], make_roster: Callable[..., bytes]
) -> None:
    """Her deadlines are computed on import (no section yet) and again once the worker places
    her: a reminder already sent for the same work, rule and due time is not sent again."""
    runtime = running(joiners=[])
    mailer = MemoryMailer()
    worker = Worker(runtime, mailer=mailer)
    nia = ["Nia", "nia@example.org", "America/New_York", "Mon-Fri 19:00-22:00", "en_US", ""]
    with runtime.transaction() as db:
        import_roster(db, SLUG, make_roster([*ORIGINAL, nia]), "r.csv", runtime.clock.now())
    worker.dispatch()  # what the import queued goes out before she is placed
    sent_before = len(mailer.sent)
    assert worker.orchestrate() > 0  # placed: her deadlines follow her section now
    worker.dispatch()
    with runtime.transaction() as db:
        rows = db.execute(
            select(
                NotificationRow.message_id,
                NotificationRow.rule,
                NotificationRow.target,
                NotificationRow.target_version,
                NotificationRow.sent_at,
            )
            .join(PersonRow, PersonRow.id == NotificationRow.person_id)
            .where(
                PersonRow.email == "nia@example.org", NotificationRow.kind == "deadline_reminder"
            )
        ).all()
    delivered = {m.message_id for m in mailer.sent}
    sent = [r for r in rows if r.message_id in delivered]
    assert sent_before and any(r.sent_at is not None for r in sent)
    # the same work (its section left out of the key), rule and due time: at most once
    work = [
        (r.rule, r.target.split("/")[-5], *r.target.split("/")[-2:], r.target_version) for r in sent
    ]
    assert len(work) == len(set(work)), sorted(work)


def test_cohort_replan_shows_the_decision_and_applies_it_with_yes(
    running: Callable[..., Runtime], cli_env: dict[str, Any], tmp_path: Path
) -> None:
    """The real command (on the real clock: the course is still months away, so nothing is
    inside the freeze horizon)."""
    runtime = running()  # auto_replan off: the command still runs when asked

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cohort(cli_env, tmp_path, "replan", "--cohort", SLUG, *args)

    before, logged = occurrences(runtime), audit_count(runtime)
    shown = run()
    assert shown.returncode == 0, shown.stderr
    assert "coverage" in shown.stdout and "Would move" in shown.stdout
    assert occurrences(runtime) == before and audit_count(runtime) == logged  # a preview only
    applied = run("--yes", "--json")
    assert applied.returncode == 0, applied.stderr
    report = json.loads(applied.stdout)
    assert report["outcome"] == "applied"
    assert report["decision"]["after"] - report["decision"]["before"] >= 0.05
    assert occurrences(runtime) != before
    with runtime.transaction() as db:
        (entry,) = audit_log(db, SLUG, action=REPLANNED)  # (the CLI's clock is the real one)
    assert entry.actor == "cli"
    assert entry.detail["moved_series"] == sorted(report["decision"]["moves"])
