"""Compute every learner's async deadlines from the published plan, store them, show them.

Deadline items are stored once per distinct list (a "group": learners in the same zone and
section with the same rules get identical items), so 100k learners cost ~1k groups of ~20
items plus one row per learner. Recomputing diffs by content: an unchanged list keeps its group.

A learner who caught up (:mod:`scheduler.services.catch_up`) has their stored shifts applied
again, in order, every time their deadlines are computed here (:func:`publish_deadlines` for
everyone, :func:`store_learner_deadlines` for one), so a shift survives re-plans.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.orm import Session

from scheduler.domain.cohort import CohortSpec
from scheduler.domain.status import OccurrenceStatus
from scheduler.errors import NotFoundError
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CatchUpShiftRow,
    CohortRow,
    DeadlineGroupRow,
    DeadlineItemRow,
    LearnerDeadlinesRow,
    LiveSeriesRow,
    OccurrenceRow,
    SectionMemberRow,
)
from scheduler.planning import Occurrence
from scheduler.planning.catch_up import Shift, apply_shifts
from scheduler.planning.deadlines import DeadlineItem, DeadlineLearner, compute_deadlines


@dataclass(frozen=True, slots=True)
class DeadlineSummary:
    learners: int
    groups: int
    new_groups: int
    items: int  # learner-items (learners x their items)
    changed_learners: int  # learners whose list differs from the stored one


def published_occurrences(db: Session, cohort_id: int) -> list[Occurrence]:
    """The scheduled occurrences of the published plan, as planner values."""
    query = (
        select(LiveSeriesRow.series_key, LiveSeriesRow.section, LiveSeriesRow.slot, OccurrenceRow)
        .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
        .where(
            LiveSeriesRow.cohort_id == cohort_id, OccurrenceRow.status == OccurrenceStatus.SCHEDULED
        )
        .order_by(OccurrenceRow.start)
    )
    return [
        Occurrence(key, section, slot, o.week, o.start, o.end)
        for key, section, slot, o in db.execute(query)
    ]


def deadline_learners(db: Session, cohort: CohortRow) -> list[DeadlineLearner]:
    sections: dict[int, dict[str, int]] = {}
    query = select(
        SectionMemberRow.person_id, SectionMemberRow.series_key, SectionMemberRow.section
    ).where(SectionMemberRow.cohort_id == cohort.id)
    for person_id, series_key, section in db.execute(query):
        sections.setdefault(person_id, {})[series_key] = section
    return [
        DeadlineLearner(
            key=learner.email,
            zone=learner.zone,
            availability=availability,
            sections=sections.get(learner.person_id, {}),
            enrolled_at=learner.enrolled_at,
        )
        for learner, availability in repo.active_learner_availability(db, cohort)
    ]


def _signature(items: Sequence[DeadlineItem], zone_name: str) -> str:
    """A content hash of a learner's list (their zone included: it decides local wall times)."""
    digest = hashlib.sha256(zone_name.encode())
    for item in items:
        digest.update(repr(item).encode())
    return digest.hexdigest()


def _item_row(group_id: int, item: DeadlineItem) -> dict[str, object]:
    return {
        "group_id": group_id,
        "key": item.key,
        "kind": item.kind.value,
        "title": item.title,
        "assignment_key": item.assignment,
        "series_key": item.target.series,
        "section": item.target.section,
        "slot": item.target.slot,
        "week": item.target.week,
        "release": item.release,
        "soft": item.soft,
        "soft_local": item.soft_local.strftime("%Y-%m-%dT%H:%M"),
        "hard": item.hard,
        "effort_minutes": int(item.effort / timedelta(minutes=1)),
        "coworking_start": item.coworking,
        "coworking_ref": item.coworking_occurrence.path if item.coworking_occurrence else None,
        "warnings": list(item.warnings),
    }


def publish_deadlines(db: Session, slug: str, now: datetime) -> DeadlineSummary:
    """Recompute and store every active learner's deadlines for the published plan."""
    cohort = repo.get_cohort(db, slug)
    spec = repo.cohort_spec(db, cohort)
    learners = deadline_learners(db, cohort)
    computed = compute_deadlines(spec, published_occurrences(db, cohort.id), learners)
    zones = {x.key: x.zone for x in learners}
    ids = repo.cohort_person_ids(db, cohort.id)
    _apply_catch_up(db, cohort.id, spec, computed, zones, ids)
    # The engine returns one shared tuple per group of like learners; different groups can
    # still get equal lists, so lists are stored once per content signature.
    signature_of: dict[int, str] = {}  # id(list) -> signature
    lists: dict[str, tuple[str, tuple[DeadlineItem, ...]]] = {}  # signature -> zone, items
    for key, items in computed.items():
        if id(items) not in signature_of:
            signature = _signature(items, zones[key])
            signature_of[id(items)] = signature
            lists.setdefault(signature, (zones[key], items))

    group_ids = {
        signature: group_id
        for signature, group_id in db.execute(
            select(DeadlineGroupRow.signature, DeadlineGroupRow.id).where(
                DeadlineGroupRow.cohort_id == cohort.id
            )
        )
    }
    stale = [gid for signature, gid in group_ids.items() if signature not in lists]
    new_groups = 0
    for signature, (zone_name, items) in lists.items():
        if signature in group_ids:
            continue
        group = DeadlineGroupRow(cohort_id=cohort.id, signature=signature, zone=zone_name)
        db.add(group)
        db.flush()
        group_ids[signature] = group.id
        if items:
            db.execute(
                insert(repo.table_of(DeadlineItemRow)), [_item_row(group.id, i) for i in items]
            )
        new_groups += 1

    current = dict(
        db.execute(
            select(LearnerDeadlinesRow.person_id, LearnerDeadlinesRow.group_id).where(
                LearnerDeadlinesRow.cohort_id == cohort.id
            )
        ).all()
    )
    inserts, updates = [], []
    for key, items in computed.items():
        person_id, group_id = ids[key], group_ids[signature_of[id(items)]]
        if person_id not in current:
            inserts.append(
                {
                    "cohort_id": cohort.id,
                    "person_id": person_id,
                    "group_id": group_id,
                    "changed_at": now,
                }
            )
        elif current[person_id] != group_id:
            updates.append({"pid": person_id, "gid": group_id})
    if inserts:
        db.execute(insert(repo.table_of(LearnerDeadlinesRow)), inserts)
    if updates:
        table = repo.table_of(LearnerDeadlinesRow)
        db.execute(
            update(table)
            .where(table.c.cohort_id == cohort.id, table.c.person_id == bindparam("pid"))
            .values(group_id=bindparam("gid"), changed_at=now),
            updates,
        )
    gone = set(current) - {ids[k] for k in computed}
    if gone:
        db.execute(
            delete(LearnerDeadlinesRow).where(
                LearnerDeadlinesRow.cohort_id == cohort.id, LearnerDeadlinesRow.person_id.in_(gone)
            )
        )
    if stale:
        db.execute(delete(DeadlineGroupRow).where(DeadlineGroupRow.id.in_(stale)))
    repo.touch_feeds(db, cohort.id)
    return DeadlineSummary(
        learners=len(computed),
        groups=len(lists),
        new_groups=new_groups,
        items=sum(len(items) for items in computed.values()),
        changed_learners=len(inserts) + len(updates),
    )


def learner_shifts(
    db: Session, cohort_id: int, person_id: int | None = None
) -> dict[int, list[Shift]]:
    """The catch-up shifts learners of the cohort made (just ``person_id``'s when given), by
    person id, oldest first."""
    query = select(CatchUpShiftRow.person_id, CatchUpShiftRow.at, CatchUpShiftRow.days).where(
        CatchUpShiftRow.cohort_id == cohort_id
    )
    if person_id is not None:
        query = query.where(CatchUpShiftRow.person_id == person_id)
    out: dict[int, list[Shift]] = {}
    for pid, at, days in db.execute(query.order_by(CatchUpShiftRow.at, CatchUpShiftRow.id)):
        out.setdefault(pid, []).append(Shift(at, days))
    return out


def _apply_catch_up(
    db: Session,
    cohort_id: int,
    spec: CohortSpec,
    computed: dict[str, tuple[DeadlineItem, ...]],
    zones: dict[str, str],
    ids: dict[str, int],
) -> None:
    """Apply every learner's stored catch-up shifts to their freshly computed items, in place."""
    shifts = learner_shifts(db, cohort_id)
    if not shifts:
        return
    for key, items in computed.items():
        made = shifts.get(ids[key])
        if made:
            computed[key] = apply_shifts(spec, zones[key], items, made)


def learner_deadlines(
    db: Session, cohort: CohortRow, person_id: int, *, shifted: bool = True
) -> tuple[str, tuple[DeadlineItem, ...]]:
    """One active learner's zone and deadline items from the published plan, computed now
    (with their catch-up shifts applied unless ``shifted=False``). NotFoundError when they are
    not an active learner of the cohort."""
    spec = repo.cohort_spec(db, cohort)
    email = next(
        (e for e, pid in repo.cohort_person_ids(db, cohort.id).items() if pid == person_id), None
    )
    learner = next((x for x in deadline_learners(db, cohort) if x.key == email), None)
    if learner is None:
        raise NotFoundError(f"no active learner {person_id} in {cohort.slug}")
    items = compute_deadlines(spec, published_occurrences(db, cohort.id), [learner])[learner.key]
    if shifted:
        made = learner_shifts(db, cohort.id, person_id).get(person_id)
        if made:
            items = apply_shifts(spec, learner.zone, items, made)
    return learner.zone, items


def store_learner_deadlines(
    db: Session, cohort: CohortRow, person_id: int, now: datetime
) -> tuple[DeadlineItem, ...]:
    """Recompute and store one active learner's deadlines (catch-up shifts applied), sharing a
    stored group when one has the same content, and drop the group they leave when nobody else
    follows it. Returns their items. The caller bumps the feeds (or :func:`repo.touch_feeds`
    is called here: it is)."""
    zone_name, items = learner_deadlines(db, cohort, person_id)
    signature = _signature(items, zone_name)
    group_id = db.scalar(
        select(DeadlineGroupRow.id).where(
            DeadlineGroupRow.cohort_id == cohort.id, DeadlineGroupRow.signature == signature
        )
    )
    if group_id is None:
        group = DeadlineGroupRow(cohort_id=cohort.id, signature=signature, zone=zone_name)
        db.add(group)
        db.flush()
        group_id = group.id
        if items:
            db.execute(
                insert(repo.table_of(DeadlineItemRow)), [_item_row(group_id, i) for i in items]
            )
    current = db.scalar(
        select(LearnerDeadlinesRow.group_id).where(
            LearnerDeadlinesRow.cohort_id == cohort.id, LearnerDeadlinesRow.person_id == person_id
        )
    )
    if current is None:
        db.execute(
            insert(repo.table_of(LearnerDeadlinesRow)),
            [
                {
                    "cohort_id": cohort.id,
                    "person_id": person_id,
                    "group_id": group_id,
                    "changed_at": now,
                }
            ],
        )
    elif current != group_id:
        db.execute(
            update(LearnerDeadlinesRow)
            .where(
                LearnerDeadlinesRow.cohort_id == cohort.id,
                LearnerDeadlinesRow.person_id == person_id,
            )
            .values(group_id=group_id, changed_at=now)
        )
        still_used = db.scalar(select(func.count()).where(LearnerDeadlinesRow.group_id == current))
        if not still_used:
            db.execute(delete(DeadlineGroupRow).where(DeadlineGroupRow.id == current))
    repo.touch_feeds(db, cohort.id)
    return items


def learner_items(db: Session, cohort_id: int, person_id: int) -> list[DeadlineItemRow]:
    query = (
        select(DeadlineItemRow)
        .join(LearnerDeadlinesRow, LearnerDeadlinesRow.group_id == DeadlineItemRow.group_id)
        .where(
            LearnerDeadlinesRow.cohort_id == cohort_id, LearnerDeadlinesRow.person_id == person_id
        )
        .order_by(DeadlineItemRow.soft, DeadlineItemRow.key)
    )
    return list(db.scalars(query))


@dataclass(frozen=True, slots=True)
class DeadlineCounts:
    cohort: str
    learners: int
    groups: int  # distinct stored lists
    items: int  # learner-items
    by_kind: dict[str, int]
    warnings: int  # learner-items with a warning
    learners_with_replays: int


def deadline_summary(db: Session, slug: str) -> DeadlineCounts:
    """Counts for the cohort: learners, shared lists, learner-items by kind, warnings, replays."""
    cohort = repo.get_cohort(db, slug)
    sizes: dict[int, int] = {
        group_id: count
        for group_id, count in db.execute(
            select(LearnerDeadlinesRow.group_id, func.count())
            .where(LearnerDeadlinesRow.cohort_id == cohort.id)
            .group_by(LearnerDeadlinesRow.group_id)
        )
    }
    by_kind: dict[str, int] = {}
    warnings = 0
    with_replays: set[int] = set()
    query = select(DeadlineItemRow.group_id, DeadlineItemRow.kind, DeadlineItemRow.warnings).where(
        DeadlineItemRow.group_id.in_(list(sizes))
    )
    for group_id, kind, item_warnings in db.execute(query):
        by_kind[kind] = by_kind.get(kind, 0) + sizes[group_id]
        warnings += sizes[group_id] if item_warnings else 0
        if kind == "replay":
            with_replays.add(group_id)
    return DeadlineCounts(
        cohort=slug,
        learners=sum(sizes.values()),
        groups=len(sizes),
        items=sum(by_kind.values()),
        by_kind=dict(sorted(by_kind.items())),
        warnings=warnings,
        learners_with_replays=sum(sizes[g] for g in with_replays),
    )
