"""The list of cohorts: each with its active learner and facilitator counts and its latest plan
version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.domain.cohort import Role
from scheduler.domain.status import EnrollmentStatus
from scheduler.persistence import repo
from scheduler.persistence.models import (
    EnrollmentRow,
    PlanVersionRow,
)
from scheduler.services.views.common import end_date


@dataclass(frozen=True, slots=True)
class CohortCard:
    slug: str
    title: str
    start_date: date
    end_date: date  # the last day of the last week
    weeks: int
    home_zone: str
    learners: int
    facilitators: int
    published_version: int | None
    published_at: datetime | None


def cohort_cards(db: Session) -> list[CohortCard]:
    """Every cohort with its active learner and facilitator counts and its latest plan version."""
    counts: dict[tuple[int, str], int] = {
        (cohort_id, role): n
        for cohort_id, role, n in db.execute(
            select(EnrollmentRow.cohort_id, EnrollmentRow.role, func.count())
            .where(EnrollmentRow.status == EnrollmentStatus.ACTIVE)
            .group_by(EnrollmentRow.cohort_id, EnrollmentRow.role)
        )
    }
    latest = (
        select(PlanVersionRow.cohort_id, func.max(PlanVersionRow.version).label("version"))
        .group_by(PlanVersionRow.cohort_id)
        .subquery()
    )
    versions: dict[int, tuple[int, datetime]] = {
        cohort_id: (version, created)
        for cohort_id, version, created in db.execute(
            select(
                PlanVersionRow.cohort_id, PlanVersionRow.version, PlanVersionRow.created_at
            ).join(
                latest,
                (latest.c.cohort_id == PlanVersionRow.cohort_id)
                & (latest.c.version == PlanVersionRow.version),
            )
        )
    }
    cards = []
    for row in repo.list_cohorts(db):
        version, created = versions.get(row.id, (None, None))
        cards.append(
            CohortCard(
                row.slug,
                row.title,
                row.start_date,
                end_date(row),
                row.weeks,
                row.home_zone,
                counts.get((row.id, Role.LEARNER.value), 0),
                counts.get((row.id, Role.FACILITATOR.value), 0),
                version,
                created,
            )
        )
    return cards
