"""The course runner's dashboard and the learner's page: server-rendered Jinja pages.

``dashboard_router(runtime, auth)`` builds the routes; ``create_app`` includes them.

Admin pages (a session from the login form; see :mod:`scheduler.web.auth`)::

    GET  /login, POST /login, POST /logout
    GET  /                               the cohorts
    GET  /cohorts/{slug}                 heatmap, coverage, left out, next meetings, delivery
                                         (?week=N; ?series=&reason=&region= filter left out)
    GET  /cohorts/{slug}/change          preview a move or a cancellation (no side effects)
    POST /cohorts/{slug}/change          apply it (the CLI's service: changes.apply_change)
    GET  /cohorts/{slug}/learners        find, add, change, withdraw learners
    POST /cohorts/{slug}/learners[/update|/remove]
    GET  /cohorts/{slug}/roster.csv, /cohorts/{slug}/plan.csv
    POST /cohorts/{slug}/feed-link       issue the cohort's feed link (shown once)

Learner page (the learner's feed token is the key; nothing about anyone else)::

    GET  /me/{token}                     their meetings and deadlines on their clock
    POST /me/{token}/reset               revoke every link of theirs, go to the new page
    POST /me/{token}/catch-up            move their remaining soft deadlines later (catch_up)
    POST /me/{token}/preferences         which reminders they get, a pause (preferences)
    GET  /me/{token}/unsubscribe/{kind}[/{rule}]   asks; POST turns off that kind (RFC 8058
                                         one-click: no CSRF, no login; the URL is the key)

Every POST checks a CSRF token; state changes answer with a redirect and a flash message (a
short-lived signed cookie). Templates live in ``templates/web/`` with autoescaping on and
``StrictUndefined``. Pages need no script and load nothing from elsewhere (see the CSP in
``app``). CSV exports quote every field and neutralise any a spreadsheet would read as a formula
(:func:`safe_cell`).

The modules, by responsibility: ``rendering`` (templates, error pages, flash messages),
``context`` (what every route gets as a dependency), ``session`` (login, logout, CSRF),
``cohorts`` (the cohort list and page), ``changes`` (move or cancel meetings), ``learners``
(the cohort's learners), ``exports`` (CSV downloads, the cohort's feed link), ``me`` (the
learner's page), ``catch_up`` (the learner moving their deadlines later). Routes are
module-level functions on each module's ``router``; the runtime and templates reach them through
:data:`~scheduler.web.dashboard.context.DashboardDep`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from scheduler.runtime import Runtime
from scheduler.web.auth import AdminAuth
from scheduler.web.dashboard import catch_up, changes, cohorts, exports, learners, me, session
from scheduler.web.dashboard import preferences as email_preferences
from scheduler.web.dashboard.context import Dashboard, whole_number
from scheduler.web.dashboard.exports import csv_bytes, safe_cell
from scheduler.web.dashboard.rendering import FLASH_COOKIE, Pages

__all__ = ["FLASH_COOKIE", "Pages", "csv_bytes", "dashboard_router", "safe_cell", "whole_number"]


def dashboard_router(runtime: Runtime, auth: AdminAuth) -> APIRouter:
    """The dashboard's and the learner page's routes, serving ``runtime``."""
    dashboard = Dashboard(runtime, auth)
    router = APIRouter(include_in_schema=False, dependencies=[Depends(dashboard.bind)])
    for part in (session, cohorts, changes, learners, exports, me, catch_up, email_preferences):
        router.include_router(part.router)
    return router
