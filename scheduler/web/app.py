"""The web application of `cohort serve`: calendar feeds at capability URLs, health checks.

``create_app(runtime)`` builds it; there is no module-level app. Feed answers carry an ETag
(304 when it matches), ``Cache-Control: private``, ``Referrer-Policy: no-referrer`` and
``X-Robots-Tag: noindex``; unknown or revoked tokens get 404; each client IP may fetch at most
``feed_rate_per_minute`` feeds a minute (then 429). Tokens never reach a log line (see ``logs``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from datetime import datetime

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from scheduler.outputs.ics import FeedBuilder
from scheduler.persistence.models import CohortRow
from scheduler.runtime import NotMigratedError, Runtime
from scheduler.services.feeds import feed_events, feed_name, feed_stamp, resolve_token

SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
FEED_HEADERS = {"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex, nofollow"}


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds per key (sliding window, in memory)."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            if len(self._hits) > 100_000:  # forget idle clients
                for idle in [k for k, v in self._hits.items() if not v][:50_000]:
                    del self._hits[idle]
            return True


class _Builders:
    """A FeedBuilder per (cohort, plan stamp): events are serialised once per plan version."""

    def __init__(self, size: int = 32) -> None:
        self._items: OrderedDict[tuple[int, datetime], FeedBuilder] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, cohort_id: int, stamp: datetime) -> FeedBuilder:
        key = (cohort_id, stamp)
        with self._lock:
            builder = self._items.get(key)
            if builder is None:
                builder = self._items[key] = FeedBuilder(stamp=stamp)
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
            self._items.move_to_end(key)
            return builder


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="cohort-scheduler", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json"
    )
    limiter = RateLimiter(runtime.settings.feed_rate_per_minute)
    builders = _Builders()

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/feeds/{token}.ics", include_in_schema=False)
    def feed(token: str, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if not limiter.allow(client):
            return PlainTextResponse(
                "too many requests\n", status_code=429, headers={"Retry-After": "60"}
            )
        with runtime.transaction() as db:
            target = resolve_token(db, token)
            if target is None:
                return PlainTextResponse("no such feed\n", status_code=404)
            stamp = feed_stamp(db, target.cohort_id)
            if stamp is None:
                cohort = db.get(CohortRow, target.cohort_id)
                assert cohort is not None
                stamp = cohort.updated_at
            events = feed_events(db, target)
        body = builders.get(target.cohort_id, stamp).feed(feed_name(target), events)
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {**FEED_HEADERS, "ETag": etag}
        wanted = request.headers.get("if-none-match", "")
        if etag in [tag.strip() for tag in wanted.split(",")] or wanted.strip() == "*":
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)

    @app.get("/robots.txt", include_in_schema=False)
    def robots() -> PlainTextResponse:
        return PlainTextResponse("User-agent: *\nDisallow: /feeds/\n")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        try:
            runtime.require_schema()
        except NotMigratedError as e:
            return JSONResponse({"status": "not ready", "reason": str(e)}, status_code=503)
        return JSONResponse({"status": "ready"})

    return app
