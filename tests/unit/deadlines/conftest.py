"""Factories for deadline tests: a cohort, weekly occurrences, learners (all session-scoped, so
hypothesis tests can use them too)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

import pytest

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import (
    AssignmentRule,
    CohortSpec,
    HardKind,
    Release,
    SeriesKind,
    SeriesRequest,
)
from scheduler.planning.deadlines import DeadlineLearner
from scheduler.planning.model import Occurrence
from scheduler.timeutil import wall_to_utc, zone

READING = AssignmentRule(
    key="reading",
    title="Read the week's notes",
    series="class",
    prepares=True,
    soft_offset=timedelta(hours=24),
    effort=timedelta(hours=2),
    release=Release(),
    snap_to=20 * 60,
    hard=HardKind.AFTER_SOFT,
    hard_after=timedelta(hours=72),
)
EXERCISE = AssignmentRule(
    key="exercise",
    title="Practice exercise",
    series="class",
    prepares=False,
    soft_offset=timedelta(hours=72),
    effort=timedelta(hours=3),
    release=Release(),
    snap_to=20 * 60,
    hard=HardKind.END_OF_COURSE,
)


class OccurrenceFactory(Protocol):
    def __call__(
        self,
        spec: CohortSpec,
        times: Sequence[str],
        *,
        series: str = "class",
        section: int = 0,
        length: timedelta = timedelta(minutes=90),
        anchor: str | None = None,
        first_slot: int = 0,
    ) -> list[Occurrence]: ...


LearnerFactory = Callable[..., DeadlineLearner]
SpecFactory = Callable[..., CohortSpec]


@pytest.fixture(scope="session")
def make_spec() -> SpecFactory:
    """A 4-week Berlin cohort from Monday 1 March 2027 (Europe changes clocks on 28 March) with
    a class, a co-working series and office hours, and the two example assignments."""
    base = CohortSpec(
        slug="test",
        title="Test",
        start_date=date(2027, 3, 1),
        weeks=4,
        home_zone="Europe/Berlin",
        locale="en_GB",
        default_availability=parse_availability("Mon-Fri 18:00-22:00"),
        series=(
            SeriesRequest("class", "Live class", SeriesKind.CLASS, 2, timedelta(minutes=90)),
            SeriesRequest("cowork", "Co-working", SeriesKind.COWORKING, 1, timedelta(hours=2)),
            SeriesRequest("office", "Office hours", SeriesKind.OFFICE_HOURS, 1, timedelta(hours=1)),
        ),
        assignments=(READING, EXERCISE),
    )

    def make(**overrides: Any) -> CohortSpec:
        return replace(base, **overrides)

    return make


@pytest.fixture(scope="session")
def make_occurrences() -> OccurrenceFactory:
    """Weekly occurrences from times like ``"Mon 18:00"`` on the anchor clock (default: the
    home zone), one slot per time, every course week; blackout dates come out skipped."""

    def make(
        spec: CohortSpec,
        times: Sequence[str],
        *,
        series: str = "class",
        section: int = 0,
        length: timedelta = timedelta(minutes=90),
        anchor: str | None = None,
        first_slot: int = 0,
    ) -> list[Occurrence]:
        tz = zone(anchor or spec.home_zone)
        days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        out = []
        for week in range(spec.weeks):
            for slot, text in enumerate(times, first_slot):
                day_name, clock = text.split()
                offset = (days.index(day_name) - spec.start_date.weekday()) % 7
                day = spec.start_date + timedelta(days=7 * week + offset)
                hours, minutes = (int(p) for p in clock.split(":"))
                start = wall_to_utc(day, time(hours, minutes), tz)
                out.append(
                    Occurrence(
                        series,
                        section,
                        slot,
                        week,
                        start,
                        start + length,
                        spec.is_blacked_out(day),
                    )
                )
        return out

    return make


@pytest.fixture(scope="session")
def make_learner() -> LearnerFactory:
    def make(
        key: str,
        zone_name: str,
        availability: str = "Mon-Fri 18:00-22:00",
        sections: Mapping[str, int] | None = None,
        enrolled_at: datetime | None = None,
    ) -> DeadlineLearner:
        return DeadlineLearner(
            key,
            zone_name,
            parse_availability(availability),
            {"class": 0} if sections is None else sections,
            enrolled_at,
        )

    return make
