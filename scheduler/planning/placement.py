"""Late joiners: a learner who arrives after publishing joins one section of a series, and nobody
else moves.

Pure: no I/O, no clock. The caller passes the sections of one series as they are now — each
section's capacity (the series' ``max_section_size``, None for no cap), its current size and
its meetings still to come as UTC ``(start, end)`` pairs — and the learner's zone and weekly
availability.

The rule, in order:

1. only sections with room (size below capacity) are candidates; none: the learner is not
   placed (:func:`place_learner` returns None);
2. the most future meetings inside the learner's availability, on their own clock that week
   (so a clock change between now and a meeting is taken into account);
3. then the smaller section (it keeps sections balanced);
4. then the lower section index (so the answer never depends on input order).

Placing several learners (:func:`place_learners`) does it one at a time in key order, each
placement counting towards the next one's sizes, so a capacity is never exceeded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from scheduler.domain.availability import Availability
from scheduler.timeutil import zone

TimeSpan = tuple[datetime, datetime]  # a meeting as (start, end): aware UTC instants


@dataclass(frozen=True, slots=True)
class SectionSeats:
    """One section of a series: how full it is and when it still meets."""

    section: int
    capacity: int | None  # None: no cap
    size: int
    meetings: tuple[TimeSpan, ...]

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError(f"section {self.section} has a negative size")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"section {self.section} has a capacity below 1")
        for start, end in self.meetings:
            if start.tzinfo is None or end.tzinfo is None:
                raise ValueError("meetings must be aware datetimes")
            if end <= start:
                raise ValueError(f"a meeting of section {self.section} ends before it starts")

    @property
    def has_room(self) -> bool:
        return self.capacity is None or self.size < self.capacity


@dataclass(frozen=True, slots=True)
class Newcomer:
    """A learner to place: ``key`` (their email), IANA zone and weekly availability."""

    key: str
    zone: str
    availability: Availability


@dataclass(frozen=True, slots=True)
class Placement:
    section: int
    fits: int  # future meetings of the section inside the learner's availability
    meetings: int  # future meetings of the section


def fit_count(seats: SectionSeats, learner_zone: str, availability: Availability) -> int:
    """How many of the section's meetings lie inside the learner's availability."""
    tz = zone(learner_zone)
    return sum(
        availability.covers_at(start, int((end - start).total_seconds() // 60), tz)
        for start, end in seats.meetings
    )


def place_learner(
    sections: Sequence[SectionSeats], learner_zone: str, availability: Availability
) -> Placement | None:
    """The best-fitting section with room (see the module docstring), or None when all are full."""
    best: tuple[tuple[int, int, int], Placement] | None = None
    for seats in sections:
        if not seats.has_room:
            continue
        fits = fit_count(seats, learner_zone, availability)
        rank = (-fits, seats.size, seats.section)
        if best is None or rank < best[0]:
            best = (rank, Placement(seats.section, fits, len(seats.meetings)))
    return None if best is None else best[1]


def place_learners(
    sections: Sequence[SectionSeats], newcomers: Iterable[Newcomer]
) -> Mapping[str, Placement | None]:
    """Place each newcomer (in key order) into one section of the series; each placement adds
    one to that section's size before the next newcomer is placed."""
    seats = {s.section: s for s in sections}
    if len(seats) != len(sections):
        raise ValueError("section indexes must be unique")
    placed: dict[str, Placement | None] = {}
    for learner in sorted(newcomers, key=lambda n: n.key):
        if learner.key in placed:
            raise ValueError(f"learner {learner.key!r} given twice")
        choice = place_learner(list(seats.values()), learner.zone, learner.availability)
        placed[learner.key] = choice
        if choice is not None:
            chosen = seats[choice.section]
            seats[choice.section] = replace(chosen, size=chosen.size + 1)
    return placed
