"""The front door: :func:`main`, which runs the ``cohort`` app and lets no traceback through
(a bug is one line and a crash file), and ``cohort version``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
import typer.main

from scheduler import __version__
from scheduler.cli.app import app
from scheduler.cli.console import _clip, _text, err, out
from scheduler.errors import SchedulerError
from scheduler.outputs.text import printable

# Everything else loads inside the command that needs it: `cohort --help` and `cohort version`
# import neither the database layer, the planner, the web stack nor the templates
# (tests/unit/test_cli_imports.py checks it; bench/cli.py measures it).

EXIT_BUG = 2  # an unexpected exception (a bug): one line, the traceback in a crash file
EXIT_INTERRUPTED = 130  # Ctrl+C
CRASH_FOLDER = Path("var")


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
    cli_state = app.state
    if cli_state._runtime is not None:
        return cli_state._runtime.settings.log_level == "DEBUG"
    level = cli_state.flags.get("log_level") or os.environ.get("COHORT_LOG_LEVEL") or ""
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
