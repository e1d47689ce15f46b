"""Repository functions: queries and the mapping between domain values and rows, in one place.

Every function takes a session ``db`` and never commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ARRAY, Integer, Table, any_, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from scheduler.domain.availability import (
    NO_STRETCH_TEXT,
    Availability,
    parse_availability,
    read_stretch,
)
from scheduler.domain.cohort import (
    Anchor,
    AssignmentRule,
    Blackout,
    CatchUpOptions,
    CohortSpec,
    Facilitator,
    Fairness,
    HardKind,
    OrchestrationOptions,
    PlanningOptions,
    Release,
    ReleaseKind,
    ReminderAbout,
    ReminderRule,
    Role,
    SeriesKind,
    SeriesRequest,
)
from scheduler.domain.status import EnrollmentStatus
from scheduler.errors import NotFoundError
from scheduler.persistence.models import (
    AssignmentRuleRow,
    Base,
    BlackoutRow,
    CatchUpRuleRow,
    CohortRow,
    EnrollmentRow,
    PersonRow,
    ReminderRuleRow,
    SeriesRequestRow,
)


def _minutes(value: timedelta) -> int:
    return int(value.total_seconds() // 60)


def _maybe_minutes(value: timedelta | None) -> int | None:
    return None if value is None else _minutes(value)


def _maybe_delta(minutes: int | None) -> timedelta | None:
    return None if minutes is None else timedelta(minutes=minutes)


# --- cohorts ---------------------------------------------------------------------------------


def find_cohort(db: Session, slug: str) -> CohortRow | None:
    return db.scalar(select(CohortRow).where(CohortRow.slug == slug))


def cohort_slugs(db: Session) -> list[str]:
    return list(db.scalars(select(CohortRow.slug).order_by(CohortRow.slug)))


def get_cohort(db: Session, slug: str) -> CohortRow:
    row = find_cohort(db, slug)
    if row is None:
        known = cohort_slugs(db)
        hint = (
            f" (known: {', '.join(known)})"
            if known
            else " (load one with `cohort cohort load FILE`)"
        )
        raise NotFoundError(f"no cohort with slug {slug!r}{hint}")
    return row


def list_cohorts(db: Session) -> Sequence[CohortRow]:
    return db.scalars(select(CohortRow).order_by(CohortRow.start_date, CohortRow.slug)).all()


def save_cohort(
    db: Session, spec: CohortSpec, source_text: str, now: datetime
) -> tuple[CohortRow, bool]:
    """Create or replace the cohort described by ``spec``; returns the row and whether it is new."""
    row = find_cohort(db, spec.slug)
    created = row is None
    if row is None:
        row = CohortRow(slug=spec.slug, created_at=now)
        db.add(row)
    row.title = spec.title
    row.start_date = spec.start_date
    row.weeks = spec.weeks
    row.home_zone = spec.home_zone
    row.locale = spec.locale
    row.default_availability = spec.default_availability.to_text()
    row.anchor = spec.planning.anchor.value
    row.target_coverage = spec.planning.target_coverage
    row.max_sections = spec.planning.max_sections
    row.grid_minutes = spec.planning.grid_minutes
    row.quiet_start = spec.planning.quiet_start
    row.quiet_end = spec.planning.quiet_end
    row.auto_replan = spec.orchestration.auto_replan
    row.freeze_minutes = _minutes(spec.orchestration.freeze)
    row.replan_margin = spec.orchestration.replan_margin
    row.max_moves = spec.orchestration.max_moves
    row.pods_before_minutes = _minutes(spec.orchestration.pods_before)
    row.default_stretch = _stretch_text(spec.default_stretch)
    row.regions = [list(pair) for pair in spec.regions] or None
    row.source_text = source_text
    row.updated_at = now
    _sync_by_key(
        row.series,
        SeriesRequestRow,
        [
            {
                "key": s.key,
                "title": s.title,
                "kind": s.kind.value,
                "per_week": s.per_week,
                "duration_minutes": _minutes(s.duration),
                "min_gap_minutes": _minutes(s.min_gap),
                "max_section_size": s.max_section_size,
                "sections": s.sections,
                "auto_sections": s.auto_sections,
                "max_blocks": s.max_blocks,
                "rotate": s.rotate,
                "agenda": list(s.agenda),
                "facilitator_emails": list(s.facilitators),
                "join_url": s.join_url,
                "fairness": s.fairness.value,
                "rotate_times": s.rotate_times,
                "max_coverage_loss": s.max_coverage_loss,
            }
            for s in spec.series
        ],
    )
    _sync_by_key(
        row.assignments,
        AssignmentRuleRow,
        [
            {
                "key": a.key,
                "title": a.title,
                "series_key": a.series,
                "prepares": a.prepares,
                "soft_offset_minutes": _minutes(a.soft_offset),
                "effort_minutes": _minutes(a.effort),
                "release_kind": a.release.kind.value,
                "release_on": a.release.on,
                "release_every_minutes": _maybe_minutes(a.release.every),
                "snap_to": a.snap_to,
                "hard_kind": a.hard.value,
                "hard_after_minutes": _maybe_minutes(a.hard_after),
            }
            for a in spec.assignments
        ],
    )
    _sync_by_key(
        row.reminders,
        ReminderRuleRow,
        [
            {
                "key": r.key,
                "about": r.about.value,
                "before_minutes": _maybe_minutes(r.before),
                "early_seconds": int(r.early.total_seconds()),
                "at_minute": r.at,
                "weekday": r.weekday,
                "template": r.template,
            }
            for r in spec.reminders
        ],
    )
    row.blackouts = [BlackoutRow(start=b.start, end=b.end, label=b.label) for b in spec.blackouts]
    db.flush()
    _save_catch_up(db, row.id, spec.catch_up)
    return row, created


_Keyed = TypeVar("_Keyed", SeriesRequestRow, AssignmentRuleRow, ReminderRuleRow)


def _sync_by_key(rows: list[_Keyed], row_type: type[_Keyed], wanted: list[dict[str, Any]]) -> None:
    """Make ``rows`` match ``wanted`` in order, updating rows in place by key (so their ids,
    which later tables refer to, survive a reload) and deleting the ones no longer wanted."""
    existing = {row.key: row for row in rows}
    rows.clear()
    for position, values in enumerate(wanted):
        row = existing.pop(values["key"], None) or row_type()
        row.position = position
        for name, value in values.items():
            setattr(row, name, value)
        rows.append(row)


def orchestration_options(row: CohortRow) -> OrchestrationOptions:
    return OrchestrationOptions(
        auto_replan=row.auto_replan,
        freeze=timedelta(minutes=row.freeze_minutes),
        replan_margin=row.replan_margin,
        max_moves=row.max_moves,
        pods_before=timedelta(minutes=row.pods_before_minutes),
    )


def availability_text(own: str | None, cohort: CohortRow) -> str:
    """The availability in force for a person in a cohort: their own (``own``), else the
    cohort's default (the one rule every read of a person's windows goes through)."""
    return own or cohort.default_availability


def cohort_spec(db: Session, row: CohortRow) -> CohortSpec:
    """Rebuild the domain value from the stored rows (facilitators from their enrollments)."""
    facilitators = tuple(
        Facilitator(
            name=person.name,
            email=person.email,
            zone=person.zone,
            availability=parse_availability(availability_text(person.availability, row)),
            max_sessions_per_week=enrollment.max_sessions_per_week or 5,
        )
        for enrollment, person in db.execute(
            select(EnrollmentRow, PersonRow)
            .join(PersonRow, EnrollmentRow.person_id == PersonRow.id)
            .where(
                EnrollmentRow.cohort_id == row.id,
                EnrollmentRow.role == Role.FACILITATOR.value,
                EnrollmentRow.status == EnrollmentStatus.ACTIVE,
            )
            .order_by(PersonRow.email)
        )
    )
    return CohortSpec(
        slug=row.slug,
        title=row.title,
        start_date=row.start_date,
        weeks=row.weeks,
        home_zone=row.home_zone,
        locale=row.locale,
        default_availability=parse_availability(row.default_availability),
        planning=PlanningOptions(
            Anchor(row.anchor),
            row.target_coverage,
            row.max_sections,
            row.grid_minutes,
            row.quiet_start,
            row.quiet_end,
        ),
        orchestration=orchestration_options(row),
        facilitators=facilitators,
        series=tuple(
            SeriesRequest(
                key=s.key,
                title=s.title,
                kind=SeriesKind(s.kind),
                per_week=s.per_week,
                duration=timedelta(minutes=s.duration_minutes),
                min_gap=timedelta(minutes=s.min_gap_minutes),
                max_section_size=s.max_section_size,
                sections=s.sections,
                auto_sections=s.auto_sections,
                max_blocks=s.max_blocks,
                rotate=s.rotate,
                agenda=tuple(s.agenda),
                facilitators=tuple(s.facilitator_emails),
                join_url=s.join_url,
                fairness=Fairness(s.fairness),
                rotate_times=s.rotate_times,
                max_coverage_loss=s.max_coverage_loss,
            )
            for s in row.series
        ),
        assignments=tuple(
            AssignmentRule(
                key=a.key,
                title=a.title,
                series=a.series_key,
                prepares=a.prepares,
                soft_offset=timedelta(minutes=a.soft_offset_minutes),
                effort=timedelta(minutes=a.effort_minutes),
                release=Release(
                    ReleaseKind(a.release_kind), a.release_on, _maybe_delta(a.release_every_minutes)
                ),
                snap_to=a.snap_to,
                hard=HardKind(a.hard_kind),
                hard_after=_maybe_delta(a.hard_after_minutes),
            )
            for a in row.assignments
        ),
        reminders=tuple(
            ReminderRule(
                key=r.key,
                about=ReminderAbout(r.about),
                before=_maybe_delta(r.before_minutes),
                early=timedelta(seconds=r.early_seconds),
                at=r.at_minute,
                weekday=r.weekday,
                template=r.template,
            )
            for r in row.reminders
        ),
        blackouts=tuple(Blackout(b.start, b.end, b.label) for b in row.blackouts),
        catch_up=catch_up_options(db, row.id),
        default_stretch=read_stretch(row.default_stretch),
        regions=tuple((str(z), str(name)) for z, name in row.regions or []),
    )


def _stretch_text(value: Availability | None) -> str | None:
    """How stretch windows are stored: None (the default), ``none`` or the windows' text."""
    if value is None:
        return None
    return NO_STRETCH_TEXT if value.is_empty else value.to_text()


# --- people and enrollments ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonValues:
    """What a roster row or a cohort file says about a person."""

    email: str
    name: str
    zone: str
    locale: str | None
    availability: str | None
    stretch: str | None = None  # None: the cohort's default; "none": no stretch hours
    sets_stretch: bool = False  # a roster says it (else a stored stretch is kept)

    def differs(self, stored: StoredPerson) -> bool:
        return (self.name, self.zone, self.locale, self.availability) != (
            stored.name,
            stored.zone,
            stored.locale,
            stored.availability,
        ) or (self.sets_stretch and self.stretch != stored.stretch)


@dataclass(frozen=True, slots=True)
class StoredPerson:
    """A person as stored; read as plain columns, which is much cheaper than ORM objects in bulk."""

    id: int
    email: str
    name: str
    zone: str
    locale: str | None
    availability: str | None
    stretch: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEnrollment:
    id: int
    person_id: int
    role: str
    status: str
    max_sessions_per_week: int | None


_CHUNK = 5000  # stay under SQLite's limit on bound parameters


def table_of(row_type: type[Base]) -> Table:
    """The Core table of a mapped class: bulk inserts through Core are one ``executemany``,
    several times faster than the ORM's bulk path for 100k rows."""
    table = row_type.__table__
    assert isinstance(table, Table)
    return table


def people_by_email(db: Session, emails: Iterable[str]) -> dict[str, StoredPerson]:
    """Existing people for these emails."""
    found: dict[str, StoredPerson] = {}
    batch = list(emails)
    columns = (
        PersonRow.id,
        PersonRow.email,
        PersonRow.name,
        PersonRow.zone,
        PersonRow.locale,
        PersonRow.availability,
        PersonRow.stretch,
    )
    for start in range(0, len(batch), _CHUNK):
        query = select(*columns).where(PersonRow.email.in_(batch[start : start + _CHUNK]))
        for row in db.execute(query):
            found[row.email] = StoredPerson(*row)
    return found


def emails_of(db: Session, person_ids: Iterable[int]) -> list[str]:
    ids = list(person_ids)
    emails: list[str] = []
    for start in range(0, len(ids), _CHUNK):
        emails.extend(
            db.scalars(select(PersonRow.email).where(PersonRow.id.in_(ids[start : start + _CHUNK])))
        )
    return sorted(emails)


def insert_people(db: Session, values: Sequence[PersonValues], now: datetime) -> dict[str, int]:
    """Bulk insert new people; returns their ids by email."""
    if not values:
        return {}
    db.execute(
        insert(table_of(PersonRow)),
        [
            {
                "email": v.email,
                "name": v.name,
                "zone": v.zone,
                "locale": v.locale,
                "availability": v.availability,
                "stretch": v.stretch,
                "created_at": now,
                "updated_at": now,
            }
            for v in values
        ],
    )
    ids: dict[str, int] = {}
    emails = [v.email for v in values]
    for start in range(0, len(emails), _CHUNK):
        query = select(PersonRow.email, PersonRow.id).where(
            PersonRow.email.in_(emails[start : start + _CHUNK])
        )
        ids.update({email: pid for email, pid in db.execute(query)})
    return ids


def update_people(db: Session, changes: Sequence[tuple[int, PersonValues]], now: datetime) -> None:
    if not changes:
        return
    rows = [
        {
            "id": pid,
            "name": v.name,
            "zone": v.zone,
            "locale": v.locale,
            "availability": v.availability,
            "updated_at": now,
            **({"stretch": v.stretch} if v.sets_stretch else {}),
        }
        for pid, v in changes
    ]
    for sets in (True, False):  # one statement per set of columns
        batch = [r for r in rows if ("stretch" in r) == sets]
        if batch:
            db.execute(update(PersonRow), batch)


def enrollment_of(db: Session, cohort_id: int, person_id: int) -> StoredEnrollment | None:
    """One person's enrollment in a cohort (one indexed row, not the whole roster)."""
    query = select(
        EnrollmentRow.id,
        EnrollmentRow.person_id,
        EnrollmentRow.role,
        EnrollmentRow.status,
        EnrollmentRow.max_sessions_per_week,
    ).where(EnrollmentRow.cohort_id == cohort_id, EnrollmentRow.person_id == person_id)
    row = db.execute(query).first()
    return None if row is None else StoredEnrollment(*row)


def enrollments(db: Session, cohort_id: int) -> dict[int, StoredEnrollment]:
    """The cohort's enrollments by person id."""
    query = select(
        EnrollmentRow.id,
        EnrollmentRow.person_id,
        EnrollmentRow.role,
        EnrollmentRow.status,
        EnrollmentRow.max_sessions_per_week,
    ).where(EnrollmentRow.cohort_id == cohort_id)
    return {row.person_id: StoredEnrollment(*row) for row in db.execute(query)}


def insert_enrollments(db: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        db.execute(insert(table_of(EnrollmentRow)), list(rows))


def update_enrollments(db: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        db.execute(update(EnrollmentRow), list(rows))


def roster(
    db: Session, cohort_id: int, role: Role | None = None
) -> list[tuple[EnrollmentRow, PersonRow]]:
    query = (
        select(EnrollmentRow, PersonRow)
        .join(PersonRow, EnrollmentRow.person_id == PersonRow.id)
        .where(EnrollmentRow.cohort_id == cohort_id)
        .order_by(EnrollmentRow.role, PersonRow.name, PersonRow.email)
    )
    if role is not None:
        query = query.where(EnrollmentRow.role == role.value)
    return [(enrollment, person) for enrollment, person in db.execute(query)]


def roster_counts(db: Session, cohort_id: int) -> dict[str, int]:
    query = (
        select(EnrollmentRow.role, func.count())
        .where(
            EnrollmentRow.cohort_id == cohort_id, EnrollmentRow.status == EnrollmentStatus.ACTIVE
        )
        .group_by(EnrollmentRow.role)
    )
    return {role: count for role, count in db.execute(query)}


def cohort_person_ids(db: Session, cohort_id: int) -> dict[str, int]:
    """Person ids by email for everyone enrolled in the cohort."""
    query = (
        select(PersonRow.email, PersonRow.id)
        .join(EnrollmentRow, EnrollmentRow.person_id == PersonRow.id)
        .where(EnrollmentRow.cohort_id == cohort_id)
    )
    return {email: pid for email, pid in db.execute(query)}


@dataclass(frozen=True, slots=True)
class ActiveLearner:
    """What planning needs of an active learner, read as columns (fast for 100k rows)."""

    person_id: int
    email: str
    zone: str
    availability: str | None
    locale: str | None
    enrolled_at: datetime
    stretch: str | None = None  # None: the cohort's default; "none": no stretch hours


def active_learners(db: Session, cohort_id: int) -> list[ActiveLearner]:
    query = (
        select(
            PersonRow.id,
            PersonRow.email,
            PersonRow.zone,
            PersonRow.availability,
            PersonRow.locale,
            EnrollmentRow.enrolled_at,
            PersonRow.stretch,
        )
        .join(EnrollmentRow, EnrollmentRow.person_id == PersonRow.id)
        .where(
            EnrollmentRow.cohort_id == cohort_id,
            EnrollmentRow.role == Role.LEARNER.value,
            EnrollmentRow.status == EnrollmentStatus.ACTIVE,
        )
        .order_by(PersonRow.email)
    )
    return [ActiveLearner(*row) for row in db.execute(query)]


def active_learner_availability(
    db: Session, cohort: CohortRow
) -> list[tuple[ActiveLearner, Availability]]:
    """:func:`active_learners`, each with the availability in force for them, parsed (the
    cohort's default, parsed once, for those without their own)."""
    default = parse_availability(cohort.default_availability)
    return [
        (x, parse_availability(x.availability) if x.availability else default)
        for x in active_learners(db, cohort.id)
    ]


BULK_ROWS = 500  # a write this large refreshes PostgreSQL's statistics (see refresh_statistics)
STATISTICS_TABLES = ("person", "enrollment", "section_member", "notification", "feed_token")


def refresh_statistics(db: Session, rows: int) -> None:
    """After a bulk write of ``rows`` rows on PostgreSQL, ANALYZE the tables the worker's
    frequent queries read. Until autovacuum gets to it a big import leaves the planner blind
    (measured: the worker's late-joiner query took 20 s of server CPU on 20,000 fresh learners
    without statistics, 0.02 s with them). A no-op on SQLite and for small writes."""
    if rows < BULK_ROWS or db.get_bind().dialect.name != "postgresql":
        return
    for table in STATISTICS_TABLES:  # names from the constant above, never from input
        db.execute(text(f"ANALYZE {table}"))


def touch_feeds(db: Session, cohort_id: int) -> None:
    """Mark every feed of the cohort as changed (the web's feed cache keys on this counter)."""
    db.execute(
        update(CohortRow)
        .where(CohortRow.id == cohort_id)
        .values(feeds_version=CohortRow.feeds_version + 1)
    )


def _save_catch_up(db: Session, cohort_id: int, options: CatchUpOptions) -> None:
    """Store the cohort's ``[catch_up]`` options (a row only when they are not the defaults)."""
    row = db.get(CatchUpRuleRow, cohort_id)
    if options == CatchUpOptions():
        if row is not None:
            db.delete(row)
        return
    if row is None:
        row = CatchUpRuleRow(cohort_id=cohort_id)
        db.add(row)
    row.enabled = options.enabled
    row.max_shift_days = options.max_days
    row.max_shifts = options.max_shifts


def catch_up_options(db: Session, cohort_id: int) -> CatchUpOptions:
    """The cohort's ``[catch_up]`` options; the defaults (off) when it has none."""
    row = db.get(CatchUpRuleRow, cohort_id)
    if row is None:
        return CatchUpOptions()
    return CatchUpOptions(row.enabled, timedelta(days=row.max_shift_days), row.max_shifts)


def id_in(db: Session, column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
    """``column IN ids`` for a batch of integer ids.

    On PostgreSQL the ids travel as one array parameter (``column = ANY(%(ids)s)``, the same
    index scan as ``IN``): with one parameter per id a batch's statements had more parameters
    than psycopg caches, so the same short SQL was parsed again in Python for every statement,
    and SQLAlchemy rendered the expanded list again each time. SQLite keeps ``IN``.
    """
    values = list(ids)
    if db.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(Integer), unique=True))  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]
