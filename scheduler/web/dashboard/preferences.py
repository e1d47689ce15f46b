"""The learner's email choices: the preferences form of their page, and one-click unsubscribe.

Routes (the token is the learner's feed or mail token, a capability like the page's; an unknown
or reset one gets the page's 404)::

    POST /me/{token}/preferences                   the form (CSRF bound to the token)
    GET  /me/{token}/unsubscribe/{kind}[/{rule}]   a page with one button: nothing changes
    POST /me/{token}/unsubscribe/{kind}[/{rule}]   turn off exactly that kind (RFC 8058)

The GET only asks: mail scanners and link previews fetch every link in an email, so a GET must
never unsubscribe. The POST is what a mail provider sends for a one-click unsubscribe
(``List-Unsubscribe=One-Click``, no cookie, no login, no CSRF token: the URL is the capability)
and what the page's button sends; it answers 200 with a page saying how to turn the kind back
on. ``kind`` is one of :data:`~scheduler.domain.status.OPTIONAL_KINDS`; ``rule`` a live reminder
rule of the learner's cohort, and only for ``live_reminder``; anything else is 404.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, Form, Request, Response

from scheduler.services.preferences import (
    ONE_CLICK,
    PAGE,
    Choice,
    learner_preferences,
    offered_choice,
    set_preferences,
    turn_off,
)
from scheduler.web.dashboard.context import DashboardDep
from scheduler.web.dashboard.me import (
    PREFERENCES,
    UNKNOWN_LINK,
    LearnerForm,
    learner_form,
    learner_target,
)

router = APIRouter(include_in_schema=False)

MAX_CHOICES = 100  # checkboxes one form may send (a cohort offers a handful)


def _page_url(token: str) -> str:
    return f"/me/{quote(token, safe='')}#preferences"


def _one_click(
    request: Request, dash: DashboardDep, token: str, kind: str, rule: str, *, apply: bool
) -> Response:
    target = learner_target(dash, token)
    if target is None or target.person_id is None:
        return dash.pages.error(request, 404, UNKNOWN_LINK)
    page = LearnerForm.of(target)
    words = page.words
    now = dash.runtime.clock.now()
    with dash.runtime.transaction() as db:
        choice = offered_choice(db, target.cohort_id, kind, rule)
        if choice is None:
            return page.error(
                request,
                dash,
                404,
                words.gettext("This link does not name a kind of email you can turn off."),
            )
        if apply:
            turn_off(db, target.cohort_id, target.person_id, choice, now, via=ONE_CLICK)
        prefs = learner_preferences(db, target.cohort_id, target.person_id, now, words)
    label = next(s.label for s in prefs.choices if s.choice == choice)
    return dash.pages.render(
        request,
        "unsubscribe.html",
        translations=words,
        lang=page.lang,
        dir=page.dir,
        title=target.cohort_title,
        label=label,
        done=not prefs.is_on(choice),
        action=f"/me/{quote(token, safe='')}/unsubscribe/{choice.path}",
        page=_page_url(token),
    )


@router.get("/me/{token}/unsubscribe/{kind}")
def unsubscribe_page(request: Request, dash: DashboardDep, token: str, kind: str) -> Response:
    return _one_click(request, dash, token, kind, "", apply=False)


@router.get("/me/{token}/unsubscribe/{kind}/{rule}")
def unsubscribe_rule_page(
    request: Request, dash: DashboardDep, token: str, kind: str, rule: str
) -> Response:
    return _one_click(request, dash, token, kind, rule, apply=False)


@router.post("/me/{token}/unsubscribe/{kind}")
def unsubscribe(request: Request, dash: DashboardDep, token: str, kind: str) -> Response:
    return _one_click(request, dash, token, kind, "", apply=True)


@router.post("/me/{token}/unsubscribe/{kind}/{rule}")
def unsubscribe_rule(
    request: Request, dash: DashboardDep, token: str, kind: str, rule: str
) -> Response:
    return _one_click(request, dash, token, kind, rule, apply=True)


def _parse_choice(path: str) -> tuple[str, str]:
    kind, _, rule = path.partition("/")
    return kind, unquote(rule)


@router.post("/me/{token}/preferences")
def save_preferences(
    request: Request,
    dash: DashboardDep,
    token: str,
    preferences_csrf: Annotated[str, Form()] = "",  # not "csrf": one name per form of the page
    on: Annotated[list[str] | None, Form()] = None,
    shown: Annotated[list[str] | None, Form()] = None,  # "path=on|off": the form as loaded
    paused_until: Annotated[str, Form()] = "",
) -> Response:
    form = learner_form(request, dash, token, PREFERENCES, preferences_csrf)
    if isinstance(form, Response):
        return form
    target, words = form.target, form.words
    assert target.person_id is not None  # learner_form: a learner's link
    until: date | None = None
    if paused_until.strip():
        try:
            until = date.fromisoformat(paused_until.strip())
        except ValueError:
            until = None
        if until is None or len(paused_until) > 10 or until.year >= 9999:  # 9999: no "after"
            return form.error(
                request,
                dash,
                422,
                words.gettext("Pick the last day of the pause as a date, like 2027-03-14."),
            )
    now = dash.runtime.clock.now()
    with dash.runtime.transaction() as db:
        chosen: list[Choice] = []
        for path in (on or [])[:MAX_CHOICES]:
            choice = offered_choice(db, target.cohort_id, *_parse_choice(path))
            if choice is not None:  # one the cohort no longer offers: nothing to keep on
                chosen.append(choice)
        as_loaded: dict[Choice, bool] | None = None
        if shown is not None:
            as_loaded = {}
            for item in shown[:MAX_CHOICES]:
                path, _, state = item.rpartition("=")
                choice = offered_choice(db, target.cohort_id, *_parse_choice(path))
                if choice is not None and state in ("on", "off"):
                    as_loaded[choice] = state == "on"
        set_preferences(
            db, target.cohort_id, target.person_id, chosen, until, now, via=PAGE, shown=as_loaded
        )
    return dash.pages.redirect(
        _page_url(token), "ok", words.gettext("Your email choices are saved.")
    )
