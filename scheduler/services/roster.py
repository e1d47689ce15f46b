"""Import a roster into a cohort: one transaction, all or nothing unless asked for ``partial``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from scheduler.domain.cohort import Role
from scheduler.domain.status import EnrollmentStatus
from scheduler.errors import RosterError
from scheduler.persistence import repo
from scheduler.persistence.repo import PersonValues
from scheduler.progress import SILENT, Progress
from scheduler.roster import RosterReport, parse_roster
from scheduler.services.cascade import bring_up_to_date
from scheduler.services.deadlines import DeadlineSummary
from scheduler.services.reminders import DEFAULT_HORIZON


@dataclass(slots=True)
class ImportResult:
    report: RosterReport
    cohort: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # enrolled learners not in the file (kept)
    written: bool = False
    deadlines: DeadlineSummary | None = None  # recomputed when the cohort has a published plan

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.report.rows,
            "valid": len(self.report.entries),
            "invalid_rows": self.report.bad_lines,
            "added": len(self.added),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "missing_from_file": len(self.missing),
        }


def import_roster(
    db: Session,
    cohort_slug: str,
    data: bytes,
    source: str,
    now: datetime,
    *,
    dry_run: bool = False,
    partial: bool = False,
    horizon: timedelta = DEFAULT_HORIZON,
    progress: Progress = SILENT,
) -> ImportResult:
    """Upsert the roster's people (by email) and enroll them in the cohort.

    With errors and without ``partial`` it raises :class:`RosterError` listing every problem and
    writes nothing. With ``dry_run`` it computes the same result and writes nothing.
    Re-importing the same file reports every row unchanged.
    """
    cohort = repo.get_cohort(db, cohort_slug)
    report = parse_roster(data, source, progress)
    if report.errors and (not partial or not report.entries):
        raise RosterError(
            report.errors,
            f"{source}: {report.bad_lines or len(report.errors)} bad row(s), nothing was imported",
        )
    result = ImportResult(report, cohort_slug)
    values = {
        e.email: (
            PersonValues(e.email, e.name, e.zone, e.locale, e.availability, e.stretch, True),
            e.role,
        )
        for e in report.entries
    }
    people = repo.people_by_email(db, values)
    enrolled = repo.enrollments(db, cohort.id)
    to_insert: list[PersonValues] = []
    to_update: list[tuple[int, PersonValues]] = []
    new_enrollments: list[tuple[str, Role]] = []
    changed_enrollments: list[dict[str, Any]] = []
    for email, (value, role) in values.items():
        person = people.get(email)
        if person is None:
            to_insert.append(value)
            new_enrollments.append((email, role))
            result.added.append(email)
            continue
        enrollment = enrolled.get(person.id)
        person_changed = value.differs(person)
        if person_changed:
            to_update.append((person.id, value))
        if enrollment is None:
            new_enrollments.append((email, role))
            result.added.append(email)
        elif enrollment.role != role.value or enrollment.status != EnrollmentStatus.ACTIVE:
            changed_enrollments.append(
                {
                    "id": enrollment.id,
                    "role": role.value,
                    "status": EnrollmentStatus.ACTIVE,
                    "left_at": None,
                }
            )
            result.updated.append(email)
        elif person_changed:
            result.updated.append(email)
        else:
            result.unchanged.append(email)
    listed = {people[e].id for e in values if e in people}
    result.missing = repo.emails_of(
        db,
        [
            person_id
            for person_id, enrollment in enrolled.items()
            if enrollment.role == Role.LEARNER.value
            and enrollment.status == EnrollmentStatus.ACTIVE
            and person_id not in listed
        ],
    )
    if dry_run:
        return result
    progress.step(f"storing {len(values):,} people")
    repo.update_people(db, to_update, now)
    ids = repo.insert_people(db, to_insert, now)
    ids |= {email: people[email].id for email, _ in new_enrollments if email in people}
    repo.insert_enrollments(
        db,
        [
            {
                "cohort_id": cohort.id,
                "person_id": ids[email],
                "role": role.value,
                "status": EnrollmentStatus.ACTIVE,
                "enrolled_at": now,
            }
            for email, role in new_enrollments
        ],
    )
    repo.update_enrollments(db, changed_enrollments)
    result.written = True
    # A published cohort keeps every learner's deadlines right, newcomers included (unless
    # nobody was added or updated); newcomers are welcomed. Nobody joins a section here: the
    # worker places newcomers, and that queues their invitations.
    done = bring_up_to_date(
        db,
        cohort_slug,
        now,
        horizon=horizon,
        deadlines=bool(result.added or result.updated),
        invites=False,
        progress=progress,
    )
    result.deadlines = done.deadlines
    repo.refresh_statistics(db, len(to_insert) + len(new_enrollments) + len(to_update))
    return result
