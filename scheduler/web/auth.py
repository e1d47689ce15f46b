"""Admin access for the dashboard and the JSON API.

* The API takes ``Authorization: Bearer <admin token>`` (from `cohort admin token`).
* The dashboard's login form takes the same token once and opens a session: a row in
  ``admin_session`` (see :mod:`scheduler.services.admin`) whose random id the cookie carries,
  signed for the purpose ``"session"``. The cookie is ``HttpOnly``, ``SameSite=Strict``,
  ``Secure`` when the base URL is https. A session lives 12 hours, until it is logged out
  (server-side: a copy of the cookie stops working too) or until the admin token is rotated.
  Each request looks its session up once, by primary key.
* Every dashboard form carries a CSRF token: an HMAC of the session id under the ``"csrf"``
  key; a POST without the right one gets 403.
* Nothing signs with the bare secret: each use has its own key (``purpose_key``), so a cookie
  signed for one purpose (a flash message, say) never passes for another (a session).

Usage in routes: ``session: AdminSession = Depends(auth.page)`` for pages (redirects to the login
page), ``Depends(auth.api)`` for the API (401), ``auth.check_csrf(session, form["csrf"])``, and
``auth.logout(response, session)``.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta

from fastapi import HTTPException, Request, Response

from scheduler.runtime import Runtime
from scheduler.services.admin import (
    admin_token_id,
    close_session,
    live_session,
    mac,
    open_session,
    sign,
    unsign,
)

COOKIE = "cohort_admin"
SESSION_SECONDS = 12 * 3600
SESSION_LIFETIME = timedelta(seconds=SESSION_SECONDS)


@dataclass(frozen=True, slots=True)
class AdminSession:
    cookie: str  # the signed cookie value ("" for a bearer-token API call)
    token_id: int
    csrf: str = ""  # what this session's forms must send back
    session_id: str = ""  # the id the cookie carries ("" for a bearer-token API call)


class LoginRequired(Exception):
    """Raised by :meth:`AdminAuth.page` when there is no valid session."""


class AdminAuth:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # The server's secret: sign with scheduler.services.admin.sign/unsign/mac and a purpose.
        self.secret = runtime.secret_key()
        self.secure = runtime.settings.base_url.startswith("https://")

    # -- sessions -----------------------------------------------------------------------------
    def login(self, response: Response, token: str) -> bool:
        """Check ``token``; on success open a session and set its cookie on ``response``."""
        with self.runtime.transaction() as db:
            token_id = admin_token_id(db, token.strip())
            if token_id is None:
                return False
            session_id = open_session(db, token_id, self.runtime.clock.now(), SESSION_LIFETIME)
        response.set_cookie(
            COOKIE,
            sign(self.secret, "session", session_id),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=self.secure,
            path="/",
        )
        return True

    def logout(self, response: Response, session: AdminSession | None = None) -> None:
        """End ``session`` server-side (every copy of its cookie stops working) and delete the
        cookie on ``response``. Without ``session`` only this browser's cookie goes."""
        if session is not None and session.session_id:
            with self.runtime.transaction() as db:
                close_session(db, session.session_id, self.runtime.clock.now())
        response.delete_cookie(COOKIE, path="/")

    def session(self, request: Request) -> AdminSession | None:
        """The live session the request's cookie names, else None (never an error: a cookie
        is the client's to make up)."""
        raw = request.cookies.get(COOKIE)
        session_id = unsign(self.secret, "session", raw) if raw else None
        if raw is None or session_id is None:
            return None
        with self.runtime.transaction() as db:
            token_id = live_session(db, session_id, self.runtime.clock.now())
        if token_id is None:
            return None
        csrf = mac(self.secret, "csrf", f"session:{session_id}")
        return AdminSession(raw, token_id, csrf, session_id)

    def check_csrf(self, session: AdminSession, given: object) -> None:
        if not isinstance(given, str) or not hmac.compare_digest(
            given.encode("utf-8", "replace"), session.csrf.encode()
        ):
            raise HTTPException(403, "the form is stale or was not sent by this dashboard")

    # -- dependencies -------------------------------------------------------------------------
    def page(self, request: Request) -> AdminSession:
        """For dashboard pages: the session, or a redirect to the login page."""
        found = self.session(request)
        if found is None:
            raise LoginRequired
        return found

    def api(self, request: Request) -> AdminSession:
        """For the JSON API: a bearer admin token (or a dashboard session), else 401."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            with self.runtime.transaction() as db:
                token_id = admin_token_id(db, token.strip())
            if token_id is not None:
                return AdminSession("", token_id)
        found = self.session(request)
        if found is not None:
            return found
        raise HTTPException(
            401, "an admin token is required", headers={"WWW-Authenticate": "Bearer"}
        )
