"""The JSON API authenticates before it reads anything else, in process (the real
``create_app``, SQLite): without a valid admin token every route answers 401, whatever the body,
and the body is not even read; with one, a body that cannot be parsed is 422 as before."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from starlette.exceptions import StarletteDeprecationWarning
from starlette.types import Message, Scope

from scheduler.clock import FixedClock
from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine, make_session_factory
from scheduler.runtime import Runtime
from scheduler.services.admin import rotate_admin_token
from scheduler.settings import Settings
from scheduler.web.app import create_app

with warnings.catch_warnings():  # starlette would rather have httpx2; httpx is what we have
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

SLUG = "ml-foundations-2027"
NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
# every API route that takes a body
WITH_BODY = [
    ("POST", f"/api/cohorts/{SLUG}/learners"),
    ("PATCH", f"/api/cohorts/{SLUG}/learners/yuki@example.org"),
    ("POST", f"/api/cohorts/{SLUG}/changes/preview"),
    ("POST", f"/api/cohorts/{SLUG}/changes"),
]
NO_TOKEN = [{}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic eDp5"}]
BAD_BODIES = [b"{bad", b"", b"[]", b'{"name": 1}', b"\xff\xfe", b"null"]


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    token: str


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    work = tmp_path_factory.mktemp("api-hardening")
    url = f"sqlite:///{work / 'api.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    settings = Settings.model_construct(
        database_url=url,
        base_url="http://testserver",
        log_level="WARNING",
        secret_key=SecretStr("api-hardening-key-that-is-long-enough-0123456789"),
        mail_dir=work / "outbox",
    )
    runtime = Runtime(settings, engine, make_session_factory(engine), FixedClock(NOW))
    with runtime.transaction() as db:
        token, _ = rotate_admin_token(db, NOW)
    app = create_app(runtime)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(app, client, token)
    runtime.close()


@pytest.mark.parametrize("headers", NO_TOKEN, ids=["no_header", "wrong_token", "basic"])
@pytest.mark.parametrize(("method", "path"), WITH_BODY, ids=[f"{m} {p}" for m, p in WITH_BODY])
def test_without_a_token_a_bad_body_is_401_not_422(
    api: Api, method: str, path: str, headers: dict[str, str]
) -> None:
    for body in BAD_BODIES:
        answer = api.client.request(
            method,
            path,
            content=body,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert answer.status_code == 401, (body, answer.text)
        assert answer.json() == {"detail": "an admin token is required"}
        assert answer.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path"), WITH_BODY, ids=[f"{m} {p}" for m, p in WITH_BODY])
def test_with_the_token_a_bad_body_is_still_422(api: Api, method: str, path: str) -> None:
    answer = api.client.request(
        method,
        path,
        content=b"{bad",
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["detail"]
    assert problem["source"] == "body" and "JSON" in problem["message"]


def _call(
    app: FastAPI, method: str, path: str, headers: list[tuple[bytes, bytes]]
) -> list[Message]:
    """Call the app as a server would; return what it sent, and fail if it read the body."""
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("the body was read before the request was authenticated")

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }
    anyio.run(app, scope, receive, send)
    return sent


@pytest.mark.parametrize(("method", "path"), WITH_BODY, ids=[f"{m} {p}" for m, p in WITH_BODY])
def test_without_a_token_the_body_is_never_read(api: Api, method: str, path: str) -> None:
    for headers in ([], [(b"authorization", b"Bearer not-the-token")]):
        sent = _call(api.app, method, path, [(b"content-length", b"5"), *headers])
        assert sent[0]["type"] == "http.response.start"
        assert sent[0]["status"] == 401


def test_the_openapi_document_stays_public(api: Api) -> None:
    answer = api.client.get("/api/openapi.json")
    assert answer.status_code == 200
    document = answer.json()
    operation = document["paths"]["/api/cohorts/{slug}/learners"]["post"]
    assert "401" in operation["responses"] and "422" in operation["responses"]
    assert operation["security"] == [{"HTTPBearer": []}]
