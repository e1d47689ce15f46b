"""What a course runner asks for: the cohort, its facilitators, live series, async work, reminders.

These are the validated values read from ``cohort.toml`` (see :mod:`scheduler.domain.cohort_file`).
The planner consumes :class:`SeriesRequest`; later stages consume the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from scheduler.domain.availability import Availability


class SeriesKind(StrEnum):
    CLASS = "class"
    COWORKING = "coworking"
    OFFICE_HOURS = "office_hours"


class Role(StrEnum):
    LEARNER = "learner"
    FACILITATOR = "facilitator"


class Fairness(StrEnum):
    """How a series shares inconvenient hours: ``none`` (the coverage planner alone) or
    ``rotate`` (up to ``rotate_times`` weekly times taking turns, see
    :mod:`scheduler.planning.fairness`)."""

    NONE = "none"
    ROTATE = "rotate"


MAX_ROTATE_TIMES = 4
DEFAULT_MAX_COVERAGE_LOSS = 0.05


class Anchor(StrEnum):
    """Which clock a weekly series keeps: the cohort's home zone, or UTC."""

    HOME = "home"
    UTC = "utc"


class ReleaseKind(StrEnum):
    AFTER_PREVIOUS = "after_previous"  # when the previous occurrence of the target series ends
    COURSE_START = "course_start"
    FIXED_DATE = "fixed_date"
    DRIP = "drip"  # one item every `every`, counted from the course start


class HardKind(StrEnum):
    NONE = "none"
    AFTER_SOFT = "after_soft"
    END_OF_COURSE = "end_of_course"


class ReminderAbout(StrEnum):
    LIVE = "live"
    DEADLINE = "deadline"
    DIGEST = "digest"
    WELCOME = "welcome"


@dataclass(frozen=True, slots=True)
class Facilitator:
    name: str
    email: str
    zone: str
    availability: Availability
    max_sessions_per_week: int = 5

    def __post_init__(self) -> None:
        if self.max_sessions_per_week < 1:
            raise ValueError("max_sessions_per_week must be at least 1")


@dataclass(frozen=True, slots=True)
class SeriesRequest:
    """A recurring live activity to plan: how often, how long, how big."""

    key: str
    title: str
    kind: SeriesKind
    per_week: int
    duration: timedelta
    min_gap: timedelta = timedelta(0)
    max_section_size: int | None = None
    sections: int | None = None  # fixed number of sections; None with auto_sections=False -> 1
    auto_sections: bool = False
    max_blocks: int = 6  # co-working: the most follow-the-sun blocks per week
    rotate: bool = False
    agenda: tuple[str, ...] = ()
    facilitators: tuple[str, ...] = ()  # emails; empty means any facilitator
    join_url: str | None = None  # where learners join (video room); https only
    fairness: Fairness = Fairness.NONE
    rotate_times: int = 2  # fairness = rotate: at most this many weekly times (2-4)
    max_coverage_loss: float = DEFAULT_MAX_COVERAGE_LOSS  # coverage given up for fairness

    def __post_init__(self) -> None:
        if self.per_week < 1:
            raise ValueError("per_week must be at least 1")
        if not 2 <= self.rotate_times <= MAX_ROTATE_TIMES:
            raise ValueError(f"rotate_times must be between 2 and {MAX_ROTATE_TIMES}")
        if not 0 <= self.max_coverage_loss <= 1:
            raise ValueError("max_coverage_loss must be between 0 and 1")
        if self.fairness == Fairness.ROTATE and (
            self.per_week != 1 or self.kind == SeriesKind.COWORKING or self.rotate
        ):
            raise ValueError("fairness = rotate needs one meeting a week and no A/B rotate")
        if self.duration <= timedelta(0) or self.duration > timedelta(hours=12):
            raise ValueError("duration must be between 1 minute and 12 hours")
        if self.sections is not None and self.auto_sections:
            raise ValueError("sections is either a number or 'auto'")


@dataclass(frozen=True, slots=True)
class Release:
    kind: ReleaseKind = ReleaseKind.AFTER_PREVIOUS
    on: date | None = None
    every: timedelta | None = None


@dataclass(frozen=True, slots=True)
class AssignmentRule:
    """Async work between live sessions and the rule for its soft (and hard) deadline."""

    key: str
    title: str
    series: str  # the series key the work prepares for or follows
    prepares: bool  # True: due before the learner's next occurrence; False: after one
    soft_offset: timedelta  # before (prepares) or after (follows) that occurrence
    effort: timedelta
    release: Release = field(default_factory=Release)
    snap_to: int | None = None  # local minutes after midnight to snap the soft deadline to
    hard: HardKind = HardKind.NONE
    hard_after: timedelta | None = None


DEFAULT_EARLY = timedelta(minutes=5)
MAX_EARLY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class ReminderRule:
    """When a kind of reminder is due, and ``early``: how much sooner than that it may be handed
    to the mail server when many fall due together (0: never before its due time; welcome
    emails go when a learner joins, so never early)."""

    key: str
    about: ReminderAbout
    before: timedelta | None = None  # this long before the target
    early: timedelta = DEFAULT_EARLY
    at: int | None = None  # or at this local time (minutes after midnight) on the target's day
    weekday: int | None = None  # digest: which local weekday (0 = Monday)
    template: str = ""


@dataclass(frozen=True, slots=True)
class Blackout:
    start: date
    end: date
    label: str = ""

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("a blackout ends before it starts")

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True, slots=True)
class PlanningOptions:
    anchor: Anchor = Anchor.HOME
    target_coverage: float = 0.9
    max_sections: int = 6
    grid_minutes: int = 15
    quiet_start: int = 22 * 60  # learners' quiet hours, local minutes after midnight
    quiet_end: int = 7 * 60


@dataclass(frozen=True, slots=True)
class OrchestrationOptions:
    """What the worker may change on its own in a published cohort (``[orchestration]``).

    ``auto_replan``: re-plan the future when the roster changes; ``freeze``: occurrences that
    start within this time from now never move; ``replan_margin``: a re-plan is applied only when
    coverage of the future improves by at least this many percentage points (0.05 = 5 points);
    ``max_moves``: a series is moved by re-plans at most this many times per course;
    ``pods_before``: breakout pods are formed and announced this long before a co-working block.
    """

    auto_replan: bool = False
    freeze: timedelta = timedelta(days=7)
    replan_margin: float = 0.05
    max_moves: int = 2
    pods_before: timedelta = timedelta(hours=2)

    def __post_init__(self) -> None:
        if self.freeze < timedelta(0):
            raise ValueError("freeze must not be negative")
        if not 0 <= self.replan_margin <= 1:
            raise ValueError("replan_margin must be between 0 and 1")
        if self.max_moves < 0:
            raise ValueError("max_moves must not be negative")
        if not timedelta(minutes=5) <= self.pods_before <= timedelta(days=2):
            raise ValueError("pods_before must be between 5 minutes and 2 days")


MAX_CATCH_UP_SHIFT = timedelta(days=28)
MAX_CATCH_UP_SHIFTS = 10


@dataclass(frozen=True, slots=True)
class CatchUpOptions:
    """Catching up (``[catch_up]``): a learner who missed a soft deadline may move their
    remaining soft deadlines later from their page, by 1 to ``max_shift`` whole days at a time,
    at most ``max_shifts`` times per course (the rule: :mod:`scheduler.planning.catch_up`).
    Off unless the cohort file turns it on."""

    enabled: bool = False
    max_shift: timedelta = timedelta(days=7)
    max_shifts: int = 2

    def __post_init__(self) -> None:
        if self.max_shift % timedelta(days=1) or not (
            timedelta(days=1) <= self.max_shift <= MAX_CATCH_UP_SHIFT
        ):
            raise ValueError("max_shift must be whole days between 1 and 28")
        if not 1 <= self.max_shifts <= MAX_CATCH_UP_SHIFTS:
            raise ValueError(f"max_shifts must be between 1 and {MAX_CATCH_UP_SHIFTS}")

    @property
    def max_days(self) -> int:
        """The most days one shift may move deadlines by."""
        return self.max_shift.days


@dataclass(frozen=True, slots=True)
class CohortSpec:
    slug: str
    title: str
    start_date: date
    weeks: int
    home_zone: str
    locale: str
    default_availability: Availability
    planning: PlanningOptions = field(default_factory=PlanningOptions)
    orchestration: OrchestrationOptions = field(default_factory=OrchestrationOptions)
    facilitators: tuple[Facilitator, ...] = ()
    series: tuple[SeriesRequest, ...] = ()
    assignments: tuple[AssignmentRule, ...] = ()
    reminders: tuple[ReminderRule, ...] = ()
    blackouts: tuple[Blackout, ...] = ()
    catch_up: CatchUpOptions = field(default_factory=CatchUpOptions)
    # Stretch hours of learners who gave none: None, every hour the pain curve allows; an empty
    # Availability, none at all (see scheduler.planning.fairness)
    default_stretch: Availability | None = None
    # The runner's regions for fairness ([regions] in the cohort file): (zone or zone prefix,
    # group name); the longest match wins; zones matching none keep their continent
    regions: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.weeks <= 104:
            raise ValueError("weeks must be between 1 and 104")

    @property
    def end_date(self) -> date:
        """The last day of the course (inclusive)."""
        return self.start_date + timedelta(weeks=self.weeks) - timedelta(days=1)

    def is_blacked_out(self, day: date) -> bool:
        return any(b.contains(day) for b in self.blackouts)
