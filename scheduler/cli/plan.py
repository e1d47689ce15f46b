"""Planning commands: ``plan`` (with its tables and heatmap), ``deadlines``, and the manual
changes ``reschedule`` and ``cancel``.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.table import Table

from scheduler.cli.app import _cohort, _transaction, app, current_runtime
from scheduler.cli.console import (
    CohortOption,
    JsonFlag,
    YesOption,
    _json,
    _progress,
    _text,
    guarded,
    out,
)

# Everything else loads inside the command that needs it: `cohort --help` and `cohort version`
# import neither the database layer, the planner, the web stack nor the templates
# (tests/unit/test_cli_imports.py checks it; bench/cli.py measures it).
if TYPE_CHECKING:
    from scheduler.domain.cohort import CohortSpec
    from scheduler.planning import LearnerInput, Plan
    from scheduler.services.bursts import BurstCheck
    from scheduler.services.changes import Change, ChangePreview
    from scheduler.services.plans import PlanDiff

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
    from scheduler.planning.report import fairness_changes, fairness_report
    from scheduler.services import publishing
    from scheduler.services.plans import diff_plan, plan_cohort, plan_summary
    from scheduler.services.published import fairness_ledgers

    runtime = current_runtime()
    now = runtime.clock.now()
    with _transaction() as db, _progress(as_json) as progress:
        spec, learners, result = plan_cohort(db, cohort, progress)
        burden_before = fairness_ledgers(db, cohort)  # as published, before this plan
        summary = None
        if publish:
            published, diff, summary = publishing.publish(
                db, cohort, result, now, current_runtime().horizon, progress=progress
            )
        else:
            published, diff = None, diff_plan(db, cohort, result, now)
    burst = _busiest_stretch(cohort) if published is not None else None
    burden_changes = (
        fairness_changes(burden_before, [fairness_report(f) for f in result.fairness])
        if diff.published_version is not None
        else []
    )
    if as_json:
        zones = {x.key: x.zone for x in learners}
        _json(
            {
                **plan_summary(result, zones),
                "diff": diff.as_dict(),
                "published_version": published,
                # the published plan's burden ledgers, and in words what this plan changes
                "fairness_before": burden_before,
                "fairness_changes": burden_changes,
                **({"burst": burst.as_dict()} if burst is not None else {}),
            }
        )
        return
    _print_plan(spec, learners, result, verbose)
    _print_diff(diff)
    for line in burden_changes:
        out.print(f"[bold]Burden[/bold] (published -> this plan): {_text(line)}")
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
    if burst is not None:
        _print_burst(burst)


def _busiest_stretch(cohort: str) -> BurstCheck | None:
    """The busiest stretch of the outbox in the week ahead, with ``cohort``'s live reminders
    projected (see :mod:`scheduler.services.bursts`)."""
    from scheduler.services.bursts import busiest_stretch

    runtime = current_runtime()
    with _transaction() as db:
        return busiest_stretch(
            db, runtime.clock.now(), runtime.settings.mail_rate_per_second, slug=cohort
        )


def _print_burst(burst: BurstCheck) -> None:
    colour = "green" if burst.fits else "yellow"
    label = "Busiest stretch ahead" if burst.fits else "Burst warning"
    out.print(f"[{colour}]{label}[/{colour}]: {_text(burst.text())}")


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
        if s.rotation:
            times = " / ".join(t.label() for t in s.rotation) + " (rotating)"
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
    _print_fairness(result)
    _print_left_out(learners, result, verbose)
    _print_dst(result)
    for note in result.notes:
        out.print(f"[dim]note: {_text(note)}[/dim]")


def _print_fairness(result: Plan) -> None:
    """Per fairly rotated series its burden ledger: who carries the inconvenient meetings."""
    from scheduler.planning.report import describe_fairness, fairness_report

    for fair in result.fairness:
        lines = describe_fairness(fairness_report(fair))
        out.print(f"[bold]Fairness[/bold] {_text(lines[0])}")
        for line in lines[1:]:
            out.print(_text(line))


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
    order = _series_order(result)
    for summary in sorted(summaries, key=lambda x: order.get(x.series, len(order))):
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
    order = _series_order(result)
    for change in sorted(changes, key=lambda x: (order.get(x.series, len(order)), x.week)):
        out.print(f"[yellow]DST[/yellow] {_text(change.describe())}")


def _series_order(result: Plan) -> dict[str, int]:
    """Each series' place in the plan (the order its sections are listed in)."""
    return {key: i for i, key in enumerate(dict.fromkeys(s.series for s in result.sections))}


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
    from scheduler.domain.labels import kind_label
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
        table.add_row(_text(when), _text(kind_label(e.kind)), title, note)
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


def _change(change: Change, cohort: str, yes: bool, as_json: bool) -> None:
    from scheduler.services.changes import apply_change, preview_change

    runtime = current_runtime()
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
        result = apply_change(db, cohort, change, now, current_runtime().horizon)
    burst = _busiest_stretch(cohort)
    if as_json:
        _json(
            {
                "applied": True,
                "version": result.version,
                **asdict(result.preview),
                **({"burst": burst.as_dict()} if burst is not None else {}),
            }
        )
        return
    out.print(
        f"[green]Done[/green]: plan version {result.version}; "
        f"{result.invites.updates} update(s) and {result.invites.cancellations} cancellation(s) "
        f"queued; deadlines recomputed ({result.deadlines.changed_learners} learners changed)."
    )
    if burst is not None:
        _print_burst(burst)


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
    if preview.burden:
        out.print(
            "Burden (each region's share of inconvenient meetings, as published \u2192 after): "
            + _text(", ".join(preview.burden))
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
    _change_series(series, to, cohort, section, slot, week, from_week, yes, as_json)


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
    _change_series(series, None, cohort, section, slot, week, from_week, yes, as_json)


def _change_series(
    series: str,
    to: str | None,
    cohort: str | None,
    section: int,
    slot: int,
    week: int | None,
    from_week: int | None,
    yes: bool,
    as_json: bool,
) -> None:
    """Move to the wall time ``to`` (None: cancel) what the flags name (numbered from 1)."""
    cohort = _cohort(cohort)
    from scheduler.services.changes import Change, parse_wall_time

    new_time = None if to is None else parse_wall_time(to)
    _change(
        Change(series, section - 1, slot - 1, _week(week), _week(from_week), new_time),
        cohort,
        yes,
        as_json,
    )


def _week(value: int | None) -> int | None:
    return None if value is None else value - 1
