"""The cohort pages: the list of cohorts, and a cohort's page (heatmap, fairness of rotated
series, coverage, the learners left out, next meetings, delivery, recent activity)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from scheduler.errors import InputError, NotFoundError, Problem
from scheduler.runtime import Runtime
from scheduler.services.audit import audit_log, describe
from scheduler.services.catch_up import catch_up_summary
from scheduler.services.cohorts import cohort_basics, orchestration_options
from scheduler.services.preferences import opt_out_counts
from scheduler.services.published import fairness_ledgers
from scheduler.services.views import LeftOutFilter, cohort_cards, cohort_overview
from scheduler.web.dashboard.context import DashboardDep, input_problems, whole_number

router = APIRouter(include_in_schema=False)

ACTIVITY_SHOWN = 15  # newest audit log entries on the cohort page


def second_host_threshold(runtime: Runtime) -> int:
    """Sessions expecting more learners than this are flagged (setting second_host_threshold)."""
    return runtime.settings.second_host_threshold


@router.get("/")
def cohorts(request: Request, dash: DashboardDep) -> Response:
    session = dash.auth.page(request)
    with dash.runtime.transaction() as db:
        cards = cohort_cards(db)
    return dash.pages.render(request, "cohorts.html", session=session, cards=cards)


@router.get("/cohorts/{slug}")
def cohort(
    request: Request,
    dash: DashboardDep,
    slug: str,
    week: str = "",
    series: str = "",
    reason: str = "",
    region: str = "",
) -> Response:
    """The cohort page. ``series``, ``reason`` and ``region`` (``Asia/*``) narrow the list
    of left-out learners; each must be one the page offers (else 422, saying which)."""
    session = dash.auth.page(request)
    now = dash.runtime.clock.now()
    wanted = LeftOutFilter(series, reason, region)
    pages = dash.pages
    try:
        with dash.cohort_transaction(slug) as db:
            weeks = cohort_basics(db, slug).weeks
            shown = whole_number(week, 1, weeks) if week else None
            if week and shown is None:
                problem = Problem(
                    f"must be a course week from 1 to {weeks}", field="week", value=week
                )
                return pages.error(request, 422, problem.describe(), session)
            overview = cohort_overview(
                db,
                slug,
                now,
                week=None if shown is None else shown - 1,
                second_host_threshold=second_host_threshold(dash.runtime),
                left_out_filter=wanted,
                mail_rate=dash.runtime.settings.mail_rate_per_second,
            )
            activity = [(e, describe(e)) for e in audit_log(db, slug, ACTIVITY_SHOWN)]
            catch_up = catch_up_summary(db, slug)
            options = orchestration_options(db, slug)
            opt_outs = opt_out_counts(db, slug, now)  # learners' email choices, per kind
            fairness = fairness_ledgers(db, slug)  # fairly rotated series: who carries what
    except InputError as e:
        return pages.error(request, 422, "; ".join(input_problems(e)), session)
    except NotFoundError as e:
        return pages.error(request, 404, str(e), session)
    targets = [(t.value, f"{t.name} — {t.label} {t.anchor_zone}") for t in overview.live_times]
    return pages.render(
        request,
        "cohort.html",
        session=session,
        o=overview,
        series=targets,
        shown_week=shown,
        form={},
        activity=activity,
        catch_up=catch_up,
        orchestration=options,
        opt_outs=opt_outs,
        fairness=fairness,
    )
