"""Page rendering for the dashboard and the learner's page: the Jinja environment, error pages,
and the flash message carried between a POST and the GET it redirects to (a short-lived signed
cookie, read once).

Templates mark their words for translation with ``{{ _("...") }}`` and ``{% trans %}`` (Jinja's
i18n extension, new style: ``_("%(name)s's schedule", name=...)``). The environment's own
gettext is English; a page in someone's language (the learner's page) is rendered with
``translations=``, whose callables go in that render's context: nothing is installed on the
shared environment, so concurrent requests in different languages never mix.
"""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Any
from urllib.parse import quote

from babel.support import NullTranslations
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup, escape

from scheduler.outputs.formatting import local_datetime, local_time
from scheduler.resources import resource_dir
from scheduler.runtime import Runtime
from scheduler.services.admin import sign, unsign
from scheduler.web.auth import AdminAuth, AdminSession

FLASH_COOKIE = "cohort_flash"
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}


class Pages:
    """Renders the templates and carries the flash message between a POST and its GET."""

    def __init__(self, runtime: Runtime, auth: AdminAuth) -> None:
        self.runtime = runtime
        self.auth = auth
        self.env = Environment(
            loader=FileSystemLoader(resource_dir("templates") / "web"),
            autoescape=select_autoescape(["html"], default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            extensions=["jinja2.ext.i18n"],
        )
        # English unless a render passes translations= (they go in its context, see below).
        self.env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
        self.env.filters["bdi"] = bdi
        self.env.filters["local"] = local_datetime
        self.env.filters["clock"] = local_time
        self.env.filters["pct"] = lambda x: "-" if x is None else f"{x:.0%}"
        self.env.filters["age"] = _age
        self.env.filters["sentence"] = lambda text: str(text)[:1].upper() + str(text)[1:]
        self.env.filters["day"] = lambda d: (
            f"{d:%a} {d.day} {d:%b %Y}" if isinstance(d, date) else ""
        )
        self.env.filters["daymonth"] = lambda d: f"{d.day} {d:%b}" if isinstance(d, date) else ""
        self.env.globals["url_for_week"] = lambda slug, w: f"/cohorts/{quote(slug)}?week={w + 1}"

    def render(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        session: AdminSession | None = None,
        headers: dict[str, str] | None = None,
        translations: NullTranslations | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """``template`` with ``context``; its words in ``translations``' language (None:
        English). A page in another language also passes ``lang`` and ``dir`` for ``<html>``."""
        flash = self._flash(request)
        words = {} if translations is None else gettext_callables(translations)
        html = self.env.get_template(template).render(
            session=session,
            csrf=session.csrf if session else "",
            flash=flash,
            **words,
            **context,
        )
        # Every page shows personal data or a capability: never cached, never indexed.
        response = HTMLResponse(html, status_code=status, headers={**NO_STORE, **(headers or {})})
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def error(
        self,
        request: Request,
        status: int,
        message: str,
        session: AdminSession | None = None,
        *,
        translations: NullTranslations | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """An error page; with ``translations`` its heading is in their language (``message``
        is the caller's, already translated) and ``context`` carries ``lang``/``dir``."""
        heading = {403: N_("Not allowed"), 404: N_("Not found")}.get(status, N_("Sorry"))
        return self.render(
            request,
            "error.html",
            status=status,
            session=session,
            translations=translations,
            message=message,
            heading=heading if translations is None else translations.gettext(heading),
            **context,
        )

    # -- flash messages: a signed cookie read once ---------------------------------------------
    def redirect(self, url: str, kind: str = "", text: str = "") -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        if text:
            payload = base64.urlsafe_b64encode(json.dumps([kind, text[:1500]]).encode()).decode()
            response.set_cookie(
                FLASH_COOKIE,
                sign(self.auth.secret, "flash", payload),
                max_age=120,
                httponly=True,
                samesite="strict",
                secure=self.auth.secure,
                path="/",
            )
        return response

    def _flash(self, request: Request) -> dict[str, str] | None:
        """The flash message the cookie carries; None for none, or for any value not signed
        here (a hostile cookie never makes a page fail)."""
        raw = request.cookies.get(FLASH_COOKIE)
        if raw is not None and not raw.isascii():
            return None  # not ours (only ASCII is signed): never parsed, whatever unsign does
        payload = unsign(self.auth.secret, "flash", raw) if raw else None
        if payload is None:
            return None
        try:
            kind, text = json.loads(base64.urlsafe_b64decode(payload.encode()))
        except (ValueError, TypeError):
            return None
        return {"kind": str(kind), "text": str(text)}


def N_(message: str) -> str:
    """Marks ``message`` for extraction (a ``babel.cfg`` keyword); it is translated where used."""
    return message


def bdi(text: object) -> Markup:
    """``text`` (someone's name, a title the runner wrote) isolated from the words around it, so
    a right-to-left name in a left-to-right sentence (or the reverse) keeps its order."""
    return Markup("<bdi>%s</bdi>") % escape(text)


def gettext_callables(translations: NullTranslations) -> dict[str, Any]:
    """``gettext``/``ngettext``/``pgettext``/``npgettext`` of ``translations`` as Jinja's new-style
    i18n calls them (what ``install_gettext_translations(newstyle=True)`` would install): the
    translation is trusted markup, ``%(name)s`` placeholders are filled with escaped values (and
    ``%(num)s`` with the count); ``_`` finds them in the render's context."""

    def fill(context: Context, text: str, variables: dict[str, Any]) -> str:
        # A translation is markup like the template it replaces words of (catalogs ship with
        # the package); the values filled into it are escaped.
        rv = Markup(text) if context.eval_ctx.autoescape else text  # noqa: S704
        return rv % variables

    @pass_context
    def gettext(context: Context, message: str, /, **variables: Any) -> str:
        return fill(context, translations.gettext(message), variables)

    @pass_context
    def ngettext(
        context: Context, singular: str, plural: str, num: int, /, **variables: Any
    ) -> str:
        variables.setdefault("num", num)
        return fill(context, translations.ngettext(singular, plural, num), variables)

    @pass_context
    def pgettext(context: Context, ctxt: str, message: str, /, **variables: Any) -> str:
        variables.setdefault("context", ctxt)
        return fill(context, str(translations.pgettext(ctxt, message)), variables)

    @pass_context
    def npgettext(
        context: Context, ctxt: str, singular: str, plural: str, num: int, /, **variables: Any
    ) -> str:
        variables.setdefault("context", ctxt)
        variables.setdefault("num", num)
        return fill(context, translations.npgettext(ctxt, singular, plural, num), variables)

    return {"gettext": gettext, "ngettext": ngettext, "pgettext": pgettext, "npgettext": npgettext}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"
