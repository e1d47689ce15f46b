"""The composition root: builds the engine, session factory and clock once, from settings."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from scheduler.clock import Clock, SystemClock
from scheduler.errors import SchedulerError
from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine, make_session_factory, redact_url
from scheduler.resources import resource_dir
from scheduler.settings import Settings

if TYPE_CHECKING:
    from scheduler.outputs.email import EmailTemplates
    from scheduler.outputs.mailers import Mailer
    from scheduler.services.delivery import DeliveryConfig


class NotMigratedError(SchedulerError):
    """The database has no tables yet, or an older schema."""


@dataclass(slots=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    _templates: EmailTemplates | None = field(default=None, repr=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def horizon(self) -> timedelta:
        """How far ahead reminders are written to the outbox."""
        return timedelta(hours=self.settings.reminder_horizon_hours)

    def secret_key(self) -> bytes:
        """The key that signs feed links in emails: the setting, else a generated key kept in
        ``secret_key_file`` (created once, mode 0600)."""
        if self.settings.secret_key is not None:
            return self.settings.secret_key.get_secret_value().encode()
        return _read_or_create_key(self.settings.secret_key_file)

    def templates(self) -> EmailTemplates:
        from scheduler.outputs.email import EmailTemplates

        if self._templates is None:
            self._templates = EmailTemplates(resource_dir("templates") / "email")
        return self._templates

    def mailer(self) -> Mailer:
        """The configured mailer: a maildir folder (default) or an SMTP server."""
        from scheduler.outputs.mailers import MaildirMailer, SmtpMailer

        s = self.settings
        if s.mail_backend == "maildir":
            return MaildirMailer(s.mail_dir)
        return SmtpMailer(
            s.smtp_host,
            s.smtp_port,
            security=s.smtp_security,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout=s.smtp_timeout,
        )

    def delivery_config(self) -> DeliveryConfig:
        from scheduler.services.delivery import DeliveryConfig

        s = self.settings
        return DeliveryConfig(
            sender=s.sender(),
            base_url=s.base_url,
            secret=self.secret_key(),
            batch_size=s.worker_batch_size,
            lease=timedelta(seconds=s.worker_lease_seconds),
            max_attempts=s.max_attempts,
            retry_base=timedelta(seconds=s.retry_base_seconds),
        )

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


def _read_or_create_key(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48) + "\n")
    return path.read_bytes().strip()
