"""The course runner's dashboard and the learner's page: server-rendered Jinja pages.

``dashboard_router(runtime, auth)`` builds the routes; ``create_app`` includes them.

Admin pages (a session from the login form; see :mod:`scheduler.web.auth`)::

    GET  /login, POST /login, POST /logout
    GET  /                               the cohorts
    GET  /cohorts/{slug}                 heatmap, coverage, left out, next meetings, delivery
                                         (?week=N; ?series=&reason=&region= filter left out)
    GET  /cohorts/{slug}/change          preview a move or a cancellation (no side effects)
    POST /cohorts/{slug}/change          apply it (the CLI's service: changes.apply_change)
    GET  /cohorts/{slug}/learners        find, add, change, withdraw learners
    POST /cohorts/{slug}/learners[/update|/remove]
    GET  /cohorts/{slug}/roster.csv, /cohorts/{slug}/plan.csv
    POST /cohorts/{slug}/feed-link       issue the cohort's feed link (shown once)

Learner page (the learner's feed token is the key; nothing about anyone else)::

    GET  /me/{token}                     their meetings and deadlines on their clock
    POST /me/{token}/reset               revoke every link of theirs, go to the new page

Every POST checks a CSRF token; state changes answer with a redirect and a flash message (a
short-lived signed cookie). Templates live in ``templates/web/`` with autoescaping on and
``StrictUndefined``. Pages need no script and load nothing from elsewhere (see the CSP in
``app``). CSV exports quote every field and neutralise any a spreadsheet would read as a formula
(:func:`safe_cell`).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session

from scheduler.domain.cohort import Role
from scheduler.domain.cohort_file import KEY_RE, SLUG_RE
from scheduler.errors import InputError, NotFoundError, Problem
from scheduler.outputs.formatting import local_datetime, local_time
from scheduler.outputs.links import feed_links
from scheduler.resources import resource_dir
from scheduler.runtime import Runtime
from scheduler.services.admin import mac, sign, unsign
from scheduler.services.audit import audit_log, describe
from scheduler.services.changes import Change, apply_change, parse_wall_time, preview_change
from scheduler.services.cohorts import cohort_basics, orchestration_options
from scheduler.services.feeds import (
    FeedTarget,
    feed_name,
    hash_token,
    issue_token,
    reset_tokens,
    resolve_token,
)
from scheduler.services.learners import (
    add_learner,
    is_active_member,
    remove_learner,
    update_learner,
)
from scheduler.services.schedule import learner_schedule
from scheduler.services.views import (
    LeftOutFilter,
    cohort_cards,
    cohort_overview,
    find_learners,
    plan_rows,
    roster_rows,
    series_choices,
)
from scheduler.web.auth import AdminAuth, AdminSession

log = logging.getLogger(__name__)

FLASH_COOKIE = "cohort_flash"
STATIC = Path(__file__).resolve().parent / "static"
NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex, nofollow"}
LIVE_KINDS = ("class", "office_hours")
MAX_SECTIONS, MAX_SLOTS = 1000, 100  # per series; a form's numbers beyond are refused
ACTIVITY_SHOWN = 15  # newest audit log entries on the cohort page
DEADLINE_KINDS = ("assignment", "catch_up", "replay")
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


class Pages:
    """Renders the templates and carries the flash message between a POST and its GET."""

    def __init__(self, runtime: Runtime, auth: AdminAuth) -> None:
        self.runtime = runtime
        self.auth = auth
        self.env = Environment(
            loader=FileSystemLoader(resource_dir("templates") / "web"),
            autoescape=select_autoescape(["html"], default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["local"] = local_datetime
        self.env.filters["clock"] = local_time
        self.env.filters["pct"] = lambda x: "-" if x is None else f"{x:.0%}"
        self.env.filters["age"] = _age
        self.env.filters["sentence"] = lambda text: str(text)[:1].upper() + str(text)[1:]
        self.env.filters["day"] = lambda d: (
            f"{d:%a} {d.day} {d:%b %Y}" if isinstance(d, date) else ""
        )
        self.env.filters["daymonth"] = lambda d: f"{d.day} {d:%b}" if isinstance(d, date) else ""
        self.env.globals["url_for_week"] = lambda slug, w: f"/cohorts/{quote(slug)}?week={w + 1}"

    def render(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        session: AdminSession | None = None,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        flash = self._flash(request)
        html = self.env.get_template(template).render(
            session=session,
            csrf=session.csrf if session else "",
            flash=flash,
            **context,
        )
        # Every page shows personal data or a capability: never cached, never indexed.
        response = HTMLResponse(html, status_code=status, headers={**NO_STORE, **(headers or {})})
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def error(
        self, request: Request, status: int, message: str, session: AdminSession | None = None
    ) -> HTMLResponse:
        return self.render(
            request,
            "error.html",
            status=status,
            session=session,
            message=message,
            heading={403: "Not allowed", 404: "Not found"}.get(status, "Sorry"),
        )

    # -- flash messages: a signed cookie read once ---------------------------------------------
    def redirect(self, url: str, kind: str = "", text: str = "") -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        if text:
            payload = base64.urlsafe_b64encode(json.dumps([kind, text[:1500]]).encode()).decode()
            response.set_cookie(
                FLASH_COOKIE,
                sign(self.auth.secret, "flash", payload),
                max_age=120,
                httponly=True,
                samesite="strict",
                secure=self.auth.secure,
                path="/",
            )
        return response

    def _flash(self, request: Request) -> dict[str, str] | None:
        """The flash message the cookie carries; None for none, or for any value not signed
        here (a hostile cookie never makes a page fail)."""
        raw = request.cookies.get(FLASH_COOKIE)
        if raw is not None and not raw.isascii():
            return None  # not ours (only ASCII is signed): never parsed, whatever unsign does
        payload = unsign(self.auth.secret, "flash", raw) if raw else None
        if payload is None:
            return None
        try:
            kind, text = json.loads(base64.urlsafe_b64decode(payload.encode()))
        except (ValueError, TypeError):
            return None
        return {"kind": str(kind), "text": str(text)}


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _local_path(target: str) -> str:
    """Only paths on this site (no ``//host``, no scheme) are followed after login."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def whole_number(text: str, low: int, high: int) -> int | None:
    """``text`` read as a whole number from ``low`` to ``high``, else None. Only ASCII digits
    (``str.isdigit`` is true for "²" and "٣", which ``int`` refuses or reads as 3) and no more of
    them than ``high`` has, so nothing out of range reaches ``int`` or the database."""
    digits = text.strip()
    if not digits or len(digits) > len(str(high)) or not (digits.isascii() and digits.isdigit()):
        return None
    value = int(digits)
    return value if low <= value <= high else None


def _has_control_characters(text: str) -> bool:
    return any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text)


def _problems(e: InputError) -> list[str]:
    return [p.describe() for p in e.problems] or [e.summary]


def dashboard_router(runtime: Runtime, auth: AdminAuth) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    pages = Pages(runtime, auth)
    css = (STATIC / "dashboard.css").read_bytes()
    css_tag = hashlib.sha256(css).hexdigest()[:16]
    pages.env.globals["css_url"] = f"/static/dashboard.css?v={css_tag}"

    @contextmanager
    def cohort_transaction(slug: str) -> Iterator[Session]:
        """``runtime.transaction()`` for the cohort a URL names. A slug no cohort can have is a
        NotFoundError at once, never sent to the database (PostgreSQL refuses text with a NUL
        in it: that would be a 500)."""
        if not SLUG_RE.fullmatch(slug):
            raise NotFoundError(f"no cohort with slug {slug[:80]!r}")
        with runtime.transaction() as db:
            yield db

    def csrf_failure(request: Request, session: AdminSession, given: str) -> HTMLResponse | None:
        try:
            # non-ASCII text would make hmac.compare_digest raise TypeError (a 500): refuse it
            auth.check_csrf(session, given if given.isascii() else "")
        except HTTPException as e:
            return pages.error(request, 403, str(e.detail), session)
        return None

    @router.get("/static/dashboard.css")
    def stylesheet() -> Response:
        return Response(
            css,
            media_type="text/css; charset=utf-8",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    # -- login ------------------------------------------------------------------------------
    @router.get("/login")
    def login_form(request: Request, next: str = "/") -> Response:
        if auth.session(request) is not None:
            return RedirectResponse(_local_path(next), status_code=303)
        return pages.render(request, "login.html", next=_local_path(next), error="")

    @router.post("/login")
    def login(
        request: Request,
        token: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        response = RedirectResponse(_local_path(next), status_code=303)
        if auth.login(response, token):
            return response
        return pages.render(
            request,
            "login.html",
            status=401,
            next=_local_path(next),
            error="That token is not valid (it may have been replaced by a newer one).",
        )

    @router.post("/logout")
    def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        session = auth.page(request)
        if (bad := csrf_failure(request, session, csrf)) is not None:
            return bad
        response = pages.redirect("/login", "ok", "You are logged out.")
        auth.logout(response, session)
        return response

    # -- cohorts ----------------------------------------------------------------------------
    @router.get("/")
    def cohorts(request: Request) -> Response:
        session = auth.page(request)
        with runtime.transaction() as db:
            cards = cohort_cards(db)
        return pages.render(request, "cohorts.html", session=session, cards=cards)

    @router.get("/cohorts/{slug}")
    def cohort(
        request: Request,
        slug: str,
        week: str = "",
        series: str = "",
        reason: str = "",
        region: str = "",
    ) -> Response:
        """The cohort page. ``series``, ``reason`` and ``region`` (``Asia/*``) narrow the list
        of left-out learners; each must be one the page offers (else 422, saying which)."""
        session = auth.page(request)
        now = runtime.clock.now()
        wanted = LeftOutFilter(series, reason, region)
        try:
            with cohort_transaction(slug) as db:
                weeks = cohort_basics(db, slug).weeks
                shown = whole_number(week, 1, weeks) if week else None
                if week and shown is None:
                    problem = Problem(
                        f"must be a course week from 1 to {weeks}", field="week", value=week
                    )
                    return pages.error(request, 422, problem.describe(), session)
                overview = cohort_overview(
                    db,
                    slug,
                    now,
                    week=None if shown is None else shown - 1,
                    second_host_threshold=second_host_threshold(runtime),
                    left_out_filter=wanted,
                )
                activity = [(e, describe(e)) for e in audit_log(db, slug, ACTIVITY_SHOWN)]
                options = orchestration_options(db, slug)
        except InputError as e:
            return pages.error(request, 422, "; ".join(_problems(e)), session)
        except NotFoundError as e:
            return pages.error(request, 404, str(e), session)
        targets = [(t.value, f"{t.name} — {t.label} {t.anchor_zone}") for t in overview.live_times]
        return pages.render(
            request,
            "cohort.html",
            session=session,
            o=overview,
            series=targets,
            shown_week=shown,
            form={},
            activity=activity,
            orchestration=options,
        )

    # -- move or cancel: preview, then apply ----------------------------------------------
    def read_change(
        overview_weeks: int, target: str, scope: str, week: str, to: str, action: str
    ) -> Change:
        problems: list[Problem] = []
        series, _, numbers = target.partition(":")
        section_text, _, slot_text = numbers.partition(":")
        # 0-based section and slot, bounded as the API's (1-based) ChangeIn is
        section = whole_number(section_text, 0, MAX_SECTIONS - 1)
        slot = whole_number(slot_text, 0, MAX_SLOTS - 1)
        if not KEY_RE.fullmatch(series) or section is None or slot is None:
            problems.append(Problem("choose a series", field="series", value=target or None))
        week_number: int | None = None
        if scope in ("week", "from"):
            week_number = whole_number(week, 1, overview_weeks)
            if week_number is None:
                problems.append(
                    Problem(
                        f"must be a course week from 1 to {overview_weeks}",
                        field="week",
                        value=week or None,
                    )
                )
            else:
                week_number -= 1
        elif scope != "all":
            problems.append(
                Problem("choose one week, from a week on, or every week", field="scope")
            )
        new_time = None
        if action == "move":
            try:
                new_time = parse_wall_time(to)
            except InputError as e:
                problems.extend(
                    Problem(p.message, field="new time", value=p.value, hint=p.hint)
                    for p in e.problems
                )
        elif action != "cancel":
            problems.append(Problem("choose move or cancel", field="action"))
        if problems or section is None or slot is None:  # (the Nones are problems already)
            raise InputError(problems, "the change cannot be read")
        return Change(
            series,
            section,
            slot,
            week_number if scope == "week" else None,
            week_number if scope == "from" else None,
            new_time,
        )

    @router.get("/cohorts/{slug}/change")
    def change_preview(
        request: Request,
        slug: str,
        target: str = "",
        scope: str = "week",
        week: str = "",
        to: str = "",
        action: str = "move",
    ) -> Response:
        session = auth.page(request)
        now = runtime.clock.now()
        form = {"target": target, "scope": scope, "week": week, "to": to, "action": action}
        try:
            with cohort_transaction(slug) as db:
                cohort_row = cohort_basics(db, slug)
                home, locale, weeks = cohort_row.home_zone, cohort_row.locale, cohort_row.weeks
                title = cohort_row.title
                series = series_choices(db, cohort_row.id)
                try:
                    change = read_change(weeks, target, scope, week, to, action)
                    preview = preview_change(db, slug, change, now)
                except (InputError, NotFoundError) as e:
                    errors = _problems(e) if isinstance(e, InputError) else [str(e)]
                    return pages.render(
                        request,
                        "change.html",
                        status=422 if isinstance(e, InputError) else 404,
                        session=session,
                        slug=slug,
                        title=title,
                        weeks=weeks,
                        series=series,
                        form=form,
                        errors=errors,
                        preview=None,
                        home=home,
                        locale=locale,
                    )
        except NotFoundError as e:
            return pages.error(request, 404, str(e), session)
        return pages.render(
            request,
            "change.html",
            session=session,
            slug=slug,
            title=title,
            weeks=weeks,
            series=series,
            form=form,
            errors=[],
            preview=preview,
            home=home,
            locale=locale,
        )

    @router.post("/cohorts/{slug}/change")
    def change_apply(
        request: Request,
        slug: str,
        csrf: Annotated[str, Form()] = "",
        target: Annotated[str, Form()] = "",
        scope: Annotated[str, Form()] = "",
        week: Annotated[str, Form()] = "",
        to: Annotated[str, Form()] = "",
        action: Annotated[str, Form()] = "",
    ) -> Response:
        session = auth.page(request)
        if (bad := csrf_failure(request, session, csrf)) is not None:
            return bad
        now = runtime.clock.now()
        page = f"/cohorts/{quote(slug)}"
        try:
            with cohort_transaction(slug) as db:
                weeks = cohort_basics(db, slug).weeks
                change = read_change(weeks, target, scope, week, to, action)
                result = apply_change(db, slug, change, now, runtime.horizon, actor="dashboard")
        except InputError as e:
            return pages.redirect(page, "error", "Nothing changed: " + "; ".join(_problems(e)))
        except NotFoundError as e:
            return pages.redirect(page, "error", f"Nothing changed: {e}")
        invites = result.invites
        log.info(
            "dashboard: %s in %s, version %d", result.preview.description, slug, result.version
        )
        return pages.redirect(
            page,
            "ok",
            f"Done: {result.preview.description}. Plan version {result.version}; "
            f"{invites.updates} update(s) and {invites.cancellations} cancellation(s) queued; "
            f"deadlines recomputed ({result.deadlines.changed_learners} learner(s) changed).",
        )

    # -- learners ---------------------------------------------------------------------------
    def learners_page(
        request: Request,
        session: AdminSession,
        slug: str,
        q: str,
        *,
        status: int = 200,
        errors: Sequence[str] = (),
        form: dict[str, str] | None = None,
        error_for: str = "",
    ) -> Response:
        if _has_control_characters(q):  # no name or email has one; PostgreSQL refuses NUL
            errors = [*errors, "search: contains control characters"]
            status = status if status >= 400 else 422
            q = ""
        try:
            with cohort_transaction(slug) as db:
                cohort_row = cohort_basics(db, slug)
                found, total = find_learners(db, cohort_row.id, q)
                title, default = cohort_row.title, cohort_row.default_availability
        except NotFoundError as e:
            return pages.error(request, 404, str(e), session)
        return pages.render(
            request,
            "learners.html",
            status=status,
            session=session,
            slug=slug,
            title=title,
            default_availability=default,
            q=q,
            learners=found,
            total=total,
            errors=list(errors),
            form=form or {},
            error_for=error_for,
        )

    @router.get("/cohorts/{slug}/learners")
    def learners(request: Request, slug: str, q: str = "") -> Response:
        session = auth.page(request)
        return learners_page(request, session, slug, q.strip())

    @router.post("/cohorts/{slug}/learners")
    def learner_add(
        request: Request,
        slug: str,
        csrf: Annotated[str, Form()] = "",
        name: Annotated[str, Form()] = "",
        email: Annotated[str, Form()] = "",
        zone: Annotated[str, Form()] = "",
        availability: Annotated[str, Form()] = "",
        locale: Annotated[str, Form()] = "",
    ) -> Response:
        session = auth.page(request)
        if (bad := csrf_failure(request, session, csrf)) is not None:
            return bad
        form = {
            "name": name,
            "email": email,
            "zone": zone,
            "availability": availability,
            "locale": locale,
        }
        try:
            with cohort_transaction(slug) as db:
                add_learner(
                    db,
                    slug,
                    name=name,
                    email=email,
                    zone=zone,
                    availability=availability or None,
                    locale=locale or None,
                    now=runtime.clock.now(),
                    horizon=runtime.horizon,
                )
        except InputError as e:
            return learners_page(
                request,
                session,
                slug,
                "",
                status=422,
                errors=_problems(e),
                form=form,
                error_for="add",
            )
        except NotFoundError as e:
            return pages.error(request, 404, str(e), session)
        return pages.redirect(
            f"/cohorts/{quote(slug)}/learners?" + urlencode({"q": email.strip()}),
            "ok",
            f"Added {name.strip()} <{email.strip()}>. The worker places them in the "
            "best-fitting section with room and sends their invitations.",
        )

    @router.post("/cohorts/{slug}/learners/update")
    def learner_update(
        request: Request,
        slug: str,
        csrf: Annotated[str, Form()] = "",
        email: Annotated[str, Form()] = "",
        zone: Annotated[str, Form()] = "",
        availability: Annotated[str, Form()] = "",
        q: Annotated[str, Form()] = "",
    ) -> Response:
        session = auth.page(request)
        if (bad := csrf_failure(request, session, csrf)) is not None:
            return bad
        try:
            with cohort_transaction(slug) as db:
                update_learner(
                    db,
                    slug,
                    email,
                    zone=zone,
                    availability=availability,
                    now=runtime.clock.now(),
                    horizon=runtime.horizon,
                )
        except InputError as e:
            return learners_page(
                request, session, slug, q, status=422, errors=_problems(e), error_for=email
            )
        except NotFoundError as e:
            return learners_page(request, session, slug, q, status=404, errors=[str(e)])
        return pages.redirect(
            f"/cohorts/{quote(slug)}/learners?" + urlencode({"q": q}),
            "ok",
            f"Updated {email}: deadlines and reminders follow the new clock now; "
            "sections change at the next publish.",
        )

    @router.post("/cohorts/{slug}/learners/remove")
    def learner_remove(
        request: Request,
        slug: str,
        csrf: Annotated[str, Form()] = "",
        email: Annotated[str, Form()] = "",
        q: Annotated[str, Form()] = "",
    ) -> Response:
        session = auth.page(request)
        if (bad := csrf_failure(request, session, csrf)) is not None:
            return bad
        try:
            with cohort_transaction(slug) as db:
                remove_learner(db, slug, email, now=runtime.clock.now(), horizon=runtime.horizon)
        except NotFoundError as e:
            return learners_page(request, session, slug, q, status=404, errors=[str(e)])
        return pages.redirect(
            f"/cohorts/{quote(slug)}/learners?" + urlencode({"q": q}),
            "ok",
            f"Withdrew {email}: their deadlines and pending reminders are gone.",
        )

    # -- exports ----------------------------------------------------------------------------
    @router.get("/cohorts/{slug}/roster.csv")
    def roster_csv(request: Request, slug: str) -> Response:
        session = auth.page(request)
        try:
            with cohort_transaction(slug) as db:
                body = csv_bytes(*roster_rows(db, slug))
        except NotFoundError as e:
            return pages.error(request, 404, str(e), session)
        return _download(body, f"{slug}-roster.csv")

    @router.get("/cohorts/{slug}/plan.csv")
    def plan_csv(request: Request, slug: str) -> Response:
        session = auth.page(request)
        try:
            with cohort_transaction(slug) as db:
                body = csv_bytes(*plan_rows(db, slug))
        except NotFoundError as e:
            return pages.error(request, 404, str(e), session)
        return _download(body, f"{slug}-plan.csv")

    @router.post("/cohorts/{slug}/feed-link")
    def cohort_feed_link(
        request: Request, slug: str, csrf: Annotated[str, Form()] = ""
    ) -> Response:
        session = auth.page(request)
        if (bad := csrf_failure(request, session, csrf)) is not None:
            return bad
        try:
            with cohort_transaction(slug) as db:
                token, target = issue_token(db, slug, None, runtime.clock.now())
        except NotFoundError as e:
            return pages.error(request, 404, str(e), session)
        # Shown once, in this answer: only the token's hash is stored, so it cannot be shown
        # again (a reload issues another; `cohort feeds reset` revokes them all).
        links = feed_links(runtime.settings.base_url, token, feed_name(target))
        return pages.render(
            request,
            "feed_link.html",
            session=session,
            slug=slug,
            title=target.cohort_title,
            links=links,
        )

    # -- the learner's page -----------------------------------------------------------------
    def me_csrf(token: str) -> str:
        return mac(auth.secret, "csrf", f"me-reset:{hash_token(token)}")

    def learner_target(token: str) -> FeedTarget | None:
        if not token or len(token) > 200:
            return None
        with runtime.transaction() as db:
            target = resolve_token(db, token)
            if target is None or target.kind != Role.LEARNER.value or target.person_id is None:
                return None
            if not is_active_member(db, target.cohort_id, target.person_id):
                return None
        return target

    @router.get("/me/{token}")
    def me(request: Request, token: str) -> Response:
        target = learner_target(token)
        if target is None or target.email is None:
            return pages.error(request, 404, "This calendar link is unknown or was reset.")
        now = runtime.clock.now()
        try:
            with runtime.transaction() as db:
                schedule = learner_schedule(db, target.cohort_slug, target.email)
        except NotFoundError:
            return pages.error(request, 404, "This calendar link is unknown or was reset.")
        upcoming = [e for e in schedule.entries if (e.end or e.at) >= now]
        links = feed_links(runtime.settings.base_url, token, feed_name(target))
        return pages.render(
            request,
            "me.html",
            title=target.cohort_title,
            name=schedule.name,
            zone=schedule.zone,
            locale=schedule.locale,
            lang=schedule.locale.replace("_", "-"),
            live=[e for e in upcoming if e.kind in LIVE_KINDS],
            coworking=[e for e in upcoming if e.kind == "coworking"],
            deadlines=[e for e in upcoming if e.kind in DEADLINE_KINDS],
            links=links,
            token=token,
            me_csrf=me_csrf(token),
            kind_label=_KIND_LABELS,
        )

    @router.post("/me/{token}/reset")
    def me_reset(request: Request, token: str, csrf: Annotated[str, Form()] = "") -> Response:
        target = learner_target(token)
        if target is None or target.email is None:
            return pages.error(request, 404, "This calendar link is unknown or was reset.")
        if not hmac.compare_digest(csrf.encode(), me_csrf(token).encode()):
            return pages.error(request, 403, "The form is stale: reload the page and try again.")
        with runtime.transaction() as db:
            new, _, _ = reset_tokens(db, target.cohort_slug, target.email, runtime.clock.now())
        return pages.redirect(
            f"/me/{quote(new, safe='')}",
            "ok",
            "Your calendar link is new: the old one stopped working. Subscribe again below "
            "(calendars using the old link stop updating).",
        )

    return router


_KIND_LABELS = {
    "class": "Live class",
    "office_hours": "Office hours",
    "coworking": "Co-working",
    "assignment": "Due",
    "catch_up": "Catch up",
    "replay": "Replay",
}


def second_host_threshold(runtime: Runtime) -> int:
    """Sessions expecting more learners than this are flagged (setting second_host_threshold)."""
    return runtime.settings.second_host_threshold


def _download(body: bytes, filename: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "Cache-Control": "no-store",
        },
    )
