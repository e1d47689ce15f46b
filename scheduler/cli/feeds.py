"""Running and serving: ``feeds``, ``serve``, ``worker``, ``status`` and ``admin token``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from scheduler.cli.app import (
    _cohort,
    _database_in_use,
    _transaction,
    admin_app,
    app,
    current_runtime,
    feeds_app,
)
from scheduler.cli.console import CohortOption, JsonFlag, _json, _text, err, guarded, out
from scheduler.domain.status import NotificationStatus

# Everything else loads inside the command that needs it: `cohort --help` and `cohort version`
# import neither the database layer, the planner, the web stack nor the templates
# (tests/unit/test_cli_imports.py checks it; bench/cli.py measures it).

# --- feeds and serving -------------------------------------------------------------------------


def _print_links(
    target_name: str, token: str, as_json: bool, revoked: int | None = None, *, learner: bool
) -> None:
    from scheduler.outputs.links import feed_links

    links = feed_links(current_runtime().settings.base_url, token, target_name)
    page = links.page if learner else None  # the page opens for a learner's link only
    if as_json:
        _json({**asdict(links), "page": page, "revoked": revoked})
        return
    if revoked is not None:
        out.print(f"Revoked {revoked} earlier link(s); the old URLs now answer 404.")
    out.print(f"Calendar feed for [bold]{_text(target_name)}[/bold]")
    out.print("[dim]Keep it private: anyone with the link can read the calendar.[/dim]")
    out.print(f"  https:   {_text(links.https)}")
    out.print(f"  webcal:  {_text(links.webcal)}")
    out.print(f"  Google:  {_text(links.google)}")
    out.print(f"  Outlook: {_text(links.outlook)}")
    if page is not None:
        out.print(f"  Page:    {_text(page)}  (their meetings, deadlines and reminder choices)")


FeedOwnerArgument = Annotated[
    str | None, typer.Argument(help="Learner or facilitator; omit for the cohort's feed.")
]


@feeds_app.command("url")
@guarded
def feeds_url(
    email: FeedOwnerArgument = None, cohort: CohortOption = None, as_json: JsonFlag = False
) -> None:
    """Issue a feed link (a new secret URL; earlier ones keep working until reset)."""
    _new_link(cohort, email, as_json, reset=False)


@feeds_app.command("reset")
@guarded
def feeds_reset(
    email: FeedOwnerArgument = None, cohort: CohortOption = None, as_json: JsonFlag = False
) -> None:
    """Revoke every link to this feed and issue a new one (for a leaked link)."""
    _new_link(cohort, email, as_json, reset=True)


def _new_link(cohort: str | None, email: str | None, as_json: bool, *, reset: bool) -> None:
    """Issue a new link to ``email``'s feed (``reset``: revoking every earlier one) and print it."""
    cohort = _cohort(cohort)
    from scheduler.services.feeds import feed_name, issue_token, reset_tokens

    revoked = None
    with _transaction() as db:
        now = current_runtime().clock.now()
        if reset:
            token, revoked, target = reset_tokens(db, cohort, email, now)
        else:
            token, target = issue_token(db, cohort, email, now)
    _print_links(feed_name(target), token, as_json, revoked, learner=target.kind == "learner")


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

    runtime = current_runtime()
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

    runtime = current_runtime()
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
    from scheduler.services.bursts import busiest_stretch
    from scheduler.services.outbox import outbox_status, worker_status

    runtime = current_runtime()
    now = runtime.clock.now()
    with _transaction() as db:
        box_ = outbox_status(db, now)
        workers = worker_status(db, now)
        burst = busiest_stretch(db, now, runtime.settings.mail_rate_per_second)
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
                "burst": None if burst is None else burst.as_dict(),
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
    if burst is not None:
        colour, label = ("green", "busiest stretch") if burst.fits else ("yellow", "burst warning")
        out.print(f"[{colour}]{label}[/{colour}]: {_text(burst.text())}")


@admin_app.command("token")
@guarded
def admin_token() -> None:
    """Issue the admin token for the dashboard and the API (earlier ones stop working)."""
    from scheduler.services.admin import rotate_admin_token

    runtime = current_runtime()
    with _transaction() as db:
        token, revoked = rotate_admin_token(db, runtime.clock.now())
    out.print(_text(token), soft_wrap=True)
    note = f" ({revoked} earlier token{'s' if revoked != 1 else ''} revoked)" if revoked else ""
    err.print(
        f"admin token issued{note}: log in at {_text(runtime.settings.base_url)}/login "
        "or send it as 'Authorization: Bearer TOKEN' to /api/"
    )
