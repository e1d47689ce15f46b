"""Load a cohort file into storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from scheduler.domain.cohort import CohortSpec, OrchestrationOptions, Role
from scheduler.domain.cohort_file import parse_cohort_file
from scheduler.domain.status import EnrollmentStatus
from scheduler.persistence import repo
from scheduler.persistence.repo import PersonValues


@dataclass(slots=True)
class LoadResult:
    spec: CohortSpec
    created: bool
    warnings: list[str] = field(default_factory=list)


def load_cohort(db: Session, text: str, source: str, now: datetime) -> LoadResult:
    """Validate ``text`` (raises ConfigError with every problem) and store the cohort and its
    facilitators; loading the same file again changes nothing but ``updated_at``."""
    spec = parse_cohort_file(text, source)
    row, created = repo.save_cohort(db, spec, text, now)
    repo.touch_feeds(db, row.id)
    warnings = _sync_facilitators(db, row.id, spec, now)
    return LoadResult(spec, created, warnings)


def _sync_facilitators(db: Session, cohort_id: int, spec: CohortSpec, now: datetime) -> list[str]:
    values = [
        PersonValues(f.email, f.name, f.zone, None, f.availability.to_text())
        for f in spec.facilitators
    ]
    existing = repo.people_by_email(db, [v.email for v in values])
    repo.update_people(
        db,
        [
            (existing[v.email].id, v)
            for v in values
            if v.email in existing and v.differs(existing[v.email])
        ],
        now,
    )
    ids = {email: row.id for email, row in existing.items()}
    ids |= repo.insert_people(db, [v for v in values if v.email not in existing], now)
    enrolled = repo.enrollments(db, cohort_id)
    caps = {f.email: f.max_sessions_per_week for f in spec.facilitators}
    new_rows, changed_rows = [], []
    for email, person_id in ids.items():
        row = enrolled.get(person_id)
        fields = {
            "role": Role.FACILITATOR.value,
            "status": EnrollmentStatus.ACTIVE,
            "max_sessions_per_week": caps[email],
            "left_at": None,
        }
        if row is None:
            new_rows.append(
                {"cohort_id": cohort_id, "person_id": person_id, "enrolled_at": now, **fields}
            )
        elif (row.role, row.status, row.max_sessions_per_week) != (
            fields["role"],
            fields["status"],
            fields["max_sessions_per_week"],
        ):
            changed_rows.append({"id": row.id, **fields})
    repo.insert_enrollments(db, new_rows)
    repo.update_enrollments(db, changed_rows)
    listed = set(ids.values())
    return [
        f"facilitator {email} is enrolled but not in the cohort file (left as is)"
        for email in repo.emails_of(
            db,
            [
                person_id
                for person_id, enrollment in enrolled.items()
                if enrollment.role == Role.FACILITATOR.value
                and enrollment.status == EnrollmentStatus.ACTIVE
                and person_id not in listed
            ],
        )
    ]


def cohort_slugs(db: Session) -> list[str]:
    """The slugs of every stored cohort, sorted."""
    return repo.cohort_slugs(db)


def orchestration_options(db: Session, slug: str) -> OrchestrationOptions:
    """The cohort's re-plan policy (auto_replan, freeze horizon, margin, move cap)."""
    return repo.orchestration_options(repo.get_cohort(db, slug))


@dataclass(frozen=True, slots=True)
class CohortBasics:
    """What a page or a command needs to know of a stored cohort (not its row): the published
    read model with counts is :class:`scheduler.services.published.CohortFacts`."""

    id: int
    slug: str
    title: str
    weeks: int
    home_zone: str
    locale: str
    default_availability: str


def cohort_basics(db: Session, slug: str) -> CohortBasics:
    """The stored cohort's facts; raises NotFoundError for an unknown slug."""
    c = repo.get_cohort(db, slug)
    return CohortBasics(
        c.id, c.slug, c.title, c.weeks, c.home_zone, c.locale, c.default_availability
    )
