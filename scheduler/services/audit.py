"""The audit log: what was done to a cohort, when and by whom (the CLI, the dashboard, the API
or a worker). Written in the same transaction as the change it records; read by
``cohort log --cohort SLUG`` and the dashboard."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from scheduler.persistence import repo
from scheduler.persistence.models import AuditLogRow

# What an entry records (audit_log.action); each is written by one service.
PLAN_PUBLISHED = "plan_published"  # services/schedule.py
OCCURRENCES_MOVED = "occurrences_moved"  # services/changes.py
OCCURRENCES_CANCELLED = "occurrences_cancelled"  # services/changes.py
LATE_JOINER_ASSIGNED = "late_joiner_assigned"  # services/orchestration.py
REPLANNED = "replan"  # services/orchestration.py
CATCH_UP_SHIFTED = "catch_up_shifted"  # services/catch_up.py
REMINDER_PREFERENCES = "reminder_preferences"  # services/preferences.py

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


def record_or_merge(
    db: Session,
    cohort_id: int,
    at: datetime,
    actor: str,
    action: str,
    detail: dict[str, Any],
    *,
    same: str,
    within: timedelta,
) -> None:
    """One entry, or, when the cohort's newest entry is the same ``action`` by the same ``actor``
    about the same ``detail[same]`` (a learner) less than ``within`` ago, that entry updated to
    ``detail`` with ``changes`` counting them. Someone changing their mind twenty times in a
    minute then reads as one line and cannot push the runner's activity off the dashboard."""
    newest = db.execute(
        select(
            AuditLogRow.id,
            AuditLogRow.at,
            AuditLogRow.actor,
            AuditLogRow.action,
            AuditLogRow.detail,
        )
        .where(AuditLogRow.cohort_id == cohort_id)
        .order_by(AuditLogRow.at.desc(), AuditLogRow.id.desc())
        .limit(1)
    ).first()
    if (
        newest is not None
        and newest.action == action[:ACTION_LENGTH]
        and newest.actor == actor[:ACTOR_LENGTH]
        and isinstance(newest.detail, dict)
        and newest.detail.get(same) == detail.get(same)
        and at - newest.at < within
    ):
        merged = {**detail, "changes": int(newest.detail.get("changes", 1)) + 1}
        db.execute(
            update(AuditLogRow).where(AuditLogRow.id == newest.id).values(at=at, detail=merged)
        )
        return
    record(db, cohort_id, at, actor, action, [detail])


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


def describe(entry: AuditEntry) -> str:
    """One line a course runner can read, for the CLI and the dashboard."""
    d = entry.detail
    try:
        if entry.action == LATE_JOINER_ASSIGNED:
            return (
                f"placed {d['email']} in {d['series']} section {d['section'] + 1} "
                f"({d['fits']} of {d['meetings']} meetings to come fit them)"
            )
        if entry.action == REPLANNED:
            return (
                f"re-planned {', '.join(d['moved_series'])} (version {d['version']}): coverage "
                f"{d['coverage_before']:.0%} \u2192 {d['coverage_after']:.0%}; {d['moved']} "
                f"moved, {d['added']} added, {d['cancelled']} cancelled; {d['frozen']} inside "
                f"the freeze horizon left as they were; {d['section_changes']} learner(s) "
                "changed section"
            )
        if entry.action == PLAN_PUBLISHED:
            return (
                f"published plan version {d['version']}: {d['added']} added, {d['moved']} "
                f"moved, {d['cancelled']} cancelled, {d['unchanged']} unchanged"
            )
        if entry.action in (OCCURRENCES_MOVED, OCCURRENCES_CANCELLED):
            return f"{d['change']} (version {d['version']}, {d['people']} people told)"
        if entry.action == CATCH_UP_SHIFTED:
            unit = "day" if d["days"] == 1 else "days"
            return (
                f"learner {d['email']} shifted their remaining soft deadlines by {d['days']} "
                f"{unit} (shift {d['shift']} of {d['of']}; {d['moved']} moved)"
            )
        if entry.action == REMINDER_PREFERENCES:
            return _preferences(d)
    except (KeyError, TypeError, ValueError):
        pass  # an entry written by another version: show it raw
    return ", ".join(f"{k}={v}" for k, v in d.items())


def _preferences(d: dict[str, Any]) -> str:
    """A learner's reminder choices as one line: what they turned off or on, and the pause."""
    done = []
    if d["turned_off"]:
        done.append(f"turned off {', '.join(d['turned_off'])}")
    if d["turned_on"]:
        done.append(f"turned on {', '.join(d['turned_on'])}")
    if "paused_until" in d:
        pause = d["paused_until"]
        done.append(f"paused reminders up to {pause}" if pause else "lifted their pause")
    changes = int(d.get("changes", 1))
    latest = f" (the latest of {changes} changes in a row)" if changes > 1 else ""
    return (
        f"learner {d['email']} ({d['via']}): {'; '.join(done) or 'no change'}{latest}; "
        f"{d['cancelled']} pending cancelled, {d['restored']} restored"
    )
