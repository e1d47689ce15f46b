"""The audit log: what was done to a cohort, when and by whom (the CLI, the dashboard, the API
or a worker). Written in the same transaction as the change it records; read by
``cohort log --cohort SLUG`` and the dashboard."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from scheduler.persistence import repo
from scheduler.persistence.models import AuditLogRow

ACTOR_LENGTH = 60  # audit_log.actor
ACTION_LENGTH = 40  # audit_log.action


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


def record(
    db: Session,
    cohort_id: int,
    at: datetime,
    actor: str,
    action: str,
    details: Iterable[dict[str, Any]],
) -> int:
    """Add one entry per detail (none: nothing written); returns how many."""
    rows = [
        {
            "cohort_id": cohort_id,
            "at": at,
            "actor": actor[:ACTOR_LENGTH],
            "action": action[:ACTION_LENGTH],
            "detail": detail,
        }
        for detail in details
    ]
    if rows:
        db.execute(insert(repo.table_of(AuditLogRow)), rows)
    return len(rows)


def audit_log(
    db: Session, slug: str, limit: int = 50, action: str | None = None
) -> list[AuditEntry]:
    """The cohort's audit log, newest first (only ``action`` entries, when given)."""
    cohort = repo.get_cohort(db, slug)
    query = select(AuditLogRow.at, AuditLogRow.actor, AuditLogRow.action, AuditLogRow.detail).where(
        AuditLogRow.cohort_id == cohort.id
    )
    if action is not None:
        query = query.where(AuditLogRow.action == action)
    query = query.order_by(AuditLogRow.at.desc(), AuditLogRow.id.desc()).limit(limit)
    return [AuditEntry(*row) for row in db.execute(query)]
