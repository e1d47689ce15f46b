"""The admin session's pages: log in, log out, the stylesheet, and the CSRF check every admin
form's POST goes through."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from scheduler.web.auth import AdminSession
from scheduler.web.dashboard.context import Dashboard, DashboardDep

router = APIRouter(include_in_schema=False)


def csrf_failure(
    dash: Dashboard, request: Request, session: AdminSession, given: str
) -> HTMLResponse | None:
    """The 403 page when ``given`` is not the session's CSRF token, else None."""
    try:
        # non-ASCII text would make hmac.compare_digest raise TypeError (a 500): refuse it
        dash.auth.check_csrf(session, given if given.isascii() else "")
    except HTTPException as e:
        return dash.pages.error(request, 403, str(e.detail), session)
    return None


def local_path(target: str) -> str:
    """Only paths on this site (no ``//host``, no scheme) are followed after login."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/static/dashboard.css")
def stylesheet(dash: DashboardDep) -> Response:
    return Response(
        dash.css,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/login")
def login_form(request: Request, dash: DashboardDep, next: str = "/") -> Response:
    if dash.auth.session(request) is not None:
        return RedirectResponse(local_path(next), status_code=303)
    return dash.pages.render(request, "login.html", next=local_path(next), error="")


@router.post("/login")
def login(
    request: Request,
    dash: DashboardDep,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    response = RedirectResponse(local_path(next), status_code=303)
    if dash.auth.login(response, token):
        return response
    return dash.pages.render(
        request,
        "login.html",
        status=401,
        next=local_path(next),
        error="That token is not valid (it may have been replaced by a newer one).",
    )


@router.post("/logout")
def logout(request: Request, dash: DashboardDep, csrf: Annotated[str, Form()] = "") -> Response:
    session = dash.auth.page(request)
    if (bad := csrf_failure(dash, request, session, csrf)) is not None:
        return bad
    response = dash.pages.redirect("/login", "ok", "You are logged out.")
    dash.auth.logout(response, session)
    return response
