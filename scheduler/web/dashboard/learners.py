"""The cohort's learners on the dashboard: find them, add one, change one's clock or
availability, withdraw one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request, Response

from scheduler.errors import InputError, NotFoundError
from scheduler.services.cohorts import cohort_basics
from scheduler.services.learners import add_learner, remove_learner, update_learner
from scheduler.services.views import find_learners
from scheduler.web.auth import AdminSession
from scheduler.web.dashboard.context import (
    Dashboard,
    DashboardDep,
    has_control_characters,
    input_problems,
)
from scheduler.web.dashboard.session import csrf_failure

router = APIRouter(include_in_schema=False)


def learners_page(
    dash: Dashboard,
    request: Request,
    session: AdminSession,
    slug: str,
    q: str,
    *,
    status: int = 200,
    errors: Sequence[str] = (),
    form: dict[str, str] | None = None,
    error_for: str = "",
) -> Response:
    """The learners page: those matching ``q``, with ``errors`` from a form that failed."""
    if has_control_characters(q):  # no name or email has one; PostgreSQL refuses NUL
        errors = [*errors, "search: contains control characters"]
        status = status if status >= 400 else 422
        q = ""
    try:
        with dash.cohort_transaction(slug) as db:
            cohort_row = cohort_basics(db, slug)
            found, total = find_learners(db, cohort_row.id, q)
            title, default = cohort_row.title, cohort_row.default_availability
    except NotFoundError as e:
        return dash.pages.error(request, 404, str(e), session)
    return dash.pages.render(
        request,
        "learners.html",
        status=status,
        session=session,
        slug=slug,
        title=title,
        default_availability=default,
        q=q,
        learners=found,
        total=total,
        errors=list(errors),
        form=form or {},
        error_for=error_for,
    )


def _found(slug: str, q: str) -> str:
    """The learners page searching for ``q``."""
    return f"/cohorts/{quote(slug)}/learners?" + urlencode({"q": q})


@router.get("/cohorts/{slug}/learners")
def learners(request: Request, dash: DashboardDep, slug: str, q: str = "") -> Response:
    session = dash.auth.page(request)
    return learners_page(dash, request, session, slug, q.strip())


@router.post("/cohorts/{slug}/learners")
def learner_add(
    request: Request,
    dash: DashboardDep,
    slug: str,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    zone: Annotated[str, Form()] = "",
    availability: Annotated[str, Form()] = "",
    locale: Annotated[str, Form()] = "",
) -> Response:
    session = dash.auth.page(request)
    if (bad := csrf_failure(dash, request, session, csrf)) is not None:
        return bad
    form = {
        "name": name,
        "email": email,
        "zone": zone,
        "availability": availability,
        "locale": locale,
    }
    try:
        with dash.cohort_transaction(slug) as db:
            add_learner(
                db,
                slug,
                name=name,
                email=email,
                zone=zone,
                availability=availability or None,
                locale=locale or None,
                now=dash.runtime.clock.now(),
                horizon=dash.runtime.horizon,
            )
    except InputError as e:
        errors = input_problems(e)
        return learners_page(
            dash, request, session, slug, "", status=422, errors=errors, form=form, error_for="add"
        )
    except NotFoundError as e:
        return dash.pages.error(request, 404, str(e), session)
    return dash.pages.redirect(
        _found(slug, email.strip()),
        "ok",
        f"Added {name.strip()} <{email.strip()}>. The worker places them in the "
        "best-fitting section with room and sends their invitations.",
    )


@router.post("/cohorts/{slug}/learners/update")
def learner_update(
    request: Request,
    dash: DashboardDep,
    slug: str,
    csrf: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    zone: Annotated[str, Form()] = "",
    availability: Annotated[str, Form()] = "",
    q: Annotated[str, Form()] = "",
) -> Response:
    session = dash.auth.page(request)
    if (bad := csrf_failure(dash, request, session, csrf)) is not None:
        return bad
    try:
        with dash.cohort_transaction(slug) as db:
            update_learner(
                db,
                slug,
                email,
                zone=zone,
                availability=availability,
                now=dash.runtime.clock.now(),
                horizon=dash.runtime.horizon,
            )
    except InputError as e:
        errors = input_problems(e)
        return learners_page(
            dash, request, session, slug, q, status=422, errors=errors, error_for=email
        )
    except NotFoundError as e:
        return learners_page(dash, request, session, slug, q, status=404, errors=[str(e)])
    return dash.pages.redirect(
        _found(slug, q),
        "ok",
        f"Updated {email}: deadlines and reminders follow the new clock now; "
        "sections change at the next publish.",
    )


@router.post("/cohorts/{slug}/learners/remove")
def learner_remove(
    request: Request,
    dash: DashboardDep,
    slug: str,
    csrf: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    q: Annotated[str, Form()] = "",
) -> Response:
    session = dash.auth.page(request)
    if (bad := csrf_failure(dash, request, session, csrf)) is not None:
        return bad
    runtime = dash.runtime
    try:
        with dash.cohort_transaction(slug) as db:
            remove_learner(db, slug, email, now=runtime.clock.now(), horizon=runtime.horizon)
    except NotFoundError as e:
        return learners_page(dash, request, session, slug, q, status=404, errors=[str(e)])
    return dash.pages.redirect(
        _found(slug, q),
        "ok",
        f"Withdrew {email}: their deadlines and pending reminders are gone.",
    )
