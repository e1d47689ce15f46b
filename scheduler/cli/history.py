"""A cohort over time: ``replan`` (re-plan the future) and ``log`` (its audit log)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from scheduler.cli.app import _cohort, _transaction, app, current_runtime
from scheduler.cli.console import (
    CohortOption,
    JsonFlag,
    YesOption,
    _clip,
    _json,
    _text,
    err,
    guarded,
    out,
)

# Everything else loads inside the command that needs it: `cohort --help` and `cohort version`
# import neither the database layer, the planner, the web stack nor the templates
# (tests/unit/test_cli_imports.py checks it; bench/cli.py measures it).

MAX_LOG_ENTRIES = 100_000

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

    runtime = current_runtime()
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
