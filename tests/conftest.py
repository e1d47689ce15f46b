"""Fixtures shared by unit and integration tests: factories, the databases, the CLI runner."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings
from pydantic import SecretStr
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))

from pg import PgServer

from scheduler.clock import FixedClock
from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine, make_session_factory
from scheduler.runtime import Runtime
from scheduler.settings import Settings

# CI runs the property tests on a fixed seed so a landing never depends on luck; local runs keep
# exploring new examples (a failure found here gets a regression test of its own).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_COHORT = REPO / "examples" / "cohort.toml"
NOW = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def example_cohort_text() -> str:
    return EXAMPLE_COHORT.read_text(encoding="utf-8")


@pytest.fixture
def make_roster() -> Callable[..., bytes]:
    """Build roster CSV bytes from rows; ``header`` and ``delimiter`` can be overridden."""

    def build(
        rows: list[list[str]],
        header: tuple[str, ...] = ("name", "email", "timezone", "availability", "locale", "role"),
        delimiter: str = ",",
        bom: bool = False,
    ) -> bytes:
        lines = [delimiter.join(header), *(delimiter.join(r) for r in rows)]
        data = ("\n".join(lines) + "\n").encode("utf-8")
        return (b"\xef\xbb\xbf" + data) if bom else data

    return build


# --- databases -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = PgServer.start()
    yield server
    server.stop()


_counter = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database on each backend: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = f"t{os.getpid()}_{next(_counter)}"
    admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.url(name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def runtime(db_url: str, tmp_path: Path) -> Iterator[Runtime]:
    """A migrated database on each backend, with a fixed clock."""
    engine = make_engine(db_url)
    migrations.upgrade(engine)
    settings = Settings.model_construct(
        database_url=db_url,
        base_url="http://test",
        log_level="WARNING",
        secret_key=SecretStr("test-secret-key-that-is-long-enough-0123456789"),
        mail_dir=tmp_path / "outbox",
        retry_base_seconds=30.0,
    )
    rt = Runtime(settings, engine, make_session_factory(engine), FixedClock(NOW))
    yield rt
    rt.close()


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path) -> dict[str, Any]:
    """Environment for running the real `cohort` command against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    env["COHORT_DATABASE_URL"] = db_url
    env["COLUMNS"] = "200"
    return env
