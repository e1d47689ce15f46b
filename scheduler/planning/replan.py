"""Rolling re-plans: whether a fresh plan's future is worth moving a running cohort to.

Pure: no I/O, no clock (``boundary`` is passed in). The caller describes each series twice,
as it is published now and as a fresh plan would have it, from the freeze boundary on (the
occurrences that start at or after ``now + freeze``: nothing earlier is ever compared or
moved), and gives each learner's zone and weekly availability.

Coverage (the glossary's word) of one series for one learner: the share of their meetings
that fall inside their availability on their own clock that week. For a sectioned series
(class, office hours) the meetings are their section's; a learner in no section scores 0.
For co-working a learner may join any block, so the share is of the course weeks in which at
least one block fits them. Coverage of the cohort is the mean over every (learner, series)
pair whose series still meets after the boundary.

The rule (:func:`choose_replan`):

1. a series whose proposed future equals its current one (same meetings, same members) is
   unchanged;
2. a series that has already been moved ``max_moves`` times is kept as it is ("capped");
3. a series the caller marks ``held`` is kept (the service holds a series whose new host would
   also take over its meetings inside the freeze horizon);
4. a series whose proposed coverage is not strictly higher than its current one is kept (it
   would move people for nothing);
5. a series that would lose a section that still meets after the boundary is kept: sections
   are only ever added by a re-plan, never taken away from under their members (a section
   may keep meeting with other members);
6. the remaining series move together only if the cohort's coverage rises by at least
   ``margin`` (0.05 = five percentage points); otherwise nothing moves.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from scheduler.domain.availability import Availability
from scheduler.timeutil import zone

MARGIN_SLACK = 1e-9


@dataclass(frozen=True, slots=True)
class Meeting:
    week: int
    start: datetime  # aware UTC
    end: datetime

    @property
    def minutes(self) -> int:
        return int((self.end - self.start).total_seconds() // 60)


@dataclass(frozen=True, slots=True)
class SeriesFuture:
    """One series from the boundary on: meetings by section, and who is in which section.

    ``sectioned`` False (co-working): ``members`` is empty and every learner may join any
    section (block)."""

    key: str
    sectioned: bool
    meetings: Mapping[int, tuple[Meeting, ...]]  # section -> meetings, in time order
    members: Mapping[str, int] = field(default_factory=dict)  # learner -> section

    def same_as(self, other: SeriesFuture) -> bool:
        return _normal(self.meetings) == _normal(other.meetings) and dict(self.members) == dict(
            other.members
        )

    @property
    def meets(self) -> bool:
        return any(self.meetings.values())


def _normal(meetings: Mapping[int, tuple[Meeting, ...]]) -> dict[int, tuple[Meeting, ...]]:
    return {s: tuple(sorted(m, key=lambda x: x.start)) for s, m in meetings.items() if m}


@dataclass(frozen=True, slots=True)
class Person:
    zone: str
    availability: Availability


@dataclass(frozen=True, slots=True)
class SeriesVerdict:
    key: str
    verdict: str  # unchanged | capped | held | no_gain | drops_section | moves | below_margin
    before: float  # the series' coverage summed over learners (not a mean)
    after: float


@dataclass(frozen=True, slots=True)
class ReplanDecision:
    """``apply``: move the series in ``moves``. ``before`` is the cohort's coverage now and
    ``after`` with every series that qualified moved (means over learner-series pairs, 0..1),
    also when the gain fell short of the margin and nothing moves."""

    apply: bool
    moves: tuple[str, ...]
    before: float
    after: float
    pairs: int
    series: tuple[SeriesVerdict, ...]
    learners: int = 0

    @property
    def gain(self) -> float:
        return self.after - self.before


def series_coverage(future: SeriesFuture, people: Mapping[str, Person]) -> float:
    """The sum over learners of their coverage of this series (0 when it no longer meets)."""
    if not future.meets:
        return 0.0
    total = 0.0
    if future.sectioned:
        for learner, section in future.members.items():
            person = people.get(learner)
            meetings = future.meetings.get(section, ())
            if person is None or not meetings:
                continue
            total += sum(_fits(person, m) for m in meetings) / len(meetings)
        return total
    weeks: dict[int, list[Meeting]] = {}
    for meetings in future.meetings.values():
        for m in meetings:
            weeks.setdefault(m.week, []).append(m)
    for person in people.values():
        fitting = sum(any(_fits(person, m) for m in week) for week in weeks.values())
        total += fitting / len(weeks)
    return total


def _fits(person: Person, meeting: Meeting) -> bool:
    return person.availability.covers_at(meeting.start, meeting.minutes, zone(person.zone))


def _drops_section(current: SeriesFuture, proposed: SeriesFuture) -> bool:
    still = {s for s, m in current.meetings.items() if m}
    kept = {s for s, m in proposed.meetings.items() if m}
    return not still <= kept


def choose_replan(
    current: Sequence[SeriesFuture],
    proposed: Sequence[SeriesFuture],
    people: Mapping[str, Person],
    moves_so_far: Mapping[str, int],
    margin: float,
    max_moves: int,
    held: Collection[str] = frozenset(),
) -> ReplanDecision:
    """Which series to move to their proposed future, by the rule in the module docstring."""
    if not 0 <= margin <= 1:
        raise ValueError("margin must be between 0 and 1")
    now_by_key = {f.key: f for f in current}
    new_by_key = {f.key: f for f in proposed}
    empty = {
        k: SeriesFuture(k, f.sectioned, {}) for k, f in (*now_by_key.items(), *new_by_key.items())
    }
    verdicts: list[SeriesVerdict] = []
    before_total = after_total = 0.0
    pairs = 0
    moves: list[str] = []
    for key in sorted(now_by_key.keys() | new_by_key.keys()):
        old = now_by_key.get(key, empty[key])
        new = new_by_key.get(key, empty[key])
        if old.meets or new.meets:
            pairs += len(people)
        before = series_coverage(old, people)
        if old.same_as(new):
            verdict, after = "unchanged", before
        else:
            after = series_coverage(new, people)
            if moves_so_far.get(key, 0) >= max_moves:
                verdict = "capped"
            elif key in held:
                verdict = "held"
            elif after <= before:
                verdict = "no_gain"
            elif _drops_section(old, new):
                verdict = "drops_section"
            else:
                verdict = "moves"
        verdicts.append(SeriesVerdict(key, verdict, before, after))
        before_total += before
        after_total += after if verdict == "moves" else before
        if verdict == "moves":
            moves.append(key)
    before_mean = before_total / pairs if pairs else 0.0
    after_mean = after_total / pairs if pairs else 0.0
    # A float sum can land a hair under an exact margin (7/20 - 6/20 < 0.05): allow for that.
    apply = bool(moves) and after_mean - before_mean >= margin - MARGIN_SLACK
    if not apply:
        verdicts = [
            SeriesVerdict(v.key, "below_margin", v.before, v.after) if v.verdict == "moves" else v
            for v in verdicts
        ]
    return ReplanDecision(
        apply,
        tuple(moves) if apply else (),
        before_mean,
        after_mean,
        pairs,
        tuple(verdicts),
        len(people),
    )
