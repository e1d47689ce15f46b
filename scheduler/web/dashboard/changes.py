"""Changes to a published plan from the dashboard: move or cancel a series' meeting for one
week, from a week on, or for every week — previewed first (no side effects), then applied
through the CLI's service (:func:`scheduler.services.changes.apply_change`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response

from scheduler.domain.cohort_file import KEY_RE
from scheduler.errors import InputError, NotFoundError, Problem
from scheduler.services.changes import (
    Change,
    ChangePreview,
    apply_change,
    parse_wall_time,
    preview_change,
)
from scheduler.services.cohorts import CohortBasics, cohort_basics
from scheduler.services.views import series_choices
from scheduler.web.auth import AdminSession
from scheduler.web.dashboard.context import (
    Dashboard,
    DashboardDep,
    input_problems,
    whole_number,
)
from scheduler.web.dashboard.session import csrf_failure

log = logging.getLogger("scheduler.web.dashboard")  # the name its log lines have always had

router = APIRouter(include_in_schema=False)

MAX_SECTIONS, MAX_SLOTS = 1000, 100  # per series; a form's numbers beyond are refused


def _read_week(scope: str, week: str, weeks: int, problems: list[Problem]) -> int | None:
    """The 0-based week the change starts at (None for every week); adds what is wrong."""
    if scope in ("week", "from"):
        week_number = whole_number(week, 1, weeks)
        if week_number is None:
            problems.append(
                Problem(
                    f"must be a course week from 1 to {weeks}", field="week", value=week or None
                )
            )
            return None
        return week_number - 1
    if scope != "all":
        problems.append(Problem("choose one week, from a week on, or every week", field="scope"))
    return None


def read_change(
    overview_weeks: int, target: str, scope: str, week: str, to: str, action: str
) -> Change:
    """The change a form describes; InputError naming every field that is wrong."""
    problems: list[Problem] = []
    series, _, numbers = target.partition(":")
    section_text, _, slot_text = numbers.partition(":")
    # 0-based section and slot, bounded as the API's (1-based) ChangeIn is
    section = whole_number(section_text, 0, MAX_SECTIONS - 1)
    slot = whole_number(slot_text, 0, MAX_SLOTS - 1)
    if not KEY_RE.fullmatch(series) or section is None or slot is None:
        problems.append(Problem("choose a series", field="series", value=target or None))
    week_number = _read_week(scope, week, overview_weeks, problems)
    new_time = None
    if action == "move":
        try:
            new_time = parse_wall_time(to)
        except InputError as e:
            problems.extend(
                Problem(p.message, field="new time", value=p.value, hint=p.hint) for p in e.problems
            )
    elif action != "cancel":
        problems.append(Problem("choose move or cancel", field="action"))
    if problems or section is None or slot is None:  # (the Nones are problems already)
        raise InputError(problems, "the change cannot be read")
    return Change(
        series,
        section,
        slot,
        week_number if scope == "week" else None,
        week_number if scope == "from" else None,
        new_time,
    )


def _change_page(
    dash: Dashboard,
    request: Request,
    session: AdminSession,
    slug: str,
    cohort: CohortBasics,
    series: Sequence[tuple[str, str]],
    form: dict[str, str],
    *,
    status: int = 200,
    errors: Sequence[str] = (),
    preview: ChangePreview | None = None,
) -> Response:
    return dash.pages.render(
        request,
        "change.html",
        status=status,
        session=session,
        slug=slug,
        title=cohort.title,
        weeks=cohort.weeks,
        series=series,
        form=form,
        errors=list(errors),
        preview=preview,
        home=cohort.home_zone,
        locale=cohort.locale,
    )


@router.get("/cohorts/{slug}/change")
def change_preview(
    request: Request,
    dash: DashboardDep,
    slug: str,
    target: str = "",
    scope: str = "week",
    week: str = "",
    to: str = "",
    action: str = "move",
) -> Response:
    session = dash.auth.page(request)
    now = dash.runtime.clock.now()
    form = {"target": target, "scope": scope, "week": week, "to": to, "action": action}
    try:
        with dash.cohort_transaction(slug) as db:
            cohort = cohort_basics(db, slug)
            series = series_choices(db, cohort.id)
            try:
                change = read_change(cohort.weeks, target, scope, week, to, action)
                preview = preview_change(db, slug, change, now)
            except (InputError, NotFoundError) as e:
                errors = input_problems(e) if isinstance(e, InputError) else [str(e)]
                status = 422 if isinstance(e, InputError) else 404
                return _change_page(
                    dash, request, session, slug, cohort, series, form, status=status, errors=errors
                )
    except NotFoundError as e:
        return dash.pages.error(request, 404, str(e), session)
    return _change_page(dash, request, session, slug, cohort, series, form, preview=preview)


@router.post("/cohorts/{slug}/change")
def change_apply(
    request: Request,
    dash: DashboardDep,
    slug: str,
    csrf: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "",
    scope: Annotated[str, Form()] = "",
    week: Annotated[str, Form()] = "",
    to: Annotated[str, Form()] = "",
    action: Annotated[str, Form()] = "",
) -> Response:
    session = dash.auth.page(request)
    if (bad := csrf_failure(dash, request, session, csrf)) is not None:
        return bad
    runtime, pages = dash.runtime, dash.pages
    now = runtime.clock.now()
    page = f"/cohorts/{quote(slug)}"
    try:
        with dash.cohort_transaction(slug) as db:
            weeks = cohort_basics(db, slug).weeks
            change = read_change(weeks, target, scope, week, to, action)
            result = apply_change(db, slug, change, now, runtime.horizon, actor="dashboard")
    except InputError as e:
        return pages.redirect(page, "error", "Nothing changed: " + "; ".join(input_problems(e)))
    except NotFoundError as e:
        return pages.redirect(page, "error", f"Nothing changed: {e}")
    invites = result.invites
    log.info("dashboard: %s in %s, version %d", result.preview.description, slug, result.version)
    return pages.redirect(
        page,
        "ok",
        f"Done: {result.preview.description}. Plan version {result.version}; "
        f"{invites.updates} update(s) and {invites.cancellations} cancellation(s) queued; "
        f"deadlines recomputed ({result.deadlines.changed_learners} learner(s) changed).",
    )
