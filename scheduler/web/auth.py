"""Admin access for the dashboard and the JSON API.

* The API takes ``Authorization: Bearer <admin token>`` (from `cohort admin token`).
* The dashboard's login form takes the same token once and sets a session cookie: ``HttpOnly``,
  ``SameSite=Strict``, ``Secure`` when the base URL is https, signed with the server's secret
  key, valid for 12 hours and only while the token it was made from is not rotated.
* Every dashboard form carries a CSRF token derived from the session (HMAC); a POST without the
  right one gets 403.

Usage in routes: ``session: AdminSession = Depends(auth.page)`` for pages (redirects to the login
page), ``Depends(auth.api)`` for the API (401), and ``auth.check_csrf(session, form["csrf"])``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request, Response

from scheduler.runtime import Runtime
from scheduler.services.admin import admin_token_id, sign, token_is_live, unsign

COOKIE = "cohort_admin"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True, slots=True)
class AdminSession:
    cookie: str  # the signed cookie value ("" for a bearer-token API call)
    token_id: int
    csrf: str = ""  # what this session's forms must send back


class LoginRequired(Exception):
    """Raised by :meth:`AdminAuth.page` when there is no valid session."""


class AdminAuth:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.secret = runtime.secret_key()
        self.secure = runtime.settings.base_url.startswith("https://")

    # -- sessions -----------------------------------------------------------------------------
    def login(self, response: Response, token: str) -> bool:
        """Check ``token``; on success set the session cookie on ``response``."""
        with self.runtime.transaction() as db:
            token_id = admin_token_id(db, token.strip())
        if token_id is None:
            return False
        value = sign(self.secret, f"{token_id}:{int(time.time())}:{secrets.token_hex(8)}")
        response.set_cookie(
            COOKIE,
            value,
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=self.secure,
            path="/",
        )
        return True

    def logout(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/")

    def session(self, request: Request) -> AdminSession | None:
        raw = request.cookies.get(COOKIE)
        value = unsign(self.secret, raw) if raw else None
        if value is None or raw is None:
            return None
        token_id, issued, _nonce = value.split(":", 2)
        if time.time() - int(issued) > SESSION_SECONDS:
            return None
        with self.runtime.transaction() as db:
            if not token_is_live(db, int(token_id)):
                return None
        return AdminSession(raw, int(token_id), self._csrf_for(raw))

    def _csrf_for(self, cookie: str) -> str:
        return hmac.new(self.secret, f"csrf:{cookie}".encode(), hashlib.sha256).hexdigest()

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
