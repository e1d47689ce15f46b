"""Catching up (self-service date shift): a learner who missed soft deadlines moves their
remaining ones later from their page, within the cohort file's ``[catch_up]`` limits; the course
runner sees who did (dashboard, ``cohort log``).

* :func:`catch_up_offer`: what the learner's page offers (None: no "Catching up" section);
* :func:`shift_deadlines`: one shift, in the caller's transaction: the rule
  (:mod:`scheduler.planning.catch_up`) says yes or why not, the shift is stored, that learner's
  deadlines are recomputed and stored (their shifts applied), reminders are re-timed, the
  feeds bumped, and an audit entry written - all in the same commit;
* :func:`catch_up_summary`: who shifted, for the cohort page;

Re-plans and re-publishes apply stored shifts again (:mod:`scheduler.services.deadlines`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from gettext import NullTranslations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.domain.cohort import CatchUpOptions
from scheduler.errors import SchedulerError
from scheduler.persistence import repo
from scheduler.persistence.models import CatchUpShiftRow, PersonRow
from scheduler.planning.catch_up import Refusal, refusal
from scheduler.services import audit
from scheduler.services.deadlines import learner_deadlines, learner_items, store_learner_deadlines
from scheduler.services.plans import published_version
from scheduler.services.reminders import sync_reminders

CATCH_UP_SHIFTED = audit.CATCH_UP_SHIFTED
ACTOR = "learner page"


def N_(message: str) -> str:
    """Marks ``message`` for extraction (a ``babel.cfg`` keyword); it is translated where used."""
    return message


# What the learner reads when a shift is refused ({days}: the most days one shift may move).
REFUSALS = {
    Refusal.NOT_ENABLED: N_("Moving your deadlines is not offered in this course."),
    Refusal.NO_SHIFTS_LEFT: N_(
        "You have already moved your deadlines as many times as this course allows."
    ),
    Refusal.TOO_MANY_DAYS: N_("Choose a number of days from 1 to {days}."),
    Refusal.NOTHING_MISSED: N_(
        "None of your soft deadlines has passed yet: there is nothing to catch up on."
    ),
    Refusal.NOTHING_LEFT: N_(
        "Your remaining deadlines cannot move later: they are at their cut-offs or the end "
        "of the course."
    ),
}


class CatchUpRefused(SchedulerError):
    """A shift the rule does not allow; ``reason`` says why (:func:`refusal_text` in words)."""

    def __init__(self, reason: Refusal, options: CatchUpOptions) -> None:
        super().__init__(f"catching up refused: {reason.value}")
        self.reason = reason
        self.options = options


def refusal_text(error: CatchUpRefused, tr: NullTranslations) -> str:
    """The refusal in the learner's language (``tr``)."""
    message = REFUSALS[error.reason]
    try:
        return tr.gettext(message).format(days=error.options.max_days)
    except (KeyError, IndexError, ValueError):  # a catalog mistake gives the English sentence
        return message.format(days=error.options.max_days)


@dataclass(frozen=True, slots=True)
class CatchUpOffer:
    """What the learner's page offers: shift by 1 to ``max_days`` days, ``shifts_left`` more
    times; ``missed`` soft deadlines passed, ``remaining`` still ahead."""

    max_days: int
    shifts_used: int
    shifts_left: int
    missed: int
    remaining: int


@dataclass(frozen=True, slots=True)
class ShiftResult:
    days: int
    moved: int  # items whose soft deadline moved
    shift: int  # this was the learner's shift number ...
    of: int  # ... of at most this many


def _shifts_used(db: Session, cohort_id: int, person_id: int) -> int:
    return int(
        db.scalar(
            select(func.count()).where(
                CatchUpShiftRow.cohort_id == cohort_id, CatchUpShiftRow.person_id == person_id
            )
        )
        or 0
    )


def catch_up_offer(db: Session, slug: str, person_id: int, now: datetime) -> CatchUpOffer | None:
    """The "Catching up" section of a learner's page, or None when it is not shown: catching up
    is off, no plan is published, they have no shifts left, no soft deadline of theirs has
    passed, or none is still ahead. Read from their stored deadlines."""
    cohort = repo.get_cohort(db, slug)
    options = repo.catch_up_options(db, cohort.id)
    if not options.enabled or published_version(db, cohort.id) is None:
        return None
    used = _shifts_used(db, cohort.id, person_id)
    if used >= options.max_shifts:
        return None
    items = learner_items(db, cohort.id, person_id)
    missed = sum(1 for i in items if i.soft <= now)
    remaining = len(items) - missed
    if not missed or not remaining:
        return None
    return CatchUpOffer(options.max_days, used, options.max_shifts - used, missed, remaining)


def shift_deadlines(
    db: Session, slug: str, person_id: int, days: int, now: datetime, *, actor: str = ACTOR
) -> ShiftResult:
    """Move the learner's remaining soft deadlines ``days`` later, with everything that follows
    (module docstring), in the caller's transaction. Raises :class:`CatchUpRefused` (nothing
    written) when the rule says no, NotFoundError when they are not an active learner."""
    cohort = repo.get_cohort(db, slug)
    options = repo.catch_up_options(db, cohort.id)
    # First a write to the cohort's row: two shifts of one learner at once wait for each other
    # here (a row lock on PostgreSQL, the write lock on SQLite) instead of both passing the
    # count below.
    repo.touch_feeds(db, cohort.id)
    used = _shifts_used(db, cohort.id, person_id)
    spec = repo.cohort_spec(db, cohort)
    zone_name, before = learner_deadlines(db, cohort, person_id)
    reason = refusal(spec, zone_name, before, now, days, used)
    if reason is not None:
        raise CatchUpRefused(reason, options)
    db.add(CatchUpShiftRow(cohort_id=cohort.id, person_id=person_id, at=now, days=days))
    db.flush()
    after = store_learner_deadlines(db, cohort, person_id, now)
    old = {item.key: item.soft for item in before}
    moved = sum(1 for item in after if old.get(item.key) != item.soft)
    sync_reminders(db, slug, now)
    email = db.scalar(select(PersonRow.email).where(PersonRow.id == person_id)) or ""
    detail = {"email": email, "days": days, "shift": used + 1, "of": options.max_shifts}
    audit.record(db, cohort.id, now, actor, CATCH_UP_SHIFTED, [{**detail, "moved": moved}])
    return ShiftResult(days, moved, used + 1, options.max_shifts)


@dataclass(frozen=True, slots=True)
class ShiftedLearner:
    name: str
    email: str
    shifts: int
    days: int  # in all
    last: datetime


@dataclass(frozen=True, slots=True)
class CatchUpSummary:
    options: CatchUpOptions
    learners: list[ShiftedLearner]


def catch_up_summary(db: Session, slug: str) -> CatchUpSummary:
    """The cohort's ``[catch_up]`` options and who shifted their deadlines (most days first)."""
    cohort = repo.get_cohort(db, slug)
    query = (
        select(
            PersonRow.name,
            PersonRow.email,
            func.count(CatchUpShiftRow.id),
            func.sum(CatchUpShiftRow.days),
            func.max(CatchUpShiftRow.at),
        )
        .join(PersonRow, PersonRow.id == CatchUpShiftRow.person_id)
        .where(CatchUpShiftRow.cohort_id == cohort.id)
        .group_by(PersonRow.id, PersonRow.name, PersonRow.email)
    )
    learners = [
        ShiftedLearner(name, email, int(shifts), int(days), last)
        for name, email, shifts, days, last in db.execute(query)
    ]
    learners.sort(key=lambda x: (-x.days, -x.shifts, x.email))
    return CatchUpSummary(repo.catch_up_options(db, cohort.id), learners)
