"""Catching up from the learner's page: ``POST /me/{token}/catch-up`` moves the learner's remaining
soft deadlines later by the days they chose (:func:`scheduler.services.catch_up.shift_deadlines`),
then goes back to their page with a flash message saying what happened, or why not.

Like the reset form, the form's CSRF token is bound to the feed token (there is no session):
:func:`scheduler.web.dashboard.me.form_csrf`, beside the page that shows the form.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response

from scheduler.errors import NotFoundError
from scheduler.services.catch_up import CatchUpRefused, refusal_text
from scheduler.services.catch_up import shift_deadlines as shift
from scheduler.web.dashboard.context import DashboardDep, whole_number
from scheduler.web.dashboard.me import CATCH_UP, UNKNOWN_LINK, learner_form

router = APIRouter(include_in_schema=False)


@router.post("/me/{token}/catch-up")
def me_catch_up(
    request: Request,
    dash: DashboardDep,
    token: str,
    csrf: Annotated[str, Form(alias="catch_up_csrf")] = "",
    days: Annotated[str, Form()] = "",
) -> Response:
    form = learner_form(request, dash, token, CATCH_UP, csrf)
    if isinstance(form, Response):
        return form
    target, words = form.target, form.words
    assert target.person_id is not None  # learner_form: a learner's link
    page = f"/me/{quote(token, safe='')}"
    # Any whole number is passed on: the rule says which are allowed (and the refusal says so).
    wanted = whole_number(days, 0, 999)
    try:
        with dash.runtime.transaction() as db:
            done = shift(
                db,
                target.cohort_slug,
                target.person_id,
                0 if wanted is None else wanted,
                dash.runtime.clock.now(),
            )
    except CatchUpRefused as e:
        return dash.pages.redirect(page + "#catch-up", "error", refusal_text(e, words))
    except NotFoundError:
        return dash.pages.error(request, 404, UNKNOWN_LINK)
    message = words.ngettext(
        "Your remaining soft deadlines moved %(days)d day later. Your calendar and reminders "
        "follow.",
        "Your remaining soft deadlines moved %(days)d days later. Your calendar and reminders "
        "follow.",
        done.days,
    ) % {"days": done.days}
    return dash.pages.redirect(page + "#due-title", "ok", message)
