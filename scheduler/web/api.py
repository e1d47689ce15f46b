"""The JSON API's routes (mounted under ``/api``): the CLI's and the dashboard's reads and
actions, through the same services, for scripts. The request and response models are in
:mod:`scheduler.web.schemas`.

Every route needs the admin token (``Authorization: Bearer <token>`` from `cohort admin token`;
a dashboard session works too), checked before anything else, the body included: without it
every route answers 401, whatever was sent. Sections, weekly times ("slots") and course weeks
are numbered from 1, as in the CLI's flags. Instants are UTC (ISO 8601 with offset).

Errors are answered in one place (:mod:`scheduler.web.errors`): bad input -> 422 with every
problem at once; an unknown cohort, learner, series or occurrence -> 404; a plan that cannot be
made, or a write that raced another one -> 409. Mutations run in one transaction each, at
``runtime.clock.now()``, writing reminders within ``runtime.horizon``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.security import HTTPBearer
from sqlalchemy.orm import Session

from scheduler.domain.cohort_file import SLUG_RE
from scheduler.errors import ConfigError, InputError, NotFoundError, Problem
from scheduler.runtime import Runtime
from scheduler.services import learners as learner_service
from scheduler.services import people
from scheduler.services.changes import Change, apply_change, parse_wall_time, preview_change
from scheduler.services.outbox import outbox_status, worker_status
from scheduler.services.plans import diff_plan, plan_cohort
from scheduler.services.published import (
    cohort_facts,
    list_cohort_facts,
    published_series,
    require_cohort,
    upcoming_occurrences,
)
from scheduler.web.auth import AdminAuth
from scheduler.web.errors import authenticated_route, encodable_text
from scheduler.web.schemas import (
    ChangeIn,
    ChangePreviewOut,
    ChangeResultOut,
    CohortOut,
    CohortSummaryOut,
    LearnerIn,
    LearnerOut,
    LearnerPatch,
    MessageOut,
    OccurrenceOut,
    ProblemsOut,
    StatusOut,
    change_result_out,
    cohort_out,
    learner_out,
    occurrence_out,
    plan_out,
    preview_out,
    published_out,
    status_out,
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": MessageOut, "description": "no such cohort (or learner, series, occurrence)"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": MessageOut, "description": "no plan can be made, or a concurrent change won"}
}


def _change(body: ChangeIn) -> Change:
    """The service's value (0-based numbers); every problem with the body at once."""
    problems: list[Problem] = []
    if body.week is not None and body.from_week is not None:
        problems.append(
            Problem(
                "give week or from_week, not both",
                source="body",
                field="from_week",
                hint="week: that one occurrence; from_week: the series from that week on",
            )
        )
    to = None
    if body.to is not None:
        try:
            to = parse_wall_time(body.to)
        except ConfigError as e:
            problems.extend(
                Problem(p.message, source="body", field="to", value=p.value, hint=p.hint)
                for p in e.problems
            )
    if problems:
        raise InputError(problems, "the change cannot be read")
    return Change(
        body.series,
        body.section - 1,
        body.slot - 1,
        None if body.week is None else body.week - 1,
        None if body.from_week is None else body.from_week - 1,
        to,
    )


def _slug(slug: str) -> str:
    """``slug``, if it can name a cohort at all (else 404: never sent to the database as is)."""
    if not SLUG_RE.match(slug):
        raise NotFoundError(f"no cohort with slug {encodable_text(slug)!r}")
    return slug


def _instant(value: datetime | None, default: datetime) -> datetime:
    if value is None:
        return default
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(
            [
                Problem(
                    "has no UTC offset",
                    source="query",
                    field="from",
                    value=value.isoformat(),
                    hint="write an instant like 2027-03-01T09:00:00Z",
                )
            ],
            "the time cannot be read",
        )
    try:
        return value.astimezone(UTC)
    except OverflowError as e:
        raise InputError(
            [Problem("is out of range", source="query", field="from", value=value.isoformat())]
        ) from e


# --- routes ------------------------------------------------------------------------------------

Slug = Annotated[str, Path(description="the cohort's slug, e.g. ml-foundations-2027")]
LIMIT = Query(ge=1, le=1000, description="at most this many")


def api_router(runtime: Runtime, auth: AdminAuth) -> APIRouter:
    """The API's routes; ``app.include_router(api_router(runtime, auth), prefix="/api")``."""
    bearer = HTTPBearer(
        auto_error=False,  # documents the scheme; auth.api checks (and accepts a session too)
        bearerFormat="admin token",
        description="the admin token printed by `cohort admin token`",
    )
    router = APIRouter(
        route_class=authenticated_route(auth.api),  # every route: 401 before the body is read
        dependencies=[Depends(bearer)],
        responses={
            400: {"model": MessageOut, "description": "the body cannot be parsed"},
            401: {"model": MessageOut, "description": "no valid admin token"},
            422: {"model": ProblemsOut, "description": "every problem with the request"},
        },
        tags=["api"],
    )

    @contextmanager
    def cohort_transaction(slug: str) -> Iterator[Session]:
        """``runtime.transaction()`` once a cohort ``slug`` is known to be stored (else 404)."""
        with runtime.transaction() as db:
            require_cohort(db, _slug(slug))
            yield db

    @router.get("/cohorts", summary="List cohorts")
    def list_cohorts() -> list[CohortOut]:
        with runtime.transaction() as db:
            return [cohort_out(c) for c in list_cohort_facts(db)]

    @router.get(
        "/cohorts/{slug}",
        summary="A cohort's plan: sections, coverage, left-out learners, published series",
        responses={**NOT_FOUND, **CONFLICT},
    )
    def cohort_summary(slug: Slug) -> CohortSummaryOut:
        now = runtime.clock.now()
        with runtime.transaction() as db:
            cohort = cohort_facts(db, _slug(slug))
            _, learners, plan = plan_cohort(db, slug)
            diff = diff_plan(db, slug, plan, now)
            return CohortSummaryOut(
                cohort=cohort_out(cohort),
                plan=plan_out(plan, len(learners), diff),
                published=[published_out(s) for s in published_series(db, slug)],
            )

    @router.get(
        "/cohorts/{slug}/occurrences",
        summary="Upcoming occurrences (cancelled ones included), in time order",
        responses=NOT_FOUND,
    )
    def occurrences(
        slug: Slug,
        since: Annotated[
            datetime | None,
            Query(alias="from", description="from this instant on (default: now)"),
        ] = None,
        limit: Annotated[int, LIMIT] = 100,
    ) -> list[OccurrenceOut]:
        start = _instant(since, runtime.clock.now())
        with runtime.transaction() as db:
            found = upcoming_occurrences(db, _slug(slug), start, limit)
        return [occurrence_out(o) for o in found]

    @router.get("/cohorts/{slug}/learners", summary="The roster", responses=NOT_FOUND)
    def learners(
        slug: Slug,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> list[LearnerOut]:
        with cohort_transaction(slug) as db:
            found = people.list_learners(db, slug)
        return [learner_out(x) for x in found[offset : offset + limit]]

    @router.post(
        "/cohorts/{slug}/learners",
        status_code=201,
        summary="Add a learner (the worker places them in a section with room)",
        responses=NOT_FOUND,
    )
    def add_learner(slug: Slug, body: LearnerIn) -> LearnerOut:
        now = runtime.clock.now()
        with cohort_transaction(slug) as db:
            learner_service.add_learner(
                db,
                slug,
                name=body.name,
                email=body.email,
                zone=body.zone,
                availability=body.availability,
                locale=body.locale,
                now=now,
                horizon=runtime.horizon,
            )
            return learner_out(learner_service.get_learner(db, slug, body.email))

    @router.patch(
        "/cohorts/{slug}/learners/{email}",
        summary="Change a learner's zone or availability",
        responses=NOT_FOUND,
    )
    def update_learner(slug: Slug, email: str, body: LearnerPatch) -> LearnerOut:
        now = runtime.clock.now()
        with cohort_transaction(slug) as db:
            learner_service.update_learner(
                db,
                slug,
                email,
                zone=body.zone,
                availability=body.availability,
                now=now,
                horizon=runtime.horizon,
            )
            return learner_out(learner_service.get_learner(db, slug, email))

    @router.delete(
        "/cohorts/{slug}/learners/{email}",
        summary="Withdraw a learner (kept as withdrawn; their pending mail is cancelled)",
        responses=NOT_FOUND,
    )
    def remove_learner(slug: Slug, email: str) -> LearnerOut:
        now = runtime.clock.now()
        with cohort_transaction(slug) as db:
            learner_service.remove_learner(db, slug, email, now=now, horizon=runtime.horizon)
            return learner_out(learner_service.get_learner(db, slug, email))

    @router.post(
        "/cohorts/{slug}/changes/preview",
        summary="What moving or cancelling would do (changes nothing)",
        responses=NOT_FOUND,
    )
    def preview(slug: Slug, body: ChangeIn) -> ChangePreviewOut:
        change = _change(body)
        now = runtime.clock.now()
        with cohort_transaction(slug) as db:
            return preview_out(preview_change(db, slug, change, now))

    @router.post(
        "/cohorts/{slug}/changes",
        summary="Move or cancel occurrences; queues updated invitations",
        responses={**NOT_FOUND, **CONFLICT},
    )
    def apply(slug: Slug, body: ChangeIn) -> ChangeResultOut:
        change = _change(body)
        now = runtime.clock.now()
        with cohort_transaction(slug) as db:
            result = apply_change(db, slug, change, now, runtime.horizon, actor="api")
            return change_result_out(result)

    @router.get("/status", summary="The outbox and the workers")
    def status() -> StatusOut:
        now = runtime.clock.now()
        with runtime.transaction() as db:
            box = outbox_status(db, now)
            workers = worker_status(db, now)
        return status_out(box, workers)

    return router
