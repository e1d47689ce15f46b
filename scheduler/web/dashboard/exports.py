"""What the dashboard hands out: the roster and the plan as CSV downloads, and the cohort's
calendar feed link (shown once).

CSV exports quote every field and neutralise any a spreadsheet would read as a formula
(:func:`safe_cell`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy.orm import Session

from scheduler.errors import NotFoundError
from scheduler.outputs.links import feed_links
from scheduler.services.feeds import feed_name, issue_token
from scheduler.services.views import plan_rows, roster_rows
from scheduler.web.dashboard.context import Dashboard, DashboardDep
from scheduler.web.dashboard.session import csrf_failure

router = APIRouter(include_in_schema=False)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A separator a spreadsheet may start a new cell at (its list separator: "," or ";" by locale,
# TAB, or a line break) followed, past any spaces and quotes, by a character that starts a
# formula.
_FORMULA_AFTER_BREAK = re.compile(r"""([,;\t\r\n])(?=[ "]*[=+\-@\t\r])""")


def safe_cell(value: object) -> str:
    """A CSV field no spreadsheet will run, whatever list separator it splits on (OWASP "CSV
    injection"): a field that would yield a cell starting with = + - @ TAB or CR, read whole or
    split on "," ";" TAB or a line break, gets a leading apostrophe, and so does each such inner
    cell (``Evil;=1+2`` -> ``'Evil;'=1+2``): a reader that splits inside the quotes sees text too.
    Nothing but apostrophes is ever added. ``csv_bytes`` quotes every field as well."""
    text = "" if value is None else str(value)
    guarded = _FORMULA_AFTER_BREAK.sub(r"\1'", text)
    if guarded != text or text.lstrip(' "').startswith(_FORMULA_START):
        return "'" + guarded
    return text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """The CSV every export answers: UTF-8 with a BOM, CRLF, every field quoted and made safe
    by :func:`safe_cell` (numbers too: one rule for every cell)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([safe_cell(v) for v in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")  # BOM: spreadsheets read UTF-8


def _download(body: bytes, filename: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
        },
    )


@router.get("/cohorts/{slug}/roster.csv")
def roster_csv(request: Request, dash: DashboardDep, slug: str) -> Response:
    return _export(request, dash, slug, roster_rows, "roster")


@router.get("/cohorts/{slug}/plan.csv")
def plan_csv(request: Request, dash: DashboardDep, slug: str) -> Response:
    return _export(request, dash, slug, plan_rows, "plan")


def _export(
    request: Request,
    dash: Dashboard,
    slug: str,
    table: Callable[[Session, str], tuple[Sequence[str], Iterable[Sequence[object]]]],
    name: str,
) -> Response:
    """The cohort's ``table`` as the download ``{slug}-{name}.csv`` (404 page: no such cohort)."""
    session = dash.auth.page(request)
    try:
        with dash.cohort_transaction(slug) as db:
            body = csv_bytes(*table(db, slug))
    except NotFoundError as e:
        return dash.pages.error(request, 404, str(e), session)
    return _download(body, f"{slug}-{name}.csv")


@router.post("/cohorts/{slug}/feed-link")
def cohort_feed_link(
    request: Request, dash: DashboardDep, slug: str, csrf: Annotated[str, Form()] = ""
) -> Response:
    session = dash.auth.page(request)
    if (bad := csrf_failure(dash, request, session, csrf)) is not None:
        return bad
    try:
        with dash.cohort_transaction(slug) as db:
            token, target = issue_token(db, slug, None, dash.runtime.clock.now())
    except NotFoundError as e:
        return dash.pages.error(request, 404, str(e), session)
    # Shown once, in this answer: only the token's hash is stored, so it cannot be shown
    # again (a reload issues another; `cohort feeds reset` revokes them all).
    links = feed_links(dash.runtime.settings.base_url, token, feed_name(target))
    return dash.pages.render(
        request,
        "feed_link.html",
        session=session,
        slug=slug,
        title=target.cohort_title,
        links=links,
    )
