"""The shared pacer and the send-ahead claim, on SQLite and PostgreSQL, with a fixed clock:
slots one ``1/rate`` apart and never shared by two workers, "too fast" lowering the rate at
most once a second and recovering slowly, and a burst claimed as late as it can be but never
before its window opens. The same parts run in real worker processes in test_send_ahead.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from scheduler.clock import FixedClock
from scheduler.persistence.models import NotificationRow, PersonRow, WorkerRow
from scheduler.runtime import Runtime
from scheduler.services.delivery import claim_rows
from scheduler.services.pacing import (
    DECREASE,
    PACE_SHARE,
    RATE_PLANNING_SHARE,
    RECOVERY_PER_SECOND,
    UNMEASURED_RATE,
    Pacer,
    measured_capacity,
    planning_rate,
    send_ahead_horizon,
)

ROWS = [["Ana", "ana@example.org", "Europe/Lisbon", "", "pt_PT", ""]]


def clock(runtime: Runtime) -> FixedClock:
    assert isinstance(runtime.clock, FixedClock)
    return runtime.clock


def pacer(runtime: Runtime, ceiling: float | None) -> Pacer:
    return Pacer(runtime.sessions, ceiling, runtime.clock.now, lock_rows=runtime.is_postgres)


def spaced(rate: float) -> timedelta:
    """The slot spacing at ``rate`` (a little wider: headroom for jitter)."""
    return timedelta(seconds=1 / (rate * PACE_SHARE))


def test_slots_are_one_interval_apart_and_two_workers_never_share_one(runtime: Runtime) -> None:
    now = runtime.clock.now()
    first, second = pacer(runtime, 10.0), pacer(runtime, 10.0)
    first.ensure()
    second.ensure()  # the second worker finds the row there
    a = first.reserve(5)
    b = second.reserve(5)
    assert a.start == now and a.spacing == spaced(10.0)
    assert [a.at(k) for k in range(5)] == [now + spaced(10.0) * k for k in range(5)]
    assert b.start == now + spaced(10.0) * 5  # after the first worker's five
    clock(runtime).advance(timedelta(seconds=10))  # slots in the past are not owed
    assert first.reserve(1).start == runtime.clock.now()


def test_too_fast_lowers_the_rate_once_a_second_then_it_recovers_slowly(
    runtime: Runtime,
) -> None:
    shared = pacer(runtime, 10.0)
    assert shared.rate() == 10.0
    assert shared.slow_down(sending_at=12.0) == 10.0 * DECREASE
    assert shared.slow_down(sending_at=12.0) == 10.0 * DECREASE  # the same burst: one signal
    start = shared.reserve(1).start
    assert start == runtime.clock.now() + timedelta(seconds=1)  # a short pause first
    clock(runtime).advance(timedelta(seconds=1))
    assert shared.slow_down(sending_at=5.0) == pytest.approx(
        (10.0 * DECREASE + 10 * RECOVERY_PER_SECOND) * DECREASE
    )
    clock(runtime).advance(timedelta(seconds=5))
    recovered = shared.rate()
    assert recovered is not None and 2.6 < recovered < 10.0  # additive, not back at once
    clock(runtime).advance(timedelta(minutes=5))
    assert shared.rate() == 10.0  # never above the configured rate
    slots = shared.reserve(3)
    assert slots.spacing == spaced(10.0)


def test_without_a_configured_rate_nothing_waits_until_the_server_says_too_fast(
    runtime: Runtime,
) -> None:
    free = pacer(runtime, None)
    assert free.rate() is None and free.reserve(50).spacing is None
    assert free.slow_down(sending_at=400.0) == 400.0 * DECREASE  # below what it was sending at
    slots = free.reserve(2)
    assert slots.spacing == spaced(400.0 * DECREASE)
    clock(runtime).advance(timedelta(hours=2))
    assert free.rate() is None  # recovered past any limit
    assert free.reserve(1).spacing is None


def _queue(runtime: Runtime, count: int, due: datetime, early: timedelta) -> None:
    now = runtime.clock.now()
    with runtime.transaction() as db:
        person = db.scalar(select(PersonRow.id).where(PersonRow.email == "ana@example.org"))
        cohort = db.scalar(select(NotificationRow.cohort_id).limit(1))
        db.execute(
            NotificationRow.__table__.insert(),  # type: ignore[attr-defined]
            [
                {
                    "cohort_id": cohort,
                    "person_id": person,
                    "kind": "live_reminder",
                    "key": f"burst/{i}",
                    "target": "class",
                    "rule": "class-1h",
                    "target_version": 0,
                    "due_at": due,
                    "not_before": due - early,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": due,
                    "message_id": f"<burst-{i}@example.org>",
                    "payload": {"at": None},
                    "created_at": now,
                }
                for i in range(count)
            ],
        )


@pytest.fixture
def quiet(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    """A published cohort whose own mail (welcome, invitations) has all been sent."""
    runtime = make_published(ROWS)
    with runtime.transaction() as db:
        for row in db.scalars(select(NotificationRow)):
            row.status = "sent"
    return runtime


def test_a_burst_is_claimed_as_late_as_it_can_be_and_never_before_its_window(
    quiet: Runtime,
) -> None:
    runtime = quiet
    t0 = runtime.clock.now() + timedelta(hours=1)
    _queue(runtime, 3_000, t0, timedelta(minutes=5))  # 3,000 at 300/s take 10 s
    config = runtime.delivery_config()

    def horizon_at(moment: datetime) -> datetime:
        clock(runtime).advance(moment - runtime.clock.now())
        with runtime.transaction() as db:
            return send_ahead_horizon(db, moment, 300.0)

    assert horizon_at(t0 - timedelta(seconds=11)) == t0 - timedelta(seconds=11)  # not yet
    assert horizon_at(t0 - timedelta(seconds=9)) == t0  # must start: the last goes at t0
    with runtime.transaction() as db:
        ahead = claim_rows(
            db, "w1", runtime.clock.now(), config, skip_locked=runtime.is_postgres, horizon=t0
        )
        assert len(ahead) == config.batch_size
        plain = claim_rows(db, "w2", runtime.clock.now(), config, skip_locked=False)
        assert plain == []  # without the horizon nothing is due yet


def test_a_row_whose_window_has_not_opened_is_never_claimed(quiet: Runtime) -> None:
    runtime = quiet
    t0 = runtime.clock.now() + timedelta(minutes=1)
    _queue(runtime, 10, t0, timedelta(seconds=20))  # window opens at t0 - 20 s
    config = runtime.delivery_config()
    with runtime.transaction() as db:
        far = t0 + timedelta(hours=1)
        claimed = claim_rows(
            db, "w1", runtime.clock.now(), config, skip_locked=runtime.is_postgres, horizon=far
        )
        assert claimed == []
    clock(runtime).advance(timedelta(seconds=40))  # t0 - 20 s: open
    with runtime.transaction() as db:
        claimed = claim_rows(
            db, "w1", runtime.clock.now(), config, skip_locked=runtime.is_postgres, horizon=t0
        )
        assert len(claimed) == 10
        assert all(r.not_before <= runtime.clock.now() for r in claimed)


def test_sending_ahead_plans_with_the_lower_of_the_rate_and_the_measured_throughput(
    runtime: Runtime,
) -> None:
    now = runtime.clock.now()
    with runtime.transaction() as db:
        assert measured_capacity(db, now) == (UNMEASURED_RATE, False)  # nobody measured yet
        for i, rate in enumerate([400.0, None, 100.0]):
            db.add(
                WorkerRow(
                    id=f"w{i}", host="h", pid=i, started_at=now, heartbeat_at=now, send_rate=rate
                )
            )
        db.add(
            WorkerRow(
                id="gone",
                host="h",
                pid=9,
                started_at=now,
                heartbeat_at=now - timedelta(hours=1),
                send_rate=1000.0,
            )
        )
    with runtime.transaction() as db:
        assert measured_capacity(db, now) == (400.0 + UNMEASURED_RATE + 100.0, True)
        assert planning_rate(db, now, 300.0) == pytest.approx(300.0 * RATE_PLANNING_SHARE)
        assert planning_rate(db, now, None) == pytest.approx(0.8 * 520.0)
        assert planning_rate(db, now, 5000.0) == pytest.approx(0.8 * 520.0)
