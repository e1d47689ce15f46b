"""Catching up: a learner who missed soft deadlines moves their remaining ones later.

Pure: no clock, no I/O. The caller passes ``now`` (or a stored shift's time) and the learner's
items as :func:`scheduler.planning.deadlines.compute_deadlines` made them. Stored shifts are
applied again, in order, every time that learner's deadlines are computed
(:func:`apply_shifts`), so a shift survives re-plans and re-publishes.

Asking (:func:`refusal`), at ``now``, to shift by ``days``; the first reason that applies wins:

1. ``NOT_ENABLED``: the cohort file has no ``[catch_up]`` table (or ``enabled = false``);
2. ``NO_SHIFTS_LEFT``: the learner already shifted ``max_shifts`` times;
3. ``TOO_MANY_DAYS``: ``days`` is not a whole number from 1 to ``max_shift`` (days);
4. ``NOTHING_MISSED``: no soft deadline of theirs has passed (at or before ``now``). *Chosen*:
   the product does not know whether work was handed in, so a passed soft deadline counts as
   missed;
5. ``NOTHING_LEFT``: the shift would move nothing (no soft deadline after ``now``, or every one
   already at its cap).

Shifting (:func:`shift_items`) moves the **remaining** items (soft deadline after the shift's
time); passed ones, and everything but the soft deadline of the others, stay as they were:

1. ``days`` later on the learner's wall clock (20:00 stays 20:00 across a clock change; a wall
   time in a gap moves forward, the DST policy of :func:`scheduler.timeutil.wall_to_utc`);
2. **capped** at the item's *cap*: the earlier of its hard deadline and the course end
   (23:59:59 on the last day, on the learner's clock), and never earlier than it was (an item
   already at or past its cap stays);
3. out of **quiet hours** the way the deadline rule does it (step 3 of
   :mod:`scheduler.planning.deadlines`): a time inside them moves earlier, to ``quiet_start`` of
   the evening the quiet night began, unless that would be earlier than the item was; then the
   cap wins (the item stays inside, later than before: the course ends at 23:59:59);
4. **order kept**: walking back from the last item, each is held at or before the next one's new
   deadline (a later item with a near cut-off holds earlier ones back), then step 3 again. This
   never makes an item earlier than it was: the next item's new deadline is at least its old
   one, which is at least this item's old one.

So a new soft deadline is never past the item's hard deadline or the course end (unless it
already was), never earlier than before, and the list keeps its order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from scheduler.domain.cohort import Anchor, CohortSpec

# One learner's calendar with the cohort's quiet hours: the deadline rule's own, so the two
# rules move a time out of quiet hours alike.
from scheduler.planning.deadlines import DeadlineItem, _LocalCalendar

__all__ = ["Refusal", "Shift", "apply_shifts", "missed", "refusal", "remaining", "shift_items"]


class Refusal(StrEnum):
    """Why a learner cannot shift their deadlines now."""

    NOT_ENABLED = "not_enabled"
    NO_SHIFTS_LEFT = "no_shifts_left"
    TOO_MANY_DAYS = "too_many_days"
    NOTHING_MISSED = "nothing_missed"
    NOTHING_LEFT = "nothing_left"


@dataclass(frozen=True, slots=True)
class Shift:
    """One shift a learner made: at ``at`` (aware), ``days`` later."""

    at: datetime
    days: int

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("a shift's time must be aware")
        if self.days < 1:
            raise ValueError("a shift moves deadlines at least one day")


def missed(items: Sequence[DeadlineItem], now: datetime) -> int:
    """How many soft deadlines have passed at ``now``."""
    return sum(1 for item in items if item.soft <= now)


def remaining(items: Sequence[DeadlineItem], now: datetime) -> int:
    """How many soft deadlines are still ahead at ``now``."""
    return sum(1 for item in items if item.soft > now)


def refusal(
    spec: CohortSpec,
    zone_name: str,
    items: Sequence[DeadlineItem],
    now: datetime,
    days: int,
    used: int,
) -> Refusal | None:
    """Why the learner (``items``: their deadlines now, after the ``used`` shifts they made)
    may not shift by ``days`` at ``now``; None when they may. Order: the module docstring."""
    options = spec.catch_up
    if not options.enabled:
        return Refusal.NOT_ENABLED
    if used >= options.max_shifts:
        return Refusal.NO_SHIFTS_LEFT
    if not 1 <= days <= options.max_days:
        return Refusal.TOO_MANY_DAYS
    if not missed(items, now):
        return Refusal.NOTHING_MISSED
    if shift_items(spec, zone_name, items, now, days) == tuple(items):
        return Refusal.NOTHING_LEFT
    return None


def _calendar(spec: CohortSpec, zone_name: str) -> _LocalCalendar:
    anchor = "UTC" if spec.planning.anchor == Anchor.UTC else spec.home_zone
    return _LocalCalendar(spec, zone_name, anchor)


def shift_items(
    spec: CohortSpec, zone_name: str, items: Sequence[DeadlineItem], at: datetime, days: int
) -> tuple[DeadlineItem, ...]:
    """``items`` (sorted by soft deadline, then key) with those still ahead at ``at`` moved
    ``days`` later under the rule in the module docstring; same order, same length."""
    if days < 1:
        raise ValueError("a shift moves deadlines at least one day")
    clock = _calendar(spec, zone_name)
    return _shift(clock, items, at, days)


def apply_shifts(
    spec: CohortSpec, zone_name: str, items: Sequence[DeadlineItem], shifts: Sequence[Shift]
) -> tuple[DeadlineItem, ...]:
    """``items`` after every one of ``shifts``, in the order they were made."""
    clock = _calendar(spec, zone_name)
    out = tuple(items)
    for shift in sorted(shifts, key=lambda s: s.at):
        out = _shift(clock, out, shift.at, shift.days)
    return out


def _shift(
    clock: _LocalCalendar, items: Sequence[DeadlineItem], at: datetime, days: int
) -> tuple[DeadlineItem, ...]:
    delta = timedelta(days=days)
    ahead = [index for index, item in enumerate(items) if item.soft > at]
    new: dict[int, datetime] = {}
    for index in ahead:
        item = items[index]
        cap = clock.course_end if item.hard is None else min(item.hard, clock.course_end)
        moved = max(item.soft, min(clock.plus_wall(item.soft, delta), cap))
        new[index] = _out_of_quiet(clock, moved, item.soft)
    following: datetime | None = None
    for index in reversed(ahead):
        if following is not None and new[index] > following:
            new[index] = _out_of_quiet(clock, following, items[index].soft)
        following = new[index]
    out = list(items)
    for index, soft in new.items():
        if soft != items[index].soft:
            out[index] = replace(items[index], soft=soft, soft_local=clock.local(soft))
    return tuple(out)


def _out_of_quiet(clock: _LocalCalendar, moved: datetime, before: datetime) -> datetime:
    """``moved``, or quiet_start of its quiet night when that is not earlier than ``before``."""
    earlier = clock.quiet_earlier(moved)
    return earlier if earlier >= before else moved
