"""The CLI's output layer, shared by every command group: the only place that prints.

Text that came from users (names, emails, titles, zones, paths, error values) goes through
:func:`_text` on its way into a line or a table cell: control characters are escaped (a name
cannot colour, move or clear the terminal, or read backwards) and Rich markup in it is shown
literally. Here too: :func:`guarded` (the product's errors as one line each), JSON printing,
bounded reading of input files and the progress bars.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from scheduler.cli.app import _database_in_use, current_runtime
from scheduler.errors import ConfigError, InputError, NotFoundError, Problem, SchedulerError
from scheduler.outputs.text import printable

# Everything else loads inside the command that needs it: `cohort --help` and `cohort version`
# import neither the database layer, the planner, the web stack nor the templates
# (tests/unit/test_cli_imports.py checks it; bench/cli.py measures it).
if TYPE_CHECKING:
    from scheduler.progress import Progress

P = ParamSpec("P")
R = TypeVar("R")

MIB = 1024 * 1024
# Input files are read whole: anything larger than these is refused before it is read.
COHORT_FILE_MAX_BYTES = 1 * MIB  # the example is 5 KB
ROSTER_FILE_MAX_BYTES = 64 * MIB  # 100,000 learners take about 11 MB
MAX_PRINTED_PROBLEMS = 200  # per list of problems or warnings; --json has them all


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

YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")]


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

            where = shown_url(current_runtime().settings.database_url)
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
