"""The outbox and the workers as the runner sees them: counts by status, what is due, recent
failures, each worker's last tick. A read model: it changes nothing, and it loads only the
database layer (`cohort status` answers without the mail composer, the templates or the planner).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.domain.status import NotificationStatus
from scheduler.persistence.models import NotificationRow, PersonRow, WorkerRow

# The old names of two notification statuses, still imported by tests.
PENDING, SENT = NotificationStatus.PENDING, NotificationStatus.SENT


@dataclass(frozen=True, slots=True)
class OutboxStatus:
    counts: dict[str, int]  # by status
    due: int  # pending and due now
    failed_recent: list[tuple[str, str, str]] = field(default_factory=list)  # kind, to, error


def outbox_status(db: Session, now: datetime) -> OutboxStatus:
    counts: dict[str, int] = dict.fromkeys(NotificationStatus, 0)
    for status, n in db.execute(
        select(NotificationRow.status, func.count()).group_by(NotificationRow.status)
    ):
        counts[status] = n
    due = db.scalar(
        select(func.count()).where(
            NotificationRow.status == NotificationStatus.PENDING,
            NotificationRow.next_attempt_at <= now,
        )
    )
    failed = [
        (kind, email, error or "")
        for kind, email, error in db.execute(
            select(NotificationRow.kind, PersonRow.email, NotificationRow.last_error)
            .join(PersonRow, PersonRow.id == NotificationRow.person_id)
            .where(NotificationRow.status == NotificationStatus.FAILED)
            .order_by(NotificationRow.id.desc())
            .limit(10)
        )
    ]
    return OutboxStatus(counts, int(due or 0), failed)


@dataclass(frozen=True, slots=True)
class WorkerState:
    id: str
    started_at: datetime
    last_tick_age: float | None  # seconds since its last dispatch tick
    heartbeat_age: float
    stopped: bool
    sent: int


def worker_status(db: Session, now: datetime, limit: int = 10) -> list[WorkerState]:
    """The most recent workers, newest first, with the age of their last tick and heartbeat."""
    rows = db.scalars(select(WorkerRow).order_by(WorkerRow.heartbeat_at.desc()).limit(limit))
    return [
        WorkerState(
            w.id,
            w.started_at,
            (now - w.last_tick_at).total_seconds() if w.last_tick_at else None,
            (now - w.heartbeat_at).total_seconds(),
            w.stopped_at is not None,
            w.sent,
        )
        for w in rows
    ]
