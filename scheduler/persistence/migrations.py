"""Alembic, driven from code: the migration scripts ship inside the package (see resources).

Upgrades and downgrades are serialised across processes: on SQLite by an exclusive ``flock`` on a
``<database>.migrate.lock`` file beside the database, on PostgreSQL by a session advisory lock.
Whoever waits re-reads the revision once it holds the lock, so any number of ``cohort db upgrade``
started at once all succeed and leave the schema at head (the later ones find nothing to do).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from scheduler.errors import SchedulerError
from scheduler.resources import resource_dir

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic loads only to migrate or to read its scripts (0.15 s of every command otherwise):
# the newest revision is also written here, and tests/integration/test_storage.py checks that
# Alembic's scripts agree. Adding a migration means updating it.
HEAD_REVISION = "0016_fairness"

# Any fixed 64-bit key: "cohort-migrate" would do, but a number is what pg_advisory_lock takes.
PG_MIGRATION_LOCK = 0x636F686F72746D67
_UNKNOWN = re.compile(r"Can't locate revision identified by '([^']*)'")


class MigrationError(SchedulerError):
    """A migration cannot run: an unknown target revision, or a database of a newer version."""


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resource_dir("alembic")))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to ``revision``; returns the revisions (before, after), both read under the lock."""
    from alembic import command

    with migration_lock(engine):
        before = current_revision(engine)
        with _translated(engine, revision):
            command.upgrade(alembic_config(engine), revision)
        return before, current_revision(engine)


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    with migration_lock(engine), _translated(engine, revision):
        command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    """The newest revision of the migration scripts, as Alembic reads them."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def schema_revision(engine: Engine) -> str | None:
    """The database's revision (None for an empty database), read without loading Alembic."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the cross-process migration lock of ``engine``'s database for the block."""
    if engine.dialect.name == "postgresql":
        # A session lock on a connection of its own, held until the block ends: another
        # process's pg_advisory_lock waits for it, whatever connections the migration uses.
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PG_MIGRATION_LOCK})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": PG_MIGRATION_LOCK}
                )
                connection.commit()
        return
    lock_file = _sqlite_lock_file(engine)
    if lock_file is None:  # in memory: one process only
        yield
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed, or the process dies
        yield
    finally:
        os.close(fd)


def _sqlite_lock_file(engine: Engine) -> Path | None:
    url = engine.url
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    path = Path(database).expanduser()
    return path.with_name(path.name + ".migrate.lock")


@contextlib.contextmanager
def _translated(engine: Engine, revision: str) -> Iterator[None]:
    """Alembic's CommandError (a traceback in the CLI) as a :class:`MigrationError` naming the
    revision and the newest one this version knows."""
    from alembic.util.exc import CommandError

    try:
        yield
    except CommandError as e:
        head = head_revision(engine)
        unknown = _UNKNOWN.search(str(e))
        if unknown and unknown.group(1) != revision:
            message = (
                f"the database is at revision {unknown.group(1)!r}, which this version does not"
                f" know (made by a newer version?); the newest it knows is {head}"
            )
        elif unknown:
            message = f"unknown revision {revision!r}: the newest this version knows is {head}"
        else:
            message = f"cannot migrate to revision {revision!r} (head is {head}): {e}"
        raise MigrationError(message) from None
