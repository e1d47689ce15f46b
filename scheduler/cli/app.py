"""The ``cohort`` Typer apps (the root and its command groups) and the state of one invocation:
the global options and the Runtime they build, held by the root app, not by a module global.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from scheduler.errors import NotFoundError, SchedulerError

if TYPE_CHECKING:
    from scheduler.runtime import Runtime


@dataclass(slots=True)
class CliState:
    """One invocation's global options and its Runtime, built on first use; held by the app
    (:attr:`_CohortApp.state`), not by a module global."""

    config: Path | None = None
    flags: dict[str, Any] = field(default_factory=dict)
    _runtime: Runtime | None = None

    def runtime(self) -> Runtime:
        if self._runtime is None:
            from scheduler.runtime import build_runtime
            from scheduler.settings import load_settings

            self._runtime = build_runtime(load_settings(self.config, **self.flags))
            _clean_log_lines()
        return self._runtime


def _clean_log_lines() -> None:
    """Every handler of the root logger (set up by build_runtime) escapes control characters
    and redacts feed tokens: the worker's and the services' log lines carry names too."""
    from scheduler.web.logs import RedactFeedTokens

    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactFeedTokens) for f in handler.filters):
            handler.addFilter(RedactFeedTokens())


class _CohortApp(typer.Typer):
    """The root ``cohort`` app. It owns the state of the invocation it runs: :attr:`state`, a
    fresh :class:`CliState` set by its callback each time (one invocation at a time)."""

    state: CliState


app = _CohortApp(
    help="Plan live sessions and soft deadlines for cohorts across time zones.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
cohort_app = typer.Typer(help="Cohorts described by a cohort.toml file.", no_args_is_help=True)
roster_app = typer.Typer(help="Learners and facilitators from a roster CSV.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(cohort_app, name="cohort")
app.add_typer(roster_app, name="roster")
feeds_app = typer.Typer(help="Personal calendar feeds at secret URLs.", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
admin_app = typer.Typer(help="Access to the dashboard and the API.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")


app.state = CliState()


def state() -> CliState:
    """The running command's :class:`CliState`, owned by the app."""
    return app.state


def current_runtime() -> Runtime:
    """The running command's Runtime, built from its settings on first use."""
    return state().runtime()


@app.callback()
def _options(
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Settings file ([settings] table); default ./cohort.toml."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Overrides COHORT_DATABASE_URL.")
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = None,
) -> None:
    app.state = CliState(config, {"database_url": database_url, "log_level": log_level})


def _database_in_use() -> str:
    """The database URL in use, password hidden; a SQLite file as its absolute path (the default
    is relative to the folder the command runs in)."""
    from scheduler.services.database import shown_url

    url = current_runtime().settings.database_url
    prefix, sep, path = url.partition(":///")
    if prefix.startswith("sqlite") and sep and path and not path.startswith((":memory:", "file:")):
        return f"{prefix}:///{Path(path.split('?', 1)[0]).expanduser().resolve()}"
    return shown_url(url)


MAX_LISTED_COHORTS = 20


def _cohort(slug: str | None) -> str:
    """The cohort a command acts on: ``--cohort`` if given; else the ``default_cohort`` setting;
    else the only cohort stored. None stored, or several and no default: a clear error."""
    if slug:
        return slug
    default = current_runtime().settings.default_cohort
    if default:
        return default
    from scheduler.services.cohorts import cohort_slugs

    with _transaction() as db:
        slugs = cohort_slugs(db)
    if len(slugs) == 1:
        return slugs[0]
    if not slugs:
        raise NotFoundError("no cohort is stored yet: load one with `cohort cohort load FILE`")
    listed = ", ".join(slugs[:MAX_LISTED_COHORTS])
    more = len(slugs) - MAX_LISTED_COHORTS
    listed += f" and {more} more (`cohort cohort list`)" if more > 0 else ""
    raise SchedulerError(
        f"{len(slugs)} cohorts are stored ({listed}): name one with --cohort SLUG, or set "
        "default_cohort in the settings (COHORT_DEFAULT_COHORT)"
    )


@contextmanager
def _transaction() -> Iterator[Any]:
    runtime = current_runtime()
    runtime.require_schema()
    with runtime.transaction() as db:
        yield db
