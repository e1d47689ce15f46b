"""The outbox delivered in-process, on SQLite and PostgreSQL: reminders written by rule, replaced
by changes, skipped when stale; sending through a real SMTP server with scripted failures."""

from __future__ import annotations

import email
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest
from draining import drain
from smtp_sink import SmtpSink
from sqlalchemy import func, select, update

from scheduler.clock import FixedClock
from scheduler.outputs.mailers import MemoryMailer, SmtpMailer
from scheduler.persistence.models import LiveSeriesRow, NotificationRow, OccurrenceRow
from scheduler.runtime import Runtime
from scheduler.services.changes import Change, apply_change
from scheduler.services.delivery import retry_delay
from scheduler.services.outbox import outbox_status
from scheduler.services.reminders import (
    DEADLINE_REMINDER,
    LIVE_REMINDER,
    WELCOME,
    still_useful,
    sync_reminders,
)

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea <b>&</b>", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def rows(runtime: Runtime, *kinds: str) -> list[NotificationRow]:
    with runtime.transaction() as db:
        query = select(NotificationRow).order_by(NotificationRow.id)
        if kinds:
            query = query.where(NotificationRow.kind.in_(kinds))
        found = list(db.scalars(query))
        db.expunge_all()
        return found


def first_class(runtime: Runtime) -> OccurrenceRow:
    with runtime.transaction() as db:
        row = db.scalar(
            select(OccurrenceRow)
            .join(LiveSeriesRow, LiveSeriesRow.id == OccurrenceRow.series_id)
            .where(LiveSeriesRow.series_key == "class", LiveSeriesRow.section == 0)
            .order_by(OccurrenceRow.start)
            .limit(1)
        )
        assert row is not None
        db.expunge(row)
        return row


def move_clock(runtime: Runtime, to: datetime) -> None:
    assert isinstance(runtime.clock, FixedClock)
    runtime.clock.advance(to - runtime.clock.now())


def parsed(mailer: MemoryMailer) -> list[EmailMessage]:
    return [
        email.message_from_bytes(m.data, policy=policy.default)  # type: ignore[misc]
        for m in mailer.sent
    ]


def test_publish_queues_welcome_and_invites_and_a_drain_sends_each_once(
    published: Runtime,
) -> None:
    queued = rows(published)
    kinds = {r.kind for r in queued}
    assert {"welcome", "invite"} <= kinds
    assert sum(r.kind == WELCOME for r in queued) == len(ROWS)
    mailer = MemoryMailer()
    counts = drain(published, mailer)
    assert counts.sent == len(queued) == len(mailer.sent)
    assert sorted(m.message_id for m in mailer.sent) == sorted(r.message_id for r in queued)
    assert drain(published, mailer).claimed == 0  # nothing twice
    assert all(r.status == "sent" and r.attempts == 1 for r in rows(published))
    # the invitation carries a calendar part; the welcome carries the learner's feed link
    messages = parsed(mailer)
    invites = [m for m in messages if m.get_content_type() == "multipart/mixed"] or messages
    assert any(
        part.get_content_type() == "text/calendar" and part.get_param("method") == "REQUEST"
        for m in invites
        for part in m.walk()
    )
    welcome = next(m for m in messages if "Welcome" in str(m["Subject"]))
    text = welcome.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "http://test/feeds/" in text
    html = welcome.get_body(("html",)).get_content()  # type: ignore[union-attr]
    lea = next(m for m in messages if "lea@example.org" in str(m["To"]))
    lea_html = lea.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Lea &lt;b&gt;&amp;&lt;/b&gt;" in lea_html and "<b>&</b>" not in lea_html
    assert html


def test_the_feed_link_in_an_email_opens_the_learners_feed_until_reset(
    published: Runtime,
) -> None:
    from scheduler.services.feeds import reset_tokens, resolve_token

    mailer = MemoryMailer()
    drain(published, mailer)
    welcome = {r.message_id for r in rows(published, WELCOME)}  # in each learner's language
    yuki = next(m for m in parsed(mailer) if m["Message-ID"] in welcome and "yuki" in str(m["To"]))
    text = yuki.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    token = text.split("http://test/feeds/", 1)[1].split(".ics", 1)[0]
    with published.transaction() as db:
        target = resolve_token(db, token)
        assert target is not None and target.email == "yuki@example.org"
        reset_tokens(db, SLUG, "yuki@example.org", published.clock.now())
    with published.transaction() as db:
        assert resolve_token(db, token) is None  # revoked with the others


def test_reminders_follow_the_rules_and_a_reschedule_replaces_them(published: Runtime) -> None:
    assert all(r.not_before == r.due_at for r in rows(published, WELCOME, "invite"))
    drain(published, MemoryMailer())
    first = first_class(published)
    move_clock(published, first.start - timedelta(hours=30))
    with published.transaction() as db:
        counts = sync_reminders(db, SLUG, published.clock.now(), timedelta(hours=48))
    live = [r for r in rows(published, LIVE_REMINDER) if r.target == first.uid]
    assert counts.queued >= len(live) > 0
    assert {r.rule for r in live} == {"class-24h", "class-1h"}
    for r in live:
        lead = timedelta(hours=24) if r.rule == "class-24h" else timedelta(hours=1)
        assert r.due_at == first.start - lead and r.target_version == first.sequence
        assert r.not_before == r.due_at - timedelta(minutes=5)  # the rules' default early
    with published.transaction() as db:  # running it again writes nothing new
        assert sync_reminders(db, SLUG, published.clock.now(), timedelta(hours=48)).queued == 0

    # Move that class a day later: the old reminders are cancelled in the same transaction.
    local = first.start.astimezone(ZoneInfo("Europe/Berlin"))  # the series' anchor zone
    to = ((local.weekday() + 1) % 7, local.hour * 60 + local.minute)
    with published.transaction() as db:
        apply_change(db, SLUG, Change("class", week=0, to=to), published.clock.now())
    after = [r for r in rows(published, LIVE_REMINDER) if r.target == first.uid]
    old = [r for r in after if r.target_version == first.sequence]
    assert old and all(r.status == "cancelled" for r in old)
    new = [r for r in after if r.target_version == first.sequence + 1]
    with published.transaction() as db:
        occ = db.scalar(select(OccurrenceRow).where(OccurrenceRow.uid == first.uid))
        assert occ is not None
        new_start = occ.start
    assert new and all(r.status == "pending" for r in new)
    assert new_start == first.start + timedelta(days=1)
    assert {r.due_at for r in new} == {new_start - timedelta(hours=24)}  # 1h: beyond horizon
    assert {r.person_id for r in new} == {r.person_id for r in old}

    # Deliver at the new 24h mark: the reminder names the new time, in the learner's zone.
    move_clock(published, new_start - timedelta(hours=24))
    mailer = MemoryMailer()
    drain(published, mailer)
    reminders = [m for m in parsed(mailer) if "class" in str(m["Subject"]).lower()]
    assert reminders
    for m in mailer.sent:
        assert m.message_id not in {r.message_id for r in old}  # an old time is never sent


def test_a_clock_jump_sends_no_burst_of_stale_reminders(published: Runtime) -> None:
    drain(published, MemoryMailer())
    first = first_class(published)
    move_clock(published, first.start - timedelta(hours=47))
    with published.transaction() as db:
        sync_reminders(db, SLUG, published.clock.now(), timedelta(hours=48))
    pending = [r for r in rows(published) if r.status == "pending"]
    assert pending
    # The worker was down: the clock jumps to 10 minutes after the first class started.
    move_clock(published, first.start + timedelta(minutes=10))
    mailer = MemoryMailer()
    counts = drain(published, mailer)
    now = published.clock.now()
    done = {r.id: r for r in rows(published)}
    for r in pending:
        after = done[r.id]
        at = r.payload.get("at")
        event_at = datetime.fromisoformat(at) if at else None
        if after.status == "sent":
            assert still_useful(r.kind, r.due_at, event_at, now)
        else:
            assert after.status in ("skipped", "cancelled")
    assert counts.skipped > 0
    stale = [r for r in pending if r.kind == LIVE_REMINDER and r.target == first.uid]
    assert stale and all(done[r.id].status == "skipped" for r in stale)


def test_retry_after_451_delivers_once_with_the_same_message_id(published: Runtime) -> None:
    with SmtpSink(["451 4.3.0 try again later"]) as sink:
        mailer = SmtpMailer("127.0.0.1", sink.port, timeout=5)
        first = drain(published, mailer)
        assert first.retried == 1
        retried = [r for r in rows(published) if r.attempts == 1 and r.status == "pending"]
        assert len(retried) == 1 and "451" in (retried[0].last_error or "")
        assert retried[0].next_attempt_at > published.clock.now()
        move_clock(published, retried[0].next_attempt_at)
        drain(published, mailer)
        mailer.close()
        done = {r.id: r for r in rows(published)}
        assert done[retried[0].id].status == "sent" and done[retried[0].id].attempts == 2
        ids = sink.message_ids()
        assert len(ids) == len(set(ids)) == len(done)
        assert retried[0].message_id in ids


def test_550_fails_permanently_and_shows_in_status(published: Runtime) -> None:
    with SmtpSink(["550 5.1.1 mailbox unavailable"]) as sink:
        mailer = SmtpMailer("127.0.0.1", sink.port, timeout=5)
        counts = drain(published, mailer)
        mailer.close()
    assert counts.failed == 1
    failed = [r for r in rows(published) if r.status == "failed"]
    assert len(failed) == 1 and failed[0].attempts == 1 and "550" in (failed[0].last_error or "")
    move_clock(published, published.clock.now() + timedelta(days=1))
    assert drain(published, MemoryMailer()).claimed == 0  # never retried
    with published.transaction() as db:
        status = outbox_status(db, published.clock.now())
    assert status.counts["failed"] == 1 and status.failed_recent[0][2].startswith("550")


def test_dropped_connection_after_data_is_retried_with_the_same_message_id(
    published: Runtime,
) -> None:
    with SmtpSink(["DROP"]) as sink:
        mailer = SmtpMailer("127.0.0.1", sink.port, timeout=5)
        first = drain(published, mailer)
        assert first.retried >= 1
        move_clock(published, published.clock.now() + timedelta(hours=2))
        drain(published, mailer)
        mailer.close()
        everything = rows(published)
        assert all(r.status == "sent" for r in everything)
        ids = sink.message_ids()
        assert sorted(set(ids)) == sorted(r.message_id for r in everything)


def test_backoff_grows_and_is_jittered(runtime: Runtime) -> None:
    config = runtime.delivery_config()
    rng = random.Random(1)
    delays = [retry_delay(n, config, rng) for n in range(1, 8)]
    assert delays[0] <= timedelta(seconds=45) and delays[-1] > timedelta(minutes=10)
    assert len({d.total_seconds() for d in delays}) == len(delays)
    assert all(d <= config.retry_cap * 1.5 for d in delays)


def test_two_workers_on_postgres_never_claim_the_same_row(published: Runtime) -> None:
    if not published.is_postgres:
        pytest.skip("SKIP LOCKED claiming is the PostgreSQL path; SQLite runs one worker")
    from scheduler.services.delivery import claim

    config = published.delivery_config()
    now = published.clock.now()
    with published.transaction() as a, published.transaction() as b:
        first = claim(a, "w1", now, config, skip_locked=True)
        second = claim(b, "w2", now, config, skip_locked=True)
    assert first and not set(first) & set(second)
    with published.transaction() as db:
        leased = db.scalar(select(func.count()).where(NotificationRow.leased_by.is_not(None)))
    assert leased == len(first) + len(second)


def test_weekly_digest_and_deadline_reminders_arrive_on_the_learners_clock(
    published: Runtime,
) -> None:
    drain(published, MemoryMailer())
    move_clock(published, datetime(2027, 3, 1, 6, 0, tzinfo=ZoneInfo("UTC")))  # course Monday
    with published.transaction() as db:
        sync_reminders(db, SLUG, published.clock.now(), timedelta(days=7))
    digests = rows(published, "digest")
    by_person = {r.person_id: r for r in digests if r.target.endswith("2027-03-01")}
    assert len(by_person) == len(ROWS)  # one Monday digest each, at 08:00 on their own clock
    for r in by_person.values():
        assert r.due_at.astimezone(ZoneInfo("UTC")).hour in (23, 7, 16)  # Tokyo, Berlin, LA
    move_clock(published, datetime(2027, 3, 1, 7, 0, tzinfo=ZoneInfo("UTC")))  # 08:00 Berlin
    mailer = MemoryMailer()
    drain(published, mailer)
    sent = parsed(mailer)
    sent_ids = {m.message_id for m in mailer.sent}
    due_later = [r for r in by_person.values() if r.due_at > published.clock.now()]
    assert len(due_later) == 1 and due_later[0].message_id not in sent_ids  # LA: 16:00 UTC
    digest_ids = {r.message_id for r in by_person.values()}
    lea = next(  # Berlin: 07:00 UTC, due now
        m for m in sent if "lea@example.org" in str(m["To"]) and m["Message-ID"] in digest_ids
    )
    assert "Ihre Woche ab Mo., 1. März" in str(lea["Subject"])  # her language and locale
    text = lea.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Live class" in text and "(Europe/Berlin)" in text  # the series title as written
    # Deadline reminders: due 48h before each soft deadline, named in the subject.
    deadline_rows = sorted(rows(published, DEADLINE_REMINDER), key=lambda r: r.due_at)
    assert {r.rule for r in deadline_rows} == {"deadline-48h", "deadline-morning"}
    later = next(r for r in deadline_rows if r.due_at > published.clock.now())
    move_clock(published, later.due_at)
    mailer = MemoryMailer()
    drain(published, mailer)
    reminder = next(m for m in parsed(mailer) if m["Message-ID"] == later.message_id)
    body = reminder.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Read the week's notes" in body or "Read the week" in str(reminder["Subject"])


def test_a_batch_whose_lease_ran_out_is_left_to_the_worker_that_reclaimed_it(
    published: Runtime,
) -> None:
    from scheduler.services.delivery import finish_batch, prepare_batch

    config = published.delivery_config()
    clock, pg = published.clock, published.is_postgres
    stale = prepare_batch(
        published.sessions, published.templates(), config, "w1", clock.now, skip_locked=pg
    )
    assert stale
    # w1 stalls past its lease; w2 claims the same rows.
    move_clock(published, clock.now() + config.lease + timedelta(seconds=1))
    fresh = prepare_batch(
        published.sessions, published.templates(), config, "w2", clock.now, skip_locked=pg
    )
    assert {d.notification_id for d in stale} <= {d.notification_id for d in fresh}
    late = MemoryMailer()
    assert finish_batch(published.sessions, late, config, "w1", clock.now, stale).sent == 0
    assert late.sent == []  # nothing sent twice
    owner = MemoryMailer()
    assert finish_batch(published.sessions, owner, config, "w2", clock.now, fresh).sent == len(
        fresh
    )


def test_a_claimed_row_cancelled_before_sending_is_neither_sent_nor_marked_sent(
    published: Runtime,
) -> None:
    """The lease confirmation and the record look rows up by id, but still only touch rows
    that are pending: a reminder superseded while its batch was being composed stays
    cancelled and is not sent."""
    from scheduler.services.delivery import finish_batch, prepare_batch

    config = published.delivery_config()
    clock, pg = published.clock, published.is_postgres
    batch = prepare_batch(
        published.sessions, published.templates(), config, "w1", clock.now, skip_locked=pg
    )
    assert len(batch) >= 2
    ids = [d.notification_id for d in batch]
    assert ids == sorted(ids)  # oldest first (all due at the same instant here: by id)
    gone = ids[0]
    with published.transaction() as db:  # as sync_reminders does; the lease stays
        db.execute(
            update(NotificationRow).where(NotificationRow.id == gone).values(status="cancelled")
        )
    mailer = MemoryMailer()
    counts = finish_batch(published.sessions, mailer, config, "w1", clock.now, batch)
    assert counts.sent == len(batch) - 1
    sent_ids = {m.message_id for m in mailer.sent}
    by_id = {r.id: r for r in rows(published)}
    assert by_id[gone].message_id not in sent_ids
    assert by_id[gone].status == "cancelled" and by_id[gone].sent_at is None
    assert all(by_id[i].status == "sent" for i in ids[1:])
    assert all(by_id[i].leased_by is None for i in ids[1:])
