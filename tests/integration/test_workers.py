"""Worker bookkeeping (scheduler.services.workers) and the worker's jobs that use it, on SQLite
and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from jobs.worker import GONE_AFTER, Worker
from scheduler.outputs.mailers import MemoryMailer
from scheduler.persistence.models import NotificationRow, WorkerRow
from scheduler.runtime import Runtime
from scheduler.services.outbox import PENDING, SENT, worker_status
from scheduler.services.workers import (
    count_expired_leases,
    mark_gone_workers,
    record_heartbeat,
    register_worker,
    unregister_worker,
)

ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]


def test_a_worker_row_from_start_to_stop(runtime: Runtime) -> None:
    start = runtime.clock.now()
    with runtime.transaction() as db:
        register_worker(db, "host:1:abc", "host", 1, start)
    with runtime.transaction() as db:
        (state,) = worker_status(db, start + timedelta(seconds=3))
    assert (state.id, state.started_at, state.sent, state.stopped) == (
        "host:1:abc",
        start,
        0,
        False,
    )
    assert state.heartbeat_age == 3.0 and state.last_tick_age is None

    with runtime.transaction() as db:
        record_heartbeat(db, "host:1:abc", start + timedelta(seconds=5), 7)
    with runtime.transaction() as db:
        (state,) = worker_status(db, start + timedelta(seconds=6))
    assert (state.heartbeat_age, state.last_tick_age, state.sent) == (1.0, None, 7)

    with runtime.transaction() as db:
        record_heartbeat(db, "host:1:abc", start + timedelta(seconds=10), 9, tick=True)
        record_heartbeat(db, "host:1:abc", start + timedelta(seconds=12), 9)  # a plain beat
    with runtime.transaction() as db:
        (state,) = worker_status(db, start + timedelta(seconds=12))
    assert (state.heartbeat_age, state.last_tick_age, state.sent) == (0.0, 2.0, 9)

    with runtime.transaction() as db:
        unregister_worker(db, "host:1:abc", start + timedelta(seconds=20), 11)
    with runtime.transaction() as db:
        row = db.get(WorkerRow, "host:1:abc")
        assert row is not None
        assert (row.stopped_at, row.sent) == (start + timedelta(seconds=20), 11)
        assert row.heartbeat_at == start + timedelta(seconds=12)  # stopping is no heartbeat


def test_silent_workers_are_marked_gone_at_their_last_heartbeat(runtime: Runtime) -> None:
    now = runtime.clock.now()
    with runtime.transaction() as db:
        register_worker(db, "silent", "a", 1, now - timedelta(minutes=5))
        register_worker(db, "alive", "b", 2, now - timedelta(minutes=5))
        register_worker(db, "stopped", "c", 3, now - timedelta(minutes=9))
        record_heartbeat(db, "alive", now - timedelta(seconds=10), 0)
        unregister_worker(db, "stopped", now - timedelta(minutes=8), 0)
    with runtime.transaction() as db:
        assert mark_gone_workers(db, now, timedelta(minutes=2)) == 1
    with runtime.transaction() as db:
        stopped = {w.id: w.stopped_at for w in db.scalars(select(WorkerRow))}
        assert mark_gone_workers(db, now, timedelta(minutes=2)) == 0  # done once
    assert stopped == {
        "silent": now - timedelta(minutes=5),
        "alive": None,
        "stopped": now - timedelta(minutes=8),  # kept: not overwritten
    }


@pytest.fixture
def queued(make_published: Callable[[list[list[str]]], Runtime]) -> tuple[Runtime, list[int]]:
    """The published example cohort; the ids of the first four pending notifications."""
    runtime = make_published(ROWS)
    with runtime.transaction() as db:
        ids = list(
            db.scalars(
                select(NotificationRow.id)
                .where(NotificationRow.status == PENDING)
                .order_by(NotificationRow.id)
                .limit(4)
            )
        )
    assert len(ids) == 4
    return runtime, ids


def test_expired_leases_are_counted(queued: tuple[Runtime, list[int]]) -> None:
    runtime, (expired, running, sent, never) = queued
    now = runtime.clock.now()
    with runtime.transaction() as db:
        assert count_expired_leases(db, now) == 0  # nothing leased yet
        for notification_id, lease, status in (
            (expired, now - timedelta(seconds=1), PENDING),
            (running, now + timedelta(seconds=30), PENDING),
            (sent, now - timedelta(minutes=1), SENT),  # recorded: its lease no longer matters
        ):
            db.execute(
                update(NotificationRow)
                .where(NotificationRow.id == notification_id)
                .values(lease_until=lease, leased_by="dead", status=status)
            )
    with runtime.transaction() as db:
        assert count_expired_leases(db, now) == 1
        assert count_expired_leases(db, now + timedelta(minutes=1)) == 2
        assert db.get(NotificationRow, never) is not None  # untouched: no lease at all


def test_the_worker_jobs_keep_its_row(queued: tuple[Runtime, list[int]]) -> None:
    runtime, (expired, *_) = queued
    worker = Worker(runtime, mailer=MemoryMailer())
    worker.register()
    now = runtime.clock.now()
    with runtime.transaction() as db:
        register_worker(db, "gone", "elsewhere", 9, now - GONE_AFTER - timedelta(seconds=1))
        db.execute(
            update(NotificationRow)
            .where(NotificationRow.id == expired)
            .values(lease_until=now - timedelta(seconds=1), leased_by="gone")
        )
    assert worker.reap() == 1
    worker.heartbeat()
    with runtime.transaction() as db:
        states = {w.id: w for w in worker_status(db, now)}
    assert states["gone"].stopped and not states[worker.id].stopped
    assert states[worker.id].last_tick_age is None  # a heartbeat is not a dispatch tick
    worker.unregister()
    with runtime.transaction() as db:
        assert {w.id: w.stopped for w in worker_status(db, now)} == {
            worker.id: True,
            "gone": True,
        }
