"""Orchestration: what the background worker does to keep a running cohort right, and the audit
log that says what it did.

Late joiners. A learner enrolled after the plan was published (roster import, dashboard, API)
is in no section of the cohort's classes and office hours. :func:`assign_late_joiners` places
each such learner into one section of every sectioned series, by the pure rule of
:mod:`scheduler.planning.placement` (the section with room whose future meetings fit them best),
and in the same transaction recomputes deadlines, queues their series invitations and welcome
email, re-times reminders, bumps the cohort's feeds and writes one ``audit_log`` row per
placement. Nobody else changes section and no occurrence moves: only a new
``cohort plan --publish`` re-plans. Running it again places nobody and writes nothing.

Rolling re-plans. :func:`replan_cohort` plans a published cohort with ``auto_replan = true``
afresh for its active learners and moves the future onto the fresh plan only as far as the
pure rule of :mod:`scheduler.planning.replan` allows: nothing that starts within the freeze
horizon (``[orchestration] freeze``, default 7 days) moves, appears or is cancelled; a series
moves only if its coverage improves, never more than ``max_moves`` times per course, and only
when the cohort's coverage gains at least ``replan_margin``. The move goes through the same
publish path as ``cohort plan --publish`` (diff, SEQUENCE, updated invitations, re-timed
reminders, deadlines) and is written to the audit log with the coverage before and after.
A learner whose section changes attends their new section's meetings from then on.

Several workers may run these at once on PostgreSQL: each takes the cohort's row with
``FOR UPDATE SKIP LOCKED`` and skips the cohort when another transaction holds it (it is
placing the same learners, or publishing, or importing a roster: the next tick looks again).
SQLite has one worker and serialises writers anyway.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, case, exists, func, insert, select
from sqlalchemy.orm import Session

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import CohortSpec, Role, SeriesKind
from scheduler.domain.status import EnrollmentStatus, OccurrenceStatus, SeriesStatus
from scheduler.persistence import repo
from scheduler.persistence.models import (
    AuditLogRow,
    CohortRow,
    EnrollmentRow,
    LiveSeriesRow,
    OccurrenceRow,
    PersonRow,
    SectionMemberRow,
    SeriesRequestRow,
)
from scheduler.planning import Plan
from scheduler.planning.placement import Newcomer, SectionSeats, TimeSpan, place_learners
from scheduler.planning.replan import Meeting, Person, ReplanDecision, SeriesFuture, choose_replan
from scheduler.services import audit, publishing
from scheduler.services.cascade import bring_up_to_date
from scheduler.services.plans import (
    OccurrenceKey,
    PlanDiff,
    PublishScope,
    diff_counts,
    plan_cohort,
    published_version,
    stored_occurrences,
)
from scheduler.services.reminders import DEFAULT_HORIZON
from scheduler.timeutil import zone

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
    # Their async work follows their section now; their sections' series invitations, welcome
    # and live-session reminders are queued.
    bring_up_to_date(db, slug, now, horizon=horizon)
    audit.record(
        db,
        cohort.id,
        now,
        actor,
        audit.LATE_JOINER_ASSIGNED,
        (
            {
                "email": p.email,
                "series": p.series,
                "section": p.section,
                "fits": p.fits,
                "meetings": p.meetings,
            }
            for p in placed
        ),
    )
    return placed


@dataclass(frozen=True, slots=True)
class ReplanResult:
    slug: str
    outcome: str  # off | unpublished | busy | applied | kept | would_apply
    decision: ReplanDecision | None = None
    version: int | None = None
    diff: PlanDiff | None = None
    section_changes: int = 0  # learners whose section of a moved series changed


def replan_cohort(
    db: Session,
    slug: str,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    actor: str = "cli",
    force: bool = False,
    dry_run: bool = False,
) -> ReplanResult:
    """Re-plan the future of ``slug`` if it is worth it (module docstring); ``force`` runs it
    even when the cohort's ``auto_replan`` is off; ``dry_run`` decides and writes nothing
    (outcome ``would_apply``). Writes nothing unless a series moves."""
    cohort = repo.get_cohort(db, slug)
    options = repo.orchestration_options(cohort)
    if not (options.auto_replan or force):
        return ReplanResult(slug, "off")
    if published_version(db, cohort.id) is None:
        return ReplanResult(slug, "unpublished")
    if not _lock(db, cohort.id):
        return ReplanResult(slug, "busy")
    boundary = now + options.freeze
    spec, learners, plan = plan_cohort(db, slug)
    people = {x.key: Person(x.zone, x.availability) for x in learners}
    stored = _stored_meetings(db, cohort.id)
    current = _current_futures(db, cohort.id, stored, boundary)
    members_before = {(f.key, who): s for f in current for who, s in f.members.items()}
    proposed = _proposed_futures(plan, stored, boundary)
    plan, held = _keep_hosts(spec, plan, stored, proposed, now, boundary)
    decision = choose_replan(
        current,
        proposed,
        people,
        _moves_so_far(db, cohort.id),
        options.replan_margin,
        options.max_moves,
        held,
    )
    if not decision.apply:
        return ReplanResult(slug, "kept", decision)
    if dry_run:
        return ReplanResult(slug, "would_apply", decision)
    moved = frozenset(decision.moves)
    version, diff, _ = publishing.publish(
        db, slug, plan, now, horizon, scope=PublishScope(moved, boundary), actor=actor
    )
    changes = sum(
        1
        for f in proposed
        if f.key in moved
        for who, section in f.members.items()
        if members_before.get((f.key, who), section) != section
    )
    audit.record(
        db,
        cohort.id,
        now,
        actor,
        audit.REPLANNED,
        [
            {
                "moved_series": sorted(moved),
                "version": version,
                "coverage_before": round(decision.before, 4),
                "coverage_after": round(decision.after, 4),
                "frozen_until": boundary.isoformat(),
                "section_changes": changes,
                **diff_counts(diff),
            }
        ],
    )
    return ReplanResult(slug, "applied", decision, version, diff, changes)


@dataclass(frozen=True, slots=True)
class _Published:
    """One scheduled occurrence as published: its series' kind and host, and when it meets."""

    kind: str
    host: str | None
    meeting: Meeting


Stored = dict[OccurrenceKey, _Published]


def _stored_meetings(db: Session, cohort_id: int) -> Stored:
    return {
        key: _Published(
            series.kind,
            series.facilitator_email,
            Meeting(key[3], o.start.astimezone(UTC), o.end.astimezone(UTC)),
        )
        for key, (series, o) in stored_occurrences(db, cohort_id).items()
        if o.status == OccurrenceStatus.SCHEDULED
    }


def _futures(
    kinds: dict[str, bool],
    meetings: dict[str, dict[int, list[Meeting]]],
    members: dict[str, dict[str, int]],
) -> list[SeriesFuture]:
    return [
        SeriesFuture(
            key,
            sectioned,
            {s: tuple(sorted(m, key=lambda x: x.start)) for s, m in meetings[key].items()},
            members[key] if sectioned else {},
        )
        for key, sectioned in sorted(kinds.items())
    ]


def _current_futures(
    db: Session, cohort_id: int, stored: Stored, boundary: datetime
) -> list[SeriesFuture]:
    """Each published series as it is from ``boundary`` on."""
    kinds: dict[str, bool] = {}
    meetings: dict[str, dict[int, list[Meeting]]] = defaultdict(lambda: defaultdict(list))
    for (key, section, _, _), published in stored.items():
        kinds[key] = published.kind != SeriesKind.COWORKING.value
        if published.meeting.start >= boundary:
            meetings[key][section].append(published.meeting)
    members: dict[str, dict[str, int]] = defaultdict(dict)
    for key, email, section in db.execute(
        select(SectionMemberRow.series_key, PersonRow.email, SectionMemberRow.section)
        .join(PersonRow, PersonRow.id == SectionMemberRow.person_id)
        .where(SectionMemberRow.cohort_id == cohort_id)
    ):
        members[key][email] = section
    return _futures(kinds, meetings, members)


def _proposed_futures(plan: Plan, stored: Stored, boundary: datetime) -> list[SeriesFuture]:
    """Each series from ``boundary`` on as publishing ``plan`` with that freeze boundary would
    leave it: an occurrence that is, or would be, inside the horizon stays where it is."""
    kinds = {s.series: s.kind != SeriesKind.COWORKING for s in plan.sections}
    meetings: dict[str, dict[int, list[Meeting]]] = defaultdict(lambda: defaultdict(list))
    for o in plan.occurrences:
        if o.skipped:
            continue
        published = stored.get((o.series, o.section, o.slot, o.week))
        old = None if published is None else published.meeting
        if old is not None and (old.start < boundary or o.start < boundary):
            meeting: Meeting | None = old if old.start >= boundary else None
        else:
            meeting = (
                Meeting(o.week, o.start.astimezone(UTC), o.end.astimezone(UTC))
                if o.start >= boundary
                else None
            )
        if meeting is not None:
            meetings[o.series][o.section].append(meeting)
    members: dict[str, dict[str, int]] = defaultdict(dict)
    for s in plan.sections:
        if s.kind != SeriesKind.COWORKING:
            for learner in s.learners:
                members[s.series][learner] = s.section
    return _futures(kinds, meetings, members)


def _keep_hosts(
    spec: CohortSpec,
    plan: Plan,
    stored: Stored,
    proposed: list[SeriesFuture],
    now: datetime,
    boundary: datetime,
) -> tuple[Plan, frozenset[str]]:
    """A host is stored per section of a series, so giving a section another host would hand
    its meetings inside the freeze horizon to someone else too. Where the fresh plan does that,
    the section keeps its host if they can take every one of its meetings after the boundary
    (on their own clock); otherwise the series is held (not moved by this re-plan)."""
    hosts_inside = {  # sections meeting inside the horizon -> their host
        (key, section): published.host
        for (key, section, _, _), published in stored.items()
        if now <= published.meeting.start < boundary
    }
    facilitators = {f.email: f for f in spec.facilitators}
    ahead = {f.key: f.meetings for f in proposed}
    held: set[str] = set()
    sections = []
    for section in plan.sections:
        old = hosts_inside.get((section.series, section.section))
        if old and section.facilitator != old:
            host = facilitators.get(old)
            meetings = ahead.get(section.series, {}).get(section.section, ())
            if host is not None and all(
                host.availability.covers_at(m.start, m.minutes, zone(host.zone)) for m in meetings
            ):
                section = replace(section, facilitator=old)
            else:
                held.add(section.series)
        sections.append(section)
    return replace(plan, sections=tuple(sections)), frozenset(held)


def _moves_so_far(db: Session, cohort_id: int) -> dict[str, int]:
    """How many re-plans have moved each series (from the audit log)."""
    counts: dict[str, int] = defaultdict(int)
    for (detail,) in db.execute(
        select(AuditLogRow.detail).where(
            AuditLogRow.cohort_id == cohort_id, AuditLogRow.action == audit.REPLANNED
        )
    ):
        for key in detail.get("moved_series", []):
            counts[key] += 1
    return dict(counts)


def replan_fingerprints(db: Session) -> dict[str, tuple[Any, ...]]:
    """For every published cohort with ``auto_replan``: a value that changes whenever its
    roster does (joins, leaves, a learner's zone or availability), one grouped query. The worker
    re-plans a cohort within a tick of its fingerprint changing."""
    query = (
        select(
            CohortRow.slug,
            func.count(EnrollmentRow.id),
            func.max(EnrollmentRow.id),
            func.max(EnrollmentRow.left_at),
            func.max(PersonRow.updated_at),
            func.sum(case((EnrollmentRow.status == EnrollmentStatus.ACTIVE, 1), else_=0)),
        )
        .join(EnrollmentRow, EnrollmentRow.cohort_id == CohortRow.id)
        .join(PersonRow, PersonRow.id == EnrollmentRow.person_id)
        .where(CohortRow.auto_replan.is_(True))
        .group_by(CohortRow.slug)
    )
    return {slug: tuple(rest) for slug, *rest in db.execute(query)}


def cohorts_with_late_joiners(db: Session) -> list[str]:
    """Slugs of the published cohorts that have an active learner in no section of a class or
    office-hours series that still has a seat: grouped counts first, then (only where they differ)
    the exact query and a check for room; cheap enough for the worker to
    ask every few seconds. (A learner waiting only for full series does not count, or the worker
    would look at them on every tick.)"""
    suspects = _cohorts_missing_members(db)
    if not suspects:
        return []
    series = _published_sectioned_series().subquery()
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
            EnrollmentRow.cohort_id.in_(suspects),
            EnrollmentRow.role == Role.LEARNER.value,
            EnrollmentRow.status == EnrollmentStatus.ACTIVE,
            ~member,
        )
        .distinct()
    )
    waiting = [(cohort_id, slug, key) for cohort_id, slug, key in db.execute(query)]
    if not waiting:
        return []
    room = _series_with_room(db, {cohort_id for cohort_id, _, _ in waiting})
    return sorted({slug for cohort_id, slug, key in waiting if (cohort_id, key) in room})


def _cohorts_missing_members(db: Session) -> set[int]:
    """Cohorts where some sectioned series has fewer active members than the cohort has active
    learners: two grouped counts (an equi-join, planned well with or without statistics) that
    rule out nearly every tick before the exact query runs."""
    active = {
        cohort_id: n
        for cohort_id, n in db.execute(
            select(EnrollmentRow.cohort_id, func.count())
            .where(
                EnrollmentRow.role == Role.LEARNER.value,
                EnrollmentRow.status == EnrollmentStatus.ACTIVE,
            )
            .group_by(EnrollmentRow.cohort_id)
        )
    }
    if not active:
        return set()
    members = {
        (cohort_id, key): n
        for cohort_id, key, n in db.execute(
            select(SectionMemberRow.cohort_id, SectionMemberRow.series_key, func.count())
            .join(
                EnrollmentRow,
                and_(
                    EnrollmentRow.cohort_id == SectionMemberRow.cohort_id,
                    EnrollmentRow.person_id == SectionMemberRow.person_id,
                ),
            )
            .where(EnrollmentRow.status == EnrollmentStatus.ACTIVE)
            .group_by(SectionMemberRow.cohort_id, SectionMemberRow.series_key)
        )
    }
    return {
        cohort_id
        for cohort_id, key in db.execute(_published_sectioned_series())
        if members.get((cohort_id, key), 0) < active.get(cohort_id, 0)
    }


def _published_sectioned_series() -> Select[int, str]:
    """(cohort id, series key) of every published class and office-hours series."""
    return (
        select(LiveSeriesRow.cohort_id, LiveSeriesRow.series_key)
        .where(
            LiveSeriesRow.kind.in_(SECTIONED_KINDS), LiveSeriesRow.status != SeriesStatus.CANCELLED
        )
        .distinct()
    )


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
            LiveSeriesRow.status != SeriesStatus.CANCELLED,
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
            LiveSeriesRow.status != SeriesStatus.CANCELLED,
        )
    ):
        found[key].add(section)
    return dict(found)


def _future_meetings(
    db: Session, cohort_id: int, now: datetime
) -> dict[tuple[str, int], list[TimeSpan]]:
    """Scheduled occurrences starting after ``now``, by (series key, section)."""
    found: dict[tuple[str, int], list[TimeSpan]] = defaultdict(list)
    for key, section, start, end in db.execute(
        select(
            LiveSeriesRow.series_key, LiveSeriesRow.section, OccurrenceRow.start, OccurrenceRow.end
        )
        .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
        .where(
            and_(
                LiveSeriesRow.cohort_id == cohort_id,
                LiveSeriesRow.status != SeriesStatus.CANCELLED,
                OccurrenceRow.status == OccurrenceStatus.SCHEDULED,
                OccurrenceRow.start > now,
            )
        )
    ):
        found[(key, section)].append((start, end))
    return dict(found)
