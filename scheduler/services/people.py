"""The people of a cohort as the dashboard, the API and the CLI list them: one read model
(:class:`Learner`) with the cohort's defaults filled in. Light on purpose: ``cohort roster
list`` loads this and the storage layer, nothing of the planner, the calendar writer or the
mail templates. Changing a learner is :mod:`scheduler.services.learners`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from scheduler.domain.cohort import Role
from scheduler.persistence import repo
from scheduler.persistence.models import CohortRow, EnrollmentRow, PersonRow


@dataclass(frozen=True, slots=True)
class Learner:
    """A person enrolled in a cohort (a learner, or a facilitator in :func:`list_people`) as the
    dashboard, the API and the CLI show them: the cohort's defaults filled in, and whether they
    were."""

    email: str
    name: str
    role: str
    zone: str
    availability: str
    availability_is_default: bool
    locale: str
    locale_is_default: bool
    status: str  # active or withdrawn
    enrolled_at: datetime
    left_at: datetime | None


def list_learners(db: Session, slug: str) -> list[Learner]:
    """Every learner of the cohort, withdrawn ones included, by name."""
    return list_people(db, slug, Role.LEARNER)


def list_people(db: Session, slug: str, role: Role | None = None) -> list[Learner]:
    """Everyone enrolled in the cohort (or only one role), withdrawn ones included, by role,
    name and email."""
    cohort = repo.get_cohort(db, slug)
    return [_view(cohort, e, p) for e, p in repo.roster(db, cohort.id, role)]


def _view(cohort: CohortRow, enrollment: EnrollmentRow, person: PersonRow) -> Learner:
    return Learner(
        email=person.email,
        name=person.name,
        role=enrollment.role,
        zone=person.zone,
        availability=repo.availability_text(person.availability, cohort),
        availability_is_default=person.availability is None,
        locale=person.locale or cohort.locale,
        locale_is_default=person.locale is None,
        status=enrollment.status,
        enrolled_at=enrollment.enrolled_at,
        left_at=enrollment.left_at,
    )
