"""Dashboard sessions over real HTTP, on SQLite and PostgreSQL: a session lives in the database,
so logging out (or rotating the admin token) ends it for every copy of the cookie; cookies
signed for another purpose, or hostile ones, are refused without an error."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest
from served_app import serve
from sqlalchemy import select

from scheduler.clock import FixedClock
from scheduler.outputs.i18n import translations
from scheduler.persistence import models
from scheduler.runtime import Runtime
from scheduler.services.admin import rotate_admin_token
from scheduler.services.feeds import issue_token
from scheduler.web.auth import COOKIE

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
]

NEW_LINK = (
    "Your calendar link is new: the old one stopped working. Subscribe again below "
    "(calendars using the old link stop updating)."
)


@dataclass
class Site:
    base: str
    runtime: Runtime
    admin_token: str
    learner_token: str  # yuki's feed token

    def client(self, **cookies: str) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=20, cookies=cookies)

    def login(self) -> httpx.Client:
        client = self.client()
        answer = client.post("/login", data={"token": self.admin_token, "next": "/"})
        assert answer.status_code == 303, answer.text
        return client


@pytest.fixture
def site(make_published: Callable[[list[list[str]]], Runtime]) -> Iterator[Site]:
    runtime = make_published(ROWS)
    now = runtime.clock.now()
    with runtime.transaction() as db:
        admin, _ = rotate_admin_token(db, now)
        learner, _ = issue_token(db, SLUG, "yuki@example.org", now)
    with serve(runtime) as base:
        yield Site(base, runtime, admin, learner)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def _refused(site: Site, cookie: str) -> None:
    """``cookie`` as the session cookie: a page redirects to the login page, the API says 401."""
    with site.client(**{COOKIE: cookie}) as client:
        page = client.get(f"/cohorts/{SLUG}")
        assert page.status_code == 303, page.text[:200]
        assert page.headers["location"].startswith("/login?next=")
        api = client.get("/api/cohorts")
        assert api.status_code == 401, api.text[:200]


def test_logout_ends_the_session_for_every_copy_of_the_cookie(site: Site) -> None:
    client = site.login()
    copied = client.cookies[COOKIE]
    with site.client(**{COOKIE: copied}) as other:  # the copy works while the session lives
        assert other.get("/").status_code == 200
        assert other.get("/api/cohorts").status_code == 200
    page = client.get("/")
    assert page.status_code == 200
    out = client.post("/logout", data={"csrf": _csrf(page.text)})
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    _refused(site, copied)
    client.close()


def test_only_the_hash_of_a_session_id_is_stored(site: Site) -> None:
    client = site.login()
    cookie = client.cookies[COOKIE]
    session_id = cookie.strip('"').rpartition(".")[0]
    with site.runtime.transaction() as db:
        stored = list(db.scalars(select(models.AdminSessionRow.session_hash)))
    assert stored == [hashlib.sha256(session_id.encode()).hexdigest()]
    client.close()


def test_rotating_the_admin_token_ends_every_session(site: Site) -> None:
    first, second = site.login(), site.login()
    assert first.get("/").status_code == 200 and second.get("/").status_code == 200
    with site.runtime.transaction() as db:
        rotate_admin_token(db, site.runtime.clock.now())
    for client in (first, second):
        _refused(site, client.cookies[COOKIE])
        client.close()


def test_a_session_ends_after_twelve_hours(site: Site) -> None:
    client = site.login()
    assert client.get("/").status_code == 200
    clock = site.runtime.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(hours=11, minutes=59))
    assert client.get("/").status_code == 200
    clock.advance(timedelta(minutes=2))
    _refused(site, client.cookies[COOKIE])
    client.close()


def test_a_flash_cookie_is_not_a_session_cookie(site: Site) -> None:
    """Anyone holding a learner link can make the server sign a flash message: that signature
    must not open an admin session (nor crash the server)."""
    with site.client() as learner:
        page = learner.get(f"/me/{site.learner_token}")
        assert page.status_code == 200
        reset = learner.post(f"/me/{site.learner_token}/reset", data={"csrf": _csrf(page.text)})
        assert reset.status_code == 303
        flash = learner.cookies["cohort_flash"]
        shown = learner.get(reset.headers["location"])  # a valid flash: shown on the next page
        assert translations("ja_JP").gettext(NEW_LINK) in shown.text  # her language
    _refused(site, flash)


@pytest.mark.parametrize(
    "cookie",
    [
        "1:1800000000:abcd.é",
        "é.é",
        "é",
        "no-signature",
        ".",
        "x" * 5000,
        "1:2:3." + "0" * 64,
    ],
    ids=["non_ascii_mac", "all_non_ascii", "non_ascii_no_dot", "no_dot", "dot", "huge", "bad_mac"],
)
def test_hostile_session_cookies_are_refused_without_an_error(site: Site, cookie: str) -> None:
    raw = f"{COOKIE}={cookie}".encode()  # sent as bytes: non-ASCII reaches the server as is
    with site.client() as client:
        page = client.get(f"/cohorts/{SLUG}", headers={b"cookie": raw})
        assert page.status_code == 303, page.text[:200]
        assert page.headers["location"].startswith("/login?next=")
        api = client.get("/api/cohorts", headers={b"cookie": raw})
        assert api.status_code == 401, api.text[:200]
