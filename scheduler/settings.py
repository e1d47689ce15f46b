"""Configuration: defaults < the ``[settings]`` table of the config file < ``COHORT_*`` environment
< command-line flags. A bad value is reported with the place it came from."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from scheduler.errors import ConfigError, Problem
from scheduler.outputs.links import BASE_URL

ENV_PREFIX = "COHORT_"
DEFAULT_CONFIG_FILE = Path("cohort.toml")
MIN_SECRET_KEY_BYTES = 32
# Settings whose values are never printed, in errors or anywhere else.
SECRET_SETTINGS = frozenset({"secret_key", "smtp_password"})
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


class Settings(BaseSettings):
    """Every setting the product reads. Field descriptions double as documentation (README)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    database_url: str = Field(
        "sqlite:///var/cohort.db",
        description="SQLAlchemy URL: sqlite:///PATH (default) or postgresql+psycopg://USER:PASS@HOST/DB",
        repr=False,  # may hold a password
    )
    base_url: str = Field(
        "http://127.0.0.1:8000", description="public URL of `cohort serve`, for links"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "WARNING", description="log verbosity"
    )
    default_cohort: str | None = Field(
        None,
        description="the cohort commands act on when --cohort is left out and several are stored",
    )
    feed_rate_per_minute: int = Field(
        120, ge=1, description="calendar feed fetches allowed per client IP per minute"
    )

    secret_key: SecretStr | None = Field(
        None,
        description="key that signs sessions and the feed links put in emails (at least 32 bytes);"
        " unset: generated once and kept in secret_key_file",
    )
    secret_key_file: Path = Field(
        Path("var/secret.key"), description="where the generated secret key is kept (mode 0600)"
    )
    mail_backend: Literal["maildir", "smtp"] = Field(
        "maildir", description="maildir: write mail to mail_dir (no server needed); smtp: send"
    )
    mail_dir: Path = Field(
        Path("var/outbox"), description="the maildir folder for mail_backend=maildir"
    )
    mail_from: str = Field(
        "Cohort Scheduler <cohort@localhost>",
        description="sender of every email and organizer of invitations: 'Name <address>'",
    )
    smtp_host: str = Field("localhost", description="SMTP server")
    smtp_port: int = Field(587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 TLS)")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        "starttls", description="none (loopback only), starttls, or tls (implicit)"
    )
    smtp_username: str | None = Field(None, description="SMTP login; unset: no AUTH")
    smtp_password: SecretStr | None = Field(None, description="SMTP password (never logged)")
    smtp_timeout: float = Field(30.0, gt=0, description="seconds before an SMTP call gives up")
    mail_rate_per_second: float | None = Field(
        None,
        gt=0,
        le=100_000,
        description="the most messages per second the mail server accepts, honoured by all"
        " workers together (slowed down further while it answers 'too fast'); unset: no limit",
    )
    worker_batch_size: int = Field(
        50, ge=1, le=1000, description="notifications a worker claims and sends per batch"
    )
    worker_tick_seconds: float = Field(
        1.0, gt=0, le=60, description="how often the worker looks for due notifications"
    )
    worker_lease_seconds: int = Field(
        120, ge=10, description="a claimed batch returns to the queue after this if its worker dies"
    )
    reminder_horizon_hours: int = Field(
        48, ge=1, le=24 * 14, description="reminders are written to the outbox this far ahead"
    )
    second_host_threshold: int = Field(
        15, ge=1, description="the dashboard flags live sessions expecting more learners"
    )
    retry_base_seconds: float = Field(
        30.0, gt=0, description="first retry delay after a temporary failure; doubles each time"
    )
    max_attempts: int = Field(
        10, ge=1, description="temporary failures retried (with backoff) up to this many times"
    )
    forwarded_allow_ips: str | None = Field(
        None,
        description="reverse proxies trusted for X-Forwarded-For/-Proto: comma-separated IPs or"
        " networks (e.g. 127.0.0.1); unset: proxy headers are ignored",
    )
    max_body_bytes: int = Field(
        1_048_576, ge=1024, description="largest request body `cohort serve` accepts (else 413)"
    )

    @field_validator("mail_from")
    @classmethod
    def _address(cls, value: str) -> str:
        name, address = parseaddr(value)
        if "@" not in address or any(c in value for c in "\r\n"):
            raise ValueError("must look like 'Name <address@example.org>'")
        return f"{name} <{address}>" if name else address

    def sender(self) -> tuple[str, str]:
        """(display name, address) of ``mail_from``."""
        return parseaddr(self.mail_from)

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "sqlite+pysqlite:", "postgresql")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        value = value.rstrip("/")
        if not BASE_URL.fullmatch(value):
            raise ValueError(
                "must be a plain address: http(s)://, a host, an optional :port and path "
                "(ASCII: percent-encode other characters), no user, ?query or #fragment"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_KEY_BYTES:
            raise ValueError(
                f"must be at least {MIN_SECRET_KEY_BYTES} bytes long"
                " (for example: python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _networks(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item[:60]!r} is not an IP address or network (or *)") from None
        return ",".join(items)

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> Settings:
        if (
            self.mail_backend == "smtp"
            and self.smtp_security == "none"
            and (self.smtp_username or self.smtp_password)
            and not is_loopback_host(self.smtp_host)
        ):
            raise ValueError(
                'smtp_security = "none" would send the SMTP password in clear to'
                f" {self.smtp_host[:80]!r}: use starttls or tls (none is for a server on loopback)"
            )
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Build settings from every source; ``flags`` are command-line values (None means unset).

    ``config_file`` defaults to ``./cohort.toml`` if present; only ``[settings]`` is read.
    """
    flags = {k: v for k, v in flags.items() if v is not None}
    path = (
        config_file
        if config_file is not None
        else (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None)
    )
    if config_file is not None and not config_file.exists():
        raise ConfigError(
            [Problem("does not exist", str(config_file), field="--config")], "config file not found"
        )

    class _FromSources(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if path is not None:
                sources.append(InitSettingsSource(settings_cls, _settings_table(path)))
            return tuple(sources)

    try:
        loaded = _FromSources(**flags)
    except ValidationError as e:
        raise ConfigError(
            [_problem(err, flags, path) for err in e.errors()], "settings are invalid"
        ) from e
    return Settings.model_construct(**loaded.model_dump())


def _settings_table(path: Path) -> dict[str, Any]:
    """The ``[settings]`` table of a config file; a file without one (a cohort file kept where
    commands run) sets nothing.

    The file must be a regular file of at most 1 MiB of UTF-8 TOML: a device (``/dev/zero``), a
    pipe, a larger file, or a document nested deeper than the parser can follow is refused with
    a :class:`ConfigError` naming the file, before anything else runs.
    """
    import stat

    max_bytes, max_depth = 1024 * 1024, 32

    def invalid(message: str) -> ConfigError:
        return ConfigError([Problem(message, str(path))], "config file is invalid")

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without a writer
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise invalid("is not a regular file")
        with os.fdopen(fd, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise invalid(f"cannot be read: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise invalid(f"is larger than {max_bytes // (1024 * 1024)} MiB")
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise invalid(f"is not UTF-8 text (byte 0x{data[e.start]:02x} on line {line})") from None
    except tomllib.TOMLDecodeError as e:
        raise invalid(f"cannot be read as TOML: {e}") from None
    except RecursionError:
        raise invalid("cannot be read as TOML: arrays or tables nested too deeply") from None
    table = document.get("settings", {})
    if not isinstance(table, dict):
        raise ConfigError(
            [Problem("must be a table", str(path), field="settings")], "config file is invalid"
        )
    # Settings are scalars: a value nested deeper than this is refused here, before anything
    # (validation, error messages) walks it recursively.
    stack: list[tuple[object, int]] = [(table, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            raise ConfigError(
                [Problem("nests arrays or tables too deeply", str(path), field="settings")],
                "config file is invalid",
            )
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return table


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine's loopback interface (``localhost``, 127.0.0.0/8,
    ``::1``): the one place a password may travel without TLS."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redact_secrets(text: str) -> str:
    """``text`` with any password in a URL (``scheme://user:PASSWORD@host``) hidden."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def _problem(error: Any, flags: dict[str, Any], path: Path | None) -> Problem:
    name = str(error["loc"][0]) if error["loc"] else ""
    env_name = f"{ENV_PREFIX}{name.upper()}"
    if not name:  # a rule across settings: its message names them
        source = "settings"
    elif name in flags:
        source = f"command-line flag --{name.replace('_', '-')}"
    elif env_name in os.environ:
        source = f"environment variable {env_name}"
    elif path is not None:
        source = f"{path} [settings]"
    else:
        source = "default"
    value = error.get("input")
    shown = None if value is None or isinstance(value, dict) else redact_secrets(str(value))
    return Problem(
        redact_secrets(str(error["msg"]).removeprefix("Value error, ")),
        source,
        field=name or None,
        value=None if name in SECRET_SETTINGS else shown,
    )
