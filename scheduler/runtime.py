"""The composition root: builds the engine, session factory and clock once, from settings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from scheduler.clock import Clock, SystemClock
from scheduler.errors import SchedulerError
from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine, make_session_factory, redact_url
from scheduler.settings import Settings


class NotMigratedError(SchedulerError):
    """The database has no tables yet, or an older schema."""


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits when the block succeeds, rolls back when it raises."""
        with self.sessions.begin() as db:
            yield db

    def require_schema(self) -> None:
        current = migrations.current_revision(self.engine)
        if current != migrations.head_revision(self.engine):
            where = redact_url(self.settings.database_url)
            state = "has no tables yet" if current is None else f"is at revision {current}"
            raise NotMigratedError(f"the database {where} {state}: run `cohort db upgrade` first")

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(settings: Settings, clock: Clock | None = None) -> Runtime:
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    engine = make_engine(settings.database_url)
    return Runtime(settings, engine, make_session_factory(engine), clock or SystemClock())
