"""Two simulated weeks of a running cohort on SQLite and PostgreSQL: the real worker jobs
(orchestrate, materialise, dispatch) tick on a fixed clock from 2027-02-26 to 2027-03-14 while
learners join and leave, and everything is checked from what landed in the maildir, the outbox
rows, the feeds and the audit log."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from example_cohort import FOUR_LEARNERS, with_orchestration
from sqlalchemy import func, select

from jobs.worker import Worker
from scheduler.errors import NotFoundError
from scheduler.persistence.models import (
    LiveSeriesRow,
    NotificationRow,
    OccurrenceRow,
    PersonRow,
    SectionMemberRow,
)
from scheduler.runtime import Runtime
from scheduler.services import publishing
from scheduler.services.audit import LATE_JOINER_ASSIGNED, audit_log
from scheduler.services.cohorts import load_cohort
from scheduler.services.feeds import feed_events, issue_token, resolve_token
from scheduler.services.invites import series_uid
from scheduler.services.learners import remove_learner
from scheduler.services.plans import SCHEDULED, plan_cohort
from scheduler.services.reminders import LIVE_REMINDER
from scheduler.services.roster import import_roster

SLUG = "ml-foundations-2027"
LIVE_KINDS = ("class", "office_hours")  # the sectioned series: classes and office hours
RULES = {"class-24h": timedelta(hours=24), "class-1h": timedelta(hours=1)}
ORIGINAL = FOUR_LEARNERS
FIRST_JOINERS = [
    ["Nia", "nia@example.org", "America/New_York", "Mon-Fri 12:00-17:00", "en_US", ""],
    ["Liam", "liam@example.org", "Europe/London", "Mon-Fri 17:00-22:00", "en_GB", ""],
    ["Wei", "wei@example.org", "Asia/Singapore", "Mon-Fri 19:00-23:00", "en_SG", ""],
]
LATE_JOINER = ["Tom", "tom@example.org", "Australia/Sydney", "Mon-Fri 06:00-09:00", "en_AU", ""]
LEAVER = "sam@example.org"

START = datetime(2027, 2, 26, 0, 0, tzinfo=UTC)
COURSE_START = datetime(2027, 3, 1, 0, 0, tzinfo=UTC)
END = datetime(2027, 3, 15, 0, 0, tzinfo=UTC)  # the run covers 2027-03-14 entirely
JOIN_1 = datetime(2027, 3, 2, 10, 0, tzinfo=UTC)
LEAVE = datetime(2027, 3, 4, 10, 0, tzinfo=UTC)
JOIN_2 = datetime(2027, 3, 8, 10, 0, tzinfo=UTC)
STEP = timedelta(hours=3)


@dataclass(frozen=True, slots=True)
class Sent:
    """One message from the maildir, with the outbox row it came from."""

    message_id: str
    to: str
    date: datetime
    methods: tuple[str, ...]  # METHOD of each text/calendar part
    calendar: str
    kind: str
    rule: str
    target: str
    status: str
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Meeting:
    series_key: str
    section: int
    kind: str
    start: datetime
    status: str


def memberships(runtime: Runtime) -> dict[tuple[str, str], int]:
    """(email, series key) -> section, now."""
    with runtime.transaction() as db:
        query = select(PersonRow.email, SectionMemberRow.series_key, SectionMemberRow.section).join(
            PersonRow, PersonRow.id == SectionMemberRow.person_id
        )
        return {(e, key): section for e, key, section in db.execute(query)}


def meetings(runtime: Runtime) -> dict[str, Meeting]:
    """Every live occurrence (classes, office hours) by UID, as stored now."""
    with runtime.transaction() as db:
        query = (
            select(OccurrenceRow, LiveSeriesRow)
            .join(LiveSeriesRow, LiveSeriesRow.id == OccurrenceRow.series_id)
            .where(LiveSeriesRow.kind.in_(LIVE_KINDS))
        )
        return {
            o.uid: Meeting(s.series_key, s.section, s.kind, o.start, o.status)
            for o, s in db.execute(query)
        }


def next_due(runtime: Runtime, now: datetime) -> datetime | None:
    """When the next pending email falls due: APScheduler runs dispatch every second, so the
    simulation stops there (a 1 h reminder is only worth sending up to 30 min late)."""
    with runtime.transaction() as db:
        return db.scalar(
            select(func.min(NotificationRow.next_attempt_at)).where(
                NotificationRow.status == "pending", NotificationRow.next_attempt_at > now
            )
        )


def read_maildir(runtime: Runtime) -> list[Sent]:
    folder = runtime.settings.mail_dir / "new"
    parsed: list[EmailMessage] = []
    for path in sorted(folder.iterdir()):
        with path.open("rb") as handle:
            message = email.message_from_binary_file(handle, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        parsed.append(message)
    with runtime.transaction() as db:
        rows = {
            row.message_id: row
            for row in db.scalars(
                select(NotificationRow).where(
                    NotificationRow.message_id.in_([str(m["Message-ID"]) for m in parsed])
                )
            )
        }
        out = []
        for message in parsed:
            message_id = str(message["Message-ID"])
            row = rows.get(message_id)
            assert row is not None, f"{message_id} has no outbox row"
            calendars = [
                part.get_content()
                for part in message.walk()
                if part.get_content_type() == "text/calendar"
            ]
            methods = tuple(
                line.split(":", 1)[1].strip()
                for text in calendars
                for line in text.splitlines()
                if line.startswith("METHOD:")
            )
            out.append(
                Sent(
                    message_id=message_id,
                    to=message["To"].addresses[0].addr_spec.lower(),
                    date=parsedate_to_datetime(str(message["Date"])).astimezone(UTC),
                    methods=methods,
                    calendar="\n".join(calendars),
                    kind=row.kind,
                    rule=row.rule,
                    target=row.target,
                    status=row.status,
                    sent_at=row.sent_at,
                )
            )
    return out


def feed_live(runtime: Runtime, token: str) -> dict[str, tuple[datetime, str]]:
    """The class and office-hours events of a feed: uid -> (start, STATUS)."""
    with runtime.transaction() as db:
        target = resolve_token(db, token)
        assert target is not None
        return {
            e.uid: (e.start, e.status)
            for e in feed_events(db, target)
            if set(e.categories) & set(LIVE_KINDS)
        }


def member_at(
    snapshots: list[tuple[datetime, dict[tuple[str, str], int]]],
    at: datetime,
    who: str,
    key: str,
) -> int | None:
    """The section of ``key`` that ``who`` was in at ``at`` (the last snapshot not after it)."""
    found: int | None = None
    for taken, members in snapshots:
        if taken > at:
            break
        found = members.get((who, key))
    return found


@pytest.mark.slow
def test_two_weeks_of_the_worker_with_joiners_and_a_leaver(
    runtime: Runtime, example_cohort_text: str, make_roster: Callable[..., bytes]
) -> None:
    clock: Any = runtime.clock
    clock.advance(START - runtime.clock.now())
    with runtime.transaction() as db:
        text = with_orchestration(example_cohort_text, auto_replan=True)
        load_cohort(db, text, "cohort.toml", START)
        import_roster(db, SLUG, make_roster(ORIGINAL), "r.csv", START)
        _, _, plan = plan_cohort(db, SLUG)
        publishing.publish(db, SLUG, plan, START)
        leaver_token, _ = issue_token(db, SLUG, LEAVER, START)

    worker = Worker(runtime)  # the default mailer: the maildir of the settings
    joined: dict[str, datetime] = {}
    left: dict[str, datetime] = {}
    leaver_feed_before: dict[str, tuple[datetime, str]] = {}

    def join(rows: list[list[str]], added: list[list[str]]) -> None:
        now = runtime.clock.now()
        with runtime.transaction() as db:
            result = import_roster(db, SLUG, make_roster(rows), "r.csv", now)
        assert set(result.added) == {r[1] for r in added}
        joined.update({r[1]: now for r in added})

    def leave() -> None:
        now = runtime.clock.now()
        leaver_feed_before.update(feed_live(runtime, leaver_token))
        with runtime.transaction() as db:
            remove_learner(db, SLUG, LEAVER, now=now, horizon=runtime.horizon)
        left[LEAVER] = now

    stayers = [r for r in ORIGINAL if r[1] != LEAVER]
    events: list[tuple[datetime, Callable[[], None]]] = [
        (JOIN_1, lambda: join(ORIGINAL + FIRST_JOINERS, FIRST_JOINERS)),
        (LEAVE, leave),
        (JOIN_2, lambda: join(stayers + FIRST_JOINERS + [LATE_JOINER], [LATE_JOINER])),
    ]
    snapshots: list[tuple[datetime, dict[tuple[str, str], int]]] = []
    active: list[tuple[datetime, set[str]]] = []
    worker.register()
    try:
        while (now := runtime.clock.now()) < END:
            while events and events[0][0] <= now:
                events.pop(0)[1]()
            worker.orchestrate()
            worker.materialise()
            snapshots.append((now, memberships(runtime)))
            present = {r[1] for r in ORIGINAL} | set(joined)
            active.append((now, present - set(left)))
            worker.dispatch()
            stops = [now + STEP, END]
            stops += [at for at, _ in events[:1]]
            due = next_due(runtime, now)
            if due is not None:
                stops.append(due)
            clock.advance(min(stops) - now)
    finally:
        worker.unregister()
        worker.mailer.close()
    assert not events, "every scripted event happened"
    joiners = {r[1] for r in [*FIRST_JOINERS, LATE_JOINER]}
    assert set(joined) == joiners and set(left) == {LEAVER}

    sent = read_maildir(runtime)
    final = memberships(runtime)
    occurrences = meetings(runtime)

    # -- the maildir is the outbox's sent rows, each once -----------------------------------
    ids = [m.message_id for m in sent]
    assert len(ids) == len(set(ids)), "a Message-ID was delivered twice"
    with runtime.transaction() as db:
        sent_rows = db.scalar(
            select(func.count())
            .select_from(NotificationRow)
            .where(NotificationRow.status == "sent")
        )
    assert sent_rows == len(sent)
    for m in sent:
        assert m.status == "sent" and m.sent_at == m.date, m
        assert START <= m.date < END

    # -- joiners: welcome and invitation, after they joined, to them -----------------------
    for who in joiners:
        theirs = [m for m in sent if m.to == who]
        welcomes = [m for m in theirs if m.kind == "welcome"]
        invites = [m for m in theirs if m.kind == "invite"]
        assert len(welcomes) == 1, who
        assert welcomes[0].date >= joined[who]
        assert invites, f"{who} got no invitation"
        for m in invites:
            assert m.date >= joined[who]
            assert m.methods == ("REQUEST",), m
        # one invitation per series of their sections, naming that series' UID
        with runtime.transaction() as db:
            wanted = {
                series_uid(SLUG, s)
                for s in db.scalars(select(LiveSeriesRow).where(LiveSeriesRow.kind.in_(LIVE_KINDS)))
                if final.get((who, s.series_key)) == s.section
            }
        assert wanted, f"{who} is in no section"
        assert {m.target for m in invites} == wanted
        for m in invites:
            assert f"UID:{m.target}" in m.calendar.replace("\r\n ", "").replace("\n ", "")

    # -- the leaver: a cancellation, and no live reminder once gone -------------------------
    gone = left[LEAVER]
    theirs = [m for m in sent if m.to == LEAVER]
    cancels = [m for m in theirs if m.kind == "cancellation"]
    assert cancels, "the leaver got no cancellation"
    assert all(m.methods == ("CANCEL",) and m.date >= gone for m in cancels)
    assert {m.target for m in cancels} == {m.target for m in theirs if m.kind == "invite"}
    assert [m for m in theirs if m.kind == LIVE_REMINDER and m.date < gone], (
        "the leaver was reminded of nothing before leaving: the check below proves nothing"
    )
    late = [m for m in theirs if m.kind == LIVE_REMINDER and m.date >= gone]
    assert late == [], late

    # -- live reminders: before the session, once each, only to its section's members -------
    learners = {r[1] for r in ORIGINAL} | joiners
    reminders = [m for m in sent if m.kind == LIVE_REMINDER and m.to in learners]
    assert {m.rule for m in reminders} == set(RULES)
    seen: dict[tuple[str, str, str], int] = {}
    for m in reminders:
        seen[(m.to, m.target, m.rule)] = seen.get((m.to, m.target, m.rule), 0) + 1
        meeting = occurrences[m.target]
        assert m.date < meeting.start, m
        assert meeting.start - RULES[m.rule] <= m.date, m  # not before it was due
        section = member_at(snapshots, m.date, m.to, meeting.series_key)
        assert section == meeting.section, (m, section)
    assert max(seen.values()) == 1, [k for k, n in seen.items() if n > 1]

    # every learner in a section when a reminder fell due was sent it
    expected: set[tuple[str, str, str]] = set()
    for uid, meeting in occurrences.items():
        if meeting.status != SCHEDULED or not COURSE_START <= meeting.start < END:
            continue
        for rule, lead in RULES.items():
            due = meeting.start - lead
            present = next((p for at, p in reversed(active) if at <= due), set())
            for who in present:
                # a member since at least the step before the reminder was due
                before_due = member_at(snapshots, due - STEP, who, meeting.series_key)
                if (
                    before_due
                    == meeting.section
                    == member_at(snapshots, due, who, meeting.series_key)
                ):
                    expected.add((who, uid, rule))
    assert expected, "no reminders expected: the run did not cover any class"
    missing = expected - set(seen)
    assert not missing, sorted(missing)[:10]
    class_uids = {uid for uid, o in occurrences.items() if o.kind == "class"}
    for week_start in (COURSE_START, COURSE_START + timedelta(days=7)):
        in_week = {
            m.target
            for m in reminders
            if m.target in class_uids
            and week_start <= occurrences[m.target].start < week_start + timedelta(days=7)
        }
        assert in_week, f"no class reminders in the week of {week_start:%Y-%m-%d}"

    # joiners are reminded only of their own sections' meetings, and of some
    for who in joiners:
        targets = {m.target for m in reminders if m.to == who}
        for uid in targets:
            o = occurrences[uid]
            assert final.get((who, o.series_key)) == o.section, (who, uid)
        if joined[who] < JOIN_2:
            assert targets & class_uids, f"{who} was never reminded of a class"

    # -- feeds ------------------------------------------------------------------------------
    now = runtime.clock.now()
    for who in joiners:
        with runtime.transaction() as db:
            token, _ = issue_token(db, SLUG, who, now)
        feed = feed_live(runtime, token)
        own = {
            uid
            for uid, o in occurrences.items()
            if o.kind == "class"
            and final.get((who, o.series_key)) == o.section
            and o.start >= now
            and o.status == SCHEDULED
        }
        assert own, f"{who} has no class left"
        upcoming = {uid for uid, (start, _) in feed.items() if start >= now}
        assert own <= upcoming, own - upcoming
        assert all(feed[uid][1] == "CONFIRMED" for uid in own)
        for uid in feed:
            o = occurrences[uid]
            assert final.get((who, o.series_key)) == o.section, (who, uid)

    # the leaver's feed listed their classes before; withdrawing revoked their link (it opens
    # nothing now, not even an empty calendar with their name), and no new one can be issued
    assert any(start >= LEAVE and st == "CONFIRMED" for start, st in leaver_feed_before.values())
    with runtime.transaction() as db:
        assert resolve_token(db, leaver_token) is None
    with pytest.raises(NotFoundError), runtime.transaction() as db:
        issue_token(db, SLUG, LEAVER, now)

    # -- the audit log: the worker placed every joiner, after they joined -------------------
    with runtime.transaction() as db:
        logged = audit_log(db, SLUG, limit=1000, action=LATE_JOINER_ASSIGNED)
    for who in joiners:
        entries = [e for e in logged if e.detail["email"] == who]
        assert {e.detail["series"] for e in entries} == {"class", "office-hours"}, who
        for e in entries:
            assert e.actor.startswith("worker:") and e.actor == f"worker:{worker.id}"[:60]
            assert e.at >= joined[who]
            assert final.get((who, e.detail["series"])) == e.detail["section"]
    assert {e.detail["email"] for e in logged} == joiners
