"""``cohort cohort``: load, validate and list the cohort files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from scheduler.cli.app import _transaction, cohort_app, current_runtime
from scheduler.cli.console import (
    JsonFlag,
    _json,
    _nesting_checked,
    _read_cohort_file,
    _text,
    err,
    guarded,
    out,
)

# Everything else loads inside the command that needs it: `cohort --help` and `cohort version`
# import neither the database layer, the planner, the web stack nor the templates
# (tests/unit/test_cli_imports.py checks it; bench/cli.py measures it).

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
        result = load_cohort(db, text, str(file), current_runtime().clock.now())
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
