"""The dashboard against hostile input, in process (the real ``create_app`` over an ASGI client,
SQLite): CSV exports a spreadsheet cannot run whatever its list separator, and no form field,
query parameter or cookie an attacker controls can make a page answer 5xx."""

from __future__ import annotations

import csv
import io
import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pg import PgServer
from pydantic import SecretStr
from sqlalchemy import create_engine, text, update
from starlette.exceptions import StarletteDeprecationWarning

from scheduler.clock import FixedClock
from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine, make_session_factory
from scheduler.persistence.models import PersonRow
from scheduler.runtime import Runtime
from scheduler.services import publishing
from scheduler.services.admin import rotate_admin_token
from scheduler.services.cohorts import load_cohort
from scheduler.services.feeds import issue_token
from scheduler.services.plans import plan_cohort
from scheduler.services.roster import import_roster
from scheduler.settings import Settings
from scheduler.web.app import create_app
from scheduler.web.auth import COOKIE
from scheduler.web.dashboard import FLASH_COOKIE

with warnings.catch_warnings():  # starlette would rather have httpx2; httpx is what we have
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
SLUG = "ml-foundations-2027"
NOW = datetime(2027, 2, 26, 9, 0, tzinfo=UTC)  # the Friday before the course starts
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
HOSTILE_NAMES = {  # learners whose names a spreadsheet would run, split on , ; or TAB
    # (the roster import refuses a TAB in a name: that one is written to the database directly,
    # as an older version or a hand edit could have left it)
    "semi@example.org": "Evil;=1+2",
    "link@example.org": '=HYPERLINK("http://x")',
    "tab@example.org": "a\t=1",
    "minus@example.org": "-2+3",
    "at@example.org": "@SUM(1)",
    "plus@example.org": "x;+1",
    "comma@example.org": "x,@1",
}
ROSTER = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP"],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US"],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE"],
    *(
        [name.replace("\t", " "), email, "Europe/Berlin", "", ""]
        for email, name in HOSTILE_NAMES.items()
    ),
]


@dataclass
class Site:
    client: TestClient  # logged in as the admin
    session_cookie: str
    csrf: str
    learner_token: str  # a learner's feed token: the key to /me/<token>


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """The published example cohort (with the hostile names) served in process, on each backend
    (PostgreSQL refuses text with a NUL in it, SQLite does not), logged in as the admin."""
    work = tmp_path_factory.mktemp("hardening")
    if request.param == "sqlite":
        yield from _serve(f"sqlite:///{work / 'dashboard.db'}", work)
        return
    server: PgServer = request.getfixturevalue("pg_server")
    name = f"hardening_{os.getpid()}"
    admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield from _serve(server.url(name), work)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _serve(url: str, work: Path) -> Iterator[Site]:
    engine = make_engine(url)
    migrations.upgrade(engine)
    settings_ = Settings.model_construct(
        database_url=url,
        base_url="http://testserver",
        log_level="WARNING",
        secret_key=SecretStr("hardening-test-key-that-is-long-enough-0123456"),
        mail_dir=work / "outbox",
        feed_rate_per_minute=100_000,
    )
    runtime = Runtime(settings_, engine, make_session_factory(engine), FixedClock(NOW))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["name", "email", "timezone", "availability", "locale"])
    writer.writerows(ROSTER)
    with runtime.transaction() as db:
        load_cohort(db, (REPO / "examples" / "cohort.toml").read_text("utf-8"), "cohort.toml", NOW)
        import_roster(db, SLUG, buffer.getvalue().encode(), "roster.csv", NOW)
        for email, name in HOSTILE_NAMES.items():
            db.execute(update(PersonRow).where(PersonRow.email == email).values(name=name))
        _, _, plan = plan_cohort(db, SLUG)
        publishing.publish(db, SLUG, plan, NOW)
        admin, _ = rotate_admin_token(db, NOW)
        learner_token = issue_token(db, SLUG, "yuki@example.org", NOW)[0]
    try:
        # raise_server_exceptions=False: a crash is seen as the 500 a browser would get
        with TestClient(
            create_app(runtime), follow_redirects=False, raise_server_exceptions=False
        ) as client:
            assert client.post("/login", data={"token": admin}).status_code == 303
            cookie = client.cookies[COOKIE]
            match = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get("/").text)
            assert match, "no CSRF field on the cohorts page"
            yield Site(client, cookie, match.group(1), learner_token)
    finally:
        runtime.close()


@pytest.fixture(autouse=True)
def _logged_in(site: Site) -> None:
    """Each test starts with the admin's session cookie alone in the client's jar."""
    site.client.cookies.clear()
    site.client.cookies.set(COOKIE, site.session_cookie)


# --- CSV exports a spreadsheet cannot run, whatever it splits on -------------------------------


def _cells(body: bytes, delimiter: str) -> list[str]:
    text = body.decode("utf-8-sig")
    return [cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row]


@pytest.mark.parametrize("export", ["roster.csv", "plan.csv"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_csv_exports_have_no_formula_cells_whatever_the_separator(
    site: Site, export: str, delimiter: str
) -> None:
    answer = site.client.get(f"/cohorts/{SLUG}/{export}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    cells = _cells(answer.content, delimiter)
    assert len(cells) >= 10
    for cell in cells:
        assert not cell.strip('"').startswith(FORMULA_START), repr(cell)


def test_every_exported_field_is_quoted(site: Site) -> None:
    for export in ("roster.csv", "plan.csv"):
        body = site.client.get(f"/cohorts/{SLUG}/{export}").content.decode("utf-8-sig")
        for line in body.split("\r\n"):
            if line:  # QUOTE_ALL: every line starts and ends with a quote
                assert line.startswith('"') and line.endswith('"'), repr(line)


def test_hostile_names_come_back_prefixed_and_otherwise_intact(site: Site) -> None:
    body = site.client.get(f"/cohorts/{SLUG}/roster.csv").content.decode("utf-8-sig")
    by_email = {row["email"]: row for row in csv.DictReader(io.StringIO(body))}
    for email, name in HOSTILE_NAMES.items():
        exported = by_email[email]["name"]
        assert exported.startswith("'"), exported
        assert exported.replace("'", "") == name.replace("'", "")  # only apostrophes added
    assert by_email["yuki@example.org"]["name"] == "Yuki"


# --- hostile values answer 4xx, never 500 -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["é", "\u00b2", "\x00\x01", "\ud7ff" * 3],
    ids=["latin1", "superscript_two", "control_chars", "hangul"],
)
@pytest.mark.parametrize(
    ("path", "logged_in"),
    [("/", True), ("/me/{token}", False), ("/login", False)],
    ids=["admin", "learner", "login"],
)
def test_a_hostile_flash_cookie_is_ignored(
    site: Site, value: str, path: str, logged_in: bool
) -> None:
    cookies = [f"{COOKIE}={site.session_cookie}"] if logged_in else []
    cookies.append(f"{FLASH_COOKIE}={value}.{value}")
    site.client.cookies.clear()
    answer = site.client.get(
        path.format(token=site.learner_token),
        # bytes: httpx would refuse a non-ASCII header given as text
        headers={"cookie": "; ".join(cookies).encode("utf-8")},
    )
    assert answer.status_code == 200, answer.text[:300]
    assert 'class="flash' not in answer.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"target": "class:\u00b2:0"}, "choose a series"),
        ({"target": "class:0:\u00b2"}, "choose a series"),
        ({"target": "class:99999999999999999999999:0"}, "choose a series"),
        ({"target": "class:0:99999999999999999999999"}, "choose a series"),
        ({"week": "\u00b2"}, "must be a course week from 1 to 8"),
        ({"week": "\u0663"}, "must be a course week from 1 to 8"),  # Arabic-Indic three
        ({"week": "99999999999999999999999"}, "must be a course week from 1 to 8"),
    ],
    ids=[
        "superscript_section",
        "superscript_slot",
        "huge_section",
        "huge_slot",
        "superscript_week",
        "arabic_indic_week",
        "huge_week",
    ],
)
def test_change_preview_refuses_numbers_it_cannot_use(
    site: Site, params: dict[str, str], message: str
) -> None:
    query = {"target": "class:0:0", "scope": "week", "week": "2", "to": "Wed 18:30"}
    query |= {"action": "move", **params}
    answer = site.client.get(f"/cohorts/{SLUG}/change", params=query)
    assert answer.status_code == 422, answer.text[:300]
    assert message in answer.text
    # and applying it changes nothing, saying why
    applied = site.client.post(f"/cohorts/{SLUG}/change", data={**query, "csrf": site.csrf})
    assert applied.status_code == 303
    page = site.client.get(applied.headers["location"])
    assert "Nothing changed" in page.text and message in page.text


@pytest.mark.parametrize(
    "week",
    ["\u00b2", "99999999999999999999999", "0", "-1", "9" * 5000],
    ids=["superscript_two", "huge", "zero", "negative", "five_thousand_digits"],
)
def test_cohort_page_refuses_a_week_it_cannot_show(site: Site, week: str) -> None:
    answer = site.client.get(f"/cohorts/{SLUG}", params={"week": week})
    assert answer.status_code == 422, answer.text[:300]
    assert "week: must be a course week from 1 to 8" in answer.text
    assert site.client.get(f"/cohorts/{SLUG}", params={"week": "8"}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/cohorts/{slug}"),
        ("GET", "/cohorts/{slug}/change"),
        ("GET", "/cohorts/{slug}/learners"),
        ("GET", "/cohorts/{slug}/roster.csv"),
        ("GET", "/cohorts/{slug}/plan.csv"),
        ("POST", "/cohorts/{slug}/learners"),
        ("POST", "/cohorts/{slug}/learners/update"),
        ("POST", "/cohorts/{slug}/learners/remove"),
        ("POST", "/cohorts/{slug}/feed-link"),
    ],
    ids=lambda x: str(x).replace("/cohorts/{slug}", "cohort"),
)
def test_a_slug_no_cohort_can_have_is_404(site: Site, method: str, path: str) -> None:
    # a NUL is what PostgreSQL refuses outright; the others are just not slugs
    for slug in ("a\x00b", "ml-foundations-2027\x00", "\u00b2" * 3, "x" * 500):
        url = path.format(slug=quote(slug, safe=""))
        if method == "GET":
            answer = site.client.get(url)
        else:
            answer = site.client.post(url, data={"csrf": site.csrf, "email": "yuki@example.org"})
        assert answer.status_code == 404, (slug, answer.text[:300])
        assert "no cohort with slug" in answer.text


@pytest.mark.parametrize(
    "q", ["a\x00b", "\x00", "yuki\x1b", "\x7f"], ids=["nul", "only_nul", "escape", "delete"]
)
def test_a_search_with_control_characters_is_422(site: Site, q: str) -> None:
    answer = site.client.get(f"/cohorts/{SLUG}/learners", params={"q": q})
    assert answer.status_code == 422, answer.text[:300]
    assert "search: contains control characters" in answer.text
    removed = site.client.post(
        f"/cohorts/{SLUG}/learners/remove",
        data={"csrf": site.csrf, "email": "nobody@example.org", "q": q},
    )
    assert removed.status_code == 404  # the learner is unknown; the search is not run
    assert "search: contains control characters" in removed.text


# A property over every dashboard form route (every POST, every GET with query parameters, and the
# learner's page): hostile text in any field is answered 2xx, 3xx or 4xx.

HOSTILE_NUMBERS = [
    "",
    " ",
    "\u00b2",  # superscript two: str.isdigit() is true, int() fails
    "\u0663",  # Arabic-Indic three: int() reads 3
    "\uff11",  # fullwidth one
    "99999999999999999999999",  # beyond SQLite's 64-bit integers
    "-1",
    "-99999999999999999999999",
    "1e400",
    "1_0",
    "0x1",
    "9" * 5000,
]
HOSTILE_TEXT = st.one_of(
    st.sampled_from(
        [
            *HOSTILE_NUMBERS,
            "\x00",
            "\r\n",
            "\x1b[31m",
            "\ud7ff",
            "\u202e",  # right-to-left override
            "é" * 300,
            "x" * 20_000,
            "class:99999999999999999999999:0",
            "class:\u00b2:0",
            "class:0:0:0",
            ":::",
            "../..",
            "%00",
            "Wed 99999999999999999999:00",
            "Wed 18:\u00b2",
        ]
    ),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
)


def _mostly(
    plausible: st.SearchStrategy[str],
    hostile: st.SearchStrategy[str] = HOSTILE_TEXT,
    share: int = 7,
) -> st.SearchStrategy[str]:
    """``plausible`` ``share`` times in ten, ``hostile`` otherwise."""
    return st.sampled_from(range(10)).flatmap(lambda n: plausible if n < share else hostile)


def _one_of(*values: str) -> st.SearchStrategy[str]:
    return st.sampled_from(values)


def _number(*values: str) -> st.SearchStrategy[str]:
    """One of ``values``, or (half the time) a number the server must refuse."""
    return _mostly(st.sampled_from(values), st.sampled_from(HOSTILE_NUMBERS), share=5)


# the change form's "series:section:slot" (0-based), with hostile numbers in it now and then
TARGET = st.tuples(_one_of("class", "office-hours"), _number("0", "1"), _number("0")).map(":".join)

# (method, path, {field: its plausible values}): each field is hostile text now and then, plausible
# otherwise, so that the checks behind the first one are reached too. ``{slug}`` and ``{token}`` in
# a path are the cohort's slug and the learner's feed token (or, now and then, hostile text).
ROUTES: list[tuple[str, str, dict[str, st.SearchStrategy[str]]]] = [
    ("GET", "/login", {"next": _one_of("/", f"/cohorts/{SLUG}")}),
    ("POST", "/login", {"token": _one_of("nope"), "next": _one_of("/")}),
    ("POST", "/logout", {}),
    ("GET", "/cohorts/{slug}", {"week": _number("1", "8")}),
    (
        "GET",
        "/cohorts/{slug}/change",
        {
            "target": TARGET,
            "scope": _one_of("week", "from", "all"),
            "week": _number("2", "8"),
            "to": _one_of("Wed 18:30"),
            "action": _one_of("move", "cancel"),
        },
    ),
    (
        "POST",
        "/cohorts/{slug}/change",
        {
            "target": TARGET,
            "scope": _one_of("week", "from"),
            "week": _number("7", "8"),
            "to": _one_of("Wed 18:30"),
            "action": _one_of("move", "cancel"),
        },
    ),
    ("GET", "/cohorts/{slug}/learners", {"q": _one_of("yuki", "")}),
    (
        "POST",
        "/cohorts/{slug}/learners",
        {
            "name": _one_of("Fuzz"),
            "email": _one_of("fuzz@example.org"),
            "zone": _one_of("Asia/Tokyo", "JP"),
            "availability": _one_of("", "Mon-Fri 18:00-22:00"),
            "locale": _one_of("", "en_GB"),
        },
    ),
    (
        "POST",
        "/cohorts/{slug}/learners/update",
        {
            "email": _one_of("sam@example.org"),
            "zone": _one_of("Asia/Tokyo", "America/Los_Angeles"),
            "availability": _one_of("", "Mon-Fri 07:00-12:00"),
            "q": _one_of(""),
        },
    ),
    (
        "POST",
        "/cohorts/{slug}/learners/remove",
        {"email": _one_of("nobody@example.org"), "q": _one_of("")},
    ),
    ("POST", "/cohorts/{slug}/feed-link", {}),
    ("GET", "/me/{token}", {}),
    ("POST", "/me/{token}/reset", {}),
]


def _me_csrf(client: TestClient, token: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', client.get(f"/me/{token}").text)
    assert match, "no CSRF field on the learner's page"
    return match.group(1)


@pytest.mark.parametrize(
    ("method", "path", "fields"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_no_form_route_answers_5xx_to_hostile_input(
    site: Site, method: str, path: str, fields: dict[str, st.SearchStrategy[str]]
) -> None:
    """Logged in (mostly) with the right CSRF token (mostly), hostile text in any field, the path's
    token or the flash cookie: 2xx, 3xx or 4xx, never 5xx."""
    client = site.client
    learner = {"token": site.learner_token, "csrf": _me_csrf(client, site.learner_token)}
    form = st.fixed_dictionaries({name: _mostly(values) for name, values in fields.items()})
    seen: dict[int, int] = {}

    @settings(
        max_examples=50,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        values=form,
        logged_in=_mostly(st.just("yes")).map(lambda x: x == "yes"),
        csrf=_mostly(st.just("valid")),
        slug=_mostly(st.just(SLUG)),
        token=_mostly(st.just("valid")),
        flash=st.one_of(st.none(), HOSTILE_TEXT),
    )
    def check(
        values: dict[str, str],
        logged_in: bool,
        csrf: str,
        slug: str,
        token: str,
        flash: str | None,
    ) -> None:
        client.cookies.clear()  # each request carries exactly the cookies below
        cookies = [f"{COOKIE}={site.session_cookie}"] if logged_in else []
        if flash is not None:
            cookies.append(f"{FLASH_COOKIE}={flash}")
        headers = {"cookie": "; ".join(cookies).encode("utf-8", "surrogatepass")}
        url = path.format(
            slug=quote(slug, safe=""),
            token=learner["token"] if token == "valid" else quote(token, safe=""),
        )
        if method == "GET":
            answer = client.get(url, params=values, headers=headers)
        else:
            if path == "/logout":
                csrf += "x"  # never the right token: logging out would end the run's session
            elif csrf == "valid":
                csrf = learner["csrf"] if path.startswith("/me/") else site.csrf
            data = {**values, "csrf": csrf}
            answer = client.post(url, data=data, headers=headers)
        assert answer.status_code < 500, (method, url, values, answer.text[:500])
        seen[answer.status_code] = seen.get(answer.status_code, 0) + 1
        location = answer.headers.get("location", "")
        if logged_in and path != "/login":
            assert not location.startswith("/login?"), "the session was lost"
        if path.endswith("/reset") and location.startswith("/me/"):  # a new link: follow it
            learner["token"] = location.removeprefix("/me/")
            learner["csrf"] = _me_csrf(client, learner["token"])

    check()
    # the run reached past the CSRF check and the first field's check, not only refusals
    assert len(seen) > 1 or (method, path) in {("POST", "/logout"), ("POST", "/login")}, seen
