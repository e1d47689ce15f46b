"""The state one ``make_plan`` call shares between its steps, and the small rules they all use.

:class:`Context` holds the cohort's grid, the learners grouped into classes, the facilitators'
remaining load and busy times (:class:`Staff`) and the fit data per duration (built once, on first
use). :class:`Chosen` is one section (or block) a strategy picked; :class:`NoPlan` is how a
strategy says a series cannot be planned at all. Times are anchor minutes of the week.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from scheduler.domain.cohort import CohortSpec, Facilitator, SeriesKind, SeriesRequest
from scheduler.planning.fit import (
    BoolArray,
    Classes,
    FitData,
    Grid,
    IntArray,
    build_fit,
    facilitator_fit,
)
from scheduler.planning.model import LearnerInput
from scheduler.timeutil import MINUTES_PER_WEEK

__all__ = [
    "Chosen",
    "Context",
    "NoPlan",
    "Staff",
    "far_enough",
    "meets",
    "minutes",
    "sectioned",
    "slots_in_week",
]


def sectioned(request: SeriesRequest) -> bool:
    """Whether a series is split into sections (else one whole-cohort time set)."""
    return request.kind != SeriesKind.COWORKING and (
        request.max_section_size is not None
        or request.sections is not None
        or request.auto_sections
    )


@dataclass
class Staff:
    """Facilitator load and busy intervals (anchor minutes of the week) while planning."""

    people: tuple[Facilitator, ...]
    load: list[int]
    busy: list[list[tuple[int, int]]]

    def free(self, f: int, start: int, length: int, extra: Sequence[tuple[int, int]]) -> bool:
        return not meets(start, length, (*self.busy[f], *extra))


def meets(start: int, length: int, busy: Sequence[tuple[int, int]]) -> bool:
    """Whether ``[start, start + length)`` overlaps one of ``busy`` on the weekly circle."""
    for b_start, b_len in busy:
        if (start - b_start) % MINUTES_PER_WEEK < b_len or (
            b_start - start
        ) % MINUTES_PER_WEEK < length:
            return True
    return False


@dataclass
class Chosen:
    """One section (or co-working block) a strategy picked: its candidate times and members."""

    series: SeriesRequest
    section: int
    times: tuple[int, ...]
    alternate: tuple[int, ...]
    facilitator: str | None
    members: list[int]  # learner indices
    rotation: tuple[int, ...] = ()  # fair rotation: its candidate times
    week_times: tuple[int, ...] = ()  # fair rotation: per week, the index into ``rotation``


@dataclass
class Context:
    spec: CohortSpec
    learners: Sequence[LearnerInput]
    grid: Grid
    classes: Classes
    class_of: IntArray
    staff: Staff
    fits: dict[int, FitData] = field(default_factory=dict)
    fac_ok: dict[int, BoolArray] = field(default_factory=dict)  # duration -> [f, c]
    busy: list[tuple[int, int]] = field(default_factory=list)  # live (minute of week, length)
    _regions: tuple[IntArray, list[str]] | None = None

    def regions(self) -> tuple[IntArray, list[str]]:
        """Each learner's zone region ("America" for America/Bogota) as an index, and the names."""
        if self._regions is None:
            names: dict[str, int] = {}
            ids = [names.setdefault(x.zone.split("/")[0], len(names)) for x in self.learners]
            self._regions = (np.array(ids, dtype=np.int64), list(names))
        return self._regions

    def fit(self, duration: int) -> FitData:
        if duration not in self.fits:
            self.fits[duration] = build_fit(self.grid, self.classes, duration)
        return self.fits[duration]

    def facilitator_ok(self, duration: int) -> BoolArray:
        if duration not in self.fac_ok:
            rows = [
                facilitator_fit(self.grid, f.zone, f.availability, duration)
                for f in self.staff.people
            ]
            shape = (0, self.grid.size)
            self.fac_ok[duration] = np.array(rows, dtype=bool).reshape(
                (len(rows), self.grid.size) if rows else shape
            )
        return self.fac_ok[duration]


class NoPlan(Exception):
    pass


def minutes(value: timedelta) -> int:
    return int(value // timedelta(minutes=1))


def far_enough(request: SeriesRequest, step: int) -> int:
    """Smallest distance (in candidates) between two weekly times of one section."""
    gap = max(minutes(request.min_gap), minutes(request.duration))
    return math.ceil(gap / step)


def slots_in_week(item: Chosen, week: int) -> tuple[int, ...]:
    if item.rotation:
        return (item.rotation[item.week_times[week]],)
    return item.alternate if item.alternate and week % 2 else item.times
