"""``cohort roster``: validate, import and list the people of a cohort."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from scheduler.cli.app import _cohort, _transaction, current_runtime, roster_app
from scheduler.cli.console import (
    MAX_PRINTED_PROBLEMS,
    ROSTER_FILE_MAX_BYTES,
    CohortOption,
    JsonFlag,
    _json,
    _print_more,
    _print_problems,
    _progress,
    _read_file,
    _text,
    err,
    guarded,
    out,
)
from scheduler.domain.cohort import Role
from scheduler.domain.status import EnrollmentStatus
from scheduler.errors import Problem

# Everything else loads inside the command that needs it: `cohort --help` and `cohort version`
# import neither the database layer, the planner, the web stack nor the templates
# (tests/unit/test_cli_imports.py checks it; bench/cli.py measures it).

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
            current_runtime().clock.now(),
            dry_run=dry_run,
            partial=partial,
            horizon=current_runtime().horizon,
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
    from scheduler.services.people import list_people

    with _transaction() as db:
        people = list_people(db, cohort, role)
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
