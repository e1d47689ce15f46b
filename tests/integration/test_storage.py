"""Schema and column types on SQLite and a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from example_cohort import FOUR_LEARNERS
from sqlalchemy import func, inspect, select
from sqlalchemy.exc import StatementError

from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine
from scheduler.persistence.models import Base, CohortRow, PersonRow
from scheduler.runtime import NotMigratedError, Runtime

# Tables the step back over 0014-0016 drops (and so empties): learners' reminder choices and
# deadline shifts.
DROPPED_BY_STEPPING_BACK = {"reminder_opt_out", "reminder_pause", "catch_up_rule", "catch_up_shift"}


def test_upgrade_matches_models_and_downgrades(db_url: str) -> None:
    engine = make_engine(db_url)
    assert migrations.schema_revision(engine) is None  # empty: no alembic_version table
    migrations.upgrade(engine)
    assert migrations.current_revision(engine) == migrations.head_revision(engine)
    # The constant every command checks against (without loading Alembic) is the real head,
    # and the one-query reader agrees with Alembic's.
    assert migrations.head_revision(engine) == migrations.HEAD_REVISION
    assert migrations.schema_revision(engine) == migrations.current_revision(engine)
    with engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
    migrations.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert migrations.schema_revision(engine) is None
    migrations.upgrade(engine)  # and up again
    assert migrations.current_revision(engine) == migrations.head_revision(engine)
    engine.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/nested/dir/x.db")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def _person(email: str, at: datetime) -> PersonRow:
    return PersonRow(email=email, name="N", zone="UTC", created_at=at, updated_at=at)


def test_utc_column_returns_aware_utc(runtime: Runtime) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2027, 3, 14, 12, 0, tzinfo=kolkata)
    with runtime.transaction() as db:
        db.add(_person("a@example.org", moment))
    with runtime.transaction() as db:
        stored = db.scalar(select(PersonRow.created_at))
    assert stored == moment
    assert stored is not None and stored.tzinfo == UTC
    assert stored.hour == 6 and stored.minute == 30


def test_utc_column_rejects_naive(runtime: Runtime) -> None:
    with pytest.raises(StatementError, match="naive datetime"), runtime.transaction() as db:
        db.add(_person("b@example.org", datetime(2027, 1, 1, 12, 0)))  # noqa: DTZ001 - on purpose
        db.flush()
    with runtime.transaction() as db:
        assert db.scalar(select(PersonRow)) is None


def test_require_schema_explains_what_to_do(db_url: str) -> None:
    from scheduler.clock import SystemClock
    from scheduler.persistence.db import make_session_factory
    from scheduler.settings import Settings

    engine = make_engine(db_url)
    settings = Settings.model_construct(database_url=db_url)
    rt = Runtime(settings, engine, make_session_factory(engine), SystemClock())
    with pytest.raises(NotMigratedError, match="cohort db upgrade"):
        rt.require_schema()
    engine.dispose()


def test_cohort_slug_is_unique(runtime: Runtime) -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    fields = {
        "title": "T",
        "start_date": date(2027, 1, 4),
        "weeks": 1,
        "home_zone": "UTC",
        "locale": "en",
        "default_availability": "Mon 09:00-10:00",
        "anchor": "home",
        "target_coverage": 0.9,
        "max_sections": 6,
        "grid_minutes": 15,
        "quiet_start": 0,
        "quiet_end": 0,
        "source_text": "",
        "created_at": now,
        "updated_at": now,
    }
    with pytest.raises(Exception, match=r"(?i)unique"), runtime.transaction() as db:
        db.add(CohortRow(slug="same", **fields))
        db.add(CohortRow(slug="same", **fields))
        db.flush()


def test_a_downgrade_and_upgrade_keep_every_row(
    make_published: Callable[[list[list[str]]], Runtime],
) -> None:
    """Stepping back over migrations that rebuild `person` and `cohort` (SQLite's batch mode
    copies, drops and renames a table) and up again loses nothing: no cascade from the dropped
    parent deletes enrolments, tokens or outbox rows."""
    runtime = make_published(FOUR_LEARNERS)
    tables = [t for t in Base.metadata.sorted_tables if t.name not in DROPPED_BY_STEPPING_BACK]

    def counts() -> dict[str, int]:
        with runtime.engine.connect() as connection:
            return {
                t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                for t in tables
            }

    before = counts()
    assert before["enrollment"] and before["notification"] and before["occurrence"]
    migrations.downgrade(runtime.engine, "0013_send_ahead")
    migrations.upgrade(runtime.engine)
    assert counts() == before
