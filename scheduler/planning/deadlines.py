"""Soft deadlines for the async work between live sessions, on each learner's own clock.

Pure: no clock, no I/O, no randomness. :func:`compute_deadlines` turns a cohort's assignment
rules, the plan's occurrences and the learners into a tuple of :class:`DeadlineItem` per learner.
Same input, same output; the order of ``occurrences`` and ``learners`` does not matter.

Words
-----
* **course start** for a learner: the earlier of 00:00 on ``spec.start_date`` on the learner's
  clock and 00:00 on that date on the clock the sessions keep (the home zone, or UTC with
  ``anchor = "utc"``). *Chosen over "local midnight" alone*: a Monday 08:00 Berlin class is
  Sunday 23:00 in Los Angeles, and work that prepares for it must be out before it starts.
  A learner in Pacific/Kiritimati, whose local date is already Monday while Berlin is still on
  Sunday, simply gets their own midnight.
* **course end** for a learner: 23:59:59 on ``spec.end_date`` (the last day) on their clock.
* **live** occurrence: one that is not ``skipped`` (blackouts). Nothing targets a skipped one:
  a week whose session is blacked out has no item for that session and no replay.
* **fits**: the whole session ``[start, end)``, seen on the learner's clock that week (DST-aware;
  the length is elapsed minutes), lies inside their availability
  (:meth:`Availability.covers` with the local minute of the week) - the planner's definition.
* **quiet hours**: ``spec.planning.quiet_start``-``quiet_end`` local (default 22:00-07:00). A
  time is *inside* them when it is strictly after ``quiet_start`` and strictly before
  ``quiet_end`` (wrapping midnight when start > end; none when start == end). Both ends are
  allowed: 22:00:00 is "the end of the evening", 07:00:00 "the start of the morning";
  22:00:01 is inside.

Assignment items (kind ``ASSIGNMENT``)
-------------------------------------
One item per live occurrence of the rule's series in the learner's section of that series
(``learner.sections[series]``). A learner with no section there (e.g. left out for capacity)
follows section 0's occurrences, and each item says so in its warnings. Key:
``"<assignment>/<series>/<section>/<slot>/<week>"``. Title: the rule's title.

Release (``rule.release``):
  * ``AFTER_PREVIOUS``, work that *prepares*: when the previous live occurrence of the same
    series and section ends; the course start for the first one.
  * ``AFTER_PREVIOUS``, work that *follows*: when the target occurrence itself ends
    (*chosen*: follow-up work is about the session it follows, so it cannot open before it).
  * ``COURSE_START``: the course start. ``FIXED_DATE``: 00:00 on ``rule.release.on``, local.
  * ``DRIP`` every ``d``: the ``i``-th item (0-based, live targets in time order) opens at
    course start + ``i * d`` counted on the learner's wall clock (so a daily drip stays at the
    same local time across a clock change).

Soft deadline, in this order:
  1. the rule's time: *prepares* -> target start - ``soft_offset`` in elapsed time (so the
     margin before the session is real hours even across a clock change); *follows* -> target
     end + ``soft_offset`` on the learner's wall clock (*chosen*: "72h after" a Thursday 19:30
     class is Sunday 19:30 even when the clocks change in between, not Sunday 20:30, which a
     20:00 snap would push to Monday);
  2. the snap (``rule.snap_to``, local minutes after midnight, on the learner's calendar via
     :func:`wall_to_utc`'s DST policy): *prepares* -> the latest snap time at or before the
     rule's time; *follows* -> the earliest snap time at or after it (*chosen*: a snap never
     eats into the time the rule promises - the margin before a session, or the time after it);
  3. quiet hours: a time inside them moves **earlier** to ``quiet_start`` of the evening the
     quiet night began (Tuesday 23:30 and Wednesday 03:00 both become Tuesday 22:00). If
     ``quiet_start`` itself falls in a clock-change gap, the wall time just before the gap is
     used (e.g. 21:00 when 22:00-23:00 does not exist that night).
  4. the release and the effort, with this precedence (higher wins):
     (a) release <= soft, always; (b) never inside quiet hours, always; (c) *prepares*: soft <=
     target start - ``soft_offset``; (d) at least ``effort`` between release and soft;
     (e) the snap.
     So: the snapped time is used when it leaves the effort; else the un-snapped rule time
     when that does (warning ``"not snapped to HH:MM, to leave the effort after release"``);
     else the later of the two that is not before the release (warning ``"less than the
     effort (2h) between release and deadline"``). When both are before the release (the work
     opens after the rule's deadline), the deadline becomes release + effort, or the target
     start if that is earlier (and not before the release); quiet hours then move it earlier,
     unless that would be before the release - then *later*, to ``quiet_end`` the next morning
     (the only case a deadline moves later). Warning ``"released after the rule's deadline
     (1d before the session)"``; this is the only case (c) may not hold.

Hard deadline: ``NONE`` -> none; ``AFTER_SOFT`` -> soft + ``hard_after`` on the learner's wall
clock (a 20:00 soft deadline + 72h is 20:00 three days later, across a clock change too; a
missing ``hard_after`` counts as zero); ``END_OF_COURSE`` -> course end. Never before the soft
deadline: when it would be (a late session for a far-east learner), it is the soft deadline.

Replays (kind ``REPLAY``)
-------------------------
For every live occurrence of a ``class`` series in the learner's section that does not fit them
(and every live occurrence of section 0 when they have no section in that series: no seat),
an item ``"Watch the replay: <series title> (week N)"`` (N from 1), key
``"replay/<series>/<section>/<slot>/<week>"``: released when the occurrence ends, soft = end +
72h snapped forward to 20:00 local (then quiet hours), hard = course end, effort = the session's
length; with no seat it warns ``"no <series> section: no seat in a live session"``.
Co-working blocks and office hours get no replays: co-working is unrecorded quiet work
time (there is nothing to watch, and follow-the-sun blocks give another time), and office hours
are optional drop-in questions, not course content.

Mid-course joiners (``enrolled_at`` set)
----------------------------------------
* An assignment item whose soft deadline is earlier than ``enrolled_at + effort`` (it was due
  before, or too soon after, joining to be done - *chosen* over "due before joining" so nobody
  gets a deadline they cannot meet) becomes a ``CATCH_UP`` item (same key, title
  ``"Catch up: <title>"``).
* Any other item released before ``enrolled_at`` is released at ``enrolled_at``.
* A class occurrence that started before ``enrolled_at`` was missed: it becomes a ``REPLAY``
  released at ``enrolled_at`` and paced with the catch-up work.
* Pacing of catch-up work (catch-up items and missed replays, in order of their original soft
  deadline, replays counted at their end): 3h of effort a day, starting the day after joining.
  The item that brings the running total to ``T`` is due on local day
  ``joining date + max(1, ceil(T / 3h))`` at the rule's snap time (20:00 when it has none;
  replays at 20:00) - a day later while that is less than its effort after joining - then
  quiet hours and the release rules above. Hard: ``AFTER_SOFT`` from
  the new soft, ``END_OF_COURSE`` as usual, never before soft. A catch-up due after the course
  ends says so in its warnings.

Co-working as accountability
----------------------------
Each ``ASSIGNMENT`` and ``CATCH_UP`` item carries the earliest live co-working occurrence (any
``coworking`` series, any block) that fits the learner, starts at or after the release and ends
no later than the soft deadline (``coworking``: its start; ``coworking_occurrence``: which one);
ties on start go to the smallest (series, section, slot, week).

Output
------
Per learner, items sorted by (soft, key); a series section without occurrences gives nothing.

Speed
-----
Learners with equal (zone, availability, sections, enrolled_at) get the same tuple of items,
computed once and shared by reference; so do learners whose different availabilities fit the
same occurrences. Assignment and replay drafts are shared by (zone, rule or occurrence,
section), and zone arithmetic is cached, all per call.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from scheduler.domain.availability import Availability
from scheduler.domain.cohort import (
    Anchor,
    AssignmentRule,
    CohortSpec,
    HardKind,
    ReleaseKind,
    SeriesKind,
)
from scheduler.planning.model import Occurrence
from scheduler.timeutil import (
    MINUTES_PER_DAY,
    format_duration,
    is_aware,
    wall_to_utc,
    week_minute,
    zone,
)

__all__ = [
    "CATCH_UP_PACE",
    "EVENING",
    "REPLAY_DELAY",
    "DeadlineItem",
    "DeadlineKind",
    "DeadlineLearner",
    "OccurrenceRef",
    "compute_deadlines",
]

REPLAY_DELAY = timedelta(hours=72)  # a replay is due this long after the session ends...
EVENING = 20 * 60  # ...snapped forward to 20:00 local; also the catch-up time of day by default
CATCH_UP_PACE = timedelta(hours=3)  # catch-up work planned per day after joining

_US_PER_MINUTE = 60_000_000
_ZERO = timedelta(0)
_ORDER = operator.attrgetter("soft", "key")
_NOTHING: list[Occurrence] = []  # shared, so caches keyed by id(list) stay sound


class DeadlineKind(StrEnum):
    ASSIGNMENT = "assignment"
    CATCH_UP = "catch_up"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True, order=True)
class OccurrenceRef:
    """Which occurrence: ``(series, section, slot, week)``, as :class:`Occurrence` names it."""

    series: str
    section: int
    slot: int
    week: int

    @classmethod
    def of(cls, occurrence: Occurrence) -> OccurrenceRef:
        return cls(occurrence.series, occurrence.section, occurrence.slot, occurrence.week)

    @property
    def path(self) -> str:
        return f"{self.series}/{self.section}/{self.slot}/{self.week}"


@dataclass(frozen=True, slots=True)
class DeadlineLearner:
    """One learner as the deadline engine sees them.

    ``availability`` is already the cohort default when they gave none. ``sections`` maps a
    series key to their section index; a series missing from it means no section (no seat).
    ``enrolled_at`` (aware) is when they joined; ``None`` means from the start.
    """

    key: str
    zone: str
    availability: Availability
    sections: Mapping[str, int] = field(default_factory=dict, hash=False)
    enrolled_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a learner needs a key")
        zone(self.zone)  # ValueError when unknown
        if self.enrolled_at is not None and not is_aware(self.enrolled_at):
            raise ValueError(f"learner {self.key}: enrolled_at must be aware")
        if any(index < 0 for index in self.sections.values()):
            raise ValueError(f"learner {self.key}: a section index is negative")


@dataclass(frozen=True, slots=True)
class DeadlineItem:
    """One piece of async work for one learner. Instants are aware UTC except ``soft_local``
    (the soft deadline on the learner's clock). ``key`` is stable and unique per learner."""

    key: str
    kind: DeadlineKind
    title: str
    assignment: str | None  # the rule's key; None for replays
    target: OccurrenceRef  # the occurrence it prepares for / follows / replays
    release: datetime
    soft: datetime
    soft_local: datetime
    hard: datetime | None
    effort: timedelta
    coworking: datetime | None = None  # start of the co-working block suggested for it
    coworking_occurrence: OccurrenceRef | None = None
    warnings: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.soft < self.release:
            raise ValueError(f"{self.key}: soft deadline before release")
        if self.hard is not None and self.hard < self.soft:
            raise ValueError(f"{self.key}: hard deadline before soft deadline")


def compute_deadlines(
    spec: CohortSpec, occurrences: Sequence[Occurrence], learners: Sequence[DeadlineLearner]
) -> dict[str, tuple[DeadlineItem, ...]]:
    """Every learner's deadline items (sorted by soft deadline, then key), keyed by learner key.

    The rules are in the module docstring. Raises ``ValueError`` when an assignment names a
    series the cohort does not have, or a learner key comes twice.
    """
    context = _Context(spec, occurrences)
    groups: dict[tuple[object, ...], tuple[DeadlineItem, ...]] = {}
    out: dict[str, tuple[DeadlineItem, ...]] = {}
    for learner in learners:
        group = (
            learner.zone,
            learner.availability,
            tuple(sorted(learner.sections.items())),
            learner.enrolled_at,
        )
        if learner.key in out:
            raise ValueError(f"learner {learner.key} is listed twice")
        items = groups.get(group)
        if items is None:
            items = groups[group] = _learner_items(context, learner)
        out[learner.key] = items
    return out


# --- time on one learner's clock ----------------------------------------------------------------


class _LocalCalendar:
    """One learner's local calendar: wall-clock arithmetic in their zone, with the cohort's quiet
    hours; cached per call (not a :class:`scheduler.clock.Clock`: it never says what time it is)."""

    def __init__(self, spec: CohortSpec, name: str, anchor: str) -> None:
        self.tz: ZoneInfo = zone(name)
        self._at: dict[tuple[date, int], datetime] = {}
        quiet_start = spec.planning.quiet_start % MINUTES_PER_DAY  # 24:00 is 00:00
        quiet_end = spec.planning.quiet_end
        self.quiet_start, self.quiet_end = quiet_start, quiet_end
        self._qs = quiet_start * _US_PER_MINUTE
        self._qe = quiet_end * _US_PER_MINUTE
        local_start = self.at(spec.start_date, 0)
        anchor_start = wall_to_utc(spec.start_date, time(0), zone(anchor))
        self.course_start = min(local_start, anchor_start)
        self.course_end = wall_to_utc(spec.end_date, time(23, 59, 59), self.tz)
        self._week_minute: dict[int, tuple[int, int]] = {}  # by id(occurrence)
        self._lists: dict[int, list[tuple[int, int]]] = {}  # by id(list of occurrences)

    def at(self, day: date, minute: int) -> datetime:
        """``minute`` (may be >= 1440) after midnight on ``day``, local, under the DST policy."""
        cached = self._at.get((day, minute))
        if cached is None:
            extra, rest = divmod(minute, MINUTES_PER_DAY)
            cached = wall_to_utc(day + timedelta(days=extra), time(rest // 60, rest % 60), self.tz)
            self._at[(day, minute)] = cached
        return cached

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.tz)

    def plus_wall(self, instant: datetime, delta: timedelta) -> datetime:
        """``delta`` later on the wall clock (24h after 20:00 is 20:00 even across a change)."""
        wall = instant.astimezone(self.tz).replace(tzinfo=None) + delta
        return wall_to_utc(wall.date(), wall.time(), self.tz)

    def minute_of_day(self, instant: datetime) -> int:
        local = instant.astimezone(self.tz)
        return local.hour * 60 + local.minute

    def _day_us(self, instant: datetime) -> tuple[date, int]:
        local = instant.astimezone(self.tz)
        us = ((local.hour * 60 + local.minute) * 60 + local.second) * 1_000_000
        return local.date(), us + local.microsecond

    def _quiet(self, us: int) -> bool:
        if self._qs > self._qe:
            return us > self._qs or us < self._qe
        return self._qs < us < self._qe

    def in_quiet(self, instant: datetime) -> bool:
        return self._quiet(self._day_us(instant)[1])

    def quiet_earlier(self, instant: datetime) -> datetime:
        """``instant``, or ``quiet_start`` of the evening its quiet night began."""
        day, us = self._day_us(instant)
        if not self._quiet(us):
            return instant
        if self._qs > self._qe and us < self._qe:
            day -= timedelta(days=1)
        moved = self.at(day, self.quiet_start)
        if moved > instant or self.in_quiet(moved):
            # quiet_start is in a gap: take the wall time on the far side (just before the gap).
            wall = time(self.quiet_start // 60, self.quiet_start % 60, fold=1)
            moved = datetime.combine(day, wall, tzinfo=self.tz).astimezone(UTC)
        return moved

    def quiet_later(self, instant: datetime) -> datetime:
        """``instant``, or ``quiet_end`` of the morning its quiet night ends."""
        day, us = self._day_us(instant)
        if not self._quiet(us):
            return instant
        if self._qs > self._qe and us > self._qs:
            day += timedelta(days=1)
        return self.at(day, self.quiet_end)

    def snap_back(self, instant: datetime, minute: int) -> datetime:
        """The latest ``minute`` o'clock local at or before ``instant``."""
        day = instant.astimezone(self.tz).date()
        for back in range(3):
            candidate = self.at(day - timedelta(days=back), minute)
            if candidate <= instant:
                return candidate
        return self.at(day - timedelta(days=3), minute)  # pragma: no cover - needs a 2-day gap

    def snap_forward(self, instant: datetime, minute: int) -> datetime:
        """The earliest ``minute`` o'clock local at or after ``instant``."""
        day = instant.astimezone(self.tz).date()
        for ahead in range(3):
            candidate = self.at(day + timedelta(days=ahead), minute)
            if candidate >= instant:
                return candidate
        return self.at(day + timedelta(days=3), minute)  # pragma: no cover - needs a 2-day gap

    def week_minutes(self, occurrences: list[Occurrence]) -> list[tuple[int, int]]:
        """:meth:`week_minute` of each occurrence (cached per list)."""
        found = self._lists.get(id(occurrences))
        if found is None:
            found = self._lists[id(occurrences)] = [self.week_minute(o) for o in occurrences]
        return found

    def week_minute(self, occurrence: Occurrence) -> tuple[int, int]:
        """(local minute of the week the occurrence starts, its length in elapsed minutes)."""
        found = self._week_minute.get(id(occurrence))
        if found is None:
            minute = week_minute(occurrence.start.astimezone(self.tz))
            length = int((occurrence.end - occurrence.start).total_seconds()) // 60
            found = self._week_minute[id(occurrence)] = (minute, length)
        return found


# --- the cohort, once per call ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Draft:
    """An item before its co-working block is chosen (shared between learner groups)."""

    key: str
    kind: DeadlineKind
    title: str
    rule: AssignmentRule | None
    target: Occurrence
    release: datetime
    soft: datetime
    hard: datetime | None
    effort: timedelta
    warnings: tuple[str, ...]


_Fits = dict[tuple[int, int], bool]


class _Context:
    """The cohort's occurrences, sorted once, and every cache shared by the learner groups.

    Caches (all per call): clocks by zone; assignment drafts by (zone, rule, section); replay
    drafts by (zone, occurrence, no-seat); a learner's availability-free timeline (assignments
    after the enrolment rules, plus paced missed replays) by (zone, sections, enrolled_at);
    fits by availability; finished items by (draft, co-working block).
    """

    def __init__(self, spec: CohortSpec, occurrences: Sequence[Occurrence]) -> None:
        self.spec = spec
        self.series = {s.key: s for s in spec.series}
        unknown = sorted({r.series for r in spec.assignments} - set(self.series))
        if unknown:
            raise ValueError(f"assignments name unknown series: {', '.join(unknown)}")
        self.anchor = "UTC" if spec.planning.anchor == Anchor.UTC else spec.home_zone
        ordered = sorted(
            occurrences, key=lambda o: (o.series, o.section, o.start, o.slot, o.week, o.end)
        )
        self.live: dict[tuple[str, int], list[Occurrence]] = {}
        for occurrence in ordered:
            if not occurrence.skipped:
                self.live.setdefault((occurrence.series, occurrence.section), []).append(occurrence)
        self.classes = [s.key for s in spec.series if s.kind == SeriesKind.CLASS]
        self.coworking = sorted(
            (
                o
                for o in ordered
                if not o.skipped
                and o.series in self.series
                and self.series[o.series].kind == SeriesKind.COWORKING
            ),
            key=lambda o: (o.start, o.series, o.section, o.slot, o.week),
        )
        self.refs = {id(o): OccurrenceRef.of(o) for o in ordered}
        self._clocks: dict[str, _LocalCalendar] = {}
        self._assignments: dict[tuple[str, str, int | None], list[_Draft]] = {}
        self._replays: dict[tuple[str, int, bool], _Draft] = {}
        self.timelines: dict[tuple[object, ...], list[_Draft]] = {}
        self.results: dict[tuple[object, ...], tuple[DeadlineItem, ...]] = {}
        self._fits: dict[Availability, _Fits] = {}
        self._items: dict[tuple[int, int], DeadlineItem] = {}

    def clock(self, name: str) -> _LocalCalendar:
        found = self._clocks.get(name)
        if found is None:
            found = self._clocks[name] = _LocalCalendar(self.spec, name, self.anchor)
        return found

    def fits_table(self, availability: Availability) -> _Fits:
        table = self._fits.get(availability)
        if table is None:
            table = self._fits[availability] = {}
        return table

    def assignment_drafts(
        self, clock: _LocalCalendar, name: str, rule: AssignmentRule, section: int | None
    ) -> list[_Draft]:
        key = (name, rule.key, section)
        found = self._assignments.get(key)
        if found is None:
            live = self.live.get((rule.series, 0 if section is None else section), _NOTHING)
            found = self._assignments[key] = _assignment_drafts(clock, rule, section, live)
        return found

    def replay_draft(
        self, clock: _LocalCalendar, name: str, occurrence: Occurrence, no_seat: bool
    ) -> _Draft:
        key = (name, id(occurrence), no_seat)
        found = self._replays.get(key)
        if found is None:
            found = self._replays[key] = _replay_draft(self, clock, occurrence, no_seat)
        return found

    def item(self, clock: _LocalCalendar, draft: _Draft, block: Occurrence | None) -> DeadlineItem:
        key = (id(draft), id(block))
        found = self._items.get(key)
        if found is None:
            found = self._items[key] = _finish(self, clock, draft, block)
        return found


def _learner_items(context: _Context, learner: DeadlineLearner) -> tuple[DeadlineItem, ...]:
    clock = context.clock(learner.zone)
    availability = learner.availability
    fits = context.fits_table(availability)

    def check(occurrences: list[Occurrence]) -> tuple[bool, ...]:
        out = []
        for where in clock.week_minutes(occurrences):
            found = fits.get(where)
            if found is None:
                found = fits[where] = availability.covers(*where)
            out.append(found)
        return tuple(out)

    enrolled = learner.enrolled_at
    sections = tuple(sorted(learner.sections.items()))
    classes = []
    for series in context.classes:
        section = learner.sections.get(series)
        classes.append(context.live.get((series, 0 if section is None else section), _NOTHING))
    coworking_fits = check(context.coworking)
    class_fits = tuple(check(live) for live in classes)
    # Learners whose availability differs but fits the same occurrences get the same items.
    key = (learner.zone, sections, enrolled, coworking_fits, class_fits)
    found = context.results.get(key)
    if found is not None:
        return found
    timeline_key = (learner.zone, sections, enrolled)
    timeline = context.timelines.get(timeline_key)
    if timeline is None:
        timeline = context.timelines[timeline_key] = _timeline(context, clock, learner)
    blocks = [o for o, ok in zip(context.coworking, coworking_fits, strict=True) if ok]
    starts = [o.start for o in blocks]
    items = [context.item(clock, d, _coworking(d, blocks, starts)) for d in timeline]
    for series, live, ok in zip(context.classes, classes, class_fits, strict=True):
        no_seat = learner.sections.get(series) is None
        for occurrence, fit in zip(live, ok, strict=True):
            if enrolled is not None and occurrence.start < enrolled:
                continue  # missed before joining: paced in the timeline
            if no_seat or not fit:
                draft = context.replay_draft(clock, learner.zone, occurrence, no_seat)
                items.append(context.item(clock, draft, None))
    items.sort(key=_ORDER)
    result = context.results[key] = tuple(items)
    return result


def _timeline(context: _Context, clock: _LocalCalendar, learner: DeadlineLearner) -> list[_Draft]:
    """The learner's assignment items and missed replays: everything that does not depend on
    their availability (only on zone, sections and enrolment)."""
    drafts: list[_Draft] = []
    for rule in context.spec.assignments:
        section = learner.sections.get(rule.series)
        drafts.extend(context.assignment_drafts(clock, learner.zone, rule, section))
    enrolled = learner.enrolled_at
    if enrolled is None:
        return drafts
    missed = []
    for series in context.classes:
        section = learner.sections.get(series)
        for occurrence in context.live.get((series, 0 if section is None else section), _NOTHING):
            if occurrence.start < enrolled:
                missed.append(
                    context.replay_draft(clock, learner.zone, occurrence, section is None)
                )
    return _enrol(clock, drafts, missed, enrolled)


def _assignment_drafts(
    clock: _LocalCalendar, rule: AssignmentRule, section: int | None, live: list[Occurrence]
) -> list[_Draft]:
    """One draft per live target occurrence; ``section`` None means no seat (section 0's)."""
    where = "before" if rule.prepares else "after"
    late = f"{_LATE} ({format_duration(rule.soft_offset)} {where} the session)"
    base = [f"no {rule.series} section: dates follow section 0"] if section is None else []
    drafts = []
    for i, target in enumerate(live):
        release = _release(clock, rule, live, i)
        warnings = list(base)
        if rule.prepares:
            raw = target.start - rule.soft_offset
            snapped = None if rule.snap_to is None else clock.snap_back(raw, rule.snap_to)
            cap: datetime | None = target.start
        else:
            raw = clock.plus_wall(target.end, rule.soft_offset)
            snapped = None if rule.snap_to is None else clock.snap_forward(raw, rule.snap_to)
            cap = None
        soft = _place(clock, release, rule.effort, snapped, raw, cap, warnings, late=late)
        drafts.append(
            _Draft(
                key=f"{rule.key}/{rule.series}/{section or 0}/{target.slot}/{target.week}",
                kind=DeadlineKind.ASSIGNMENT,
                title=rule.title,
                rule=rule,
                target=target,
                release=release,
                soft=soft,
                hard=_hard(clock, rule, soft),
                effort=rule.effort,
                warnings=tuple(warnings),
            )
        )
    return drafts


def _release(
    clock: _LocalCalendar, rule: AssignmentRule, live: list[Occurrence], i: int
) -> datetime:
    release = rule.release
    if release.kind == ReleaseKind.AFTER_PREVIOUS:
        if not rule.prepares:
            return live[i].end
        return live[i - 1].end if i else clock.course_start
    if release.kind == ReleaseKind.COURSE_START:
        return clock.course_start
    if release.kind == ReleaseKind.FIXED_DATE:
        if release.on is None:
            raise ValueError(f"assignment {rule.key}: a fixed-date release needs a date")
        return clock.at(release.on, 0)
    if release.every is None or release.every <= _ZERO:
        raise ValueError(f"assignment {rule.key}: a drip release needs a positive interval")
    return clock.plus_wall(clock.course_start, release.every * i)


_LATE = "released after the rule's deadline"


def _effort_warning(effort: timedelta) -> str:
    return f"less than the effort ({format_duration(effort)}) between release and deadline"


def _place(
    clock: _LocalCalendar,
    release: datetime,
    effort: timedelta,
    snapped: datetime | None,
    raw: datetime,
    cap: datetime | None,
    warnings: list[str],
    *,
    late: str = _LATE,
) -> datetime:
    """The soft deadline from the rule's (snapped, raw) times; see the module docstring, step 4.

    Appends its warnings to ``warnings``.
    """
    options = [clock.quiet_earlier(t) for t in ((snapped, raw) if snapped is not None else (raw,))]
    need = release + effort
    for index, option in enumerate(options):
        if option >= need:
            if index:
                when = _hhmm(clock.minute_of_day(snapped or raw))
                warnings.append(f"not snapped to {when}, to leave the effort after release")
            return option
    possible = [option for option in options if option >= release]
    if possible:
        warnings.append(_effort_warning(effort))
        return max(possible)
    soft = need if cap is None or cap < release else min(need, cap)
    earlier = clock.quiet_earlier(soft)
    soft = earlier if earlier >= release else clock.quiet_later(soft)
    warnings.append(late)
    if soft - release < effort:
        warnings.append(_effort_warning(effort))
    return soft


def _hard(clock: _LocalCalendar, rule: AssignmentRule, soft: datetime) -> datetime | None:
    if rule.hard == HardKind.NONE:
        return None
    if rule.hard == HardKind.AFTER_SOFT:
        hard = clock.plus_wall(soft, rule.hard_after or _ZERO)
    else:
        hard = clock.course_end
    return max(hard, soft)


def _hhmm(minute: int) -> str:
    return f"{minute // 60 % 24:02d}:{minute % 60:02d}"


# --- replays ------------------------------------------------------------------------------------


def _replay_draft(
    context: _Context, clock: _LocalCalendar, occurrence: Occurrence, no_seat: bool
) -> _Draft:
    """The replay of ``occurrence`` for a learner it does not fit (or who has no seat)."""
    effort = occurrence.end - occurrence.start
    warnings = [f"no {occurrence.series} section: no seat in a live session"] if no_seat else []
    raw = occurrence.end + REPLAY_DELAY
    snapped = clock.snap_forward(raw, EVENING)
    soft = _place(clock, occurrence.end, effort, snapped, raw, None, warnings)
    title = context.series[occurrence.series].title
    return _Draft(
        key=f"replay/{context.refs[id(occurrence)].path}",
        kind=DeadlineKind.REPLAY,
        title=f"Watch the replay: {title} (week {occurrence.week + 1})",
        rule=None,
        target=occurrence,
        release=occurrence.end,
        soft=soft,
        hard=max(clock.course_end, soft),
        effort=effort,
        warnings=tuple(warnings),
    )


# --- mid-course joiners ---------------------------------------------------------------------------


def _enrol(
    clock: _LocalCalendar, drafts: list[_Draft], missed: list[_Draft], enrolled: datetime
) -> list[_Draft]:
    """Apply the enrolment rules: late releases move to ``enrolled``; earlier work is paced."""
    kept: list[_Draft] = []
    queue: list[tuple[datetime, str, _Draft]] = [(d.release, d.key, d) for d in missed]
    for draft in drafts:
        if draft.soft < enrolled + draft.effort:
            queue.append((draft.soft, draft.key, draft))
        elif draft.release < enrolled:
            kept.append(replace(draft, release=enrolled))
        else:
            kept.append(draft)
    queue.sort(key=lambda entry: (entry[0], entry[1]))
    joined_on = clock.local(enrolled).date()
    total = _ZERO
    for _, _, draft in queue:
        total += draft.effort
        days = max(1, math.ceil(total / CATCH_UP_PACE))
        rule = draft.rule
        minute = rule.snap_to if rule is not None and rule.snap_to is not None else EVENING
        raw = clock.at(joined_on + timedelta(days=days), minute)
        while raw < enrolled + draft.effort:  # a snap just after midnight, joining late at night
            days += 1
            raw = clock.at(joined_on + timedelta(days=days), minute)
        warnings = [w for w in draft.warnings if w.startswith("no ")]
        soft = _place(clock, enrolled, draft.effort, None, raw, None, warnings)
        hard = max(clock.course_end, soft) if rule is None else _hard(clock, rule, soft)
        if soft > clock.course_end:
            warnings.append("catch-up due after the course ends")
        kept.append(
            replace(
                draft,
                kind=DeadlineKind.CATCH_UP if rule is not None else draft.kind,
                title=f"Catch up: {draft.title}" if rule is not None else draft.title,
                release=enrolled,
                soft=soft,
                hard=hard,
                warnings=tuple(warnings),
            )
        )
    return kept


# --- output ------------------------------------------------------------------------------------


def _coworking(
    draft: _Draft, blocks: list[Occurrence], starts: list[datetime]
) -> Occurrence | None:
    """The first fitting co-working block inside [release, soft] (none for replays)."""
    if draft.kind == DeadlineKind.REPLAY:
        return None
    for index in range(bisect.bisect_left(starts, draft.release), len(blocks)):
        block = blocks[index]
        if block.start > draft.soft:
            return None
        if block.end <= draft.soft:
            return block
    return None


def _finish(
    context: _Context, clock: _LocalCalendar, draft: _Draft, block: Occurrence | None
) -> DeadlineItem:
    return DeadlineItem(
        key=draft.key,
        kind=draft.kind,
        title=draft.title,
        assignment=draft.rule.key if draft.rule is not None else None,
        target=context.refs[id(draft.target)],
        release=draft.release,
        soft=draft.soft,
        soft_local=clock.local(draft.soft),
        hard=draft.hard,
        effort=draft.effort,
        coworking=None if block is None else block.start,
        coworking_occurrence=None if block is None else context.refs[id(block)],
        warnings=draft.warnings,
    )
