"""The ``cohort`` command: a thin layer over services; Rich tables, ``--json`` for scripts.

This module is the output layer: it is the only place that prints. Text that came from users
(names, emails, titles, zones, paths, error values) goes through :func:`_text` on its way into a
line or a table cell: control characters are escaped (a name cannot colour, move or clear the
terminal, or read backwards) and Rich markup in it is shown literally.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import re
import shutil
import stat
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
import typer.main
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from scheduler import __version__
from scheduler.domain.cohort import Role
from scheduler.domain.status import EnrollmentStatus, NotificationStatus
from scheduler.errors import ConfigError, InputError, NotFoundError, Problem, SchedulerError
from scheduler.outputs.text import printable

# Everything else loads inside the command that needs it: `cohort --help` and `cohort version`
# import neither the database layer, the planner, the web stack nor the templates
# (tests/unit/test_cli_imports.py checks it; bench/cli.py measures it).
if TYPE_CHECKING:
    from scheduler.domain.cohort import CohortSpec
    from scheduler.planning import LearnerInput, Plan
    from scheduler.progress import Progress
    from scheduler.runtime import Runtime
    from scheduler.services.changes import Change, ChangePreview
    from scheduler.services.plans import PlanDiff

P = ParamSpec("P")
R = TypeVar("R")

MIB = 1024 * 1024
# Input files are read whole: anything larger than these is refused before it is read.
COHORT_FILE_MAX_BYTES = 1 * MIB  # the example is 5 KB
ROSTER_FILE_MAX_BYTES = 64 * MIB  # 100,000 learners take about 11 MB
MAX_PRINTED_PROBLEMS = 200  # per list of problems or warnings; --json has them all
MAX_LOG_ENTRIES = 100_000
EXIT_BUG = 2  # an unexpected exception (a bug): one line, the traceback in a crash file
EXIT_INTERRUPTED = 130  # Ctrl+C
CRASH_FOLDER = Path("var")

app = typer.Typer(
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


def _text(value: object) -> str:
    """User-controlled ``value`` for a console line or a table cell: control characters escaped
    (``\\x1b``, ``\\x9b``, ``\\u202e``), Rich markup (``[red]``) shown as written."""
    return escape(printable(str(value)))


class _Console(Console):
    """A Console that never lets a control character through, whatever the caller forgot: every
    string it renders (lines, table cells, titles) has them escaped, line breaks aside (our own
    layout uses them; user text has its own escaped by :func:`_text`)."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text, keep_newlines=True), **kwargs)


# emoji off: a name with ``:smile:`` in it is printed as written.
out = _Console(highlight=False, soft_wrap=True, emoji=False)
err = _Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of tables.")]
CohortOption = Annotated[
    str | None,
    typer.Option(
        "--cohort",
        "-c",
        help="The cohort's slug; may be left out when one cohort is stored or default_cohort "
        "is set.",
        show_default=False,
    ),
]
EmailArgument = Annotated[
    str | None, typer.Argument(help="Learner or facilitator; omit for the cohort's own feed.")
]


@dataclass(slots=True)
class CliState:
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


STATE = CliState()


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
    STATE.config = config
    STATE.flags = {"database_url": database_url, "log_level": log_level}
    STATE._runtime = None


def _print_problems(problems: Sequence[Problem], title: str, *, json_hint: bool = True) -> None:
    """One line per problem (where, field, value, what is wrong), its hint dimmed below; at most
    :data:`MAX_PRINTED_PROBLEMS` of them, then how many more there are."""
    err.print(f"[red]{_text(title)}[/red]")
    for p in problems[:MAX_PRINTED_PROBLEMS]:
        where = f"line {p.line}" if p.line is not None else p.source
        place = ", ".join(x for x in (where, p.field or "") if x)
        value = "" if p.value is None else f" {_clip(p.value)!r}"
        err.print(f"  [bold]{_text(place or p.source)}[/bold]{_text(value)}: {_text(p.message)}")
        if p.hint:
            err.print(f"      [dim]{_text(p.hint)}[/dim]")
    _print_more(len(problems) - MAX_PRINTED_PROBLEMS, "problem", json_hint)


def _print_more(more: int, noun: str, json_hint: bool) -> None:
    if more > 0:
        how = " (use --json for all)" if json_hint else ""
        err.print(f"  … and {more:,} more {noun}{'s' if more != 1 else ''}{how}")


def _clip(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the product's errors into one clear line each and a non-zero exit, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except InputError as e:
            _print_problems(e.problems, e.summary, json_hint="as_json" in kwargs)
            if kwargs.get("as_json"):
                print(
                    json.dumps(
                        {
                            "ok": False,
                            "summary": e.summary,
                            "problems": [p.as_dict() for p in e.problems],
                        },
                        indent=2,
                    )
                )
            raise typer.Exit(1) from None
        except NotFoundError as e:  # say where it looked: `cd demo` starts another database
            err.print(f"[red]error:[/red] {_text(e)}; database: {_text(_database_in_use())}")
            raise typer.Exit(1) from None
        except SchedulerError as e:
            err.print(f"[red]error:[/red] {_text(e)}")
            raise typer.Exit(1) from None
        except OSError as e:
            err.print(f"[red]error:[/red] {_text(e.strerror or e)}: {_text(e.filename or '')}")
            raise typer.Exit(1) from None
        except Exception as e:
            if not _unusable_database(e):
                raise  # IntegrityError, ProgrammingError...: a bug, for the front door (main)
            from scheduler.services.database import shown_url

            where = shown_url(STATE.runtime().settings.database_url)
            err.print(
                f"[red]error:[/red] the database {_text(where)} cannot be used: "
                f"{_text(getattr(e, 'orig', e))}"
            )
            raise typer.Exit(1) from None

    return wrapper


def _unusable_database(error: Exception) -> bool:
    """Whether ``error`` says the database cannot be used: cannot connect, locked, or not a
    database at all (a corrupt or a foreign file). Asked without importing SQLAlchemy: one of its
    errors can only be raised once a command has loaded it."""
    exc = sys.modules.get("sqlalchemy.exc")
    if exc is None or not isinstance(error, exc.DatabaseError):
        return False
    return isinstance(error, exc.OperationalError) or type(error) is exc.DatabaseError


def _database_in_use() -> str:
    """The database URL in use, password hidden; a SQLite file as its absolute path (the default
    is relative to the folder the command runs in)."""
    from scheduler.services.database import shown_url

    url = STATE.runtime().settings.database_url
    prefix, sep, path = url.partition(":///")
    if prefix.startswith("sqlite") and sep and path and not path.startswith((":memory:", "file:")):
        return f"{prefix}:///{Path(path.split('?', 1)[0]).expanduser().resolve()}"
    return shown_url(url)


def _json(data: Any) -> None:
    # JSON escapes C0 controls itself; C1 controls and bidi overrides are written as \\u escapes
    # too (still the same JSON value), so piping --json to a terminal is safe as well.
    text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
    print(_JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


_JSON_UNSAFE = re.compile(r"[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _read_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of the regular file at ``path``, refused with an :class:`InputError` if it is
    larger than ``limit`` or not a file (``/dev/zero``, a pipe, a folder): never read unbounded,
    never blocked on."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without waiting for a writer
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InputError(
            [Problem(f"is not a regular file; give the path of a {what}", str(path))],
            f"{path} cannot be read",
        )
    with os.fdopen(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InputError(
            [
                Problem(
                    f"is larger than {limit // MIB} MiB, the most a {what} may be",
                    str(path),
                    hint=f"check that this is the {what} you meant",
                )
            ],
            f"{path} is too large",
        )
    return data


def _read_cohort_file(path: Path) -> str:
    """The text of a cohort file: at most 1 MiB of UTF-8 (a UTF-8 BOM is allowed)."""
    data = _read_file(path, COHORT_FILE_MAX_BYTES, "cohort file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(
            [
                Problem(
                    f"is not UTF-8 text (byte 0x{data[e.start]:02x} cannot be read)",
                    str(path),
                    data.count(b"\n", 0, e.start) + 1,
                    hint="save the file as UTF-8",
                )
            ],
            f"{path} cannot be read",
        ) from None


@contextmanager
def _nesting_checked(path: Path) -> Iterator[None]:
    """A TOML document nested thousands deep (``x = [[[[...]]]]``) exhausts the recursion of the
    parser or of what walks it: a :class:`ConfigError`, not a traceback."""
    try:
        yield
    except RecursionError:
        raise ConfigError(
            [
                Problem(
                    "nests arrays or tables too deeply to be read",
                    str(path),
                    hint="a cohort file nests tables a few levels deep at most",
                )
            ],
            f"{path} cannot be read",
        ) from None


@contextmanager
def _progress(as_json: bool) -> Iterator[Progress]:
    """Progress bars for long work, on stderr and only on a terminal (never with --json): each
    step a line with a spinner, its count of items done (of how many, when known) and the time
    it took; gone once the command is done."""
    from scheduler.progress import SILENT

    if as_json or not err.is_terminal:
        yield SILENT
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as Bars

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Bars(*columns, console=err, transient=True) as bars:
        yield _Bars(bars)


class _Bars:
    """A :class:`Progress` drawn as Rich progress bars, one task a step."""

    def __init__(self, bars: Any) -> None:
        self._bars = bars
        self._task: Any = None

    def _finish(self) -> None:
        if self._task is not None:
            task = self._bars.tasks[-1]  # the current step: steps are added one after another
            done = task.total if task.total is not None else max(task.completed, 1)
            self._bars.update(self._task, total=done, completed=done)

    def step(self, description: str, total: int | None = None) -> None:
        self._finish()
        self._task = self._bars.add_task(_text(description), total=total)

    def advance(self, amount: int = 1) -> None:
        if self._task is not None:
            self._bars.advance(self._task, amount)


MAX_LISTED_COHORTS = 20


def _cohort(slug: str | None) -> str:
    """The cohort a command acts on: ``--cohort`` if given; else the ``default_cohort`` setting;
    else the only cohort stored. None stored, or several and no default: a clear error."""
    if slug:
        return slug
    default = STATE.runtime().settings.default_cohort
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
    runtime = STATE.runtime()
    runtime.require_schema()
    with runtime.transaction() as db:
        yield db


# --- cohort init ------------------------------------------------------------------------------


@app.command()
@guarded
def init(
    directory: Annotated[Path, typer.Argument(help="Folder to create the example files in.")],
    learners: Annotated[
        int, typer.Option(min=1, max=100_000, help="How many sample learners.")
    ] = 150,
    seed: Annotated[int, typer.Option(help="Seed for the sample, for reproducible files.")] = 2027,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Write an example cohort.toml and a roster.csv of learners in real-world time zones."""
    from scheduler.resources import resource_dir
    from scheduler.sample import CREDIT, example_roster, roster_csv

    directory.mkdir(parents=True, exist_ok=True)
    cohort_file, roster_file = directory / "cohort.toml", directory / "roster.csv"
    existing = [p for p in (cohort_file, roster_file) if p.exists()]
    if existing and not force:
        err.print(
            f"[red]error:[/red] {_text(', '.join(map(str, existing)))} already exist(s); "
            "use --force to overwrite"
        )
        raise typer.Exit(1)
    shutil.copyfile(resource_dir("examples") / "cohort.toml", cohort_file)
    roster_file.write_text(
        roster_csv(example_roster(learners, random.Random(seed))), encoding="utf-8"
    )
    out.print(
        f"Wrote [bold]{_text(cohort_file)}[/bold] and [bold]{_text(roster_file)}[/bold] "
        f"({learners} learners)."
    )
    out.print(f"[dim]{CREDIT}[/dim]")
    out.print(
        "Next:\n"
        "  cohort db upgrade\n"
        f"  cohort cohort load {_text(cohort_file)}\n"
        f"  cohort roster import {_text(roster_file)} --cohort ml-foundations-2027"
    )


# --- db -----------------------------------------------------------------------------------------


@db_app.command("upgrade")
@guarded
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Create or migrate the tables (safe to run again)."""
    from scheduler.services.database import shown_url, upgrade_schema

    runtime = STATE.runtime()
    # Serialised with any other upgrade of this database; both revisions read under its lock.
    before, after = upgrade_schema(runtime.engine, revision)
    where = shown_url(runtime.settings.database_url)
    if before == after:
        out.print(f"{_text(where)} is up to date (revision {after}).")
    else:
        out.print(f"{_text(where)}: upgraded from {before or 'empty'} to {after}.")


@db_app.command("current")
@guarded
def db_current() -> None:
    """Print the database's schema revision and the newest one this version knows."""
    from scheduler.services.database import schema_revisions

    runtime = STATE.runtime()
    current, head = schema_revisions(runtime.engine)
    out.print(f"current: {current or 'empty'}; head: {head}")


# --- cohort ------------------------------------------------------------------------------------


@cohort_app.command("load")
@guarded
def cohort_load(
    file: Annotated[Path, typer.Argument(help="The cohort.toml to load.")],
    as_json: JsonFlag = False,
) -> None:
    """Validate a cohort file and store it (create or update by slug)."""
    from scheduler.services.cohorts import load_cohort

    text = _read_cohort_file(file)
    with _transaction() as db, _nesting_checked(file):
        result = load_cohort(db, text, str(file), STATE.runtime().clock.now())
    spec = result.spec
    if as_json:
        _json(
            {
                "ok": True,
                "slug": spec.slug,
                "created": result.created,
                "series": len(spec.series),
                "facilitators": len(spec.facilitators),
                "assignments": len(spec.assignments),
                "reminders": len(spec.reminders),
                "blackouts": len(spec.blackouts),
                "warnings": result.warnings,
            }
        )
        return
    verb = "Created" if result.created else "Updated"
    out.print(f"{verb} cohort [bold]{_text(spec.slug)}[/bold]: {_text(spec.title)}")
    out.print(
        f"  {spec.start_date} to {spec.end_date} ({spec.weeks} weeks), "
        f"home zone {_text(spec.home_zone)}, locale {_text(spec.locale)}"
    )
    table = Table("series", "kind", "per week", "duration", "sections", box=None)
    for s in spec.series:
        sections = "auto" if s.auto_sections else str(s.sections or 1)
        table.add_row(
            _text(s.key),
            s.kind.value,
            str(s.per_week),
            f"{int(s.duration.total_seconds() // 60)} min",
            sections,
        )
    out.print(table)
    out.print(
        f"  {len(spec.facilitators)} facilitators, {len(spec.assignments)} async assignments, "
        f"{len(spec.reminders)} reminder rules, {len(spec.blackouts)} blackout(s)"
    )
    for warning in result.warnings:
        err.print(f"[yellow]warning:[/yellow] {_text(warning)}")


@cohort_app.command("validate")
@guarded
def cohort_validate(
    file: Annotated[Path, typer.Argument(help="The cohort.toml to check.")],
    as_json: JsonFlag = False,
) -> None:
    """Check a cohort file without storing anything."""
    from scheduler.domain.cohort_file import parse_cohort_file

    text = _read_cohort_file(file)
    with _nesting_checked(file):
        spec = parse_cohort_file(text, str(file))
    if as_json:
        _json({"ok": True, "slug": spec.slug})
    else:
        out.print(f"[green]✓[/green] {_text(file)}: cohort {_text(spec.slug)} is valid")


@cohort_app.command("list")
@guarded
def cohort_list(as_json: JsonFlag = False) -> None:
    """List stored cohorts with their learner counts."""
    from scheduler.services.published import list_cohort_facts

    with _transaction() as db:
        rows = list_cohort_facts(db)
    if as_json:
        keys = ("slug", "title", "start_date", "weeks", "home_zone", "learners", "facilitators")
        _json([{k: getattr(c, k) for k in keys} for c in rows])
        return
    table = Table("slug", "title", "start", "weeks", "home zone", "learners", "facilitators")
    for c in rows:
        table.add_row(
            _text(c.slug),
            _text(c.title),
            c.start_date.isoformat(),
            str(c.weeks),
            _text(c.home_zone),
            str(c.learners),
            str(c.facilitators),
        )
    out.print(table if rows else "No cohorts yet: `cohort cohort load cohort.toml`.")


# --- roster -------------------------------------------------------------------------------------


@roster_app.command("validate")
@guarded
def roster_validate(
    file: Annotated[Path, typer.Argument(help="The roster CSV to check.")],
    as_json: JsonFlag = False,
) -> None:
    """Check every row of a roster and list every problem; writes nothing."""
    from scheduler.roster import parse_roster

    data = _read_file(file, ROSTER_FILE_MAX_BYTES, "roster")
    with _progress(as_json) as progress:
        report = parse_roster(data, str(file), progress)
    if as_json:
        _json(
            {
                "ok": report.ok,
                "rows": report.rows,
                "valid": len(report.entries),
                "bad_rows": report.bad_lines,
                "errors": [p.as_dict() for p in report.errors],
                "warnings": [p.as_dict() for p in report.warnings],
            }
        )
    else:
        _print_warnings(report.warnings)
        if report.errors:
            _print_problems(
                report.errors,
                f"{file}: {len(report.errors)} problem(s) in {report.bad_lines or 1} "
                "row(s); nothing was written",
            )
        else:
            out.print(f"[green]✓[/green] {_text(file)}: {report.rows} rows, all valid")
    if not report.ok:
        raise typer.Exit(1)


def _print_warnings(warnings: list[Problem]) -> None:
    """Each distinct warning once (with how many times it came), each hint once, at most
    :data:`MAX_PRINTED_PROBLEMS` lines."""
    counts: dict[str, int] = {}
    hints: dict[str, str | None] = {}
    for w in warnings:
        line = replace(w, hint=None).describe()
        counts[line] = counts.get(line, 0) + 1
        hints.setdefault(line, w.hint)
    seen_hints: set[str] = set()
    shown = 0
    for line, count in list(counts.items())[:MAX_PRINTED_PROBLEMS]:
        hint = hints[line]
        if hint and hint not in seen_hints:
            seen_hints.add(hint)
            line += f"; {hint}"
        times = f" ({count:,} times)" if count > 1 else ""
        err.print(f"[yellow]warning:[/yellow] {_text(line)}{times}")
        shown += count
    _print_more(len(warnings) - shown, "warning", json_hint=True)


@roster_app.command("import")
@guarded
def roster_import(
    file: Annotated[Path, typer.Argument(help="The roster CSV.")],
    cohort: CohortOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; write nothing.")
    ] = False,
    partial: Annotated[
        bool, typer.Option("--partial", help="Import the valid rows even if others are bad.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import (or re-import) a roster into a cohort, in one transaction: all rows or none."""
    cohort = _cohort(cohort)
    from scheduler.services.roster import import_roster

    data = _read_file(file, ROSTER_FILE_MAX_BYTES, "roster")
    with _transaction() as db, _progress(as_json) as progress:
        result = import_roster(
            db,
            cohort,
            data,
            str(file),
            STATE.runtime().clock.now(),
            dry_run=dry_run,
            partial=partial,
            horizon=STATE.runtime().horizon,
            progress=progress,
        )
    counts = result.counts()
    if as_json:
        _json(
            {
                "ok": not result.report.errors,
                "cohort": cohort,
                "dry_run": dry_run,
                "written": result.written,
                **counts,
                "missing": result.missing,
                "errors": [p.as_dict() for p in result.report.errors],
                "warnings": [p.as_dict() for p in result.report.warnings],
            }
        )
        return
    _print_warnings(result.report.warnings)
    if result.report.errors:
        _print_problems(
            result.report.errors, f"skipped {result.report.bad_lines} bad row(s) (--partial)"
        )
    table = Table(box=None, show_header=False)
    for key, value in counts.items():
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)
    if result.missing:
        shown = ", ".join(result.missing[:10]) + (" …" if len(result.missing) > 10 else "")
        out.print(
            f"[yellow]{len(result.missing)} enrolled learner(s) are not in the file "
            f"(kept):[/yellow] {_text(shown)}"
        )
    verb = "Would import" if dry_run else "Imported"
    out.print(
        f"{verb} {len(result.report.entries)} row(s) into [bold]{_text(cohort)}[/bold]"
        + (" (dry run: nothing written)" if dry_run else ".")
    )


@roster_app.command("list")
@guarded
def roster_list(
    cohort: CohortOption = None,
    role: Annotated[Role | None, typer.Option(help="Only learners or only facilitators.")] = None,
    limit: Annotated[int, typer.Option(min=0, help="Rows to show in the table (0: all).")] = 200,
    as_json: JsonFlag = False,
) -> None:
    """List a cohort's people with their zone, availability and locale."""
    cohort = _cohort(cohort)
    from scheduler.services.cohorts import roster_people

    with _transaction() as db:
        people = roster_people(db, cohort, role)
    if as_json:
        _json(
            [
                {
                    "name": p.name,
                    "email": p.email,
                    "role": p.role,
                    "status": p.status,
                    "timezone": p.zone,
                    "availability": p.availability,
                    "availability_is_default": p.availability_is_default,
                    "locale": p.locale,
                }
                for p in people
            ]
        )
        return
    shown = people if limit == 0 else people[:limit]
    table = Table(
        title=f"{_text(cohort)}: {len(people)} people", title_justify="left", box=box.SIMPLE_HEAD
    )
    table.add_column("person", min_width=16, max_width=30, overflow="ellipsis")
    table.add_column("time zone", no_wrap=True, overflow="ellipsis", max_width=20)
    table.add_column("availability (local)", no_wrap=True, min_width=19)
    table.add_column("locale", no_wrap=True)
    current_role = ""
    for p in shown:
        if p.role != current_role:
            current_role = p.role
            table.add_section()
            table.add_row(f"[bold]{current_role}s[/bold]")
        availability = _text(p.availability).replace("; ", "\n")
        if p.availability_is_default:
            availability = f"[dim]{availability} (default)[/dim]"
        status = "" if p.status == EnrollmentStatus.ACTIVE else f" [dim]({_text(p.status)})[/dim]"
        person = f"{_text(p.name)}{status}\n[dim]{_text(p.email)}[/dim]"
        shown_locale = f"[dim]{_text(p.locale)}[/dim]" if p.locale_is_default else _text(p.locale)
        table.add_row(person, _text(p.zone), availability, shown_locale)
    out.print(table)
    if len(shown) < len(people):
        out.print(f"… and {len(people) - len(shown)} more (use --limit 0 or --json for all)")
    zones = {p.zone for p in people}
    out.print(f"{len(people)} people in {len(zones)} time zones.")


# --- plan ---------------------------------------------------------------------------------------

_SHADES = " ·░▒▓█"
_MARKS = {"class": "C", "coworking": "W", "office_hours": "O"}


@app.command()
@guarded
def plan(
    cohort: CohortOption = None,
    publish: Annotated[
        bool, typer.Option("--publish", help="Store the plan (one transaction).")
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="List every left-out learner, not only counts."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Plan the live sessions: times that fit the most learners every week, DST included."""
    cohort = _cohort(cohort)
    from scheduler.services import schedule as schedule_service
    from scheduler.services.plans import diff_plan, plan_cohort, plan_summary

    runtime = STATE.runtime()
    now = runtime.clock.now()
    with _transaction() as db, _progress(as_json) as progress:
        spec, learners, result = plan_cohort(db, cohort, progress)
        summary = None
        if publish:
            published, diff, summary = schedule_service.publish(
                db, cohort, result, now, STATE.runtime().horizon, progress=progress
            )
        else:
            published, diff = None, diff_plan(db, cohort, result, now)
    if as_json:
        zones = {x.key: x.zone for x in learners}
        _json(
            {**plan_summary(result, zones), "diff": diff.as_dict(), "published_version": published}
        )
        return
    _print_plan(spec, learners, result, verbose)
    _print_diff(diff)
    if publish:
        if published is None:
            out.print(f"Nothing to publish: version {diff.published_version} is already this plan.")
        else:
            out.print(f"[green]Published[/green] version {published} of {_text(cohort)}.")
    if summary is not None:
        out.print(
            f"Deadlines: {summary.items} async items for {summary.learners} learners "
            f"({summary.changed_learners} changed); "
            f"see `cohort deadlines --cohort {_text(cohort)}`."
        )
    elif diff.changed or diff.published_version is None:
        out.print(f"Not published yet: `cohort plan --cohort {_text(cohort)} --publish` stores it.")


def _print_plan(
    spec: CohortSpec, learners: list[LearnerInput], result: Plan, verbose: bool = False
) -> None:
    out.print(
        f"[bold]{_text(spec.title)}[/bold]: {len(learners)} learners, {spec.weeks} weeks from "
        f"{spec.start_date}; times in {_text(result.anchor_zone)}"
    )
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("series", "weekly time", "facilitator", "learners", "fit every week", "by week"):
        table.add_column(column, no_wrap=column != "by week")
    for s in result.sections:
        times = ", ".join(t.label() for t in s.times)
        if s.alternate:
            times += " / " + ", ".join(t.label() for t in s.alternate)
        weekly = [c for c in s.coverage_by_week if c is not None]
        span = (
            f"{min(weekly):.0%}-{max(weekly):.0%}"
            if weekly and min(weekly) != max(weekly)
            else (f"{weekly[0]:.0%}" if weekly else "-")
        )
        name = s.series + (
            f" #{s.section + 1}" if len(result.series_sections(s.series)) > 1 else ""
        )
        share = f"{s.fitted}/{len(s.learners)}" if s.learners else "0"
        host = (s.facilitator or "-").split("@")[0]
        table.add_row(_text(name), _text(times), _text(host), str(len(s.learners)), share, span)
    out.print(table)
    for report in result.auto_sections:
        steps = ", ".join(f"{st.sections}: {st.share:.0%} (+{st.gain})" for st in report.steps)
        verdict = "reached" if report.reached else "not reached"
        out.print(
            f"{_text(report.series)}: sections \u2192 share of learners fitted: {steps}; "
            f"chose {report.chosen} (target {report.target:.0%} {verdict})"
        )
    _print_heatmap(spec, learners, result)
    _print_left_out(learners, result, verbose)
    _print_dst(result)
    for note in result.notes:
        out.print(f"[dim]note: {_text(note)}[/dim]")


def _print_left_out(learners: list[LearnerInput], result: Plan, verbose: bool) -> None:
    """Per series one line: how many are left out, where they live and why; with ``verbose``
    every learner, grouped by series and reason."""
    from scheduler.planning.report import left_out_by_series

    if not result.left_out:
        return
    missing = len({x.learner for x in result.left_out})
    out.print(
        f"[bold]Left out[/bold] of at least one series: {missing} learners "
        "(classes they miss come as replays):"
    )
    summaries = left_out_by_series(result.left_out, {x.key: x.zone for x in learners})
    for summary in sorted(summaries, key=lambda x: _series_order(result, x.series)):
        out.print(f"  {_text(summary.describe())}")
    if not verbose:
        out.print("  [dim]every learner and why: --verbose (or --json)[/dim]")
        return
    by_reason: dict[tuple[str, str], list[str]] = {}
    for x in result.left_out:
        by_reason.setdefault((x.series, x.detail or x.reason.value), []).append(x.learner)
    for (series, why), who in sorted(by_reason.items(), key=lambda kv: (kv[0][0], -len(kv[1]))):
        out.print(f"  {_text(series)}, {len(who)} — {_text(why)}:")
        out.print(f"    [dim]{_text(', '.join(who))}[/dim]")


def _print_dst(result: Plan) -> None:
    """Clock changes, one line per series and course week (sections and regions together)."""
    from scheduler.planning.report import dst_by_series_week

    changes = dst_by_series_week(result.warnings)
    for change in sorted(changes, key=lambda x: (_series_order(result, x.series), x.week)):
        out.print(f"[yellow]DST[/yellow] {_text(change.describe())}")


def _series_order(result: Plan, series: str) -> int:
    keys = list(dict.fromkeys(s.series for s in result.sections))
    return keys.index(series) if series in keys else len(keys)


def _print_heatmap(spec: CohortSpec, learners: list[LearnerInput], result: Plan) -> None:
    from scheduler.outputs.heatmap import availability_heatmap, slot_of
    from scheduler.timeutil import Weekday

    heat = availability_heatmap(spec, learners)
    marks: dict[tuple[int, int], str] = {}
    for s in result.sections:
        for t in s.times:
            for cell in slot_of(int(t.weekday), t.minute, s.duration, 60):
                marks.setdefault(cell, _MARKS.get(s.kind.value, "*"))
    peak = heat.peak or 1
    out.print(
        f"Learners available per hour in week 1 ({_text(heat.anchor_zone)}); peak {heat.peak}; "
        "C class, W co-working, O office hours:"
    )
    out.print("     " + "".join(f"{h:<3d}" if h % 3 == 0 else "   " for h in range(24)).rstrip())
    for day, row in enumerate(heat.counts):
        cells = []
        for hour, n in enumerate(row):
            shade = _SHADES[min(len(_SHADES) - 1, round(n / peak * (len(_SHADES) - 1)))]
            mark = marks.get((day, hour))
            cells.append(f"[reverse]{mark}{shade}[/reverse] " if mark else f"{shade}{shade} ")
        out.print(f"{Weekday(day).label:<4} " + "".join(cells))


def _print_diff(diff: PlanDiff) -> None:
    if diff.published_version is None:
        return
    if not diff.changed:
        out.print(f"Same as published version {diff.published_version}.")
        return
    out.print(
        f"[bold]Changes against published version {diff.published_version}[/bold]: "
        f"{len(diff.added)} added, {len(diff.moved)} moved, {len(diff.cancelled)} cancelled, "
        f"{diff.unchanged} unchanged" + (f", {diff.frozen} already held" if diff.frozen else "")
    )
    for label, changes in (
        ("moved", diff.moved),
        ("cancelled", diff.cancelled),
        ("added", diff.added),
    ):
        for c in changes[:5]:
            before = (
                f"{c.old_start:%a %d %b %H:%M} \u2192 " if c.old_start and label == "moved" else ""
            )
            when = f"{before}{c.start:%a %d %b %H:%M} UTC"
            out.print(f"  {label} {_text(c.series)} #{c.section + 1} week {c.week + 1}: {when}")
        if len(changes) > 5:
            out.print(f"  … and {len(changes) - 5} more {label}")


# --- deadlines ----------------------------------------------------------------------------------

_KIND_LABELS = {
    "class": "live",
    "office_hours": "live",
    "coworking": "co-working",
    "assignment": "due",
    "catch_up": "catch up",
    "replay": "replay",
}


@app.command()
@guarded
def deadlines(
    cohort: CohortOption = None,
    learner: Annotated[
        str | None, typer.Option("--learner", "-l", help="A learner's email.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """A learner's schedule (live, co-working, async work, replays) on their clock and in their
    language; without --learner, a summary of the cohort's deadlines."""
    cohort = _cohort(cohort)
    from scheduler.outputs.formatting import local_datetime
    from scheduler.services.deadlines import deadline_summary
    from scheduler.services.schedule import duration_text, learner_schedule
    from scheduler.timeutil import zone

    with _transaction() as db:
        if learner is None:
            summary = deadline_summary(db, cohort)
        else:
            schedule = learner_schedule(db, cohort, learner)
    if learner is None:
        if as_json:
            _json(asdict(summary))
            return
        kinds = (
            ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in summary.by_kind.items()) or "none"
        )
        out.print(
            f"[bold]{_text(cohort)}[/bold]: {summary.learners} learners, "
            f"{summary.items} async items ({kinds or 'none'}), "
            f"stored as {summary.groups} shared lists"
        )
        if summary.warnings:
            out.print(
                f"[yellow]{summary.warnings} item(s) carry a warning[/yellow] (see --learner)"
            )
        out.print(
            f"{summary.learners_with_replays} learners get replays of classes outside their window."
        )
        out.print(
            f"One learner's schedule: cohort deadlines --cohort {_text(cohort)} --learner EMAIL"
        )
        return
    if as_json:
        _json(
            {
                "email": schedule.email,
                "zone": schedule.zone,
                "locale": schedule.locale,
                "entries": [
                    {
                        "at": e.at.isoformat(),
                        "end": e.end.isoformat() if e.end else None,
                        "local": e.at.astimezone(zone(schedule.zone)).isoformat(),
                        "kind": e.kind,
                        "title": e.title,
                        "detail": e.detail,
                        "fits": e.fits,
                        "release": e.release.isoformat() if e.release else None,
                        "hard": e.hard.isoformat() if e.hard else None,
                        "warnings": list(e.warnings),
                    }
                    for e in schedule.entries
                ],
            }
        )
        return
    out.print(
        f"[bold]{_text(schedule.name)}[/bold] <{_text(schedule.email)}>: "
        f"times in {_text(schedule.zone)}, locale {_text(schedule.locale)}"
    )
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("when (local)", no_wrap=True)
    table.add_column("", no_wrap=True)
    table.add_column("what")
    table.add_column("note")
    for e in schedule.entries:
        when = local_datetime(e.at, schedule.zone, schedule.locale)
        note = _text(e.detail)
        if e.end is not None:
            note = f"{duration_text(e.at, e.end)}, {note}"
            if not e.fits:
                note += "; [yellow]outside your window[/yellow]"
        if e.hard is not None:
            note += f"; late work until {local_datetime(e.hard, schedule.zone, schedule.locale)}"
        if e.warnings:
            note += f"; [yellow]{_text('; '.join(e.warnings))}[/yellow]"
        title = _text(e.title)
        if e.kind in ("class", "office_hours"):
            title = f"[bold]{title}[/bold]"
        table.add_row(_text(when), _text(_KIND_LABELS.get(e.kind, e.kind)), title, note)
    out.print(table)


# --- changes ------------------------------------------------------------------------------------

SeriesOption = Annotated[str, typer.Option("--series", "-s", help="The series key, e.g. class.")]
# Bounded like the cohort file and the dashboard's forms: a huge number is a usage error, not an
# overflow deep in the database driver.
MAX_WEEKS, MAX_SECTIONS, MAX_SLOTS = 104, 1000, 100
SectionOption = Annotated[
    int,
    typer.Option("--section", min=1, max=MAX_SECTIONS, help="Section number (1 = first)."),
]
SlotOption = Annotated[
    int,
    typer.Option(
        "--time", min=1, max=MAX_SLOTS, help="Which weekly time of the section (1 = first)."
    ),
]
WeekOption = Annotated[
    int | None, typer.Option("--week", min=1, max=MAX_WEEKS, help="Only this course week.")
]
FromWeekOption = Annotated[
    int | None, typer.Option("--from-week", min=1, max=MAX_WEEKS, help="This week and later.")
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")]


def _change(change: Change, cohort: str, yes: bool, as_json: bool) -> None:
    from scheduler.services.changes import apply_change, preview_change

    runtime = STATE.runtime()
    now = runtime.clock.now()
    with _transaction() as db:
        preview = preview_change(db, cohort, change, now)
    if not as_json:
        _print_preview(preview)
    if not yes and not (sys.stdin.isatty() and typer.confirm("Apply this change?", default=False)):
        if as_json:
            _json({"applied": False, **asdict(preview)})
        else:
            out.print("Nothing changed (use --yes to apply without asking).")
        return
    with _transaction() as db:
        result = apply_change(db, cohort, change, now, STATE.runtime().horizon)
    if as_json:
        _json({"applied": True, "version": result.version, **asdict(result.preview)})
        return
    out.print(
        f"[green]Done[/green]: plan version {result.version}; "
        f"{result.invites.updates} update(s) and {result.invites.cancellations} cancellation(s) "
        f"queued; deadlines recomputed ({result.deadlines.changed_learners} learners changed)."
    )


def _print_preview(preview: ChangePreview) -> None:
    out.print(f"[bold]{_text(preview.description)}[/bold]")
    for moved in preview.occurrences:
        after = "cancelled" if moved.new_start is None else f"{moved.new_start:%a %d %b %H:%M} UTC"
        out.print(f"  week {moved.week + 1}: {moved.old_start:%a %d %b %H:%M} UTC \u2192 {after}")
    if preview.learner_occurrences:
        before = preview.fits_before / preview.learner_occurrences
        after_share = preview.fits_after / preview.learner_occurrences
        out.print(
            f"Fits learners: {before:.0%} of learner-sessions before, {after_share:.0%} after."
        )
    out.print(
        f"Affects {preview.people} people ({_text(', '.join(preview.sample))}"
        f"{', …' if preview.people > len(preview.sample) else ''}); "
        f"{preview.emails} email(s) will go out."
    )


@app.command()
@guarded
def reschedule(
    series: SeriesOption,
    to: Annotated[
        str,
        typer.Option("--to", help="New weekday and time in the series' zone, e.g. 'Wed 18:30'."),
    ],
    cohort: CohortOption = None,
    section: SectionOption = 1,
    slot: SlotOption = 1,
    week: WeekOption = None,
    from_week: FromWeekOption = None,
    yes: YesOption = False,
    as_json: JsonFlag = False,
) -> None:
    """Move one occurrence (--week) or a series from a week on (--from-week) to a new time."""
    cohort = _cohort(cohort)
    from scheduler.services.changes import Change, parse_wall_time

    change = Change(
        series, section - 1, slot - 1, _week(week), _week(from_week), parse_wall_time(to)
    )
    _change(change, cohort, yes, as_json)


@app.command()
@guarded
def cancel(
    series: SeriesOption,
    cohort: CohortOption = None,
    section: SectionOption = 1,
    slot: SlotOption = 1,
    week: WeekOption = None,
    from_week: FromWeekOption = None,
    yes: YesOption = False,
    as_json: JsonFlag = False,
) -> None:
    """Cancel one occurrence (--week), a series from a week on, or all its future occurrences."""
    cohort = _cohort(cohort)
    from scheduler.services.changes import Change

    _change(
        Change(series, section - 1, slot - 1, _week(week), _week(from_week)), cohort, yes, as_json
    )


def _week(value: int | None) -> int | None:
    return None if value is None else value - 1


# --- feeds and serving -------------------------------------------------------------------------


def _print_links(target_name: str, token: str, as_json: bool, revoked: int | None = None) -> None:
    from scheduler.outputs.links import feed_links

    links = feed_links(STATE.runtime().settings.base_url, token, target_name)
    if as_json:
        _json({**asdict(links), "revoked": revoked})
        return
    if revoked is not None:
        out.print(f"Revoked {revoked} earlier link(s); the old URLs now answer 404.")
    out.print(f"Calendar feed for [bold]{_text(target_name)}[/bold]")
    out.print("[dim]Keep it private: anyone with the link can read the calendar.[/dim]")
    out.print(f"  https:   {_text(links.https)}")
    out.print(f"  webcal:  {_text(links.webcal)}")
    out.print(f"  Google:  {_text(links.google)}")
    out.print(f"  Outlook: {_text(links.outlook)}")


@feeds_app.command("url")
@guarded
def feeds_url(
    email: Annotated[
        str | None, typer.Argument(help="Learner or facilitator; omit for the cohort's feed.")
    ] = None,
    cohort: CohortOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a feed link (a new secret URL; earlier ones keep working until reset)."""
    cohort = _cohort(cohort)
    from scheduler.services.feeds import feed_name, issue_token

    with _transaction() as db:
        token, target = issue_token(db, cohort, email, STATE.runtime().clock.now())
    _print_links(feed_name(target), token, as_json)


@feeds_app.command("reset")
@guarded
def feeds_reset(
    email: Annotated[
        str | None, typer.Argument(help="Learner or facilitator; omit for the cohort's feed.")
    ] = None,
    cohort: CohortOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke every link to this feed and issue a new one (for a leaked link)."""
    cohort = _cohort(cohort)
    from scheduler.services.feeds import feed_name, reset_tokens

    with _transaction() as db:
        token, revoked, target = reset_tokens(db, cohort, email, STATE.runtime().clock.now())
    _print_links(feed_name(target), token, as_json, revoked)


@app.command()
@guarded
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    access_log: Annotated[
        bool,
        typer.Option("--access-log/--no-access-log", help="Log every request (tokens redacted)."),
    ] = True,
) -> None:
    """Serve the dashboard, learner pages, JSON API and calendar feeds over HTTP (uvicorn)."""
    import uvicorn  # the web stack loads only for this command
    from starlette.types import ASGIApp

    from scheduler.web.app import create_app
    from scheduler.web.logs import AccessLog, log_config

    runtime = STATE.runtime()
    runtime.require_schema()
    settings = runtime.settings
    level = settings.log_level
    # Behind a reverse proxy every client would be the proxy (one rate-limit key for all):
    # trust X-Forwarded-For/-Proto from the proxies named in forwarded_allow_ips, and only those.
    trusted = settings.forwarded_allow_ips
    behind = f"; trusting X-Forwarded-For from {trusted}" if trusted else ""
    err.print(
        f"serving on http://{_text(host)}:{port} (public base URL: {_text(settings.base_url)})"
        + _text(behind)
    )
    web: ASGIApp = create_app(runtime)
    if access_log:
        web = AccessLog(web)  # our own, batched and redacted; uvicorn's is off
    uvicorn.run(
        web,
        host=host,
        port=port,
        log_config=log_config("INFO" if level == "WARNING" else level),
        proxy_headers=trusted is not None,
        forwarded_allow_ips=trusted,
        access_log=False,
        server_header=False,
    )


@app.command()
@guarded
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is due now, then exit (no scheduler).")
    ] = False,
) -> None:
    """Deliver the outbox: invitations, reminders, digests (runs until SIGTERM).

    Mail goes to the maildir folder (default var/outbox/) or the SMTP server in the settings.
    On SQLite one worker runs at a time; on PostgreSQL run as many as you like.
    """
    from jobs.worker import Worker, sqlite_lock

    runtime = STATE.runtime()
    runtime.require_schema()
    settings = runtime.settings
    where = settings.mail_dir if settings.mail_backend == "maildir" else settings.smtp_host
    with sqlite_lock(settings.database_url):
        w = Worker(runtime)
        if once:
            totals = w.drain()
        else:
            err.print(
                f"worker {_text(w.id)}: delivering to {settings.mail_backend} {_text(where)}; "
                "Ctrl+C or SIGTERM to stop"
            )
            totals = w.run(settings.worker_tick_seconds)
    c = totals.counts
    err.print(
        f"sent {c.sent}, retrying {c.retried}, failed {c.failed}, skipped {c.skipped}, "
        f"superseded {c.cancelled} ({settings.mail_backend}: {_text(where)})"
    )


@app.command()
@guarded
def status(as_json: JsonFlag = False) -> None:
    """The outbox and the workers: pending, due, sent, failed, skipped; last tick's age."""
    from scheduler.services.outbox import outbox_status, worker_status

    runtime = STATE.runtime()
    now = runtime.clock.now()
    with _transaction() as db:
        box_ = outbox_status(db, now)
        workers = worker_status(db, now)
    if as_json:
        _json(
            {
                "database": _database_in_use(),
                "notifications": box_.counts,
                "due": box_.due,
                "workers": [asdict(w) for w in workers],
                "recent_failures": [
                    {"kind": k, "to": to, "error": e} for k, to, e in box_.failed_recent
                ],
            }
        )
        return
    table = Table(box=box.SIMPLE, title="Outbox")
    columns = (
        NotificationStatus.PENDING,
        "due",
        NotificationStatus.SENT,
        NotificationStatus.FAILED,
        NotificationStatus.SKIPPED,
        NotificationStatus.CANCELLED,
    )
    for name in columns:
        table.add_column(str(name), justify="right")
    c = box_.counts
    table.add_row(*(str(box_.due if name == "due" else c[name]) for name in columns))
    out.print(f"database: {_text(_database_in_use())}")
    out.print(table)
    if not workers:
        out.print("no worker has run yet: start one with `cohort worker`")
    for w in workers:
        tick = "never" if w.last_tick_age is None else f"{w.last_tick_age:.0f} s ago"
        state = "stopped" if w.stopped else "running"
        out.print(f"worker {_text(w.id)}: {state}, last tick {tick}, sent {w.sent}")
    for kind, to, error in box_.failed_recent:
        out.print(f"[red]failed[/red] {_text(kind)} to {_text(to)}: {_text(error)}")


@admin_app.command("token")
@guarded
def admin_token() -> None:
    """Issue the admin token for the dashboard and the API (earlier ones stop working)."""
    from scheduler.services.admin import rotate_admin_token

    runtime = STATE.runtime()
    with _transaction() as db:
        token, revoked = rotate_admin_token(db, runtime.clock.now())
    out.print(_text(token), soft_wrap=True)
    note = f" ({revoked} earlier token{'s' if revoked != 1 else ''} revoked)" if revoked else ""
    err.print(
        f"admin token issued{note}: log in at {_text(runtime.settings.base_url)}/login "
        "or send it as 'Authorization: Bearer TOKEN' to /api/"
    )


_VERDICTS = {
    "unchanged": "no change",
    "capped": "kept: moved max_moves times already",
    "held": "kept: its host would change inside the freeze horizon",
    "no_gain": "kept: no better for its learners",
    "drops_section": "kept: would drop a section",
    "moves": "moves",
    "below_margin": "kept: cohort gain below the margin",
}


@app.command()
@guarded
def replan(
    cohort: CohortOption = None,
    yes: YesOption = False,
    as_json: JsonFlag = False,
) -> None:
    """Re-plan the future beyond the freeze horizon, as the worker does for cohorts with
    auto_replan (shows what would move; --yes applies)."""
    cohort = _cohort(cohort)
    from scheduler.services.cohorts import orchestration_options
    from scheduler.services.orchestration import replan_cohort

    runtime = STATE.runtime()
    now = runtime.clock.now()
    with _transaction() as db, err.status("planning…"):
        options = orchestration_options(db, cohort)
        result = replan_cohort(
            db, cohort, now, runtime.horizon, actor="cli", force=True, dry_run=not yes
        )
    decision = result.decision
    if as_json:
        _json(
            {
                "outcome": result.outcome,
                "version": result.version,
                "decision": None if decision is None else asdict(decision),
                "diff": None if result.diff is None else result.diff.as_dict(),
            }
        )
        return
    if decision is None:
        reasons = {"unpublished": "nothing published yet", "busy": "a worker is changing it"}
        out.print(f"{_text(cohort)}: no re-plan ({reasons.get(result.outcome, result.outcome)})")
        return
    boundary = now + options.freeze
    out.print(
        f"[bold]{_text(cohort)}[/bold]: re-plan of what starts after {boundary:%a %d %b %H:%M} UTC "
        f"(freeze {options.freeze.days} days); coverage {decision.before:.1%} now, "
        f"{decision.after:.1%} re-planned (margin {options.replan_margin:.0%} points)"
    )
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("series", "coverage now", "re-planned", "verdict"):
        table.add_column(column)
    learners = decision.learners or 1
    for v in decision.series:
        table.add_row(
            _text(v.key),
            f"{v.before / learners:.0%}",
            f"{v.after / learners:.0%}",
            _VERDICTS[v.verdict],
        )
    out.print(table)
    if result.outcome == "applied" and result.diff is not None:
        out.print(
            f"[green]Re-planned[/green]: version {result.version}; {len(result.diff.moved)} moved, "
            f"{len(result.diff.added)} added, {len(result.diff.cancelled)} cancelled, "
            f"{result.diff.frozen} inside the freeze horizon left as they are; "
            f"{result.section_changes} learner(s) changed section; updates queued."
        )
    elif result.outcome == "would_apply":
        out.print(
            f"Would move {_text(', '.join(decision.moves))}: "
            f"`cohort replan --cohort {_text(cohort)} --yes`"
        )
    else:
        out.print("Nothing to move.")


@app.command("log")
@guarded
def log_command(
    cohort: CohortOption = None,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_LOG_ENTRIES, help="How many entries, newest first.")
    ] = 50,
    as_json: JsonFlag = False,
) -> None:
    """What was done to a cohort and by whom (e.g. late joiners placed by the worker)."""
    cohort = _cohort(cohort)
    from scheduler.services.audit import audit_log, describe

    with _transaction() as db:
        entries = audit_log(db, cohort, limit)
    if as_json:
        _json([asdict(e) for e in entries])
        return
    if not entries:
        out.print(f"{_text(cohort)}: nothing logged yet")
        return
    out.print(f"[bold]{_text(cohort)}[/bold]: audit log, newest first (times in UTC)")
    for e in entries:  # one entry a paragraph: the descriptions are sentences, not columns
        out.print(
            f"[dim]{e.at:%Y-%m-%d %H:%M:%S}[/dim]  {_text(_clip(e.actor, 40))}  "
            f"[bold]{_text(e.action)}[/bold]"
        )
        out.print(f"    {_text(describe(e))}")


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"cohort-scheduler {__version__}")


# --- the front door ------------------------------------------------------------------------------


def main() -> None:
    """The ``cohort`` command. No Python traceback ever reaches the user: the product's errors
    are printed by :func:`guarded`; anything else is a bug, reported in one line with the name of
    a crash file holding the traceback (exit status 2); Ctrl+C is one line and exit status 130."""
    args = sys.argv[1:]
    try:
        app(prog_name="cohort")
    except SystemExit as e:
        if e.code == EXIT_INTERRUPTED and _interrupted(e):  # Typer turns Ctrl+C into Exit(130)
            err.print("interrupted")
        raise
    except KeyboardInterrupt:
        err.print("interrupted")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except SchedulerError as e:  # one a command left untranslated: still the user's to fix
        err.print(f"[red]error:[/red] {_text(e)}")
        raise SystemExit(1) from None
    except Exception as e:
        raise SystemExit(_report_crash(args, e)) from None


def _interrupted(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _report_crash(args: list[str], error: Exception) -> int:
    """One line on stderr for an unexpected exception; its traceback goes to a crash file (and to
    stderr as well with ``--log-level DEBUG``)."""
    from scheduler.settings import redact_secrets

    command = _command_name(args)
    trace = "".join(traceback.format_exception(error))
    saved = _write_crash_file(
        f"cohort-scheduler {__version__}, Python {sys.version.split()[0]}\n"
        f"time: {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC\n"
        f"command: cohort {redact_secrets(' '.join(args))}\n\n{trace}"
    )
    if _debug():
        sys.stderr.write(printable(trace, keep_newlines=True))
    where = (
        f"the traceback is in {_text(saved)}"
        if saved is not None
        else "the traceback could not be saved (rerun with --log-level DEBUG to see it)"
    )
    summary = _clip(f"{type(error).__name__}: {error}", 160).replace("\n", " ")
    err.print(
        f"[red]error:[/red] `{_text(command)}` failed unexpectedly ({_text(summary)}); "
        f"this is a bug: {where}; please include it in a bug report"
    )
    return EXIT_BUG


def _command_name(args: list[str]) -> str:
    """``cohort roster import`` for ``--log-level DEBUG roster import r.csv --cohort x``."""
    command: Any = typer.main.get_command(app)
    names, skip = ["cohort"], False
    global_with_value = {"--config", "--database-url", "--log-level"}
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in global_with_value
        elif arg in (subcommands := getattr(command, "commands", None) or {}):
            command = subcommands[arg]
            names.append(arg)
        else:
            break
    return " ".join(names)


def _debug() -> bool:
    if STATE._runtime is not None:
        return STATE._runtime.settings.log_level == "DEBUG"
    level = STATE.flags.get("log_level") or os.environ.get("COHORT_LOG_LEVEL") or ""
    return str(level).upper() == "DEBUG"


def _write_crash_file(content: str) -> Path | None:
    """Write ``content`` to ``var/crash-YYYYMMDD-HHMMSS.log`` (UTC; mode 0600, in a folder made
    0700 if missing), else to a temporary file; the path written, or None if neither could be."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    data = content.encode("utf-8", "backslashreplace")
    try:
        CRASH_FOLDER.mkdir(mode=0o700, exist_ok=True)
        for n in range(100):
            path = CRASH_FOLDER / (f"crash-{stamp}.log" if n == 0 else f"crash-{stamp}-{n}.log")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return path
    except OSError:
        pass
    try:
        fd, name = tempfile.mkstemp(prefix=f"cohort-crash-{stamp}-", suffix=".log")  # 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return Path(name)
    except OSError:
        return None


if __name__ == "__main__":  # pragma: no cover
    main()
