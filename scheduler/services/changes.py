"""Changing a published plan by hand: move or cancel one occurrence, or a series from a week on.

One service serves the CLI (`cohort reschedule`, `cohort cancel`) and, later, the dashboard:
``preview_change`` says who is affected, coverage before and after, and which emails will go
out; ``apply_change`` does it in the caller's transaction — new times (same UID, SEQUENCE + 1),
or ``STATUS:CANCELLED`` —, records a plan version, recomputes deadlines, and queues an updated
series invitation (or a cancellation) for every affected person in the outbox.
Occurrences that have already started are never changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import CohortSpec, SeriesKind
from scheduler.domain.status import OccurrenceStatus, SeriesStatus
from scheduler.errors import ConfigError, NotFoundError, Problem
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
    LiveSeriesRow,
    OccurrenceRow,
    PersonRow,
    PlanVersionRow,
    SectionMemberRow,
)
from scheduler.planning.fit import slot_instant
from scheduler.planning.pain import region_of
from scheduler.services import audit
from scheduler.services.cascade import bring_up_to_date
from scheduler.services.deadlines import DeadlineSummary
from scheduler.services.invites import InviteCounts
from scheduler.services.plans import published_version
from scheduler.services.published import fairness_ledgers
from scheduler.services.reminders import DEFAULT_HORIZON
from scheduler.timeutil import Weekday, parse_clock, zone


@dataclass(frozen=True, slots=True)
class Change:
    """What to change. ``week`` (0-based) alone: that one occurrence; ``from_week``: the series
    from that week on; neither: every future occurrence. ``to`` is (weekday, minute) in the
    series' anchor zone for a move, None to cancel."""

    series: str
    section: int = 0
    slot: int = 0
    week: int | None = None
    from_week: int | None = None
    to: tuple[int, int] | None = None

    @property
    def cancels(self) -> bool:
        return self.to is None


def parse_wall_time(text: str) -> tuple[int, int]:
    """``Wed 18:30`` -> (2, 1110); raises ConfigError with a hint."""
    day, _, clock = text.strip().partition(" ")
    try:
        return int(Weekday.parse(day)), parse_clock(clock.strip())
    except ValueError as e:
        raise ConfigError(
            [
                Problem(
                    str(e),
                    field="--to",
                    value=text,
                    hint="write a weekday and a time like 'Wed 18:30'",
                )
            ],
            "the new time cannot be read",
        ) from e


@dataclass(frozen=True, slots=True)
class Moved:
    week: int
    uid: str
    old_start: datetime
    new_start: datetime | None  # None: cancelled


@dataclass(slots=True)
class ChangePreview:
    description: str
    occurrences: list[Moved] = field(default_factory=list)
    people: int = 0  # learners and the facilitator who get an email
    fits_before: int = 0  # learner-occurrences that fit, over the changed occurrences
    fits_after: int = 0
    learner_occurrences: int = 0
    emails: int = 0
    sample: list[str] = field(default_factory=list)
    # a fairly rotated series: each region's share of inconvenient meetings, as published ->
    # after the change ("Asia 50% -> 62%"), for the regions it changes
    burden: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ChangeResult:
    preview: ChangePreview
    version: int
    deadlines: DeadlineSummary
    invites: InviteCounts


def _series(db: Session, cohort: CohortRow, change: Change) -> LiveSeriesRow:
    row = db.scalar(
        select(LiveSeriesRow).where(
            LiveSeriesRow.cohort_id == cohort.id,
            LiveSeriesRow.series_key == change.series,
            LiveSeriesRow.section == change.section,
            LiveSeriesRow.slot == change.slot,
        )
    )
    if row is None:
        known = db.execute(
            select(LiveSeriesRow.series_key, func.max(LiveSeriesRow.section) + 1)
            .where(LiveSeriesRow.cohort_id == cohort.id)
            .group_by(LiveSeriesRow.series_key)
        ).all()
        listed = (
            ", ".join(f"{key} (sections 1-{n})" for key, n in known) or "none: publish a plan first"
        )
        raise NotFoundError(
            f"no published series {change.series!r} section {change.section + 1} "
            f"time {change.slot + 1}; published: {listed}"
        )
    return row


def _targets(
    db: Session, series: LiveSeriesRow, change: Change, now: datetime
) -> list[OccurrenceRow]:
    query = select(OccurrenceRow).where(
        OccurrenceRow.series_id == series.id, OccurrenceRow.status == OccurrenceStatus.SCHEDULED
    )
    if change.week is not None:
        query = query.where(OccurrenceRow.week == change.week)
    elif change.from_week is not None:
        query = query.where(OccurrenceRow.week >= change.from_week)
    rows = [o for o in db.scalars(query.order_by(OccurrenceRow.week)) if o.start >= now]
    if not rows:
        which = f"week {change.week + 1}" if change.week is not None else "the rest of the series"
        raise NotFoundError(f"nothing to change: {which} has no future scheduled occurrence")
    return rows


def _audience(
    db: Session, cohort: CohortRow, series: LiveSeriesRow
) -> list[tuple[PersonRow, bool]]:
    """The learners the series is for (its section; for co-working, everyone) and its host."""
    if series.kind == SeriesKind.COWORKING.value:
        ids = [x.person_id for x in repo.active_learners(db, cohort.id)]
    else:
        ids = list(
            db.scalars(
                select(SectionMemberRow.person_id).where(
                    SectionMemberRow.cohort_id == cohort.id,
                    SectionMemberRow.series_key == series.series_key,
                    SectionMemberRow.section == series.section,
                )
            )
        )
    people = (
        [(p, True) for p in db.scalars(select(PersonRow).where(PersonRow.id.in_(ids)))]
        if ids
        else []
    )
    if series.facilitator_email:
        host = db.scalar(select(PersonRow).where(PersonRow.email == series.facilitator_email))
        if host is not None:
            people.append((host, False))
    return people


def _fits(person: PersonRow, default: str, start: datetime, minutes: int) -> bool:
    availability = parse_availability(person.availability or default)
    return availability.covers_at(start, minutes, zone(person.zone))


def _new_start(spec: CohortSpec, series: LiveSeriesRow, week: int, to: tuple[int, int]) -> datetime:
    return slot_instant(spec, week, to[0], to[1], series.anchor_zone)


def preview_change(db: Session, slug: str, change: Change, now: datetime) -> ChangePreview:
    cohort = repo.get_cohort(db, slug)
    series = _series(db, cohort, change)
    targets = _targets(db, series, change, now)
    audience = _audience(db, cohort, series)
    learners = [p for p, is_learner in audience if is_learner]
    if change.to is None:
        verb = "cancel"
    else:
        day, minute = change.to
        clock = f"{minute // 60:02d}:{minute % 60:02d}"
        verb = f"move to {Weekday(day).label} {clock} {series.anchor_zone}"
    scope = (
        f"week {targets[0].week + 1}"
        if change.week is not None
        else (f"weeks {targets[0].week + 1}-{targets[-1].week + 1}")
    )
    preview = ChangePreview(f"{verb} {series.title} (section {series.section + 1}), {scope}")
    spec = repo.cohort_spec(db, cohort)  # once: the cohort's calendar for every moved week
    for o in targets:
        new = None if change.to is None else _new_start(spec, series, o.week, change.to)
        preview.occurrences.append(Moved(o.week, o.uid, o.start, new))
        for person in learners:
            preview.learner_occurrences += 1
            preview.fits_before += _fits(
                person, cohort.default_availability, o.start, series.duration_minutes
            )
            if new is not None:
                preview.fits_after += _fits(
                    person, cohort.default_availability, new, series.duration_minutes
                )
    if series.rotation_weeks:
        preview.burden = _burden_change(
            db, cohort, series, learners, preview.occurrences, spec.regions
        )
    preview.people = len(audience)
    preview.emails = len(audience)  # one updated (or cancelled) series invitation each
    preview.sample = sorted(p.email for p, _ in audience)[:5]
    return preview


def _burden_change(
    db: Session,
    cohort: CohortRow,
    series: LiveSeriesRow,
    learners: list[PersonRow],
    moved: list[Moved],
    regions: tuple[tuple[str, str], ...] = (),
) -> list[str]:
    """How moving or cancelling ``moved`` changes each region's share of inconvenient meetings
    (in stretch hours, or missed: a cancelled meeting is missed by everyone) against the burden
    ledger the plan was published with; only the regions whose share changes."""
    ledger = next(
        (r for r in fairness_ledgers(db, cohort.slug) if r.get("series") == series.series_key),
        None,
    )
    if ledger is None:
        return []
    minutes = series.duration_minutes
    # stretch hours and a miss are both inconvenient: only crossing into or out of a learner's
    # availability (or a cancellation) changes a region's share
    delta: dict[str, int] = {}
    for person in learners:
        availability = parse_availability(person.availability or cohort.default_availability)
        tz = zone(person.zone)
        change = sum(
            (m.new_start is None or not availability.covers_at(m.new_start, minutes, tz))
            - (not availability.covers_at(m.old_start, minutes, tz))
            for m in moved
        )
        if change:
            region = region_of(person.zone, regions)
            delta[region] = delta.get(region, 0) + change
    lines = []
    for row in ledger.get("regions", []):
        total = row["preferred"] + row["stretch"] + row["missed"] + row["skipped"]
        change = delta.get(row["region"], 0)
        if not change or not total:
            continue
        before = (row["stretch"] + row["missed"]) / total
        after = (row["stretch"] + row["missed"] + change) / total
        lines.append(f"{row['region']} {before:.0%} \u2192 {after:.0%}")
    return lines


def apply_change(
    db: Session,
    slug: str,
    change: Change,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    actor: str = "cli",
) -> ChangeResult:
    """Apply ``change`` (see the module docstring) and record it in the audit log as
    ``actor``'s."""
    preview = preview_change(db, slug, change, now)
    cohort = repo.get_cohort(db, slug)
    series = _series(db, cohort, change)
    version = (published_version(db, cohort.id) or 0) + 1
    rows = {o.uid: o for o in _targets(db, series, change, now)}
    duration = timedelta(minutes=series.duration_minutes)
    for moved in preview.occurrences:
        row = rows[moved.uid]
        if moved.new_start is None:
            row.status = OccurrenceStatus.CANCELLED
        else:
            row.start, row.end = moved.new_start, moved.new_start + duration
        row.sequence += 1
        row.changed_in_version = version
    if change.week is None and change.to is not None:
        series.weekday, series.wall_minute = change.to  # the intent changes from then on
        series.changed_in_version = version
    elif change.week is None and change.to is None and change.from_week is None:
        series.status = SeriesStatus.CANCELLED
        series.changed_in_version = version
    last = db.scalar(
        select(PlanVersionRow).where(
            PlanVersionRow.cohort_id == cohort.id, PlanVersionRow.version == version - 1
        )
    )
    summary = dict(last.summary) if last is not None else {}
    summary["change"] = preview.description
    db.add(PlanVersionRow(cohort_id=cohort.id, version=version, created_at=now, summary=summary))
    db.flush()
    done = bring_up_to_date(db, slug, now, horizon=horizon)  # moved meetings' reminders replaced
    assert done.deadlines is not None  # a published plan changed: every step ran
    assert done.invites is not None
    audit.record(
        db,
        cohort.id,
        now,
        actor,
        audit.OCCURRENCES_CANCELLED if change.cancels else audit.OCCURRENCES_MOVED,
        [
            {
                "change": preview.description,
                "version": version,
                "occurrences": len(preview.occurrences),
                "people": preview.people,
                "weeks": [m.week + 1 for m in preview.occurrences],
            }
        ],
    )
    return ChangeResult(preview, version, done.deadlines, done.invites)
