"""The planner's input and output values: ``LearnerInput`` in, ``Plan`` out (all frozen)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from scheduler.domain.availability import Availability
from scheduler.domain.cohort import SeriesKind
from scheduler.timeutil import Weekday, is_aware

if TYPE_CHECKING:
    from scheduler.planning.fairness import FairPlan


@dataclass(frozen=True, slots=True)
class LearnerInput:
    """One active learner as the planner sees them.

    ``availability`` is already the cohort default when the learner gave none; then
    ``has_availability`` is False, so "no availability given" can be a reason for leaving out.
    ``stretch``: hours they could attend at a cost (None: the cohort's default; empty: none),
    used only by fair rotation (:mod:`scheduler.planning.fairness`).
    """

    key: str
    zone: str
    availability: Availability
    has_availability: bool = True
    stretch: Availability | None = None

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a learner needs a key")
        if self.availability.is_empty:
            raise ValueError(f"learner {self.key}: empty availability (substitute the default)")


class LeftOutReason(StrEnum):
    NO_AVAILABILITY = "no_availability"  # gave no availability; the cohort default did not fit
    NO_FEASIBLE_TIME = "no_feasible_time"  # no candidate time fits them every week
    NO_FACILITATOR_OVERLAP = "no_facilitator_overlap"  # only times no facilitator can take fit
    CAPACITY = "capacity"  # every section was full
    DST_UNTIL_WEEK = "dst_until_week"  # fits until week N, then a clock change moves it out
    TIME_NOT_CHOSEN = "time_not_chosen"  # times fitting them exist but serve fewer learners
    BLOCK_LIMIT = "block_limit"  # co-working: max_blocks reached before covering them


@dataclass(frozen=True, slots=True)
class SessionTime:
    """A weekly start time as wall time in the anchor zone."""

    weekday: Weekday
    minute: int  # minutes after midnight

    @property
    def wall(self) -> time:
        return time(self.minute // 60, self.minute % 60)

    def label(self) -> str:
        return f"{self.weekday.label} {self.minute // 60:02d}:{self.minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class SectionPlan:
    """One section of a series (a whole-cohort series is section 0; a co-working block is a
    section of its own). ``times`` are the weekly times; with rotation, ``alternate`` holds the
    times used in odd weeks (1, 3, ...), else it is empty. A fair rotation (``fairness =
    "rotate"``) lists its weekly times in ``rotation`` and, per course week, the index of the
    one it uses in ``week_times`` (``times`` holds the first of them); else both are empty.
    ``coverage_by_week[w]`` is the share of this section's learners for whom every occurrence in
    week ``w`` fits (None if all skipped)."""

    series: str
    kind: SeriesKind
    section: int
    times: tuple[SessionTime, ...]
    alternate: tuple[SessionTime, ...]
    anchor_zone: str
    duration: timedelta
    facilitator: str | None
    learners: tuple[str, ...]
    fitted: int  # learners for whom every occurrence fits
    coverage_by_week: tuple[float | None, ...]
    rotation: tuple[SessionTime, ...] = ()
    week_times: tuple[int, ...] = ()

    def time_in_week(self, week: int, slot: int = 0) -> SessionTime:
        """The weekly time slot ``slot`` uses in course week ``week`` (rotation applied)."""
        if self.rotation:
            return self.rotation[self.week_times[week]]
        if self.alternate and week % 2 == 1:
            return self.alternate[slot]
        return self.times[slot]


@dataclass(frozen=True, slots=True)
class Occurrence:
    series: str
    section: int
    slot: int  # index into the section's weekly times
    week: int  # 0-based course week
    start: datetime
    end: datetime
    skipped: bool = False  # a blackout date
    note: str = ""

    def __post_init__(self) -> None:
        if not (is_aware(self.start) and is_aware(self.end)):
            raise ValueError("occurrence times must be aware")


@dataclass(frozen=True, slots=True)
class LearnerCoverage:
    """A learner's share of the fitting occurrences of their section of one series.

    With rotation this is the learner's share of the rotated series."""

    learner: str
    series: str
    section: int | None  # None: not assigned (capacity)
    fitted: int
    occurrences: int
    by_week: tuple[int, ...]  # fitting occurrences per week

    @property
    def coverage(self) -> float:
        return self.fitted / self.occurrences if self.occurrences else 0.0


@dataclass(frozen=True, slots=True)
class SeriesCoverage:
    """Every learner's coverage of one series, as columns (cheap for 100k learners).

    Row ``i`` is learner ``learners[i]``; :meth:`row` gives it as a :class:`LearnerCoverage`."""

    series: str
    learners: tuple[str, ...]
    section: tuple[int | None, ...]
    fitted: tuple[int, ...]
    occurrences: tuple[int, ...]
    by_week: tuple[tuple[int, ...], ...]

    def row(self, i: int) -> LearnerCoverage:
        return LearnerCoverage(
            self.learners[i],
            self.series,
            self.section[i],
            self.fitted[i],
            self.occurrences[i],
            self.by_week[i],
        )

    def of(self, learner: str) -> LearnerCoverage:
        return self.row(self.learners.index(learner))


@dataclass(frozen=True, slots=True)
class LeftOut:
    learner: str
    series: str
    reason: LeftOutReason
    week: int | None = None  # DST_UNTIL_WEEK: the first (0-based) week that no longer fits
    detail: str = ""


@dataclass(frozen=True, slots=True)
class DstWarning:
    series: str
    section: int
    week: int  # 0-based week from which the local time differs from the week before
    shift_minutes: int  # positive: later on the learners' clocks
    zone_pattern: str  # "America/*"
    learners: int
    text: str


@dataclass(frozen=True, slots=True)
class AutoSectionStep:
    sections: int
    fitted: int  # learners whose section fits them, optimal for this many sections
    share: float
    gain: int  # over one section fewer (the first step: over zero)


@dataclass(frozen=True, slots=True)
class AutoSectionReport:
    series: str
    chosen: int
    target: float
    reached: bool
    steps: tuple[AutoSectionStep, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    cohort: str
    anchor_zone: str
    weeks: int
    sections: tuple[SectionPlan, ...]
    occurrences: tuple[Occurrence, ...]
    coverage: tuple[SeriesCoverage, ...]
    left_out: tuple[LeftOut, ...]
    warnings: tuple[DstWarning, ...]
    auto_sections: tuple[AutoSectionReport, ...]
    notes: tuple[str, ...] = ()
    objective: tuple[tuple[str, int], ...] = ()  # per series: the optimised value
    fairness: tuple[FairPlan, ...] = ()  # per fairly rotated series (``FairPlan.series``)

    def series_sections(self, series: str) -> tuple[SectionPlan, ...]:
        return tuple(s for s in self.sections if s.series == series)

    def fairness_of(self, series: str) -> FairPlan | None:
        """The fair rotation of ``series`` (its times, weeks and burden ledger), if it has one."""
        return next((f for f in self.fairness if f.series == series), None)

    def coverage_of(self, learner: str, series: str) -> LearnerCoverage:
        """One learner's coverage of one series (``ValueError`` when unknown)."""
        for columns in self.coverage:
            if columns.series == series:
                return columns.of(learner)
        raise ValueError(f"no series {series!r} in the plan")
