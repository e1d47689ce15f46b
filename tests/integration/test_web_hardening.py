"""Hardening of `cohort serve`: security headers on every answer (500s included, HSTS with an
https base URL), the Secure session cookie, the request body limit (413), the access log over
real HTTP, and the rate limiter keyed on the forwarded client only behind a trusted proxy."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter
from pydantic import SecretStr
from served_app import serving
from starlette.exceptions import StarletteDeprecationWarning
from starlette.types import ASGIApp, Message

from scheduler.clock import FixedClock
from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine, make_session_factory
from scheduler.runtime import Runtime
from scheduler.services.admin import rotate_admin_token
from scheduler.settings import Settings
from scheduler.web.app import CONTENT_SECURITY_POLICY, create_app
from scheduler.web.logs import AccessLog

with warnings.catch_warnings():  # starlette would rather have httpx2; httpx is what we have
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
MiB = 1024 * 1024
SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


@pytest.fixture
def make_runtime(tmp_path: Path) -> Iterator[Callable[..., Runtime]]:
    made: list[Runtime] = []

    def make(**settings: Any) -> Runtime:
        url = f"sqlite:///{tmp_path / f'web{len(made)}.db'}"
        engine = make_engine(url)
        migrations.upgrade(engine)
        values: dict[str, Any] = {
            "database_url": url,
            "base_url": "http://127.0.0.1:8000",
            "log_level": "WARNING",
            "secret_key": SecretStr("hardening-test-key-that-is-long-enough-012345"),
            "mail_dir": tmp_path / "outbox",
        }
        runtime = Runtime(
            Settings.model_construct(**(values | settings)),
            engine,
            make_session_factory(engine),
            FixedClock(NOW),
        )
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()


def admin_token(runtime: Runtime) -> str:
    with runtime.transaction() as db:
        token, _ = rotate_admin_token(db, NOW)
    return token


# --- HSTS and the session cookie ---------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/login", "/feeds/nope.ics", "/api/cohorts"])
def test_https_base_url_sends_hsts(make_runtime: Callable[..., Runtime], path: str) -> None:
    secure = TestClient(create_app(make_runtime(base_url="https://cohort.example.org")))
    plain = TestClient(create_app(make_runtime(base_url="http://127.0.0.1:8000")))
    assert secure.get(path).headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in plain.get(path).headers


@pytest.mark.parametrize(
    ("base_url", "secure"),
    [("https://cohort.example.org", True), ("http://127.0.0.1:8000", False)],
    ids=["https_base_url", "http_base_url"],
)
def test_session_cookie_is_secure_with_an_https_base_url(
    make_runtime: Callable[..., Runtime], base_url: str, secure: bool
) -> None:
    runtime = make_runtime(base_url=base_url)
    client = TestClient(create_app(runtime), follow_redirects=False)
    response = client.post("/login", data={"token": admin_token(runtime), "next": "/"})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert ("; secure" in cookie.lower()) is secure


# --- 500s --------------------------------------------------------------------------------------


def test_an_unhandled_error_is_a_plain_500_with_the_security_headers(
    make_runtime: Callable[..., Runtime],
) -> None:
    app = create_app(make_runtime(base_url="https://cohort.example.org"))
    broken = APIRouter()

    @broken.get("/broken")
    def fail() -> None:
        raise RuntimeError("secret detail /srv/cohort/app.py line 42")

    app.include_router(broken)
    response = TestClient(app, raise_server_exceptions=False).get("/broken")
    assert response.status_code == 500
    for name, value in SECURITY.items():
        assert response.headers[name] == value
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["strict-transport-security"] == "max-age=31536000"
    assert "Traceback" not in response.text
    assert "secret detail" not in response.text and "RuntimeError" not in response.text


# --- the request body limit --------------------------------------------------------------------


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


def test_twenty_megabyte_bodies_are_413_over_http(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    token = admin_token(runtime)
    bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    body = b"x" * (20 * MiB)
    with serving(create_app(runtime)) as base, httpx.Client(base_url=base, timeout=60) as client:
        for path, headers in (
            ("/api/cohorts/demo/learners", bearer),
            ("/login", form),
            ("/cohorts/demo/learners", form),
        ):
            declared = client.post(path, content=body, headers=headers)  # Content-Length
            assert declared.status_code == 413, (path, declared.text[:200])
            assert declared.headers["x-content-type-options"] == "nosniff"
            streamed = client.post(path, content=_chunks(20 * MiB), headers=headers)  # chunked
            assert streamed.status_code in (413, 303), (path, streamed.text[:200])
            if path != "/cohorts/demo/learners":  # the dashboard route asks for a login first
                assert streamed.status_code == 413, path
        # under the limit, the same routes answer as before
        small = client.post("/login", data={"token": "wrong", "next": "/"})
        assert small.status_code == 401
        missing = client.post(
            "/api/cohorts/demo/learners",
            json={"name": "Ann", "email": "ann@example.org", "zone": "Europe/Berlin"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert missing.status_code == 404


async def _drive(
    app: ASGIApp, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, int]:
    """Run one POST through ``app``: (status, body bytes handed to the app)."""
    handed = 0
    pending = list(chunks)
    status = 0

    async def receive() -> Message:
        nonlocal handed
        chunk = pending.pop(0) if pending else b""
        handed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": headers}
    await app(scope, receive, send)
    return status, handed


def test_the_body_limit_reads_no_more_than_the_limit() -> None:
    from scheduler.web.app import BodyLimit

    async def read_all(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limited = BodyLimit(read_all, max_bytes=MiB)
    chunks = [b"x" * (64 * 1024)] * 320  # 20 MiB
    declared = [(b"content-length", str(20 * MiB).encode())]
    assert asyncio.run(_drive(limited, declared, chunks)) == (413, 0)  # nothing read
    status, handed = asyncio.run(_drive(limited, [], chunks))  # chunked
    assert status == 413 and handed <= MiB + 64 * 1024
    assert asyncio.run(_drive(limited, [], [b"x" * MiB])) == (200, MiB)  # at the limit: fine


# --- the access log over real HTTP -------------------------------------------------------------


def test_access_log_over_http_is_one_line_per_request_and_redacted(
    make_runtime: Callable[..., Runtime],
) -> None:
    stream = io.StringIO()
    log = AccessLog(create_app(make_runtime()), stream=stream, every=3600)
    requests = [
        b"/x%0a2026-12-02%2008:10:00,000%20access%20-%20200%0a%1b[31mRED",
        b"/csi%C2%9B2J%E2%80%AE",
        b"/feeds//TOKENtoken123.ics",
        b"/ME/TOKENtoken123",
        b"/me/TOKENtoken123/",
        b"/feeds%2FTOKENtoken123.ics",
    ]
    with serving(log) as base:
        port = int(base.rsplit(":", 1)[1])
        for target in requests:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(
                    b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                while sock.recv(65536):
                    pass
    log.close()
    text = stream.getvalue()
    lines = text.splitlines()
    assert len(lines) == len(requests), text
    assert all(" access 127.0.0.1:" in line for line in lines)
    assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text
    assert "\\x1b[31mRED" in lines[0] and "\\x9b2J\\u202e" in lines[1]
    assert "TOKENtoken123" not in text
    assert sum("[redacted]" in line for line in lines) == 4


# --- behind a reverse proxy --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def cohort_serve(work: Path, **env_settings: str) -> Iterator[str]:
    """The real `cohort serve` on a free port over a fresh SQLite database."""
    exe = shutil.which("cohort", path=str(Path(sys.executable).parent)) or "cohort"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    env |= {
        "COHORT_DATABASE_URL": f"sqlite:///{work / 'c.db'}",
        "COHORT_BASE_URL": f"http://127.0.0.1:{port}",
        "COHORT_FEED_RATE_PER_MINUTE": "3",
        **{f"COHORT_{k.upper()}": v for k, v in env_settings.items()},
    }
    work.mkdir(parents=True, exist_ok=True)
    upgrade = subprocess.run(
        [exe, "db", "upgrade"], env=env, cwd=work, capture_output=True, text=True, timeout=120
    )
    assert upgrade.returncode == 0, upgrade.stderr
    with (work / "server.log").open("w") as log:
        process = subprocess.Popen(
            [exe, "serve", "--port", str(port)], env=env, cwd=work, stdout=log, stderr=log
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError((work / "server.log").read_text())
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=10)


def _feed_codes(base: str, forwarded: list[str]) -> list[int]:
    return [
        httpx.get(f"{base}/feeds/nope.ics", headers={"X-Forwarded-For": ip}).status_code
        for ip in forwarded
    ]


def test_rate_limit_keys_on_the_forwarded_client_only_behind_a_trusted_proxy(
    tmp_path: Path,
) -> None:
    clients = [f"203.0.113.{i}" for i in range(1, 7)]
    with cohort_serve(tmp_path / "proxied", forwarded_allow_ips="127.0.0.1") as base:
        assert _feed_codes(base, clients) == [404] * 6  # six clients, each under the limit
        assert _feed_codes(base, ["198.51.100.7"] * 4) == [404, 404, 404, 429]
    with cohort_serve(tmp_path / "direct") as base:  # default: proxy headers are ignored
        assert _feed_codes(base, clients[:4]) == [404, 404, 404, 429]
    text = (tmp_path / "proxied" / "server.log").read_text()
    assert "trusting X-Forwarded-For from 127.0.0.1" in text
    assert " access 198.51.100.7:" in text  # the access log names the real client too


def test_untrusted_proxy_headers_are_ignored(tmp_path: Path) -> None:
    with cohort_serve(tmp_path / "other", forwarded_allow_ips="192.0.2.1") as base:
        assert _feed_codes(base, [f"203.0.113.{i}" for i in range(4)]) == [404, 404, 404, 429]
