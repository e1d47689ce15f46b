"""Worker bookkeeping: each ``cohort worker`` process's row in ``worker`` (started, heartbeat,
last dispatch tick, mails sent, stopped) and the reaper's checks. ``cohort status`` and
``/readyz`` read these rows through :func:`scheduler.services.outbox.worker_status`.

The rows are for people watching, not for correctness: a crashed worker's notifications are
claimable again once their lease runs out whatever its row says (see
:mod:`scheduler.services.delivery`). Each function takes the caller's session and changes
nothing else; the worker owns the transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from scheduler.domain.status import NotificationStatus
from scheduler.persistence.models import NotificationRow, WorkerRow


def register_worker(db: Session, worker_id: str, host: str, pid: int, now: datetime) -> None:
    """Record a worker that starts now."""
    db.add(WorkerRow(id=worker_id, host=host, pid=pid, started_at=now, heartbeat_at=now, sent=0))


def record_heartbeat(
    db: Session,
    worker_id: str,
    now: datetime,
    sent: int,
    *,
    tick: bool = False,
    send_rate: float | None = None,
) -> None:
    """The worker is alive at ``now`` and has sent ``sent`` mails; ``tick``: it has just
    finished a dispatch tick (its ``last_tick_at``); ``send_rate``: the messages per second it
    has measured it can hand over (what sending ahead plans with), if it has measured."""
    values: dict[str, object] = {"heartbeat_at": now, "sent": sent}
    if send_rate is not None:
        values["send_rate"] = send_rate
    if tick:
        values["last_tick_at"] = now
    db.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(**values))


def unregister_worker(db: Session, worker_id: str, now: datetime, sent: int) -> None:
    """Record that the worker stopped at ``now``, having sent ``sent`` mails."""
    db.execute(update(WorkerRow).where(WorkerRow.id == worker_id).values(stopped_at=now, sent=sent))


def count_expired_leases(db: Session, now: datetime) -> int:
    """Pending notifications whose lease ran out before ``now``: their worker died mid-batch.
    Nothing needs doing: they are claimable again and will be sent again."""
    expired = db.scalar(
        select(func.count()).where(
            NotificationRow.status == NotificationStatus.PENDING, NotificationRow.lease_until < now
        )
    )
    return int(expired or 0)


def mark_gone_workers(db: Session, now: datetime, silent_for: timedelta) -> int:
    """Mark the workers without a heartbeat for ``silent_for`` as stopped, at their last
    heartbeat; returns how many."""
    result = db.execute(
        update(WorkerRow)
        .where(WorkerRow.stopped_at.is_(None), WorkerRow.heartbeat_at < now - silent_for)
        .values(stopped_at=WorkerRow.heartbeat_at)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
