"""What every dashboard route needs, as a FastAPI dependency: the runtime, the admin auth and
the page renderer of the app the router was built for (:class:`Dashboard`), plus the small
readers the forms share.

``dashboard_router`` binds one :class:`Dashboard` to its requests (a router-level dependency
that runs before the routes' own); a route takes it as a parameter ``dash: DashboardDep``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from scheduler.domain.cohort_file import SLUG_RE
from scheduler.errors import InputError, NotFoundError
from scheduler.runtime import Runtime
from scheduler.web.auth import AdminAuth
from scheduler.web.dashboard.rendering import Pages

STATIC = Path(__file__).resolve().parent.parent / "static"
_STATE_KEY = "dashboard"


class Dashboard:
    """The runtime, the admin auth, the page renderer and the stylesheet of one app."""

    def __init__(self, runtime: Runtime, auth: AdminAuth) -> None:
        self.runtime = runtime
        self.auth = auth
        self.pages = Pages(runtime, auth)
        self.css = (STATIC / "dashboard.css").read_bytes()
        css_tag = hashlib.sha256(self.css).hexdigest()[:16]
        self.pages.env.globals["css_url"] = f"/static/dashboard.css?v={css_tag}"

    async def bind(self, request: Request) -> None:
        """The router-level dependency: makes this dashboard the request's (see
        :func:`current_dashboard`). Async: no hop to the thread pool for an assignment."""
        setattr(request.state, _STATE_KEY, self)

    @contextmanager
    def cohort_transaction(self, slug: str) -> Iterator[Session]:
        """``runtime.transaction()`` for the cohort a URL names. A slug no cohort can have is a
        NotFoundError at once, never sent to the database (PostgreSQL refuses text with a NUL
        in it: that would be a 500)."""
        if not SLUG_RE.fullmatch(slug):
            raise NotFoundError(f"no cohort with slug {slug[:80]!r}")
        with self.runtime.transaction() as db:
            yield db


async def current_dashboard(request: Request) -> Dashboard:
    """The :class:`Dashboard` that ``dashboard_router`` bound to this request."""
    dashboard = getattr(request.state, _STATE_KEY, None)
    if not isinstance(dashboard, Dashboard):
        raise RuntimeError("dashboard route outside dashboard_router")
    return dashboard


DashboardDep = Annotated[Dashboard, Depends(current_dashboard)]


def whole_number(text: str, low: int, high: int) -> int | None:
    """``text`` read as a whole number from ``low`` to ``high``, else None. Only ASCII digits
    (``str.isdigit`` is true for "²" and "٣", which ``int`` refuses or reads as 3) and no more of
    them than ``high`` has, so nothing out of range reaches ``int`` or the database."""
    digits = text.strip()
    if not digits or len(digits) > len(str(high)) or not (digits.isascii() and digits.isdigit()):
        return None
    value = int(digits)
    return value if low <= value <= high else None


def has_control_characters(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def input_problems(e: InputError) -> list[str]:
    return [p.describe() for p in e.problems] or [e.summary]
