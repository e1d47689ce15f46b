"""The database as the runner handles it: migrate the schema, read its revision, name it in a
message with any password hidden. The edges (CLI, web, worker) use these, never the storage
layer itself."""

from __future__ import annotations

from sqlalchemy import Engine

from scheduler.persistence import migrations
from scheduler.persistence.db import redact_url


def upgrade_schema(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to ``revision`` (serialised with any other upgrade of the same database); the
    revisions (before, after)."""
    return migrations.upgrade(engine, revision)


def schema_revisions(engine: Engine) -> tuple[str | None, str | None]:
    """The database's revision (None when empty) and the newest this version knows."""
    return migrations.current_revision(engine), migrations.head_revision(engine)


def shown_url(url: str) -> str:
    """``url`` for a message or a log line: the password replaced by ``***``."""
    return redact_url(url)
