"""Orchestration: what the background worker does to keep a running cohort right, and the audit
log that says what it did.

Late joiners. A learner enrolled after the plan was published (roster import, dashboard, API)
is in no section of the cohort's classes and office hours. :func:`assign_late_joiners` places
each such learner into one section of every sectioned series, by the pure rule of
:mod:`scheduler.planning.assign` (the section with room whose future meetings fit them best),
and in the same transaction recomputes deadlines, queues their series invitations and welcome
email, re-times reminders, bumps the cohort's feeds and writes one ``audit_log`` row per
placement. Nobody else changes section and no occurrence moves: only a new
``cohort plan --publish`` re-plans. Running it again places nobody and writes nothing.

Several workers may run it at once on PostgreSQL: each takes the cohort's row with
``FOR UPDATE SKIP LOCKED`` and skips the cohort when another transaction holds it (it is
placing the same learners, or publishing, or importing a roster: the next tick looks again).
SQLite has one worker and serialises writers anyway.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, insert, select
from sqlalchemy.orm import Session

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import Role, SeriesKind
from scheduler.persistence import repo
from scheduler.persistence.models import (
    AuditLogRow,
    CohortRow,
    EnrollmentRow,
    LiveSeriesRow,
    OccurrenceRow,
    SectionMemberRow,
    SeriesRequestRow,
)
from scheduler.planning.assign import Meeting, Newcomer, SectionSeats, place_learners
from scheduler.services.deadlines import publish_deadlines
from scheduler.services.invites import queue_invites
from scheduler.services.plans import CANCELLED, SCHEDULED, published_version
from scheduler.services.reminders import DEFAULT_HORIZON, sync_reminders

LATE_JOINER_ASSIGNED = "late_joiner_assigned"
ACTOR_LENGTH = 60  # audit_log.actor
SECTIONED_KINDS = (SeriesKind.CLASS.value, SeriesKind.OFFICE_HOURS.value)


@dataclass(frozen=True, slots=True)
class LateJoiner:
    """One placement: a learner joined ``section`` of ``series``."""

    email: str
    series: str
    section: int
    fits: int  # future meetings of the section inside their availability
    meetings: int  # future meetings of the section


def assign_late_joiners(
    db: Session,
    slug: str,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    actor: str = "cli",
) -> list[LateJoiner]:
    """Place the cohort's active learners who are in no section of a published class or
    office-hours series; returns the placements (empty: nothing to do, nothing written).

    A learner for whom every section of a series is full stays out of that series (their
    deadlines already give them its replays); they are placed once a seat frees up.
    """
    cohort = repo.get_cohort(db, slug)
    if published_version(db, cohort.id) is None or not _lock(db, cohort.id):
        return []
    series = _sectioned_series(db, cohort.id)
    if not series:
        return []
    members: dict[str, set[int]] = defaultdict(set)  # series key -> person ids
    sizes: dict[tuple[str, int], int] = defaultdict(int)
    for key, section, person_id in db.execute(
        select(
            SectionMemberRow.series_key, SectionMemberRow.section, SectionMemberRow.person_id
        ).where(SectionMemberRow.cohort_id == cohort.id)
    ):
        members[key].add(person_id)
        sizes[(key, section)] += 1
    learners = repo.active_learners(db, cohort.id)
    waiting = {key: [x for x in learners if x.person_id not in members[key]] for key in series}
    if not any(waiting.values()):
        return []

    default = parse_availability(cohort.default_availability)
    capacity: dict[str, int | None] = {
        key: cap
        for key, cap in db.execute(
            select(SeriesRequestRow.key, SeriesRequestRow.max_section_size).where(
                SeriesRequestRow.cohort_id == cohort.id
            )
        )
    }
    meetings = _future_meetings(db, cohort.id, now)
    placed: list[LateJoiner] = []
    rows: list[dict[str, Any]] = []
    for key in sorted(series):
        if not waiting[key]:
            continue
        seats = [
            SectionSeats(
                section,
                capacity.get(key),
                sizes[(key, section)],
                tuple(sorted(meetings.get((key, section), []))),
            )
            for section in sorted(series[key])
        ]
        if not any(s.has_room for s in seats):
            continue  # every section full: they stay on the async path for now
        by_email = {x.email: x for x in waiting[key]}
        newcomers = [
            Newcomer(
                x.email,
                x.zone,
                parse_availability(x.availability) if x.availability else default,
            )
            for x in waiting[key]
        ]
        for email, choice in place_learners(seats, newcomers).items():
            if choice is None:
                continue
            placed.append(LateJoiner(email, key, choice.section, choice.fits, choice.meetings))
            rows.append(
                {
                    "cohort_id": cohort.id,
                    "series_key": key,
                    "person_id": by_email[email].person_id,
                    "section": choice.section,
                }
            )
    if not placed:
        return []
    db.execute(insert(repo.table_of(SectionMemberRow)), rows)
    publish_deadlines(db, slug, now)  # their async work follows their section now
    queue_invites(db, slug, now)  # the series invitations of their sections
    sync_reminders(db, slug, now, horizon)  # welcome and live-session reminders
    repo.touch_feeds(db, cohort.id)
    who = actor[:ACTOR_LENGTH]
    db.execute(
        insert(repo.table_of(AuditLogRow)),
        [
            {
                "cohort_id": cohort.id,
                "at": now,
                "actor": who,
                "action": LATE_JOINER_ASSIGNED,
                "detail": {
                    "email": p.email,
                    "series": p.series,
                    "section": p.section,
                    "fits": p.fits,
                    "meetings": p.meetings,
                },
            }
            for p in placed
        ],
    )
    return placed


def cohorts_with_late_joiners(db: Session) -> list[str]:
    """Slugs of the published cohorts that have an active learner in no section of a class or
    office-hours series that still has a seat: two small queries, cheap enough for the worker to
    ask every few seconds. (A learner waiting only for full series does not count, or the worker
    would look at them on every tick.)"""
    series = (
        select(LiveSeriesRow.cohort_id, LiveSeriesRow.series_key)
        .where(LiveSeriesRow.kind.in_(SECTIONED_KINDS), LiveSeriesRow.status != CANCELLED)
        .distinct()
        .subquery()
    )
    member = exists().where(
        SectionMemberRow.cohort_id == EnrollmentRow.cohort_id,
        SectionMemberRow.series_key == series.c.series_key,
        SectionMemberRow.person_id == EnrollmentRow.person_id,
    )
    query = (
        select(CohortRow.id, CohortRow.slug, series.c.series_key)
        .join(EnrollmentRow, EnrollmentRow.cohort_id == CohortRow.id)
        .join(series, series.c.cohort_id == EnrollmentRow.cohort_id)
        .where(
            EnrollmentRow.role == Role.LEARNER.value,
            EnrollmentRow.status == "active",
            ~member,
        )
        .distinct()
    )
    waiting = [(cohort_id, slug, key) for cohort_id, slug, key in db.execute(query)]
    if not waiting:
        return []
    room = _series_with_room(db, {cohort_id for cohort_id, _, _ in waiting})
    return sorted({slug for cohort_id, slug, key in waiting if (cohort_id, key) in room})


def _series_with_room(db: Session, cohort_ids: set[int]) -> set[tuple[int, str]]:
    """(cohort id, series key) of the sectioned series with a section below its size cap."""
    caps: dict[tuple[int, str], int | None] = {
        (cohort_id, key): cap
        for cohort_id, key, cap in db.execute(
            select(
                SeriesRequestRow.cohort_id, SeriesRequestRow.key, SeriesRequestRow.max_section_size
            ).where(SeriesRequestRow.cohort_id.in_(cohort_ids))
        )
    }
    sizes: dict[tuple[int, str, int], int] = {
        (cohort_id, key, section): size
        for cohort_id, key, section, size in db.execute(
            select(
                SectionMemberRow.cohort_id,
                SectionMemberRow.series_key,
                SectionMemberRow.section,
                func.count(),
            )
            .where(SectionMemberRow.cohort_id.in_(cohort_ids))
            .group_by(
                SectionMemberRow.cohort_id, SectionMemberRow.series_key, SectionMemberRow.section
            )
        )
    }
    room: set[tuple[int, str]] = set()
    for cohort_id, key, section in db.execute(
        select(LiveSeriesRow.cohort_id, LiveSeriesRow.series_key, LiveSeriesRow.section)
        .where(
            LiveSeriesRow.cohort_id.in_(cohort_ids),
            LiveSeriesRow.kind.in_(SECTIONED_KINDS),
            LiveSeriesRow.status != CANCELLED,
        )
        .distinct()
    ):
        cap = caps.get((cohort_id, key))
        if cap is None or sizes.get((cohort_id, key, section), 0) < cap:
            room.add((cohort_id, key))
    return room


def _lock(db: Session, cohort_id: int) -> bool:
    """Take the cohort's row for this transaction; False when another holds it (PostgreSQL).
    SQLite has no row locks (SQLAlchemy renders no ``FOR UPDATE``): always True there."""
    query = select(CohortRow.id).where(CohortRow.id == cohort_id).with_for_update(skip_locked=True)
    return db.scalar(query) is not None


def _sectioned_series(db: Session, cohort_id: int) -> dict[str, set[int]]:
    """The published class and office-hours series: their sections, by series key."""
    found: dict[str, set[int]] = defaultdict(set)
    for key, section in db.execute(
        select(LiveSeriesRow.series_key, LiveSeriesRow.section).where(
            LiveSeriesRow.cohort_id == cohort_id,
            LiveSeriesRow.kind.in_(SECTIONED_KINDS),
            LiveSeriesRow.status != CANCELLED,
        )
    ):
        found[key].add(section)
    return dict(found)


def _future_meetings(
    db: Session, cohort_id: int, now: datetime
) -> dict[tuple[str, int], list[Meeting]]:
    """Scheduled occurrences starting after ``now``, by (series key, section)."""
    found: dict[tuple[str, int], list[Meeting]] = defaultdict(list)
    for key, section, start, end in db.execute(
        select(
            LiveSeriesRow.series_key, LiveSeriesRow.section, OccurrenceRow.start, OccurrenceRow.end
        )
        .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
        .where(
            and_(
                LiveSeriesRow.cohort_id == cohort_id,
                LiveSeriesRow.status != CANCELLED,
                OccurrenceRow.status == SCHEDULED,
                OccurrenceRow.start > now,
            )
        )
    ):
        found[(key, section)].append((start, end))
    return dict(found)


# --- the audit log ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any]


def audit_log(db: Session, slug: str, limit: int = 50) -> list[AuditEntry]:
    """The cohort's audit log, newest first."""
    cohort = repo.get_cohort(db, slug)
    query = (
        select(AuditLogRow.at, AuditLogRow.actor, AuditLogRow.action, AuditLogRow.detail)
        .where(AuditLogRow.cohort_id == cohort.id)
        .order_by(AuditLogRow.at.desc(), AuditLogRow.id.desc())
        .limit(limit)
    )
    return [AuditEntry(*row) for row in db.execute(query)]
