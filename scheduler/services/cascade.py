"""What follows from a change to a cohort, in one place: every use case that changes a published
plan or its people (publish, reschedule and cancel, one learner at a time, a roster import, the
worker's late-joiner placement) ends with :func:`bring_up_to_date`, in its own transaction.

The order, and why:

1. **Feeds.** The cohort's feeds version is bumped (the web's feed cache keys on it). Its place
   in the transaction does not matter to readers, who see it at commit with everything else, but
   the update takes the cohort's row, and taking it before the long steps below is what lets a
   worker on PostgreSQL skip the cohort (``FOR UPDATE SKIP LOCKED``) instead of waiting on, and
   deadlocking over, the learner rows they rewrite. (Storing deadlines bumps it again.)
   A cohort without a published plan stops here: nothing else follows from it yet.
2. **Deadlines**, recomputed for every active learner from the published plan and the roster.
3. **Invitations**, by diff: one per person and series they attend, an update when the series
   changed, a cancellation when it went or they left it.
4. **Reminders** within the horizon, re-timed: they read the deadlines of step 2 (and the
   sections and meetings), so they come after it; a moved target's reminder is replaced.

Each step is idempotent, so calling this twice queues nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from scheduler.persistence import repo
from scheduler.progress import SILENT, Progress
from scheduler.services.deadlines import DeadlineSummary, publish_deadlines
from scheduler.services.invites import InviteCounts, queue_invites
from scheduler.services.plans import published_version
from scheduler.services.reminders import DEFAULT_HORIZON, ReminderCounts, sync_reminders


@dataclass(frozen=True, slots=True)
class CascadeResult:
    """What :func:`bring_up_to_date` did; None for a step that did not run (no published plan,
    or not asked for)."""

    deadlines: DeadlineSummary | None = None
    invites: InviteCounts | None = None
    reminders: ReminderCounts | None = None

    @property
    def written(self) -> int:
        """Outbox rows queued plus learners whose deadlines changed (a bulk write of many of
        them is worth refreshing PostgreSQL's statistics for)."""
        total = 0
        if self.deadlines is not None:
            total += self.deadlines.changed_learners
        if self.invites is not None:
            total += self.invites.invites + self.invites.updates + self.invites.cancellations
        if self.reminders is not None:
            total += self.reminders.queued
        return total


def bring_up_to_date(
    db: Session,
    slug: str,
    now: datetime,
    *,
    horizon: timedelta = DEFAULT_HORIZON,
    deadlines: bool = True,
    invites: bool = True,
    progress: Progress = SILENT,
) -> CascadeResult:
    """Bring the cohort's feeds, deadlines, invitations and reminders (due before
    ``now + horizon``) up to date with what the caller just wrote, in the caller's transaction,
    in the order the module docstring gives.

    ``deadlines=False``: the change cannot move anyone's deadlines (a roster import that added
    or updated nobody). ``invites=False``: it cannot change who attends which series (nobody
    joined or left a section)."""
    cohort = repo.get_cohort(db, slug)
    repo.touch_feeds(db, cohort.id)
    if published_version(db, cohort.id) is None:
        return CascadeResult()
    summary = None
    if deadlines:
        progress.step("recomputing deadlines")
        summary = publish_deadlines(db, slug, now)
    counts = None
    if invites:
        learners = "" if summary is None else f" for {summary.learners:,} learners"
        progress.step(f"queueing invitations{learners}")
        counts = queue_invites(db, slug, now)
    progress.step("queueing welcome emails and reminders")
    reminders = sync_reminders(db, slug, now, horizon)
    return CascadeResult(summary, counts, reminders)
