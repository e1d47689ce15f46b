"""Delivery status: the outbox counts (every cohort's), recent failures, the workers'
heartbeat and the busiest stretch of sending ahead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from scheduler.services.bursts import BurstCheck, busiest_stretch
from scheduler.services.outbox import outbox_status, worker_status


@dataclass(frozen=True, slots=True)
class DeliveryView:
    counts: dict[str, int]
    due: int
    failed: tuple[tuple[str, str, str], ...]  # kind, to, error
    workers_running: int
    heartbeat_age: float | None  # seconds since the freshest worker heartbeat; None: never ran
    last_tick_age: float | None
    burst: BurstCheck | None = None  # the busiest stretch ahead at the rate in force


def delivery_view(
    db: Session, now: datetime, mail_rate: float | None = None, slug: str | None = None
) -> DeliveryView:
    """The outbox (every cohort's), the workers' heartbeat, and the busiest stretch of the
    week ahead (with ``slug``'s live reminders projected) at ``mail_rate`` or the measured
    rate."""
    box = outbox_status(db, now)
    workers = worker_status(db, now)
    beats = [w.heartbeat_age for w in workers if not w.stopped] or [
        w.heartbeat_age for w in workers
    ]
    ticks = [w.last_tick_age for w in workers if w.last_tick_age is not None]
    return DeliveryView(
        dict(box.counts),
        box.due,
        tuple(box.failed_recent),
        sum(not w.stopped for w in workers),
        min(beats) if beats else None,
        min(ticks) if ticks else None,
        busiest_stretch(db, now, mail_rate, slug=slug),
    )
