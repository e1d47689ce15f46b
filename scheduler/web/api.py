"""The JSON API (mounted under ``/api``): the CLI's and the dashboard's reads and actions, through
the same services, for scripts.

Every route needs the admin token (``Authorization: Bearer <token>`` from `cohort admin token`;
a dashboard session works too), checked before anything else, the body included: without it
every route answers 401, whatever was sent. Sections, weekly times ("slots") and course weeks
are numbered from 1, as in the CLI's flags. Instants are UTC (ISO 8601 with offset).

Errors, in one place (:class:`_ApiRoute`): bad input -> 422 ``{"detail": [problem, ...]}`` with
every problem at once, the same shape whether the request did not match the schema or a service
refused it; an unknown cohort, learner, series or occurrence -> 404; a plan that cannot be made,
or a write that raced another one -> 409; both ``{"detail": "..."}``. Mutations run in one
transaction each, at ``runtime.clock.now()``, writing reminders within ``runtime.horizon``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from scheduler.domain.cohort import SeriesKind
from scheduler.domain.cohort_file import KEY_RE, SLUG_RE
from scheduler.domain.status import EnrollmentStatus, OccurrenceStatus, SeriesStatus
from scheduler.errors import ConfigError, InputError, NotFoundError, PlanningError, Problem
from scheduler.planning.model import LeftOutReason, Plan
from scheduler.runtime import Runtime
from scheduler.services import learners as learner_service
from scheduler.services.changes import (
    Change,
    ChangePreview,
    apply_change,
    parse_wall_time,
    preview_change,
)
from scheduler.services.outbox import outbox_status, worker_status
from scheduler.services.plans import PlanDiff, diff_plan, plan_cohort
from scheduler.services.published import (
    CohortFacts,
    PublishedOccurrence,
    PublishedSeries,
    cohort_facts,
    list_cohort_facts,
    published_series,
    require_cohort,
    upcoming_occurrences,
)
from scheduler.timeutil import Weekday
from scheduler.web.auth import AdminAuth

# --- schemas -----------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is reported, not ignored


class ProblemOut(_Out):
    """One thing wrong with the request (``source``: body, query, path, or empty)."""

    message: str
    source: str = ""
    line: int | None = None
    field: str | None = None
    value: str | None = None
    hint: str | None = None


class ProblemsOut(_Out):
    detail: list[ProblemOut]


class MessageOut(_Out):
    detail: str


class CohortOut(_Out):
    slug: str
    title: str
    start_date: date
    weeks: int
    home_zone: str
    locale: str
    learners: int = Field(description="active learners")
    facilitators: int = Field(description="active facilitators")
    published_version: int | None = Field(description="latest plan version; null: unpublished")


class SectionOut(_Out):
    series: str
    kind: SeriesKind
    section: int = Field(ge=1)
    times: list[str] = Field(description="weekly times in the anchor zone, e.g. 'Wed 18:30'")
    alternate: list[str] = Field(description="odd weeks' times of a rotating series, else []")
    anchor_zone: str
    duration_minutes: int
    facilitator: str | None
    size: int = Field(description="learners in this section")
    fitted: int = Field(description="learners whose every occurrence fits their availability")
    coverage_by_week: list[float | None] = Field(
        description="per week, the share of the section's learners it fits (null: no session)"
    )


class LeftOutOut(_Out):
    learner: str
    series: str
    reason: LeftOutReason
    week: int | None = Field(description="the first week that no longer fits (DST), if any")
    detail: str


class PlanDiffOut(_Out):
    """What publishing the fresh plan would change, in occurrences."""

    published_version: int | None
    added: int
    moved: int
    cancelled: int
    unchanged: int
    frozen: int = Field(description="already started: never changed")


class PublishedSeriesOut(_Out):
    series: str
    title: str
    kind: SeriesKind
    section: int = Field(ge=1)
    slot: int = Field(ge=1, description="which weekly time of the section")
    weekly_time: str = Field(description="weekday and time in anchor_zone, e.g. 'Wed 18:30'")
    anchor_zone: str
    duration_minutes: int
    facilitator: str | None
    status: Literal[SeriesStatus.ACTIVE, SeriesStatus.CANCELLED]
    members: int | None = Field(
        description="active learners in the section; null for co-working (open to everyone)"
    )


class PlanOut(_Out):
    anchor_zone: str
    learners: int
    sections: list[SectionOut]
    left_out: list[LeftOutOut]
    warnings: list[str] = Field(description="DST warnings in words")
    notes: list[str]
    diff: PlanDiffOut


class CohortSummaryOut(_Out):
    """``plan``: planning the current roster now (what `cohort plan` shows); ``published``: the
    series stored and in calendars; ``plan.diff``: what publishing would change."""

    cohort: CohortOut
    plan: PlanOut
    published: list[PublishedSeriesOut]


class OccurrenceOut(_Out):
    uid: str = Field(description="the calendar UID")
    series: str
    title: str
    kind: SeriesKind
    section: int = Field(ge=1)
    slot: int = Field(ge=1)
    week: int = Field(ge=1)
    start: datetime
    end: datetime
    status: Literal[OccurrenceStatus.SCHEDULED, OccurrenceStatus.CANCELLED]
    sequence: int = Field(description="the iCalendar SEQUENCE: bumped on every change")
    facilitator: str | None
    expected_attendance: int = Field(
        description="the section's active learners; co-working: active learners whose "
        "availability covers the block"
    )


class LearnerOut(_Out):
    email: str
    name: str
    zone: str
    availability: str = Field(description="weekly windows on the learner's own clock")
    availability_is_default: bool
    locale: str
    locale_is_default: bool
    status: Literal[EnrollmentStatus.ACTIVE, EnrollmentStatus.WITHDRAWN]
    enrolled_at: datetime
    left_at: datetime | None


class LearnerIn(_In):
    name: str
    email: str
    zone: str = Field(description="an IANA zone ('Europe/Berlin') or a one-zone country ('JP')")
    availability: str | None = Field(
        None, description="e.g. 'Mon-Fri 18:00-22:00; Sat 09:00-12:00'; null: the cohort's"
    )
    locale: str | None = Field(None, description="e.g. 'en_GB'; null: the cohort's")


class LearnerPatch(_In):
    zone: str | None = Field(None, description="null: unchanged")
    availability: str | None = Field(
        None, description="null: unchanged; empty: the cohort's default"
    )


class ChangeIn(_In):
    """Move or cancel: ``week`` alone changes that week's occurrence, ``from_week`` the series
    from that week on, neither every future occurrence. ``to`` is the new weekday and time in
    the series' zone ("Wed 18:30"); null cancels."""

    series: str = Field(pattern=KEY_RE.pattern, description="the series key, e.g. 'class'")
    section: int = Field(1, ge=1, le=1000)
    slot: int = Field(1, ge=1, le=100, description="which weekly time of the section")
    week: int | None = Field(None, ge=1, le=1000)
    from_week: int | None = Field(None, ge=1, le=1000)
    to: str | None = Field(None, max_length=40, description="e.g. 'Wed 18:30'; null: cancel")


class MovedOut(_Out):
    week: int = Field(ge=1)
    uid: str
    old_start: datetime
    new_start: datetime | None = Field(description="null: cancelled")


class ChangePreviewOut(_Out):
    description: str
    occurrences: list[MovedOut]
    people: int = Field(description="learners and the facilitator who get an email")
    emails: int
    learner_occurrences: int
    fits_before: int = Field(description="learner-occurrences inside availability, before")
    fits_after: int
    sample: list[str] = Field(description="a few of the affected people's emails")


class DeadlinesOut(_Out):
    learners: int
    groups: int
    new_groups: int
    items: int
    changed_learners: int


class InvitesOut(_Out):
    invites: int
    updates: int
    cancellations: int


class ChangeResultOut(_Out):
    version: int = Field(description="the plan version this change recorded")
    preview: ChangePreviewOut
    deadlines: DeadlinesOut
    invites: InvitesOut


class OutboxCountsOut(_Out):
    pending: int
    sent: int
    failed: int
    skipped: int
    cancelled: int


class WorkerOut(_Out):
    id: str
    started_at: datetime
    last_tick_age_s: float | None
    heartbeat_age_s: float
    stopped: bool
    sent: int


class FailureOut(_Out):
    kind: str
    to: str
    error: str


class StatusOut(_Out):
    notifications: OutboxCountsOut
    due: int = Field(description="pending and due now")
    workers: list[WorkerOut]
    recent_failures: list[FailureOut]


# --- errors ------------------------------------------------------------------------------------


def _text(value: str) -> str:
    """Text that can be encoded (no unpaired surrogates from a JSON ``\\ud800``)."""
    return value.encode("utf-8", "replace").decode("utf-8")


def _problem_json(problems: Iterable[Problem]) -> JSONResponse:
    detail = [
        ProblemOut(
            message=_text(p.message),
            source=_text(p.source),
            line=p.line,
            field=None if p.field is None else _text(p.field),
            value=None if p.value is None else _text(p.value[:200]),
            hint=None if p.hint is None else _text(p.hint),
        ).model_dump()
        for p in problems
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def _message_json(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": _text(message)}, status_code=status)


def _schema_problems(error: RequestValidationError) -> list[Problem]:
    problems = []
    for item in error.errors():
        loc = [str(part) for part in item.get("loc", ())]
        given = item.get("input")
        scalar = isinstance(given, str | int | float | bool) and given is not None
        problems.append(
            Problem(
                str(item.get("msg", "is not valid")),
                source=loc[0] if loc else "",
                field=".".join(loc[1:]) or None,
                value=str(given) if scalar else None,
            )
        )
    return problems


class _ApiRoute(APIRoute):
    """Maps the product's errors (and request validation) to HTTP answers, for this router."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as e:
                return _problem_json(_schema_problems(e))
            except InputError as e:
                return _problem_json(e.problems)
            except NotFoundError as e:
                return _message_json(404, str(e))
            except PlanningError as e:
                return _message_json(409, f"no plan can be made: {e}")
            except IntegrityError:
                return _message_json(409, "another change got there first; try again")

        return answer


def _authenticated_route(authenticate: Callable[[Request], object]) -> type[APIRoute]:
    """:class:`_ApiRoute` that calls ``authenticate`` (``AdminAuth.api``: raises 401) before
    anything else: FastAPI reads and parses the body before it runs a route's dependencies, so
    without this a request without a token learns how its body is parsed (422) instead of 401."""

    class _AuthenticatedRoute(_ApiRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def answer(request: Request) -> Response:
                await run_in_threadpool(authenticate, request)  # a database lookup
                return await handler(request)

            return answer

    return _AuthenticatedRoute


NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": MessageOut, "description": "no such cohort (or learner, series, occurrence)"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": MessageOut, "description": "no plan can be made, or a concurrent change won"}
}


# --- mapping: service values -> API schemas, in one place --------------------------------------


def _cohort_out(cohort: CohortFacts) -> CohortOut:
    return CohortOut(
        slug=cohort.slug,
        title=cohort.title,
        start_date=cohort.start_date,
        weeks=cohort.weeks,
        home_zone=cohort.home_zone,
        locale=cohort.locale,
        learners=cohort.learners,
        facilitators=cohort.facilitators,
        published_version=cohort.published_version,
    )


def _plan_out(plan: Plan, learners: int, diff: PlanDiff) -> PlanOut:
    return PlanOut(
        anchor_zone=plan.anchor_zone,
        learners=learners,
        sections=[
            SectionOut(
                series=s.series,
                kind=s.kind,
                section=s.section + 1,
                times=[t.label() for t in s.times],
                alternate=[t.label() for t in s.alternate],
                anchor_zone=s.anchor_zone,
                duration_minutes=int(s.duration.total_seconds() // 60),
                facilitator=s.facilitator,
                size=len(s.learners),
                fitted=s.fitted,
                coverage_by_week=list(s.coverage_by_week),
            )
            for s in plan.sections
        ],
        left_out=[
            LeftOutOut(
                learner=x.learner,
                series=x.series,
                reason=x.reason,
                week=None if x.week is None else x.week + 1,
                detail=x.detail,
            )
            for x in plan.left_out
        ],
        warnings=[w.text for w in plan.warnings],
        notes=list(plan.notes),
        diff=PlanDiffOut(
            published_version=diff.published_version,
            added=len(diff.added),
            moved=len(diff.moved),
            cancelled=len(diff.cancelled),
            unchanged=diff.unchanged,
            frozen=diff.frozen,
        ),
    )


def _label(weekday: int, minute: int) -> str:
    return f"{Weekday(weekday).label} {minute // 60:02d}:{minute % 60:02d}"


def _published_out(s: PublishedSeries) -> PublishedSeriesOut:
    return PublishedSeriesOut(
        series=s.series,
        title=s.title,
        kind=s.kind,
        section=s.section + 1,
        slot=s.slot + 1,
        weekly_time=_label(s.weekday, s.wall_minute),
        anchor_zone=s.anchor_zone,
        duration_minutes=s.duration_minutes,
        facilitator=s.facilitator,
        status=SeriesStatus.CANCELLED if s.cancelled else SeriesStatus.ACTIVE,
        members=s.members,
    )


def _occurrence_out(o: PublishedOccurrence) -> OccurrenceOut:
    return OccurrenceOut(
        uid=o.uid,
        series=o.series,
        title=o.title,
        kind=o.kind,
        section=o.section + 1,
        slot=o.slot + 1,
        week=o.week + 1,
        start=o.start,
        end=o.end,
        status=OccurrenceStatus.CANCELLED if o.cancelled else OccurrenceStatus.SCHEDULED,
        sequence=o.sequence,
        facilitator=o.facilitator,
        expected_attendance=o.expected_attendance,
    )


def _learner_out(learner: learner_service.Learner) -> LearnerOut:
    return LearnerOut(
        email=learner.email,
        name=learner.name,
        zone=learner.zone,
        availability=learner.availability,
        availability_is_default=learner.availability_is_default,
        locale=learner.locale,
        locale_is_default=learner.locale_is_default,
        status=(
            EnrollmentStatus.WITHDRAWN
            if learner.status == EnrollmentStatus.WITHDRAWN
            else EnrollmentStatus.ACTIVE
        ),
        enrolled_at=learner.enrolled_at,
        left_at=learner.left_at,
    )


def _preview_out(preview: ChangePreview) -> ChangePreviewOut:
    return ChangePreviewOut(
        description=preview.description,
        occurrences=[
            MovedOut(week=m.week + 1, uid=m.uid, old_start=m.old_start, new_start=m.new_start)
            for m in preview.occurrences
        ],
        people=preview.people,
        emails=preview.emails,
        learner_occurrences=preview.learner_occurrences,
        fits_before=preview.fits_before,
        fits_after=preview.fits_after,
        sample=list(preview.sample),
    )


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
        raise NotFoundError(f"no cohort with slug {_text(slug)!r}")
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
        route_class=_authenticated_route(auth.api),  # every route: 401 before the body is read
        dependencies=[Depends(bearer)],
        responses={
            400: {"model": MessageOut, "description": "the body cannot be parsed"},
            401: {"model": MessageOut, "description": "no valid admin token"},
            422: {"model": ProblemsOut, "description": "every problem with the request"},
        },
        tags=["api"],
    )

    @router.get("/cohorts", summary="List cohorts")
    def list_cohorts() -> list[CohortOut]:
        with runtime.transaction() as db:
            return [_cohort_out(c) for c in list_cohort_facts(db)]

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
                cohort=_cohort_out(cohort),
                plan=_plan_out(plan, len(learners), diff),
                published=[_published_out(s) for s in published_series(db, slug)],
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
        return [_occurrence_out(o) for o in found]

    @router.get("/cohorts/{slug}/learners", summary="The roster", responses=NOT_FOUND)
    def learners(
        slug: Slug,
        limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> list[LearnerOut]:
        with runtime.transaction() as db:
            require_cohort(db, _slug(slug))
            found = learner_service.list_learners(db, slug)
        return [_learner_out(x) for x in found[offset : offset + limit]]

    @router.post(
        "/cohorts/{slug}/learners",
        status_code=201,
        summary="Add a learner (the worker places them in a section with room)",
        responses=NOT_FOUND,
    )
    def add_learner(slug: Slug, body: LearnerIn) -> LearnerOut:
        now = runtime.clock.now()
        with runtime.transaction() as db:
            require_cohort(db, _slug(slug))
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
            return _learner_out(learner_service.get_learner(db, slug, body.email))

    @router.patch(
        "/cohorts/{slug}/learners/{email}",
        summary="Change a learner's zone or availability",
        responses=NOT_FOUND,
    )
    def update_learner(slug: Slug, email: str, body: LearnerPatch) -> LearnerOut:
        now = runtime.clock.now()
        with runtime.transaction() as db:
            require_cohort(db, _slug(slug))
            learner_service.update_learner(
                db,
                slug,
                email,
                zone=body.zone,
                availability=body.availability,
                now=now,
                horizon=runtime.horizon,
            )
            return _learner_out(learner_service.get_learner(db, slug, email))

    @router.delete(
        "/cohorts/{slug}/learners/{email}",
        summary="Withdraw a learner (kept as withdrawn; their pending mail is cancelled)",
        responses=NOT_FOUND,
    )
    def remove_learner(slug: Slug, email: str) -> LearnerOut:
        now = runtime.clock.now()
        with runtime.transaction() as db:
            require_cohort(db, _slug(slug))
            learner_service.remove_learner(db, slug, email, now=now, horizon=runtime.horizon)
            return _learner_out(learner_service.get_learner(db, slug, email))

    @router.post(
        "/cohorts/{slug}/changes/preview",
        summary="What moving or cancelling would do (changes nothing)",
        responses=NOT_FOUND,
    )
    def preview(slug: Slug, body: ChangeIn) -> ChangePreviewOut:
        change = _change(body)
        now = runtime.clock.now()
        with runtime.transaction() as db:
            require_cohort(db, _slug(slug))
            return _preview_out(preview_change(db, slug, change, now))

    @router.post(
        "/cohorts/{slug}/changes",
        summary="Move or cancel occurrences; queues updated invitations",
        responses={**NOT_FOUND, **CONFLICT},
    )
    def apply(slug: Slug, body: ChangeIn) -> ChangeResultOut:
        change = _change(body)
        now = runtime.clock.now()
        with runtime.transaction() as db:
            require_cohort(db, _slug(slug))
            result = apply_change(db, slug, change, now, runtime.horizon, actor="api")
            return ChangeResultOut(
                version=result.version,
                preview=_preview_out(result.preview),
                deadlines=DeadlinesOut(
                    learners=result.deadlines.learners,
                    groups=result.deadlines.groups,
                    new_groups=result.deadlines.new_groups,
                    items=result.deadlines.items,
                    changed_learners=result.deadlines.changed_learners,
                ),
                invites=InvitesOut(
                    invites=result.invites.invites,
                    updates=result.invites.updates,
                    cancellations=result.invites.cancellations,
                ),
            )

    @router.get("/status", summary="The outbox and the workers")
    def status() -> StatusOut:
        now = runtime.clock.now()
        with runtime.transaction() as db:
            box = outbox_status(db, now)
            workers = worker_status(db, now)
        return StatusOut(
            notifications=OutboxCountsOut(**{k: box.counts.get(k, 0) for k in _OUTBOX_FIELDS}),
            due=box.due,
            workers=[
                WorkerOut(
                    id=w.id,
                    started_at=w.started_at,
                    last_tick_age_s=w.last_tick_age,
                    heartbeat_age_s=w.heartbeat_age,
                    stopped=w.stopped,
                    sent=w.sent,
                )
                for w in workers
            ],
            recent_failures=[
                FailureOut(kind=kind, to=to, error=error) for kind, to, error in box.failed_recent
            ],
        )

    return router


_OUTBOX_FIELDS: Sequence[str] = tuple(OutboxCountsOut.model_fields)
