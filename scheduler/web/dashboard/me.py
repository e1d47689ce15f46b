"""The learner's page, keyed by their feed token and showing nothing about anyone else: their
meetings and deadlines on their clock, their calendar links, a form that resets every link
of theirs and, when the cohort offers it and they are behind, one that moves their remaining soft
deadlines later (``catch_up``).

The page is in the learner's language (their locale, else the cohort's: the catalog their feed
uses), with ``<html lang dir>`` to match; names and titles the course runner wrote are shown as
written, isolated in ``<bdi>``. A link nobody's (unknown or reset) gets the English answer.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date
from typing import Annotated
from urllib.parse import quote

from babel.dates import format_skeleton
from babel.support import NullTranslations
from fastapi import APIRouter, Form, Request, Response

from scheduler.domain.cohort import Role
from scheduler.domain.labels import KIND_LABELS
from scheduler.errors import NotFoundError
from scheduler.outputs.formatting import locale_or_default
from scheduler.outputs.i18n import SOURCE, language_tag, text_direction
from scheduler.outputs.links import feed_links
from scheduler.services.admin import mac
from scheduler.services.catch_up import catch_up_offer
from scheduler.services.feeds import (
    FeedTarget,
    feed_language,
    feed_name,
    feed_translations,
    hash_token,
    reset_tokens,
    resolve_token,
)
from scheduler.services.learners import is_active_member
from scheduler.services.preferences import learner_preferences
from scheduler.services.schedule import learner_schedule
from scheduler.web.dashboard.context import Dashboard, DashboardDep
from scheduler.web.dashboard.rendering import N_

router = APIRouter(include_in_schema=False)

LIVE_KINDS = ("class", "office_hours")
DEADLINE_KINDS = ("assignment", "catch_up", "replay")
UNKNOWN_LINK = "This calendar link is unknown or was reset."

# The kind labels the page shows (scheduler.domain.labels.KIND_LABELS, which stays free of
# gettext), marked here for extraction; the template translates them as it shows them.
KIND_WORDS = (
    N_("Live class"),
    N_("Office hours"),
    N_("Co-working"),
    N_("Due"),
    N_("Catch up"),
    N_("Replay"),
)


def local_day(day: date, locale: str | None, skeleton: str = "MMMEd") -> str:
    """A calendar date (a clock change, a meeting's day on the learner's clock) in the
    learner's language: ``Mon 29 Mar`` (``MMMEd``), ``28 Mar`` (``MMMd``)."""
    return format_skeleton(skeleton, day, locale=locale_or_default(locale))


# The page's forms, each with a CSRF token of its own (routes: ``me_reset`` below,
# :mod:`scheduler.web.dashboard.catch_up`, :mod:`scheduler.web.dashboard.preferences`).
RESET, CATCH_UP, PREFERENCES = "reset", "catch-up", "preferences"


def form_csrf(dash: Dashboard, token: str, form: str) -> str:
    """The CSRF token of one of the page's forms: there is no session, so it is bound to the
    feed token (and the form)."""
    return mac(dash.auth.secret, "csrf", f"me-{form}:{hash_token(token)}")


@dataclass(frozen=True, slots=True)
class LearnerForm:
    """A checked POST of one of the page's forms: whose page it is, in their language."""

    target: FeedTarget
    words: NullTranslations
    lang: str
    dir: str

    @classmethod
    def of(cls, target: FeedTarget) -> LearnerForm:
        """``target``'s words and page language (their locale, else the cohort's)."""
        lang, direction = page_language(target)
        return cls(target, feed_translations(target), lang, direction)

    def error(self, request: Request, dash: Dashboard, status: int, message: str) -> Response:
        """An error page in the learner's language (``message`` already translated)."""
        return dash.pages.error(
            request, status, message, translations=self.words, lang=self.lang, dir=self.dir
        )


def learner_form(
    request: Request, dash: Dashboard, token: str, form: str, sent: str
) -> LearnerForm | Response:
    """The learner behind ``token`` for a POST of ``form`` whose CSRF field held ``sent``; else
    the answer: 404 for a link that opens no page, 403 (in their language) for a stale form."""
    target = learner_target(dash, token)
    if target is None or target.email is None:
        return dash.pages.error(request, 404, UNKNOWN_LINK)
    checked = LearnerForm.of(target)
    if not hmac.compare_digest(sent.encode(), form_csrf(dash, token, form).encode()):
        return checked.error(
            request,
            dash,
            403,
            checked.words.gettext("The form is stale: reload the page and try again."),
        )
    return checked


def page_language(target: FeedTarget) -> tuple[str, str]:
    """``lang`` and ``dir`` of the learner's page: their locale (``ja-JP``) when the page's words
    are in its language, else the language the words fall back to (a locale without a catalog
    reads the cohort's language, or English)."""
    locale = target.locale or target.cohort_locale or SOURCE
    words = feed_language(target)
    if locale.replace("-", "_").split("_")[0].lower() != words.split("_")[0]:
        locale = words
    return language_tag(locale), text_direction(locale)


def learner_target(dash: Dashboard, token: str) -> FeedTarget | None:
    """Whose page ``token`` opens: a live learner link of an active member, else None."""
    if not token or len(token) > 200:
        return None
    with dash.runtime.transaction() as db:
        target = resolve_token(db, token)
        if target is None or target.kind != Role.LEARNER.value or target.person_id is None:
            return None
        if not is_active_member(db, target.cohort_id, target.person_id):
            return None
    return target


@router.get("/me/{token}")
def me(request: Request, dash: DashboardDep, token: str) -> Response:
    target = learner_target(dash, token)
    if target is None or target.email is None:
        return dash.pages.error(request, 404, UNKNOWN_LINK)
    now = dash.runtime.clock.now()
    try:
        with dash.runtime.transaction() as db:
            schedule = learner_schedule(db, target.cohort_slug, target.email)
            catch_up = (
                None
                if target.person_id is None
                else catch_up_offer(db, target.cohort_slug, target.person_id, now)
            )
    except NotFoundError:
        return dash.pages.error(request, 404, UNKNOWN_LINK)
    upcoming = [e for e in schedule.entries if (e.end or e.at) >= now]
    words = feed_translations(target)  # the learner's locale, else the cohort's
    assert target.person_id is not None  # learner_target: a learner's link
    with dash.runtime.transaction() as db:
        preferences = learner_preferences(db, target.cohort_id, target.person_id, now, words)
    lang, direction = page_language(target)
    links = feed_links(dash.runtime.settings.base_url, token, feed_name(target, words))
    return dash.pages.render(
        request,
        "me.html",
        translations=words,
        title=target.cohort_title,
        name=schedule.name,
        zone=schedule.zone,
        locale=schedule.locale,
        lang=lang,
        dir=direction,
        live=[e for e in upcoming if e.kind in LIVE_KINDS],
        coworking=[e for e in upcoming if e.kind == "coworking"],
        deadlines=[e for e in upcoming if e.kind in DEADLINE_KINDS],
        links=links,
        token=token,
        me_csrf=form_csrf(dash, token, RESET),
        kind_label=KIND_LABELS,  # the template looks kinds up in it and translates the label
        local_day=local_day,  # dates of the clock-change notes, in the learner's language
        catch_up=catch_up,  # None: no "Catching up" section
        catch_up_csrf=form_csrf(dash, token, CATCH_UP),
        preferences=preferences,  # the "Emails you get" section
        preferences_csrf=form_csrf(dash, token, PREFERENCES),
    )


@router.post("/me/{token}/reset")
def me_reset(
    request: Request, dash: DashboardDep, token: str, csrf: Annotated[str, Form()] = ""
) -> Response:
    form = learner_form(request, dash, token, RESET, csrf)
    if isinstance(form, Response):
        return form
    target, words = form.target, form.words
    assert target.email is not None  # learner_form: a learner's link
    with dash.runtime.transaction() as db:
        new, _, _ = reset_tokens(db, target.cohort_slug, target.email, dash.runtime.clock.now())
    return dash.pages.redirect(
        f"/me/{quote(new, safe='')}",
        "ok",
        words.gettext(
            "Your calendar link is new: the old one stopped working. Subscribe again below "
            "(calendars using the old link stop updating)."
        ),
    )
