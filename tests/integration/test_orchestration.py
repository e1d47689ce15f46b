"""Late joiners placed into a running cohort, on SQLite and PostgreSQL: by the service, by the
worker's real code path, and shown by `cohort log`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cli_run import cohort
from example_cohort import FOUR_LEARNERS
from sqlalchemy import func, select

from jobs.worker import Worker
from scheduler.outputs.mailers import MemoryMailer
from scheduler.persistence.models import (
    AuditLogRow,
    LiveSeriesRow,
    NotificationRow,
    OccurrenceRow,
    PersonRow,
    SectionMemberRow,
    SeriesRequestRow,
)
from scheduler.runtime import Runtime
from scheduler.services.audit import LATE_JOINER_ASSIGNED, PLAN_PUBLISHED, audit_log
from scheduler.services.orchestration import (
    assign_late_joiners,
    cohorts_with_late_joiners,
)
from scheduler.services.roster import import_roster

SLUG = "ml-foundations-2027"
SECTIONED = ("class", "office-hours")  # the example's class and office-hours series
ORIGINAL = FOUR_LEARNERS
NEWCOMERS = [
    ["Ana", "ana@example.org", "America/Bogota", "Mon-Fri 12:00-16:00", "es_CO", ""],
    ["Ben", "ben@example.org", "Australia/Sydney", "Mon-Fri 06:00-09:00", "en_AU", ""],
    ["Cleo", "cleo@example.org", "Europe/London", "Mon-Fri 17:00-22:00", "en_GB", ""],
    ["Dev", "dev@example.org", "America/New_York", "", "en_US", ""],
    ["Eda", "eda@example.org", "Europe/Istanbul", "Sat 09:00-13:00", "tr_TR", ""],
]
NEW_EMAILS = {row[1] for row in NEWCOMERS}


@pytest.fixture
def late(
    make_published: Callable[[list[list[str]]], Runtime], make_roster: Callable[..., bytes]
) -> Runtime:
    """A published cohort, then the full roster re-imported with five more learners."""
    runtime = make_published(ORIGINAL)
    with runtime.transaction() as db:
        result = import_roster(
            db, SLUG, make_roster(ORIGINAL + NEWCOMERS), "r.csv", runtime.clock.now()
        )
    assert set(result.added) == NEW_EMAILS
    return runtime


def memberships(runtime: Runtime) -> dict[tuple[str, str], int]:
    """(email, series) -> section."""
    with runtime.transaction() as db:
        query = select(PersonRow.email, SectionMemberRow.series_key, SectionMemberRow.section).join(
            PersonRow, PersonRow.id == SectionMemberRow.person_id
        )
        return {(email, key): section for email, key, section in db.execute(query)}


def occurrences(runtime: Runtime) -> dict[str, tuple[Any, ...]]:
    with runtime.transaction() as db:
        return {
            o.uid: (o.start, o.end, o.status, o.sequence, o.changed_in_version)
            for o in db.scalars(select(OccurrenceRow))
        }


def notifications(runtime: Runtime) -> list[tuple[str, str, str]]:
    """(email, kind, message id) of every outbox row."""
    with runtime.transaction() as db:
        query = select(PersonRow.email, NotificationRow.kind, NotificationRow.message_id).join(
            PersonRow, PersonRow.id == NotificationRow.person_id
        )
        return [tuple(row) for row in db.execute(query)]  # type: ignore[misc]


def now_of(runtime: Runtime) -> datetime:
    return runtime.clock.now()


def capacities(runtime: Runtime) -> dict[str, int | None]:
    with runtime.transaction() as db:
        query = select(SeriesRequestRow.key, SeriesRequestRow.max_section_size)
        return {key: cap for key, cap in db.execute(query)}


def sections_of(runtime: Runtime) -> dict[str, set[int]]:
    with runtime.transaction() as db:
        found: dict[str, set[int]] = {}
        for key, section in db.execute(
            select(LiveSeriesRow.series_key, LiveSeriesRow.section).where(
                LiveSeriesRow.kind != "coworking"
            )
        ):
            found.setdefault(key, set()).add(section)
        return found


def test_newcomers_join_one_section_per_series_and_nobody_moves(late: Runtime) -> None:
    before_members = memberships(late)
    before_occurrences = occurrences(late)
    assert {email for email, _ in before_members} == {row[1] for row in ORIGINAL}
    before_outbox = notifications(late)
    with late.transaction() as db:
        assert cohorts_with_late_joiners(db) == [SLUG]
        placed = assign_late_joiners(db, SLUG, late.clock.now(), late.horizon, actor="test")

    assert {(p.email, p.series) for p in placed} == {(e, s) for e in NEW_EMAILS for s in SECTIONED}
    after = memberships(late)
    for email in NEW_EMAILS:
        for series in SECTIONED:
            assert after[(email, series)] in sections_of(late)[series]
    assert {k: v for k, v in after.items() if k[0] not in NEW_EMAILS} == before_members
    sizes: dict[tuple[str, int], int] = {}
    for (_, series), section in after.items():
        sizes[(series, section)] = sizes.get((series, section), 0) + 1
    for (series, _), size in sizes.items():
        cap = capacities(late)[series]
        assert cap is None or size <= cap
    assert occurrences(late) == before_occurrences  # nothing moved, no SEQUENCE bumped
    for p in placed:
        assert 0 <= p.fits <= p.meetings and p.meetings > 0

    # invitations of their sections are queued for them; welcomes (queued by the import) stay
    outbox = notifications(late)
    new_rows = set(outbox) - set(before_outbox)
    assert {e for e, kind, _ in new_rows if kind == "invite"} == NEW_EMAILS
    assert all(e in NEW_EMAILS for e, kind, _ in new_rows if kind == "invite")
    assert {e for e, kind, _ in outbox if kind == "welcome"} >= NEW_EMAILS

    with late.transaction() as db:
        logged = audit_log(db, SLUG, limit=100, action=LATE_JOINER_ASSIGNED)
        assert cohorts_with_late_joiners(db) == []
    assert len(logged) == len(placed)
    assert {e.action for e in logged} == {LATE_JOINER_ASSIGNED}
    assert {e.actor for e in logged} == {"test"}
    assert {(e.detail["email"], e.detail["series"], e.detail["section"]) for e in logged} == {
        (p.email, p.series, p.section) for p in placed
    }

    # a second run finds nobody and writes nothing
    with late.transaction() as db:
        assert assign_late_joiners(db, SLUG, late.clock.now(), late.horizon, actor="test") == []
    assert memberships(late) == after
    assert sorted(notifications(late)) == sorted(outbox)
    with late.transaction() as db:
        actions = db.scalars(select(AuditLogRow.action)).all()
    assert actions.count(LATE_JOINER_ASSIGNED) == len(placed)
    assert set(actions) == {LATE_JOINER_ASSIGNED, PLAN_PUBLISHED}  # the fixture's publish


def test_newcomer_joins_the_section_that_fits_them(
    make_published: Callable[[list[list[str]]], Runtime], make_roster: Callable[..., bytes]
) -> None:
    # Enough people at two opposite ends of the world that the class splits in two sections.
    tokyo = [
        [f"T{i}", f"t{i}@example.org", "Asia/Tokyo", "Mon-Fri 19:00-23:00", "", ""]
        for i in range(4)
    ]
    west = [
        [f"W{i}", f"w{i}@example.org", "America/Los_Angeles", "Mon-Fri 09:00-13:00", "", ""]
        for i in range(4)
    ]
    runtime = make_published(tokyo + west)
    members = memberships(runtime)
    # The precondition is part of the test: no shared hour fits both ends (Tokyo 19-23 is 02-06
    # in Los Angeles), so the planner must give each end a class section of its own. Had it kept
    # one section there would be nothing to choose between, and that must fail, never skip.
    tokyo_sections = {members[(row[1], "class")] for row in tokyo}
    west_sections = {members[(row[1], "class")] for row in west}
    assert len(tokyo_sections) == len(west_sections) == 1, (tokyo_sections, west_sections)
    assert tokyo_sections != west_sections, "the planner kept one class section for both ends"
    (tokyo_section,) = tokyo_sections
    newcomer = ["Kai", "kai@example.org", "Asia/Seoul", "Mon-Fri 19:00-23:00", "", ""]
    with runtime.transaction() as db:
        import_roster(db, SLUG, make_roster([*tokyo, *west, newcomer]), "r.csv", now_of(runtime))
        placed = assign_late_joiners(db, SLUG, now_of(runtime), runtime.horizon)
    chosen = {p.series: p for p in placed}
    assert chosen["class"].section == tokyo_section
    assert chosen["class"].fits == chosen["class"].meetings


def test_unpublished_cohort_is_left_alone(
    runtime: Runtime, example_cohort_text: str, make_roster: Callable[..., bytes]
) -> None:
    from scheduler.services.cohorts import load_cohort

    with runtime.transaction() as db:
        load_cohort(db, example_cohort_text, "cohort.toml", now_of(runtime))
        import_roster(db, SLUG, make_roster(ORIGINAL), "r.csv", now_of(runtime))
        assert cohorts_with_late_joiners(db) == []
        assert assign_late_joiners(db, SLUG, now_of(runtime), runtime.horizon) == []
        assert db.scalars(select(AuditLogRow)).all() == []


def test_the_worker_welcomes_and_invites_newcomers(late: Runtime) -> None:
    mailer = MemoryMailer()
    worker = Worker(late, mailer=mailer)
    worker.drain()
    kinds = {message_id: (email, kind) for email, kind, message_id in notifications(late)}
    received: dict[str, set[str]] = {}
    for message in mailer.sent:
        email, kind = kinds[message.message_id]
        assert email in message.recipients
        received.setdefault(email, set()).add(kind)
    for email in NEW_EMAILS:
        assert {"welcome", "invite"} <= received.get(email, set()), email
    assert memberships(late).keys() >= {(e, s) for e in NEW_EMAILS for s in SECTIONED}
    with late.transaction() as db:
        actors = {e.actor for e in audit_log(db, SLUG, limit=100, action=LATE_JOINER_ASSIGNED)}
    assert actors == {f"worker:{worker.id}"[:60]}


def test_the_orchestrate_tick_places_only_when_someone_waits(late: Runtime) -> None:
    worker = Worker(late, mailer=MemoryMailer())
    assert worker.orchestrate() == len(NEW_EMAILS) * len(SECTIONED)
    assert worker.orchestrate() == 0


def test_cohort_log_prints_the_audit_log(
    late: Runtime, cli_env: dict[str, Any], tmp_path: Path
) -> None:
    with late.transaction() as db:
        placed = assign_late_joiners(db, SLUG, now_of(late), late.horizon, actor="cli")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cohort(cli_env, tmp_path, "log", "--cohort", SLUG, *args)

    as_json = run("--json", "--limit", "3")
    assert as_json.returncode == 0, as_json.stderr
    entries = json.loads(as_json.stdout)
    assert len(entries) == 3 < len(placed)
    assert {e["action"] for e in entries} == {LATE_JOINER_ASSIGNED}
    table = run()
    assert table.returncode == 0, table.stderr
    assert LATE_JOINER_ASSIGNED in table.stdout
    assert "placed ana@example.org in class section" in table.stdout
    unknown = cohort(cli_env, tmp_path, "log", "--cohort", "nope")
    assert unknown.returncode == 1 and "no cohort" in unknown.stderr


def test_full_sections_take_nobody_and_are_not_asked_again(late: Runtime) -> None:
    with late.transaction() as db:
        sizes = [
            n
            for (n,) in db.execute(
                select(func.count())
                .select_from(SectionMemberRow)
                .where(SectionMemberRow.series_key == "class")
                .group_by(SectionMemberRow.section)
            )
        ]
        request = db.scalars(select(SeriesRequestRow).where(SeriesRequestRow.key == "class")).one()
        request.max_section_size = min(sizes)  # every class section is full now
    with late.transaction() as db:
        placed = assign_late_joiners(db, SLUG, now_of(late), late.horizon)
    assert {(p.email, p.series) for p in placed} == {(e, "office-hours") for e in NEW_EMAILS}
    assert all(e not in NEW_EMAILS for e, series in memberships(late) if series == "class")
    with late.transaction() as db:
        assert cohorts_with_late_joiners(db) == []  # they wait for a seat, not for every tick
        assert assign_late_joiners(db, SLUG, now_of(late), late.horizon) == []
