"""The real `cohort worker` process against a real SMTP server: killed, restarted, stopped,
scaled out on PostgreSQL, and left to ride out a PostgreSQL restart."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pg import PgServer
from smtp_sink import SmtpSink
from sqlalchemy import func, select, text

from scheduler.outputs.mailers import MemoryMailer
from scheduler.persistence.models import (
    CohortRow,
    EnrollmentRow,
    LiveSeriesRow,
    NotificationRow,
    PersonRow,
    SectionMemberRow,
)
from scheduler.runtime import Runtime
from scheduler.services.delivery import deliver_batch
from scheduler.services.reminders import WELCOME, message_id_for, notification_key

ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]
BATCH = 20


def cohort_exe() -> str:
    return shutil.which("cohort", path=str(Path(sys.executable).parent)) or "cohort"


def seed(runtime: Runtime, count: int) -> list[str]:
    """Send what publishing queued, then enroll ``count`` more learners with their welcome
    emails due now (real time: the worker process reads the real clock), as a roster import
    would. Returns the emails' Message-IDs."""
    config = runtime.delivery_config()
    while deliver_batch(
        runtime.sessions,
        MemoryMailer(),
        runtime.templates(),
        config,
        "seed",
        runtime.clock.now,
        skip_locked=False,
    ).claimed:
        pass
    now = datetime.now(UTC) - timedelta(seconds=1)
    with runtime.transaction() as db:
        cohort_id, slug = db.execute(select(CohortRow.id, CohortRow.slug)).one()
        first = int(db.scalar(select(func.count()).select_from(PersonRow)) or 0)
        people = [
            {
                "email": f"load{first + i}@example.org",
                "name": f"Learner {first + i}",
                "zone": "Europe/Paris",
                "locale": "fr_FR",
                "created_at": now,
                "updated_at": now,
            }
            for i in range(count)
        ]
        db.execute(PersonRow.__table__.insert(), people)  # type: ignore[attr-defined]
        ids = {
            email: pid
            for email, pid in db.execute(
                select(PersonRow.email, PersonRow.id).where(PersonRow.email.like("load%"))
            )
        }
        person_ids = [ids[p["email"]] for p in people]
        db.execute(
            EnrollmentRow.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "cohort_id": cohort_id,
                    "person_id": pid,
                    "role": "learner",
                    "status": "active",
                    "enrolled_at": now,
                }
                for pid in person_ids
            ],
        )
        # Placed in section 1 of every live series, as a published plan would have placed them
        # (so the worker's late-joiner placement leaves them alone).
        series_keys = set(
            db.scalars(
                select(LiveSeriesRow.series_key).where(
                    LiveSeriesRow.cohort_id == cohort_id, LiveSeriesRow.kind != "coworking"
                )
            )
        )
        db.execute(
            SectionMemberRow.__table__.insert(),  # type: ignore[attr-defined]
            [
                {"cohort_id": cohort_id, "series_key": key, "person_id": pid, "section": 0}
                for pid in person_ids
                for key in sorted(series_keys)
            ],
        )
        values = []
        for pid in person_ids:
            key = notification_key(WELCOME, pid, f"{slug}/welcome", "welcome", 0)
            values.append(
                {
                    "cohort_id": cohort_id,
                    "person_id": pid,
                    "kind": WELCOME,
                    "key": key,
                    "target": f"{slug}/welcome",
                    "rule": "welcome",
                    "target_version": 0,
                    "due_at": now,
                    "not_before": now,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "message_id": message_id_for(key),
                    "payload": {"at": None},
                    "created_at": now,
                }
            )
        db.execute(NotificationRow.__table__.insert(), values)  # type: ignore[attr-defined]
    return [str(v["message_id"]) for v in values]


def worker_env(runtime: Runtime, sink: SmtpSink, **extra: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    env.update(
        {
            "COHORT_DATABASE_URL": runtime.settings.database_url,
            "COHORT_MAIL_BACKEND": "smtp",
            "COHORT_SMTP_HOST": "127.0.0.1",
            "COHORT_SMTP_PORT": str(sink.port),
            "COHORT_SMTP_SECURITY": "none",
            "COHORT_SMTP_TIMEOUT": "30",
            "COHORT_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
            "COHORT_BASE_URL": "http://test",
            "COHORT_WORKER_TICK_SECONDS": "0.2",
            "COHORT_WORKER_BATCH_SIZE": str(BATCH),
            "COHORT_WORKER_LEASE_SECONDS": "10",
            "COHORT_RETRY_BASE_SECONDS": "0.5",
            "COHORT_LOG_LEVEL": "INFO",
        }
    )
    env.update({f"COHORT_{k.upper()}": str(v) for k, v in extra.items()})
    return env


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"worker{len(started)}.log").open("wb") as log:
            proc = subprocess.Popen(
                [cohort_exe(), "worker", *args], env=env, cwd=tmp_path, stdout=log, stderr=log
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def counts(runtime: Runtime) -> dict[str, int]:
    with runtime.transaction() as db:
        query = select(NotificationRow.status, func.count()).group_by(NotificationRow.status)
        return {status: n for status, n in db.execute(query)}


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def test_sigkill_mid_batch_then_restart_loses_nothing(
    published: Runtime, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    ids = seed(published, 300)
    already_sent = counts(published).get("sent", 0)  # what publishing queued, sent by seed()

    def slow(n: int, envelope: object) -> str:
        time.sleep(0.01)
        return "250 OK"

    with SmtpSink(slow) as sink:
        env = worker_env(published, sink)
        proc = start_worker(env)
        # Kill it in the middle of its fourth batch: no chance to record what it sent.
        wait_until(lambda: len(sink.raw) >= 3 * BATCH + BATCH // 2, 60, "the first deliveries")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)  # a message whose DATA was already in the server's hands still lands
        received_at_kill = len(sink.raw)
        assert received_at_kill < len(ids), "the worker finished before it could be killed"
        recorded_at_kill = counts(published).get("sent", 0) - already_sent
        start_worker(env)  # the restart waits out the dead worker's lease (10 s)
        wait_until(lambda: counts(published).get("pending", 0) == 0, 90, "the outbox to drain")
        got = Counter(m for m in sink.message_ids() if m in set(ids))
    assert set(got) == set(ids)  # none lost
    duplicates = sum(n - 1 for n in got.values())
    # Exactly the messages the server accepted but the dead worker had not recorded yet...
    assert duplicates == received_at_kill - recorded_at_kill
    assert 0 < duplicates <= BATCH  # ...which is at most the batch in flight
    state = counts(published)
    assert state.get("pending", 0) == state.get("failed", 0) == 0
    print(f"SIGKILL mid-batch: {len(ids)} notifications, 0 lost, {duplicates} sent twice")


def test_sigterm_finishes_the_batch_and_exits_0(
    published: Runtime, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    ids = seed(published, 200)

    def slow(n: int, envelope: object) -> str:
        time.sleep(0.01)
        return "250 OK"

    with SmtpSink(slow) as sink:
        proc = start_worker(worker_env(published, sink))
        wait_until(lambda: len(sink.raw) >= 30, 60, "the first deliveries")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        received = Counter(sink.message_ids())
    state = counts(published)
    with published.transaction() as db:
        leased = db.scalar(
            select(func.count()).where(
                NotificationRow.status == "pending", NotificationRow.leased_by.is_not(None)
            )
        )
    assert leased == 0  # the batch in hand was finished and recorded, nothing left leased
    sent_load = sum(1 for m in ids if received[m])
    assert 0 < sent_load < len(ids)
    assert all(n == 1 for n in received.values())
    assert state.get("pending", 0) == len(ids) - sent_load


def test_a_second_worker_on_sqlite_exits_with_a_clear_message(
    published: Runtime, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    if published.is_postgres:
        pytest.skip("PostgreSQL runs any number of workers")
    with SmtpSink() as sink:
        env = worker_env(published, sink)
        first = start_worker(env)
        time.sleep(2.0)
        assert first.poll() is None
        second = subprocess.run(
            [cohort_exe(), "worker"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert second.returncode == 1
    assert "already running" in second.stderr and "PostgreSQL" in second.stderr
    assert "Traceback" not in second.stderr


@pytest.mark.postgres
def test_four_workers_on_postgres_deliver_10000_exactly_once(
    published: Runtime, start_worker: Callable[..., subprocess.Popen[bytes]]
) -> None:
    if not published.is_postgres:
        pytest.skip("several workers share a queue on PostgreSQL only")
    t0 = time.monotonic()
    ids = seed(published, 10_000)
    t1 = time.monotonic()
    with SmtpSink() as sink:
        env = worker_env(
            published, sink, worker_batch_size=100, worker_lease_seconds=60, smtp_timeout=60
        )
        procs = [start_worker(env) for _ in range(4)]
        sink.wait_for(len(ids), timeout=600)
        print(
            f"4 workers: seeded 10,000 in {t1 - t0:.1f} s, delivered in {time.monotonic() - t1:.1f} s"
        )
        wait_until(lambda: counts(published).get("pending", 0) == 0, 60, "all recorded")
        for p in procs:
            p.send_signal(signal.SIGTERM)
        assert all(p.wait(timeout=30) == 0 for p in procs)
        received = sink.message_ids()
    wanted = set(ids)
    load = [m for m in received if m in wanted]
    assert set(load) == wanted  # 10,000 distinct Message-IDs: every one delivered
    with published.transaction() as db:
        retried = {
            m
            for (m,) in db.execute(
                select(NotificationRow.message_id).where(
                    NotificationRow.message_id.in_(list(wanted)), NotificationRow.attempts > 1
                )
            )
        }
    twice = [m for m, n in Counter(load).items() if n > 1]
    print(f"4 workers: {len(load)} received, {len(twice)} twice, {len(retried)} retried")
    # No duplicates from sharing the queue. Delivery is at-least-once: a message can only
    # arrive twice when its first send timed out or lost its connection and was retried
    # (recorded); with a 60 s SMTP timeout on loopback that does not happen here.
    assert set(twice) <= retried
    assert len(twice) == 0
    with published.transaction() as db:
        by_worker = {
            w: n for w, n in db.execute(text("select id, sent from worker where sent > 0"))
        }
    assert len(by_worker) >= 2  # the work was actually shared


@pytest.mark.postgres
def test_worker_rides_out_a_postgres_restart(
    tmp_path: Path,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    make_roster: Callable[..., bytes],
    example_cohort_text: str,
) -> None:
    from pydantic import SecretStr
    from sqlalchemy import create_engine

    from scheduler.clock import FixedClock
    from scheduler.persistence import migrations
    from scheduler.persistence.db import make_engine, make_session_factory
    from scheduler.services import publishing
    from scheduler.services.cohorts import load_cohort
    from scheduler.services.plans import plan_cohort
    from scheduler.services.roster import import_roster
    from scheduler.settings import Settings

    server = PgServer.start()  # its own server: this test stops it
    try:
        admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text('CREATE DATABASE "restart"'))
        admin.dispose()
        url = server.url("restart")
        engine = make_engine(url)
        migrations.upgrade(engine)
        settings = Settings.model_construct(
            database_url=url,
            base_url="http://test",
            secret_key=SecretStr("test-secret-key-that-is-long-enough-0123456789"),
        )
        clock = FixedClock(datetime(2027, 2, 1, 9, tzinfo=UTC))
        runtime = Runtime(settings, engine, make_session_factory(engine), clock)
        now = runtime.clock.now()
        with runtime.transaction() as db:
            load_cohort(db, example_cohort_text, "cohort.toml", now)
            import_roster(db, "ml-foundations-2027", make_roster(ROWS), "r.csv", now)
            _, _, plan = plan_cohort(db, "ml-foundations-2027")
            publishing.publish(db, "ml-foundations-2027", plan, now)
        first = seed(runtime, 50)
        with SmtpSink() as sink:
            proc = start_worker(worker_env(runtime, sink))
            sink.wait_for(len(first), timeout=60)
            engine.dispose()
            server.restart(pause=3.0)
            second = seed(runtime, 50)
            wait_until(
                lambda: set(second) <= set(sink.message_ids()), 90, "delivery after the restart"
            )
            assert proc.poll() is None  # it never died
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        runtime.close()
    finally:
        server.stop()
