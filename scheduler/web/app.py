"""The web application of `cohort serve`: calendar feeds at capability URLs, health checks, the
dashboard and the learner's page (:mod:`scheduler.web.dashboard`), the JSON API under ``/api``.

``create_app(runtime)`` builds it; there is no module-level app. Feed answers carry an ETag
(304 when it matches), ``Cache-Control: private``, ``Referrer-Policy: no-referrer`` and
``X-Robots-Tag: noindex``; unknown or revoked tokens get 404; each client IP may fetch at most
``feed_rate_per_minute`` feeds a minute (then 429; behind a trusted reverse proxy, the address
it forwards). Tokens never reach a log line (see ``logs``). Every response, 413 and 500
included, carries the security headers; HTML pages get a Content-Security-Policy that allows
nothing from elsewhere and no inline script; an https base URL adds Strict-Transport-Security.
Request bodies over ``max_body_bytes`` get 413 before more than that is read.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.runtime import NotMigratedError, Runtime
from scheduler.services.feeds import FeedCache
from scheduler.services.outbox import worker_status
from scheduler.web.api import api_router
from scheduler.web.auth import AdminAuth, LoginRequired
from scheduler.web.dashboard import dashboard_router

SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
HSTS = "max-age=31536000"  # with an https base URL: browsers use https only, for a year
TOO_LARGE = "request body too large"
# For HTML pages: everything from this origin only, no inline script or style, no framing.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_FEED_PATH = re.compile(r"^/feeds/([^/]+)\.ics$")
LOOKUP_SECONDS = 1.0  # how long a token check is trusted (revocation takes effect within this)
FEED_HEADERS = {"Cache-Control": "private, max-age=300", "X-Robots-Tag": "noindex, nofollow"}


class RateLimiter:
    """At most ``limit`` hits per key in a window of ``window`` seconds that opens with the
    key's first hit (in memory).

    Memory is bounded: a key is forgotten once its window has closed, and past ``max_keys``
    keys the one whose window opened first is forgotten early (a flood of distinct addresses
    costs a little accuracy, never memory). Each call does O(1) work — it runs on the event
    loop, so it never scans the table: windows are kept oldest first, and a call drops at most
    two closed ones from the front.
    """

    def __init__(self, limit: int, window: float = 60.0, max_keys: int = 100_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()  # key: (opened, hits)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._windows)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        closed = now - self.window
        with self._lock:
            windows = self._windows
            for _ in range(2):
                if not windows:
                    break
                oldest, (opened, _hits) = next(iter(windows.items()))
                if opened > closed:
                    break
                del windows[oldest]
            found = windows.get(key)
            if found is not None and found[0] <= closed:
                del windows[key]
                found = None
            if found is None:
                if len(windows) >= self.max_keys:
                    windows.popitem(last=False)
                windows[key] = (now, 1)
                return True
            opened, hits = found
            if hits >= self.limit:
                return False
            windows[key] = (opened, hits + 1)  # an existing key keeps its place in the order
            return True


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="cohort-scheduler", docs_url=None, redoc_url=None, openapi_url="/api/openapi.json"
    )
    limiter = RateLimiter(runtime.settings.feed_rate_per_minute)
    feeds = FeedCache(runtime.engine, runtime.sessions, lookup_seconds=LOOKUP_SECONDS)

    async def feed(request: Request) -> Response:
        # async: the lookup is one indexed query, cheaper than a hop to the thread pool; only a
        # cache miss renders the feed, in the thread pool.
        token = str(request.path_params["token"])
        client = request.client.host if request.client else "unknown"
        if not limiter.allow(client):
            return PlainTextResponse(
                "too many requests\n", status_code=429, headers={"Retry-After": "60"}
            )
        # Is the token live, and which version are the cohort's feeds at? One indexed query,
        # remembered for LOOKUP_SECONDS: a revoked link stops working within that time.
        key = feeds.lookup(token)
        if key is None:
            return PlainTextResponse("no such feed\n", status_code=404)
        found = feeds.cached(key)
        if found is None:
            found = await run_in_threadpool(feeds.render, token, key)
            if found is None:
                return PlainTextResponse("no such feed\n", status_code=404)
        headers = {**FEED_HEADERS, "ETag": found.etag}
        wanted = request.headers.get("if-none-match", "")
        if found.etag in [tag.strip() for tag in wanted.split(",")] or wanted.strip() == "*":
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type="text/calendar; charset=utf-8", headers=headers)

    # Feeds are the hot path: answered by a small ASGI layer in front of the router (see
    # FeedFastPath); the route stays so the app's routing table tells the truth.
    app.add_route("/feeds/{token}.ics", feed, methods=["GET", "HEAD"], include_in_schema=False)

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
        now = runtime.clock.now()
        with runtime.transaction() as db:
            workers = worker_status(db, now)
        ticks = [w.last_tick_age for w in workers if w.last_tick_age is not None]
        # The web is ready without a worker; the heartbeat is reported for monitoring (mail is
        # not going out when no worker ticked recently).
        return JSONResponse(
            {
                "status": "ready",
                "workers_running": sum(not w.stopped for w in workers),
                "last_tick_age_s": round(min(ticks), 1) if ticks else None,
            }
        )

    auth = AdminAuth(runtime)
    app.include_router(dashboard_router(runtime, auth))
    app.include_router(api_router(runtime, auth), prefix="/api")

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> RedirectResponse:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            here = "/"  # a form posted without a session is not replayed after login
        return RedirectResponse("/login?" + urlencode({"next": here}), status_code=303)

    # Inside FeedFastPath: feeds read no body, so the hot path does not pay for the limit.
    app.add_middleware(BodyLimit, max_bytes=runtime.settings.max_body_bytes)
    app.add_middleware(FeedFastPath, handler=feed)
    # Added last: outermost, so feeds, 413s and 500s get the headers too.
    app.add_middleware(SecurityHeaders, hsts=runtime.settings.base_url.startswith("https://"))
    return app


class FeedFastPath:
    """Answers ``GET /feeds/<token>.ics`` straight from ``handler``, skipping the router and the
    exception middleware: at a few thousand requests a second they cost as much as the feed."""

    def __init__(self, app: ASGIApp, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match = _FEED_PATH.match(scope["path"])
            if match is not None:
                request = Request({**scope, "path_params": {"token": match.group(1)}}, receive)
                response = await self.handler(request)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Adds the security headers to every response (plain ASGI: no per-request task overhead),
    and ``Strict-Transport-Security`` when ``hsts`` (the public base URL is https).

    It is also where an unhandled exception becomes a plain 500: Starlette's error middleware
    sits outside every user middleware, so its 500 would go out without these headers. The
    exception is raised again after the answer, so the server still logs its traceback.
    """

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        headers = {**SECURITY_HEADERS, **({"Strict-Transport-Security": HSTS} if hsts else {})}
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.csp = (b"content-security-policy", CONTENT_SECURITY_POLICY.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                html = any(
                    name.lower() == b"content-type" and value.startswith(b"text/html")
                    for name, value in message.get("headers", [])
                )
                if html and self.csp[0] not in present:
                    extra.append(self.csp)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            if started:  # too late for another answer: the server closes the connection
                raise
            body = b"internal server error\n"
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                        self.csp,  # it may stand in for an HTML page
                    ],
                }
            )
            await send_with_headers({"type": "http.response.body", "body": body})
            raise


class RequestBodyTooLarge(HTTPException):
    """Raised by :class:`BodyLimit`'s ``receive`` when a streamed body passes the limit; an
    HTTPException, so the framework answers 413 wherever the body was being read."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail=TOO_LARGE)


class BodyLimit:
    """Refuses a request body over ``max_bytes`` with 413: at once when Content-Length says so
    (the app is not called, nothing is read), else when the streamed (chunked) body passes the
    limit — the app never holds more than ``max_bytes`` of it. (Recent FastAPI releases have a
    ``max_body_size`` of their own; this does not depend on the FastAPI version installed.)"""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":  # the server has checked it is a number
                if value.isdigit() and (len(value) > 15 or int(value) > self.max_bytes):
                    await _too_large(scope, receive, send)
                    return
                break
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestBodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except RequestBodyTooLarge:
            if started:
                raise
            await _too_large(scope, receive, send)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"detail": TOO_LARGE}, status_code=413)(scope, receive, send)
