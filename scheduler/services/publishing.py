"""Publishing a plan: store it (a new version only when it changes anything), then bring every
learner's deadlines, invitations and reminders up to date (:mod:`scheduler.services.cascade`),
recorded in the audit log. `cohort plan --publish` and the re-plans (`cohort replan`, the
worker) publish through here."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from scheduler.persistence import repo
from scheduler.planning import Plan
from scheduler.progress import SILENT, Progress
from scheduler.services import audit
from scheduler.services.cascade import bring_up_to_date
from scheduler.services.deadlines import DeadlineSummary
from scheduler.services.plans import (
    PlanDiff,
    PublishScope,
    diff_counts,
    diff_plan,
    publish_plan,
)
from scheduler.services.reminders import DEFAULT_HORIZON


def publish(
    db: Session,
    slug: str,
    plan: Plan,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
    scope: PublishScope | None = None,
    actor: str = "cli",
    progress: Progress = SILENT,
) -> tuple[int | None, PlanDiff, DeadlineSummary]:
    """Store the plan (a new version only when it changes anything; with ``scope``, only part
    of it: see :class:`PublishScope`), then bring what follows up to date
    (:func:`~scheduler.services.cascade.bring_up_to_date`: every learner's deadlines, since rules
    or roster may have changed, the invitations and the reminders due within ``horizon``), in
    the caller's transaction. A whole-plan publish is recorded in the audit log as ``actor``'s
    (a scoped one is recorded by its caller, who knows why).

    Returns the new version (None when the plan was already published), the diff, and the
    deadline summary."""
    progress.step("comparing with the published plan")
    diff = diff_plan(db, slug, plan, now, scope)
    version = None
    if diff.changed or diff.published_version is None:
        progress.step("storing the plan")
        version, diff = publish_plan(db, slug, plan, now, scope)
        if scope is None:
            audit.record(
                db,
                repo.get_cohort(db, slug).id,
                now,
                actor,
                audit.PLAN_PUBLISHED,
                [{"version": version, **diff_counts(diff)}],
            )
    done = bring_up_to_date(db, slug, now, horizon=horizon, progress=progress)
    repo.refresh_statistics(db, done.written)
    assert done.deadlines is not None  # the cohort has a published plan now
    return version, diff, done.deadlines
