"""Plan a cohort from what is stored, compare a plan with the published one, publish it.

Publishing keeps the identity of every occurrence that stays (its row and calendar UID): an
occurrence is keyed by (series, section, slot, week). A moved occurrence keeps its UID and gets
a higher SEQUENCE; one that disappears is kept as cancelled, so calendars can be told. Occurrences
that have already started (before ``now``) are never changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from scheduler.domain.availability import read_stretch
from scheduler.domain.cohort import CohortSpec, SeriesKind
from scheduler.domain.status import OccurrenceStatus, SeriesStatus
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
    LiveSeriesRow,
    OccurrenceRow,
    PlanVersionRow,
    SectionMemberRow,
)
from scheduler.planning import LearnerInput, Occurrence, Plan, SectionPlan, make_plan
from scheduler.planning.report import fairness_report
from scheduler.progress import SILENT, Progress
from scheduler.timeutil import zone

UID_NAMESPACE = uuid.UUID("6f1c3c1e-2b7a-4c55-9a59-6f0f9a1d2c01")
# The old names of the occurrence statuses, still imported by tests.
SCHEDULED, CANCELLED = OccurrenceStatus.SCHEDULED, OccurrenceStatus.CANCELLED

OccurrenceKey = tuple[str, int, int, int]  # series key, section, slot, week


def occurrence_uid(cohort_slug: str, key: OccurrenceKey) -> str:
    """A stable calendar UID: the same occurrence always gets the same UID."""
    series, section, slot, week = key
    name = f"{cohort_slug}/{series}/{section}/{slot}/{week}"
    return f"{uuid.uuid5(UID_NAMESPACE, name)}@cohort-scheduler"


def learner_inputs(db: Session, cohort: CohortRow) -> list[LearnerInput]:
    """The cohort's active learners as the planner sees them (default availability filled in)."""
    return [
        LearnerInput(
            key=learner.email,
            zone=learner.zone,
            availability=availability,
            has_availability=learner.availability is not None,
            stretch=read_stretch(learner.stretch),
        )
        for learner, availability in repo.active_learner_availability(db, cohort)
    ]


def plan_cohort(
    db: Session, slug: str, progress: Progress = SILENT
) -> tuple[CohortSpec, list[LearnerInput], Plan]:
    """Plan the stored cohort for its active learners (pure planning over stored values)."""
    progress.step("reading the cohort and its learners")
    cohort = repo.get_cohort(db, slug)
    spec = repo.cohort_spec(db, cohort)
    learners = learner_inputs(db, cohort)
    progress.step(f"planning {len(spec.series)} series for {len(learners):,} learners")
    return spec, learners, make_plan(spec, learners)


@dataclass(frozen=True, slots=True)
class OccurrenceChange:
    series: str
    section: int
    slot: int
    week: int
    start: datetime
    end: datetime
    old_start: datetime | None = None  # moved or cancelled: where it was


@dataclass(slots=True)
class PlanDiff:
    published_version: int | None  # the version compared against (None: never published)
    added: list[OccurrenceChange] = field(default_factory=list)
    moved: list[OccurrenceChange] = field(default_factory=list)
    cancelled: list[OccurrenceChange] = field(default_factory=list)
    unchanged: int = 0
    frozen: int = 0  # already started: left as they are

    @property
    def changed(self) -> bool:
        return bool(self.added or self.moved or self.cancelled)

    def as_dict(self) -> dict[str, Any]:
        return {
            "published_version": self.published_version,
            "added": [asdict(c) for c in self.added],
            "moved": [asdict(c) for c in self.moved],
            "cancelled": [asdict(c) for c in self.cancelled],
            "unchanged": self.unchanged,
            "frozen": self.frozen,
        }


@dataclass(frozen=True, slots=True)
class PublishScope:
    """Limits a publish to part of a plan (a rolling re-plan): only the series in ``series``
    change (their occurrences, section rows and members), and no occurrence that starts before
    ``frozen_until`` moves, appears or is cancelled: it stays as published."""

    series: frozenset[str]
    frozen_until: datetime


def diff_counts(diff: PlanDiff) -> dict[str, int]:
    """The diff in numbers, as the audit log keeps it."""
    return {
        "added": len(diff.added),
        "moved": len(diff.moved),
        "cancelled": len(diff.cancelled),
        "unchanged": diff.unchanged,
        "frozen": diff.frozen,
    }


def _key(o: Occurrence) -> OccurrenceKey:
    return (o.series, o.section, o.slot, o.week)


def stored_occurrences(
    db: Session, cohort_id: int
) -> dict[OccurrenceKey, tuple[LiveSeriesRow, OccurrenceRow]]:
    query = (
        select(LiveSeriesRow, OccurrenceRow)
        .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
        .where(LiveSeriesRow.cohort_id == cohort_id)
    )
    return {(s.series_key, s.section, s.slot, o.week): (s, o) for s, o in db.execute(query)}


def published_version(db: Session, cohort_id: int) -> int | None:
    return db.scalar(
        select(func.max(PlanVersionRow.version)).where(PlanVersionRow.cohort_id == cohort_id)
    )


def diff_plan(
    db: Session, slug: str, plan: Plan, now: datetime, scope: PublishScope | None = None
) -> PlanDiff:
    """What publishing ``plan`` (within ``scope``, when given) would change."""
    cohort = repo.get_cohort(db, slug)
    return _diff(
        plan, stored_occurrences(db, cohort.id), published_version(db, cohort.id), now, scope
    )


def _diff(
    plan: Plan,
    stored: dict[OccurrenceKey, tuple[LiveSeriesRow, OccurrenceRow]],
    version: int | None,
    now: datetime,
    scope: PublishScope | None = None,
) -> PlanDiff:
    diff = PlanDiff(version)
    held = now if scope is None else max(now, scope.frozen_until)  # before this: never changed

    def outside(key: OccurrenceKey) -> bool:
        return scope is not None and key[0] not in scope.series

    wanted = {_key(o): o for o in plan.occurrences if not o.skipped}
    for key, o in sorted(wanted.items()):
        old = stored.get(key)
        change = OccurrenceChange(*key, o.start, o.end)
        if outside(key):
            continue
        if old is None:
            if scope is not None and o.start < held:
                diff.frozen += 1  # a new meeting inside the freeze horizon: not added
            else:
                diff.added.append(change)
        elif old[1].start < held or (scope is not None and o.start < held):
            diff.frozen += 1
        elif old[1].status != OccurrenceStatus.SCHEDULED or (old[1].start, old[1].end) != (
            o.start,
            o.end,
        ):
            diff.moved.append(OccurrenceChange(*key, o.start, o.end, old[1].start))
        else:
            diff.unchanged += 1
    for key, (_, row) in sorted(stored.items()):
        if key not in wanted and row.status == OccurrenceStatus.SCHEDULED and not outside(key):
            if row.start < held:
                diff.frozen += 1
            else:
                diff.cancelled.append(OccurrenceChange(*key, row.start, row.end, row.start))
    return diff


def publish_plan(
    db: Session, slug: str, plan: Plan, now: datetime, scope: PublishScope | None = None
) -> tuple[int, PlanDiff]:
    """Store ``plan`` as the cohort's next version: series, occurrences, section members;
    with ``scope``, only the scope's series and nothing inside its freeze horizon.

    Returns the new version number and what changed. The caller owns the transaction: on any
    error nothing is written.
    """
    cohort = repo.get_cohort(db, slug)
    spec = repo.cohort_spec(db, cohort)
    stored = stored_occurrences(db, cohort.id)
    diff = _diff(plan, stored, published_version(db, cohort.id), now, scope)
    version = (diff.published_version or 0) + 1
    sections = (
        plan.sections
        if scope is None
        else tuple(s for s in plan.sections if s.series in scope.series)
    )
    series_rows = _publish_series(db, cohort.id, spec, sections, version, keep=scope is not None)
    by_key = {_key(o): o for o in plan.occurrences if not o.skipped}
    for change in diff.added:
        key = (change.series, change.section, change.slot, change.week)
        db.add(
            OccurrenceRow(
                series_id=series_rows[key[:3]].id,
                week=change.week,
                start=change.start,
                end=change.end,
                status=OccurrenceStatus.SCHEDULED,
                sequence=0,
                uid=occurrence_uid(slug, key),
                changed_in_version=version,
            )
        )
    for change in diff.moved:
        key = (change.series, change.section, change.slot, change.week)
        row = stored[key][1]
        row.start, row.end = by_key[key].start, by_key[key].end
        row.status = OccurrenceStatus.SCHEDULED
        row.sequence += 1
        row.changed_in_version = version
    for change in diff.cancelled:
        row = stored[(change.series, change.section, change.slot, change.week)][1]
        row.status = OccurrenceStatus.CANCELLED
        row.sequence += 1
        row.changed_in_version = version
    _publish_members(
        db, cohort.id, sections, None if scope is None else {s.series for s in sections}
    )
    summary = plan_summary(plan)
    if scope is not None:
        moved = ", ".join(sorted(scope.series))
        summary["change"] = f"re-plan of {moved} after {scope.frozen_until:%Y-%m-%d %H:%M} UTC"
    db.add(PlanVersionRow(cohort_id=cohort.id, version=version, created_at=now, summary=summary))
    repo.touch_feeds(db, cohort.id)
    db.flush()
    return version, diff


def _publish_series(
    db: Session,
    cohort_id: int,
    spec: CohortSpec,
    sections: Sequence[SectionPlan],
    version: int,
    keep: bool = False,
) -> dict[tuple[str, int, int], LiveSeriesRow]:
    """Create or update the series rows of ``sections``; the others are cancelled, unless
    ``keep`` (a scoped re-plan: their occurrences inside the freeze horizon still meet)."""
    titles = {s.key: s.title for s in spec.series}
    existing = {
        (row.series_key, row.section, row.slot): row
        for row in db.scalars(select(LiveSeriesRow).where(LiveSeriesRow.cohort_id == cohort_id))
    }
    kept: dict[tuple[str, int, int], LiveSeriesRow] = {}
    for section in sections:
        for slot, time in enumerate(section.times):
            alternate = section.alternate[slot] if slot < len(section.alternate) else None
            values = {
                "kind": section.kind.value,
                "title": titles.get(section.series, section.series),
                "weekday": int(time.weekday),
                "wall_minute": time.minute,
                "alt_weekday": None if alternate is None else int(alternate.weekday),
                "alt_wall_minute": None if alternate is None else alternate.minute,
                "rotation": (
                    [[int(t.weekday), t.minute] for t in section.rotation]
                    if section.rotation and slot == 0
                    else None
                ),
                "rotation_weeks": (
                    list(section.week_times) if section.rotation and slot == 0 else None
                ),
                "anchor_zone": section.anchor_zone,
                "duration_minutes": int(section.duration / timedelta(minutes=1)),
                "facilitator_email": section.facilitator,
                "status": SeriesStatus.ACTIVE,
            }
            key = (section.series, section.section, slot)
            row = existing.get(key)
            if row is None:
                row = LiveSeriesRow(
                    cohort_id=cohort_id,
                    series_key=key[0],
                    section=key[1],
                    slot=slot,
                    changed_in_version=version,
                    **values,
                )
                db.add(row)
            elif any(getattr(row, name) != value for name, value in values.items()):
                for name, value in values.items():
                    setattr(row, name, value)
                row.changed_in_version = version
            kept[key] = row
    for key, row in existing.items():
        if key not in kept and row.status != SeriesStatus.CANCELLED and not keep:
            row.status = SeriesStatus.CANCELLED
            row.changed_in_version = version
        kept.setdefault(key, row)
    db.flush()
    return kept


def _publish_members(
    db: Session, cohort_id: int, sections: Sequence[SectionPlan], only: set[str] | None = None
) -> None:
    """Replace the section membership of learners in sectioned (non co-working) series (with
    ``only``: in those series; the others keep theirs)."""
    ids = repo.cohort_person_ids(db, cohort_id)
    query = delete(SectionMemberRow).where(SectionMemberRow.cohort_id == cohort_id)
    if only is not None:
        query = query.where(SectionMemberRow.series_key.in_(only))
    db.execute(query)
    rows = [
        {
            "cohort_id": cohort_id,
            "series_key": s.series,
            "person_id": ids[learner],
            "section": s.section,
        }
        for s in sections
        if s.kind != SeriesKind.COWORKING
        for learner in s.learners
        if learner in ids
    ]
    if rows:
        db.execute(insert(repo.table_of(SectionMemberRow)), rows)


def plan_summary(plan: Plan, zones: dict[str, str] | None = None) -> dict[str, Any]:
    """The plan's report as JSON-ready data (also what `cohort plan --json` prints).

    ``zones`` (learner key -> zone) adds each learner's local times of their section."""
    return {
        "cohort": plan.cohort,
        "anchor_zone": plan.anchor_zone,
        "weeks": plan.weeks,
        "sections": [
            {
                "series": s.series,
                "kind": s.kind.value,
                "section": s.section,
                "times": [t.label() for t in s.times],
                "alternate": [t.label() for t in s.alternate],
                **(
                    {"rotation": [t.label() for t in s.rotation], "week_times": list(s.week_times)}
                    if s.rotation
                    else {}
                ),
                "duration_minutes": int(s.duration / timedelta(minutes=1)),
                "facilitator": s.facilitator,
                "size": len(s.learners),
                "fitted": s.fitted,
                "coverage_by_week": list(s.coverage_by_week),
            }
            for s in plan.sections
        ],
        "left_out": [
            {
                "learner": x.learner,
                "series": x.series,
                "reason": x.reason.value,
                "week": x.week,
                "detail": x.detail,
            }
            for x in plan.left_out
        ],
        "warnings": [w.text for w in plan.warnings],
        # the same clock changes as records, for reports grouped by series and week
        "dst": [
            {
                "series": w.series,
                "section": w.section,
                "week": w.week,
                "shift_minutes": w.shift_minutes,
                "zone_pattern": w.zone_pattern,
                "learners": w.learners,
            }
            for w in plan.warnings
        ],
        "auto_sections": [
            {
                "series": r.series,
                "chosen": r.chosen,
                "target": r.target,
                "reached": r.reached,
                "steps": [asdict(step) for step in r.steps],
            }
            for r in plan.auto_sections
        ],
        "notes": list(plan.notes),
        "objective": dict(plan.objective),
        # fairly rotated series: their burden ledger (see scheduler.planning.report)
        "fairness": [fairness_report(f) for f in plan.fairness],
        "learners": _learner_summary(plan, zones or {}),
    }


def _learner_summary(plan: Plan, zones: dict[str, str]) -> list[dict[str, Any]]:
    """Per learner and series: section, coverage, and the first week's times on their clock."""
    first_week: dict[tuple[str, int], list[datetime]] = {}
    for o in sorted(plan.occurrences, key=lambda o: (o.week, o.slot)):
        if not o.skipped:
            times = first_week.setdefault((o.series, o.section), [])
            if len(times) <= o.slot:
                times.append(o.start)
    out: dict[str, dict[str, Any]] = {}
    rows = (columns.row(i) for columns in plan.coverage for i in range(len(columns.learners)))
    for c in rows:
        entry = out.setdefault(
            c.learner, {"learner": c.learner, "zone": zones.get(c.learner), "series": []}
        )
        tz = zone(entry["zone"]) if entry["zone"] else None
        local = (
            [
                t.astimezone(tz).strftime("%a %H:%M")
                for t in first_week.get((c.series, c.section or 0), [])
            ]
            if tz is not None and c.section is not None
            else []
        )
        entry["series"].append(
            {
                "series": c.series,
                "section": c.section,
                "fitted": c.fitted,
                "occurrences": c.occurrences,
                "coverage": round(c.coverage, 4),
                "by_week": list(c.by_week),
                "local_times": local,
            }
        )
    return [out[k] for k in sorted(out)]
