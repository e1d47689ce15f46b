"""Page rendering for the dashboard and the learner's page: the Jinja environment, error pages,
and the flash message carried between a POST and the GET it redirects to (a short-lived signed
cookie, read once)."""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

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
        )
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
        **context: Any,
    ) -> HTMLResponse:
        flash = self._flash(request)
        html = self.env.get_template(template).render(
            session=session,
            csrf=session.csrf if session else "",
            flash=flash,
            **context,
        )
        # Every page shows personal data or a capability: never cached, never indexed.
        response = HTMLResponse(html, status_code=status, headers={**NO_STORE, **(headers or {})})
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def error(
        self, request: Request, status: int, message: str, session: AdminSession | None = None
    ) -> HTMLResponse:
        return self.render(
            request,
            "error.html",
            status=status,
            session=session,
            message=message,
            heading={403: "Not allowed", 404: "Not found"}.get(status, "Sorry"),
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
