"""The JSON API over real HTTP (uvicorn on 127.0.0.1): happy paths on SQLite and PostgreSQL,
401 without the admin token, and a bounded schemathesis run against the live OpenAPI document
(SQLite: it mutates the cohort as it goes)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis import GenerationMode
from sqlalchemy import select

from scheduler.clock import FixedClock
from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine, make_session_factory
from scheduler.persistence.models import NotificationRow, PersonRow
from scheduler.runtime import Runtime
from scheduler.services import publishing
from scheduler.services.admin import rotate_admin_token
from scheduler.services.cohorts import load_cohort
from scheduler.services.plans import plan_cohort
from scheduler.services.roster import import_roster
from scheduler.settings import Settings
from scheduler.web.app import create_app

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]
NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


@contextmanager
def serving(runtime: Runtime) -> Iterator[str]:
    """``create_app(runtime)`` served by uvicorn in a thread, on a port the OS picked."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(runtime), log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def admin_token(runtime: Runtime) -> str:
    with runtime.transaction() as db:
        token, _ = rotate_admin_token(db, runtime.clock.now())
    return token


@pytest.fixture
def api(
    make_published: Callable[[list[list[str]]], Runtime],
) -> Iterator[tuple[httpx.Client, Runtime]]:
    """A client with the admin token for the published example cohort, on each backend."""
    runtime = make_published(ROWS)
    token = admin_token(runtime)
    with (
        serving(runtime) as base,
        httpx.Client(
            base_url=f"{base}/api", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        yield client, runtime


# --- happy paths and auth, on SQLite and PostgreSQL ------------------------------------------


def test_without_a_valid_admin_token_every_route_answers_401(
    api: tuple[httpx.Client, Runtime],
) -> None:
    client, runtime = api
    base = str(client.base_url).rstrip("/")
    for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic x"}):
        answer = httpx.get(f"{base}/cohorts", headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"detail": "an admin token is required"}
        assert answer.headers["www-authenticate"] == "Bearer"
    added = httpx.post(
        f"{base}/cohorts/{SLUG}/learners",
        json={"name": "Eve", "email": "eve@example.org", "zone": "UTC"},
    )
    assert added.status_code == 401
    with runtime.transaction() as db:  # nothing was written
        assert db.scalar(select(PersonRow).where(PersonRow.email == "eve@example.org")) is None
    assert client.get("/cohorts").status_code == 200  # and the right token works


def test_cohorts_summary_occurrences_and_status(api: tuple[httpx.Client, Runtime]) -> None:
    client, _ = api
    cohorts = client.get("/cohorts").json()
    assert cohorts == [
        {
            "slug": SLUG,
            "title": "Machine Learning Foundations, Spring 2027",
            "start_date": "2027-03-01",
            "weeks": 8,
            "home_zone": "Europe/Berlin",
            "locale": "en_GB",
            "learners": 3,
            "facilitators": 3,
            "published_version": 1,
        }
    ]
    summary = client.get(f"/cohorts/{SLUG}").json()
    plan = summary["plan"]
    assert plan["learners"] == 3 and plan["anchor_zone"] == "Europe/Berlin"
    classes = [s for s in plan["sections"] if s["series"] == "class"]
    assert classes and min(s["section"] for s in classes) == 1  # numbered from 1
    seated = sum(s["size"] for s in classes)
    left = {x["learner"] for x in plan["left_out"] if x["series"] == "class"}
    assert seated + len(left) == 3
    assert plan["diff"]["published_version"] == 1 and plan["diff"]["added"] == 0
    assert {p["series"] for p in summary["published"]} == {"class", "cowork", "office-hours"}

    since = "2027-03-08T00:00:00+01:00"
    upcoming = client.get(f"/cohorts/{SLUG}/occurrences", params={"from": since, "limit": 5})
    assert upcoming.status_code == 200
    rows = upcoming.json()
    starts = [datetime.fromisoformat(r["start"]) for r in rows]
    assert len(rows) == 5 and starts == sorted(starts)
    assert starts[0] >= datetime.fromisoformat(since)
    assert all(r["week"] >= 2 and r["status"] == "scheduled" for r in rows)
    members = {(p["series"], p["section"]): p["members"] for p in summary["published"]}
    for r in rows:
        if r["kind"] != "coworking":
            assert r["expected_attendance"] == members[(r["series"], r["section"])]
    naive = client.get(f"/cohorts/{SLUG}/occurrences", params={"from": "2027-03-08T00:00:00"})
    assert naive.status_code == 422
    assert naive.json()["detail"][0]["field"] == "from"

    status = client.get("/status").json()
    assert status["notifications"]["pending"] > 0  # welcome emails and invitations
    assert status["due"] == status["notifications"]["pending"]
    assert status["workers"] == [] and status["recent_failures"] == []


def test_learner_add_move_and_withdraw(api: tuple[httpx.Client, Runtime]) -> None:
    client, runtime = api
    path = f"/cohorts/{SLUG}/learners"
    added = client.post(
        path,
        json={"name": "Ana Gómez", "email": "Ana@Example.org", "zone": "CO", "locale": "es-CO"},
    )
    assert added.status_code == 201, added.text
    assert added.json() | {"enrolled_at": None} == {
        "email": "ana@example.org",
        "name": "Ana Gómez",
        "zone": "America/Bogota",
        "availability": "Mon-Fri 18:00-22:00; Sat 09:00-13:00",
        "availability_is_default": True,
        "locale": "es_CO",
        "locale_is_default": False,
        "status": "active",
        "enrolled_at": None,
        "left_at": None,
    }
    again = client.post(path, json={"name": "Ana", "email": "ana@example.org", "zone": "UTC"})
    assert again.status_code == 422
    assert "already a learner" in again.json()["detail"][0]["message"]
    roster = client.get(path).json()
    assert [x["email"] for x in roster] == [
        "ana@example.org",
        "lea@example.org",
        "sam@example.org",
        "yuki@example.org",
    ]

    moved = client.patch(f"{path}/ana@example.org", json={"zone": "Europe/Madrid"})
    assert moved.status_code == 200 and moved.json()["zone"] == "Europe/Madrid"
    bad = client.patch(f"{path}/ana@example.org", json={"zone": "Mars", "availability": "often"})
    assert bad.status_code == 422
    assert [(p["field"], bool(p["hint"])) for p in bad.json()["detail"]] == [
        ("zone", True),
        ("availability", True),
    ]
    typo = client.patch(f"{path}/ana@example.org", json={"timezone": "UTC"})
    assert typo.status_code == 422 and typo.json()["detail"][0]["field"] == "timezone"

    gone = client.delete(f"{path}/ana@example.org")
    assert gone.status_code == 200
    assert gone.json()["status"] == "withdrawn" and gone.json()["left_at"] is not None
    with runtime.transaction() as db:
        welcome = db.scalars(
            select(NotificationRow.status)
            .join(PersonRow, PersonRow.id == NotificationRow.person_id)
            .where(PersonRow.email == "ana@example.org", NotificationRow.kind == "welcome")
        ).all()
    assert welcome == ["cancelled"]  # not sent after she left
    assert client.delete(f"{path}/nobody@example.org").status_code == 404
    assert client.get("/cohorts/no-such-cohort/learners").status_code == 404


def test_change_preview_then_apply(api: tuple[httpx.Client, Runtime]) -> None:
    client, _ = api
    body: dict[str, Any] = {"series": "class", "week": 3, "to": "Fri 09:00"}
    preview = client.post(f"/cohorts/{SLUG}/changes/preview", json=body)
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert [m["week"] for m in shown["occurrences"]] == [3]
    assert shown["emails"] == shown["people"] >= 2
    before = client.get(f"/cohorts/{SLUG}").json()["cohort"]["published_version"]
    assert before == 1  # a preview changes nothing

    applied = client.post(f"/cohorts/{SLUG}/changes", json=body)
    assert applied.status_code == 200, applied.text
    result = applied.json()
    assert result["version"] == 2
    assert result["invites"]["updates"] == shown["emails"]
    uid = shown["occurrences"][0]["uid"]
    listed = client.get(f"/cohorts/{SLUG}/occurrences", params={"limit": 1000}).json()
    occurrence = next(o for o in listed if o["uid"] == uid)
    assert occurrence["sequence"] == 1
    assert occurrence["start"] == shown["occurrences"][0]["new_start"]

    cancel = client.post(f"/cohorts/{SLUG}/changes", json={"series": "class", "from_week": 7})
    assert cancel.status_code == 200 and cancel.json()["version"] == 3

    wrong = client.post(
        f"/cohorts/{SLUG}/changes", json={"series": "class", "week": 2, "from_week": 3, "to": "Fry"}
    )
    assert wrong.status_code == 422
    assert [p["field"] for p in wrong.json()["detail"]] == ["from_week", "to"]
    missing = client.post(f"/cohorts/{SLUG}/changes", json={"series": "nope", "week": 2})
    assert missing.status_code == 404
    assert "class" in missing.json()["detail"]  # names the published series


# --- schemathesis against the live OpenAPI document (SQLite) -----------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The published example cohort on SQLite, served over HTTP: (base URL, admin token)."""
    work = tmp_path_factory.mktemp("api")
    url = f"sqlite:///{work / 'api.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    settings_ = Settings.model_construct(
        database_url=url,
        base_url="http://test",
        log_level="WARNING",
        secret_key=SecretStr("test-secret-key-that-is-long-enough-0123456789"),
        mail_dir=work / "outbox",
        retry_base_seconds=30.0,
    )
    runtime = Runtime(settings_, engine, make_session_factory(engine), FixedClock(NOW))
    roster = "name,email,timezone,availability,locale\n" + "".join(
        ",".join(row[:5]) + "\n" for row in ROWS
    )
    example = Path(__file__).resolve().parents[2] / "examples" / "cohort.toml"
    with runtime.transaction() as db:
        load_cohort(db, example.read_text(encoding="utf-8"), "cohort.toml", NOW)
        import_roster(db, SLUG, roster.encode(), "roster.csv", NOW)
        _, _, plan = plan_cohort(db, SLUG)
        publishing.publish(db, SLUG, plan, NOW)
    token = admin_token(runtime)
    with serving(runtime) as base:
        yield base, token
    runtime.close()


OPERATIONS = [
    ("GET", "/api/cohorts"),
    ("GET", "/api/cohorts/{slug}"),
    ("GET", "/api/cohorts/{slug}/occurrences"),
    ("GET", "/api/cohorts/{slug}/learners"),
    ("POST", "/api/cohorts/{slug}/learners"),
    ("PATCH", "/api/cohorts/{slug}/learners/{email}"),
    ("DELETE", "/api/cohorts/{slug}/learners/{email}"),
    ("POST", "/api/cohorts/{slug}/changes/preview"),
    ("POST", "/api/cohorts/{slug}/changes"),
    ("GET", "/api/status"),
]


@pytest.fixture(scope="module")
def api_schema(live: tuple[str, str]) -> Any:
    """The OpenAPI document as the live server serves it, with hooks that now and then put a
    real cohort, learner or series in the generated requests, so routes get past their 404."""
    base, _ = live
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    known = [row[1] for row in ROWS]

    @schema.hook
    def flatmap_path_parameters(context: Any, parameters: dict[str, Any] | None) -> Any:
        if not parameters or "slug" not in parameters:
            return st.just(parameters)
        real = {**parameters, "slug": SLUG}
        if "email" in parameters:
            return st.sampled_from([parameters, real, *({**real, "email": e} for e in known)])
        return st.sampled_from([parameters, real, real])

    newcomers = [
        {"name": "Tess", "email": "tess@example.org", "zone": "Asia/Kolkata"},
        {
            "name": "Ola",
            "email": "ola@example.org",
            "zone": "NG",
            "availability": "daily 18:00-22:00",
        },
        {"name": "Yuki", "email": "yuki@example.org", "zone": "JP", "locale": "ja"},
    ]

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        if isinstance(body, dict) and isinstance(body.get("series"), str):
            return st.sampled_from(
                [
                    body,
                    {**body, "series": "class"},
                    {**body, "series": "class", "from_week": None, "to": "Wed 18:30"},
                    {**body, "series": "cowork", "week": None, "to": None},
                ]
            )
        if isinstance(body, dict) and {"name", "email", "zone"} <= body.keys():
            return st.sampled_from([body, *newcomers])
        return st.just(body)

    return schema


def test_the_document_lists_every_api_operation(api_schema: Any) -> None:
    listed = {
        (op.method.upper(), op.path)
        for op in (result.ok() for result in api_schema.get_all_operations())
        if op.path.startswith("/api/")
    }
    assert listed == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_api_conforms_to_its_openapi_document(
    api_schema: Any, live: tuple[str, str], method: str, path: str
) -> None:
    """Valid and invalid requests alike: never a server error, every answer as documented.

    (Each operation's cases come from its strategy: ``schemathesis.pytest.from_fixture`` reads
    ``Item._nodeid``, which pytest 9.2 no longer has.)"""
    _, token = live
    operation = api_schema[path][method]
    valid = operation.as_strategy(GenerationMode.POSITIVE)
    invalid = operation.as_strategy(GenerationMode.NEGATIVE)
    for cases, examples in ((valid, 30), (invalid, 15)):

        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=cases)
        def check(case: Any) -> None:
            case.call_and_validate(
                headers={"Authorization": f"Bearer {token}"},
                checks=[
                    schemathesis.checks.not_a_server_error,
                    schemathesis.checks.response_schema_conformance,
                ],
            )

        check()
