"""``cohort init`` (example files) and ``cohort db`` (the schema): getting started."""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Annotated

import typer

from scheduler.cli.app import app, current_runtime, db_app
from scheduler.cli.console import _text, err, guarded, out

# Everything else loads inside the command that needs it: `cohort --help` and `cohort version`
# import neither the database layer, the planner, the web stack nor the templates
# (tests/unit/test_cli_imports.py checks it; bench/cli.py measures it).

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

    runtime = current_runtime()
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

    runtime = current_runtime()
    current, head = schema_revisions(runtime.engine)
    out.print(f"current: {current or 'empty'}; head: {head}")
