"""The composition root: builds the engine, session factory and clock once, from settings."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from scheduler.clock import Clock, SystemClock
from scheduler.errors import ConfigError, Problem, SchedulerError
from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine, make_session_factory, redact_url
from scheduler.resources import resource_dir
from scheduler.settings import MIN_SECRET_KEY_BYTES, Settings

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
    _secret: bytes | None = field(default=None, repr=False)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def horizon(self) -> timedelta:
        """How far ahead reminders are written to the outbox."""
        return timedelta(hours=self.settings.reminder_horizon_hours)

    def secret_key(self) -> bytes:
        """The server's secret: the setting, else a generated key kept in ``secret_key_file``
        (see :func:`read_or_create_key`); read once. Never used bare: each use (sessions,
        flash messages, CSRF tokens, the feed links in emails) signs with its own key derived
        from it (:func:`scheduler.services.admin.purpose_key`)."""
        if self._secret is None:
            if self.settings.secret_key is not None:
                self._secret = self.settings.secret_key.get_secret_value().encode()
            else:
                self._secret = read_or_create_key(self.settings.secret_key_file)
        return self._secret

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
        current = migrations.schema_revision(self.engine)
        if current != migrations.HEAD_REVISION:
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


def read_or_create_key(path: Path) -> bytes:
    """The secret key kept in the file at ``path``; generated there if there is none.

    Safe when several processes start at once (`cohort serve` and `cohort worker` on first
    boot): the key is written in full to a temporary file beside ``path`` (mode 0600, flushed
    to disk) and hard-linked into place, which fails if ``path`` exists; every process then
    reads whichever key was linked first. A reader never sees a partial file. A new folder is
    made mode 0700. A key shorter than ``MIN_SECRET_KEY_BYTES`` is a :class:`ConfigError`
    naming the file, never used.
    """
    try:
        return _checked_key(path, path.read_bytes())
    except FileNotFoundError:
        pass
    except OSError as e:
        raise _key_file_error(path, f"cannot be read: {e.strerror or e}") from e
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:  # mkstemp made it 0600
                f.write(secrets.token_urlsafe(48).encode() + b"\n")
                f.flush()
                os.fsync(f.fileno())
            with contextlib.suppress(FileExistsError):  # another process was first: use its key
                os.link(temp, path)
        finally:
            os.unlink(temp)
        _sync_folder(path.parent)
        return _checked_key(path, path.read_bytes())
    except OSError as e:
        raise _key_file_error(
            path,
            f"cannot be created: {e.strerror or e}",
            hint="make the folder writable, or set secret_key instead",
        ) from e


def _checked_key(path: Path, content: bytes) -> bytes:
    key = content.strip()
    if len(key) < MIN_SECRET_KEY_BYTES:
        raise _key_file_error(
            path,
            f"holds a key of {len(key)} bytes; it must be at least {MIN_SECRET_KEY_BYTES} bytes",
            hint="delete the file to have a new key generated (everyone logs in again and"
            " the feed links in earlier emails stop working), or set secret_key",
        )
    return key


def _key_file_error(path: Path, message: str, hint: str | None = None) -> ConfigError:
    return ConfigError(
        [Problem(message, str(path), field="secret_key_file", hint=hint)],
        "the secret key file is unusable",
    )


def _sync_folder(folder: Path) -> None:
    """Make a new entry in ``folder`` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
