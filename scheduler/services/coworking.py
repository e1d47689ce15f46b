"""Who a co-working block is for, and its breakout pods, recomputed from the plan as it is now.

The audience of a co-working occurrence is every *active* learner of the cohort whose
availability covers the whole block (``covers_at`` in their own zone), the same rule as their
feed and schedule. Its pods are not stored: :class:`PodBook` recomputes them with
:func:`scheduler.planning.pods.form_pods`, deterministically:

* attendees: the audience, as ``PodLearner(key=email, section=their class section or 0, zone)``;
* previous: the pods of the same series' previous scheduled occurrence (the week before),
  computed the same way, so pods stay stable week to week (a chain from the series' first
  occurrence, each step memoised);
* rng: ``random.Random(occurrence uid)``.

The same data gives the same pods in every worker and on every resend. A roster change can
change them (that is the point: pods follow who actually comes).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.domain.availability import Availability, parse_availability
from scheduler.domain.cohort import Role, SeriesKind
from scheduler.domain.status import EnrollmentStatus, OccurrenceStatus
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
    EnrollmentRow,
    LiveSeriesRow,
    OccurrenceRow,
    PersonRow,
    SectionMemberRow,
)
from scheduler.planning.pods import PodLearner, Pods, form_pods
from scheduler.timeutil import zone


@dataclass(frozen=True, slots=True)
class CoworkingLearner:
    person_id: int
    email: str
    name: str
    zone: str
    section: int  # their class section, 0 when they have none
    availability: Availability

    def fits(self, start: datetime, minutes: int) -> bool:
        return self.availability.covers_at(start, minutes, zone(self.zone))


def coworking_learners(db: Session, cohort_id: int) -> list[CoworkingLearner]:
    """The cohort's active learners with what co-working needs of them (three queries)."""
    cohort = db.get(CohortRow, cohort_id)
    assert cohort is not None
    class_keys = set(
        db.scalars(
            select(LiveSeriesRow.series_key).where(
                LiveSeriesRow.cohort_id == cohort_id,
                LiveSeriesRow.kind == SeriesKind.CLASS.value,
            )
        )
    )
    sections: dict[int, int] = {}
    for person_id, key, section in db.execute(
        select(SectionMemberRow.person_id, SectionMemberRow.series_key, SectionMemberRow.section)
        .where(SectionMemberRow.cohort_id == cohort_id)
        .order_by(SectionMemberRow.series_key)
    ):
        if key in class_keys:
            sections.setdefault(person_id, section)
    parsed: dict[str, Availability] = {}
    learners = []
    for person in db.scalars(
        select(PersonRow)
        .join(EnrollmentRow, EnrollmentRow.person_id == PersonRow.id)
        .where(
            EnrollmentRow.cohort_id == cohort_id,
            EnrollmentRow.status == EnrollmentStatus.ACTIVE,
            EnrollmentRow.role == Role.LEARNER.value,
        )
        .order_by(PersonRow.email)
    ):
        text = repo.availability_text(person.availability, cohort)
        if text not in parsed:
            parsed[text] = parse_availability(text)
        learners.append(
            CoworkingLearner(
                person.id,
                person.email,
                person.name,
                person.zone,
                sections.get(person.id, 0),
                parsed[text],
            )
        )
    return learners


def audience(
    learners: list[CoworkingLearner], occurrence: OccurrenceRow, series: LiveSeriesRow
) -> list[CoworkingLearner]:
    """The learners whose window covers the whole block."""
    return [m for m in learners if m.fits(occurrence.start, series.duration_minutes)]


class PodBook:
    """Pods per co-working occurrence, memoised: one per batch of emails (or per sync)."""

    def __init__(self, db: Session) -> None:
        self.db = db
        self._learners: dict[int, list[CoworkingLearner]] = {}
        self._by_person: dict[int, dict[int, CoworkingLearner]] = {}
        self._names: dict[int, dict[str, str]] = {}
        self._pods: dict[str, Pods] = {}
        self._chains: dict[int, list[tuple[OccurrenceRow, LiveSeriesRow]]] = {}

    def learners(self, cohort_id: int) -> list[CoworkingLearner]:
        if cohort_id not in self._learners:
            self._learners[cohort_id] = coworking_learners(self.db, cohort_id)
            self._by_person[cohort_id] = {m.person_id: m for m in self._learners[cohort_id]}
            self._names[cohort_id] = {m.email: m.name for m in self._learners[cohort_id]}
        return self._learners[cohort_id]

    def learner(self, cohort_id: int, person_id: int) -> CoworkingLearner | None:
        """One active learner of the cohort (a dict lookup, not a scan per email)."""
        self.learners(cohort_id)
        return self._by_person[cohort_id].get(person_id)

    def names(self, cohort_id: int) -> dict[str, str]:
        """Names by email of the cohort's active learners."""
        self.learners(cohort_id)
        return self._names[cohort_id]

    def pods(self, occurrence: OccurrenceRow, series: LiveSeriesRow) -> Pods:
        """The pods of ``occurrence`` (see the module docstring)."""
        if occurrence.uid in self._pods:
            return self._pods[occurrence.uid]
        chain = self._chain(series)
        previous: dict[str, str] | None = None
        for earlier, _ in chain:
            if earlier.week >= occurrence.week:
                break
            previous = self._form(earlier, series, previous).pod_ids()
        return self._form(occurrence, series, previous)

    def _form(
        self, occurrence: OccurrenceRow, series: LiveSeriesRow, previous: dict[str, str] | None
    ) -> Pods:
        if occurrence.uid not in self._pods:
            attendees = [
                PodLearner(key=m.email, section=m.section, zone=m.zone)
                for m in audience(self.learners(series.cohort_id), occurrence, series)
            ]
            self._pods[occurrence.uid] = form_pods(
                attendees, previous, rng=random.Random(occurrence.uid)
            )
        return self._pods[occurrence.uid]

    def _chain(self, series: LiveSeriesRow) -> list[tuple[OccurrenceRow, LiveSeriesRow]]:
        if series.id not in self._chains:
            self._chains[series.id] = [
                (occurrence, series)
                for occurrence in self.db.scalars(
                    select(OccurrenceRow)
                    .where(
                        OccurrenceRow.series_id == series.id,
                        OccurrenceRow.status == OccurrenceStatus.SCHEDULED,
                    )
                    .order_by(OccurrenceRow.week)
                )
            ]
        return self._chains[series.id]


def next_block(
    db: Session, learner: CoworkingLearner, cohort_id: int, after: datetime
) -> tuple[OccurrenceRow, LiveSeriesRow] | None:
    """The first scheduled co-working block starting after ``after`` that fits ``learner``."""
    query = (
        select(OccurrenceRow, LiveSeriesRow)
        .join(LiveSeriesRow, LiveSeriesRow.id == OccurrenceRow.series_id)
        .where(
            LiveSeriesRow.cohort_id == cohort_id,
            LiveSeriesRow.kind == SeriesKind.COWORKING.value,
            OccurrenceRow.status == OccurrenceStatus.SCHEDULED,
            OccurrenceRow.start > after,
        )
        .order_by(OccurrenceRow.start, OccurrenceRow.id)
    )
    for occurrence, series in db.execute(query):
        if learner.fits(occurrence.start, series.duration_minutes):
            return occurrence, series
    return None
