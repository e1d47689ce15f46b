"""The dashboard and the learner's page over real HTTP (uvicorn on 127.0.0.1, SQLite).

A published example cohort (40 sample learners plus a few with hostile names) is served by
``create_app`` on a free port with a fixed clock: the Friday before the course starts.
"""

from __future__ import annotations

import csv
import io
import random
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr
from sqlalchemy import select

from scheduler.clock import FixedClock
from scheduler.outputs.formatting import local_datetime
from scheduler.outputs.heatmap import availability_heatmap, slot_of
from scheduler.persistence import migrations, repo
from scheduler.persistence.db import make_engine, make_session_factory
from scheduler.persistence.models import (
    EnrollmentRow,
    LiveSeriesRow,
    OccurrenceRow,
    PersonRow,
    PlanVersionRow,
)
from scheduler.runtime import Runtime
from scheduler.sample import example_roster, roster_csv
from scheduler.services import publishing, schedule
from scheduler.services.admin import rotate_admin_token
from scheduler.services.cohorts import load_cohort
from scheduler.services.feeds import issue_token, reset_tokens
from scheduler.services.plans import learner_inputs, plan_cohort
from scheduler.services.roster import import_roster
from scheduler.settings import Settings
from scheduler.web.app import create_app
from scheduler.web.dashboard import safe_cell

REPO = Path(__file__).resolve().parents[2]
SLUG = "ml-foundations-2027"
NOW = datetime(2027, 2, 26, 9, 0, tzinfo=UTC)  # the Friday before the course starts
ANN = "<b>Ann & Bob</b>"
ANN_ESCAPED = "&lt;b&gt;Ann &amp; Bob&lt;/b&gt;"
HOSTILE = {  # learners whose names a spreadsheet would run as formulas
    "eve@example.org": '=HYPERLINK("http://evil.example/","x")',
    "plus@example.org": "+cmd",
    "at@example.org": "@SUM(A1)",
    "minus@example.org": "-2+3",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    base: str
    runtime: Runtime
    admin_token: str
    feed_tokens: dict[str, str] = field(default_factory=dict)  # email -> learner feed token


@contextmanager
def serve_cohort(work: Path, learners: int = 40) -> Iterator[Served]:
    """A published example cohort served by create_app + uvicorn in a thread on a free port."""
    port = _free_port()
    url = f"sqlite:///{work / 'dashboard.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    settings = Settings.model_construct(
        database_url=url,
        base_url=f"http://127.0.0.1:{port}",
        log_level="WARNING",
        secret_key=SecretStr("dashboard-test-key-that-is-long-enough-0123456"),
        mail_dir=work / "outbox",
        feed_rate_per_minute=1000,
    )
    runtime = Runtime(settings, engine, make_session_factory(engine), FixedClock(NOW))
    rows = roster_csv(example_roster(learners, random.Random(2027)))
    extra = [(ANN, "ann.bob@example.org", "Europe/Berlin"), ("Kai Ito", "kai@example.org", "")]
    extra += [(name, email, "Asia/Tokyo") for email, name in HOSTILE.items()]
    writer_buffer = io.StringIO()
    writer = csv.writer(writer_buffer, lineterminator="\n")
    for name, email, zone in extra:
        writer.writerow([name, email, zone or "America/New_York", "", "", "learner"])
    with runtime.transaction() as db:
        load_cohort(db, (REPO / "examples" / "cohort.toml").read_text("utf-8"), "cohort.toml", NOW)
        roster = (rows + writer_buffer.getvalue()).encode()
        import_roster(db, SLUG, roster, "roster.csv", NOW)
        _, _, plan = plan_cohort(db, SLUG)
        publishing.publish(db, SLUG, plan, NOW)
        admin, _ = rotate_admin_token(db, NOW)
        tokens = {
            email: issue_token(db, SLUG, email, NOW)[0]
            for email in ("ann.bob@example.org", "yuki.sato@example.org", "kai@example.org")
        }
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", runtime, admin, tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_cohort(tmp_path_factory.mktemp("dashboard")) as s:
        yield s


def _login(served: Served) -> httpx.Client:
    client = httpx.Client(base_url=served.base, follow_redirects=False, timeout=20)
    answer = client.post("/login", data={"token": served.admin_token, "next": "/"})
    assert answer.status_code == 303, answer.text
    return client


@pytest.fixture
def admin(served: Served) -> Iterator[httpx.Client]:
    client = _login(served)
    yield client
    client.close()


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


class _Cells(HTMLParser):
    """The <td> attributes of the table with id ``table_id`` (row by row)."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.inside, self.cells = table_id, False, []
        self.rows: list[list[dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "table" and values.get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag == "td":
            self.rows[-1].append(values)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False


def _table(html: str, table_id: str) -> list[list[dict[str, str]]]:
    parser = _Cells(table_id)
    parser.feed(html)
    return [row for row in parser.rows if row]


def _rows_text(html: str, table_id: str) -> list[str]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return [re.sub(r"\s+", " ", r) for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)][1:]


# --- access ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", f"/cohorts/{SLUG}"),
        ("GET", f"/cohorts/{SLUG}/roster.csv"),
        ("GET", f"/cohorts/{SLUG}/learners"),
        ("POST", f"/cohorts/{SLUG}/change"),
        ("POST", f"/cohorts/{SLUG}/learners"),
    ],
    ids=["cohorts", "cohort_page", "roster_export", "learners", "apply_change", "add_learner"],
)
def test_admin_pages_redirect_to_login(served: Served, method: str, path: str) -> None:
    answer = httpx.request(method, served.base + path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")
    assert "set-cookie" not in answer.headers


def test_bad_token_is_rejected_and_good_one_logs_in(served: Served) -> None:
    with httpx.Client(base_url=served.base, follow_redirects=False) as client:
        form = client.get("/login")
        assert form.status_code == 200
        assert '<label for="token">' in form.text
        bad = client.post("/login", data={"token": served.admin_token[:-2] + "xx"})
        assert bad.status_code == 401
        assert "not valid" in bad.text
        assert "set-cookie" not in bad.headers
        assert client.get("/").status_code == 303
        good = client.post("/login", data={"token": served.admin_token, "next": f"/cohorts/{SLUG}"})
        assert good.status_code == 303
        assert good.headers["location"] == f"/cohorts/{SLUG}"
        cookie = good.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert client.get("/").status_code == 200
        # an open redirect after login is refused: only local paths are followed
        again = client.post(
            "/login", data={"token": served.admin_token, "next": "//evil.example/x"}
        )
        assert again.headers["location"] == "/"


def test_posts_without_the_csrf_token_are_403(served: Served, admin: httpx.Client) -> None:
    with served.runtime.transaction() as db:
        before = db.scalar(select(PlanVersionRow.version).order_by(PlanVersionRow.version.desc()))
    change = {"target": "class:0:0", "scope": "week", "week": "2", "to": "Wed 18:30"}
    forms = [{**change, "action": "move"}]
    forms += [{**change, "action": "move", "csrf": bad} for bad in ("0" * 64, "é")]
    for data in forms:
        answer = admin.post(f"/cohorts/{SLUG}/change", data=data)
        assert answer.status_code == 403
        assert "stale" in answer.text
    learner = {"name": "No Csrf", "email": "nocsrf@example.org", "zone": "Asia/Tokyo"}
    assert admin.post(f"/cohorts/{SLUG}/learners", data=learner).status_code == 403
    assert admin.post("/logout").status_code == 403
    token = served.feed_tokens["yuki.sato@example.org"]
    assert admin.post(f"/me/{token}/reset").status_code == 403
    with served.runtime.transaction() as db:
        after = db.scalar(select(PlanVersionRow.version).order_by(PlanVersionRow.version.desc()))
        assert db.scalar(select(PersonRow).where(PersonRow.email == "nocsrf@example.org")) is None
    assert after == before
    assert httpx.get(f"{served.base}/me/{token}").status_code == 200  # not reset


# --- the cohort page ---------------------------------------------------------------------------


def test_cohort_list_shows_each_cohort(admin: httpx.Client) -> None:
    page = admin.get("/")
    assert page.status_code == 200
    assert f'href="/cohorts/{SLUG}"' in page.text
    assert "Machine Learning Foundations, Spring 2027" in page.text
    assert re.search(r"version \d+", page.text)


def test_heatmap_counts_learners_per_half_hour_and_marks_the_published_times(
    served: Served, admin: httpx.Client
) -> None:
    page = admin.get(f"/cohorts/{SLUG}?week=1")
    assert page.status_code == 200
    with served.runtime.transaction() as db:
        cohort = repo.get_cohort(db, SLUG)
        heat = availability_heatmap(
            repo.cohort_spec(db, cohort), learner_inputs(db, cohort), week=0, slot_minutes=30
        )
        series = list(
            db.scalars(
                select(LiveSeriesRow).where(
                    LiveSeriesRow.cohort_id == cohort.id, LiveSeriesRow.status == "active"
                )
            )
        )
    total = sum(1 for _ in learner_inputs_of(served))
    rows = _table(page.text, "heatmap")
    assert len(rows) == 48 and all(len(r) == 7 for r in rows)
    for slot, row in enumerate(rows):
        for day, cell in enumerate(row):
            assert f": {heat.counts[day][slot]} of {total} learners available" in cell["title"]
            by_zone = sorted(heat.zones[day][slot].items(), key=lambda zn: (-zn[1], zn[0]))
            if by_zone:  # the zones with the most learners are named
                assert f"({by_zone[0][1]} in {by_zone[0][0]}" in cell["title"]
    expected: dict[tuple[int, int], set[str]] = {}
    for s in series:
        for cell in slot_of(s.weekday, s.wall_minute, timedelta(minutes=s.duration_minutes), 30):
            expected.setdefault(cell, set()).add(s.kind)
    assert expected, "the plan has live times"
    for slot, row in enumerate(rows):
        for day, cell in enumerate(row):
            kinds = {c.removeprefix("m-") for c in cell["class"].split() if c.startswith("m-")}
            assert kinds == expected.get((day, slot), set()), (day, slot)
            assert ("scheduled:" in cell["title"]) == bool(kinds)
    assert 'id="heatmap"' in page.text and "Europe/Berlin" in page.text


def learner_inputs_of(served: Served) -> list[object]:
    with served.runtime.transaction() as db:
        return list(learner_inputs(db, repo.get_cohort(db, SLUG)))


def test_cohort_page_lists_left_out_learners_dst_and_next_meetings(
    served: Served, admin: httpx.Client
) -> None:
    page = admin.get(f"/cohorts/{SLUG}")
    assert page.status_code == 200
    with served.runtime.transaction() as db:
        summary = db.scalar(select(PlanVersionRow.summary).where(PlanVersionRow.version == 1))
        first = db.execute(
            select(OccurrenceRow, LiveSeriesRow)
            .join(LiveSeriesRow, LiveSeriesRow.id == OccurrenceRow.series_id)
            .where(OccurrenceRow.status == "scheduled", OccurrenceRow.start >= NOW)
            .order_by(OccurrenceRow.start)
        ).first()
    assert summary is not None and first is not None
    left = {x["learner"] for x in summary["left_out"]}
    assert left, "the example plan leaves some learners out"
    assert f"Left out ({len(left)})" in page.text
    rows = _rows_text(page.text, "left-out")
    shown = {email for email in left if any(email in r for r in rows)}
    assert shown == left
    sample = summary["left_out"][0]
    row = next(r for r in rows if sample["learner"] in r)
    assert sample["detail"] in row
    replays = [r for r in rows if "replay" in r and "due" in r]
    assert replays, "left-out learners are shown their replays"
    # clock changes: one line per series and week (the report has one per section and region)
    dst = page.text.split('id="dst-lines"', 1)[1].split("</ul>", 1)[0]
    weeks = {(w["series"], w["week"], w["shift_minutes"]) for w in summary["dst"]}
    assert dst.count("<li>") == len(weeks) < len(summary["warnings"])
    upcoming = _rows_text(page.text, "upcoming")
    when = local_datetime(first[0].start, "Europe/Berlin", "en_GB")
    assert when in upcoming[0]
    for r in upcoming:
        expected = int(re.search(r'data-label="Expected" class="num">(\d+)<', r).group(1))  # type: ignore[union-attr]
        assert ("needs a second host" in r) == (expected > 15), r
    assert any("Office hours" in r and "needs a second host" in r for r in upcoming)
    assert "no worker has run" in page.text
    assert re.search(r"pending <strong>\d+</strong>", page.text)


def test_html_pages_carry_a_csp_and_no_inline_script_or_style(
    served: Served, admin: httpx.Client
) -> None:
    pages = [admin.get("/"), admin.get(f"/cohorts/{SLUG}"), admin.get(f"/cohorts/{SLUG}/learners")]
    pages.append(httpx.get(f"{served.base}/me/{served.feed_tokens['kai@example.org']}"))
    pages.append(httpx.get(f"{served.base}/login"))
    for page in pages:
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "unsafe-inline" not in csp
        assert "<script" not in page.text and " style=" not in page.text
        assert page.headers["x-frame-options"] == "DENY"
    css = admin.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "content-security-policy" not in admin.get(f"/cohorts/{SLUG}/plan.csv").headers


def test_user_text_is_escaped(served: Served, admin: httpx.Client) -> None:
    listed = admin.get(f"/cohorts/{SLUG}/learners", params={"q": "ann.bob"})
    assert ANN_ESCAPED in listed.text
    assert "<b>Ann" not in listed.text
    mine = httpx.get(f"{served.base}/me/{served.feed_tokens['ann.bob@example.org']}")
    assert ANN_ESCAPED in mine.text and "<b>Ann" not in mine.text
    # a flash message carries user text too
    csrf = _csrf(listed.text)
    added = admin.post(
        f"/cohorts/{SLUG}/learners",
        data={"csrf": csrf, "name": "<i>Zed</i>", "email": "zed@example.org", "zone": "Asia/Tokyo"},
    )
    assert added.status_code == 303
    after = admin.get(added.headers["location"])
    assert "Added &lt;i&gt;Zed&lt;/i&gt;" in after.text and "<i>Zed" not in after.text


# --- actions -----------------------------------------------------------------------------------


def test_cancel_one_meeting_through_preview_and_confirm(
    served: Served, admin: httpx.Client
) -> None:
    query = {"target": "class:0:1", "scope": "week", "week": "1", "to": "", "action": "cancel"}
    preview = admin.get(f"/cohorts/{SLUG}/change", params=query)
    assert preview.status_code == 200
    assert "Preview: cancel Live class (section 1), week 1" in preview.text
    assert "email(s) will go out" in preview.text
    with served.runtime.transaction() as db:
        target = db.execute(
            select(OccurrenceRow)
            .join(LiveSeriesRow, LiveSeriesRow.id == OccurrenceRow.series_id)
            .where(
                LiveSeriesRow.series_key == "class",
                LiveSeriesRow.section == 0,
                LiveSeriesRow.slot == 1,
                OccurrenceRow.week == 0,
            )
        ).scalar_one()
        assert target.status == "scheduled"
        uid = target.uid
    done = admin.post(f"/cohorts/{SLUG}/change", data={**query, "csrf": _csrf(preview.text)})
    assert done.status_code == 303
    page = admin.get(done.headers["location"])
    assert "Done: cancel Live class (section 1), week 1" in page.text
    assert 'class="flash' not in admin.get(done.headers["location"]).text  # shown once
    with served.runtime.transaction() as db:
        row = db.scalar(select(OccurrenceRow).where(OccurrenceRow.uid == uid))
        assert row is not None and row.status == "cancelled" and row.sequence == 1
    cancelled = [r for r in _rows_text(page.text, "upcoming") if "cancelled" in r]
    assert cancelled and "Live class · section 1" in cancelled[0]
    # the activity card says who did it, newest first, above the publish that preceded it
    activity = _rows_text(page.text, "activity")
    assert "dashboard" in activity[0] and "cancel Live class (section 1), week 1" in activity[0]
    assert any("cli" in row and "published plan version 1" in row for row in activity[1:])
    assert "Automatic re-plans are off" in page.text


def test_a_bad_change_is_explained_without_a_stack_trace(admin: httpx.Client) -> None:
    query = {"target": "class:0:0", "scope": "week", "week": "99", "to": "Wod 25:00"}
    answer = admin.get(f"/cohorts/{SLUG}/change", params={**query, "action": "move"})
    assert answer.status_code == 422
    assert "must be a course week from 1 to 8" in answer.text
    assert "unknown weekday" in answer.text
    assert "Traceback" not in answer.text
    missing = admin.get(
        f"/cohorts/{SLUG}/change",
        params={**query, "target": "nope:0:0", "week": "2", "to": "Wed 18:00", "action": "move"},
    )
    assert missing.status_code == 404 and "no published series" in missing.text
    assert admin.get("/cohorts/no-such-cohort").status_code == 404


def test_learners_are_added_changed_and_withdrawn(served: Served, admin: httpx.Client) -> None:
    page = admin.get(f"/cohorts/{SLUG}/learners")
    csrf = _csrf(page.text)
    bad = admin.post(
        f"/cohorts/{SLUG}/learners",
        data={"csrf": csrf, "name": "Lu", "email": "not-an-email", "zone": "Mars/Olympus"},
    )
    assert bad.status_code == 422
    assert "email: is not a valid email address" in bad.text
    assert "zone:" in bad.text and "Mars/Olympus" in bad.text
    assert 'value="Lu"' in bad.text  # the form keeps what was typed
    good = admin.post(
        f"/cohorts/{SLUG}/learners",
        data={"csrf": csrf, "name": "Lu Chen", "email": "lu@example.org", "zone": "Asia/Shanghai"},
    )
    assert good.status_code == 303
    changed = admin.post(
        f"/cohorts/{SLUG}/learners/update",
        data={"csrf": csrf, "email": "lu@example.org", "zone": "Asia/Kolkata", "availability": ""},
    )
    assert changed.status_code == 303
    with served.runtime.transaction() as db:
        person = db.scalar(select(PersonRow).where(PersonRow.email == "lu@example.org"))
        assert person is not None and person.zone == "Asia/Kolkata"
    withdrawn = admin.post(
        f"/cohorts/{SLUG}/learners/remove", data={"csrf": csrf, "email": "lu@example.org"}
    )
    assert withdrawn.status_code == 303
    with served.runtime.transaction() as db:
        status = db.scalar(
            select(EnrollmentRow.status)
            .join(PersonRow, PersonRow.id == EnrollmentRow.person_id)
            .where(PersonRow.email == "lu@example.org")
        )
    assert status == "withdrawn"
    unknown = admin.post(
        f"/cohorts/{SLUG}/learners/remove", data={"csrf": csrf, "email": "ghost@example.org"}
    )
    assert unknown.status_code == 404 and "no learner" in unknown.text


# --- exports -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
    ],
    ids=["equals", "plus", "minus", "at", "tab", "carriage_return", "plain", "inner_equals"],
)
def test_safe_cell(value: str, expected: str) -> None:
    assert safe_cell(value) == expected


def _csv(answer: httpx.Response) -> list[dict[str, str]]:
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))


def test_csv_exports_neutralise_formulas(served: Served, admin: httpx.Client) -> None:
    roster = _csv(admin.get(f"/cohorts/{SLUG}/roster.csv"))
    by_email = {r["email"]: r for r in roster}
    for email, name in HOSTILE.items():
        assert by_email[email]["name"] == "'" + name
    assert by_email["ann.bob@example.org"]["name"] == ANN  # CSV is not HTML: verbatim
    for row in roster:
        for value in row.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert any(r["left_out"] for r in roster) and any(r["sections"] for r in roster)
    plan = _csv(admin.get(f"/cohorts/{SLUG}/plan.csv"))
    with served.runtime.transaction() as db:
        occurrences = len(db.scalars(select(OccurrenceRow)).all())
    assert len(plan) == occurrences
    assert {"class", "coworking", "office_hours"} <= {r["kind"] for r in plan}


def test_cohort_feed_link_is_issued_once_and_works(served: Served, admin: httpx.Client) -> None:
    page = admin.get(f"/cohorts/{SLUG}")
    shown = admin.post(f"/cohorts/{SLUG}/feed-link", data={"csrf": _csrf(page.text)})
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    url = re.search(r'id="feed-url" readonly value="([^"]+)"', shown.text).group(1)  # type: ignore[union-attr]
    assert url.startswith(served.base + "/feeds/")
    feed = httpx.get(url)
    assert feed.status_code == 200 and feed.text.startswith("BEGIN:VCALENDAR")
    assert "webcal://" in shown.text


# --- the learner's page ------------------------------------------------------------------------


def test_learner_page_shows_only_that_learner_on_their_clock(served: Served) -> None:
    token = served.feed_tokens["yuki.sato@example.org"]
    page = httpx.get(f"{served.base}/me/{token}")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "Yuki Sato" in page.text and "Asia/Tokyo" in page.text
    assert '<html lang="ja-JP">' in page.text
    with served.runtime.transaction() as db:
        others = [
            (p.name, p.email)
            for _, p in repo.roster(db, repo.get_cohort(db, SLUG).id)
            if p.email != "yuki.sato@example.org"
        ]
        entry = schedule.learner_schedule(db, SLUG, "yuki.sato@example.org").entries
    for name, email in others:
        assert email not in page.text
        if name != "Yuki Sato":
            assert name not in page.text, name
    live = next(e for e in entry if e.kind == "class" and e.at >= NOW)
    assert local_datetime(live.at, "Asia/Tokyo", "ja_JP") in page.text
    for link in ("webcal://", "calendar.google.com", "outlook.live.com", f"/feeds/{token}.ics"):
        assert link in page.text
    assert "logout" not in page.text and "/cohorts/" not in page.text


def test_learner_page_is_404_for_unknown_revoked_and_non_learner_tokens(served: Served) -> None:
    assert httpx.get(f"{served.base}/me/not-a-token").status_code == 404
    with served.runtime.transaction() as db:
        cohort_token, _ = issue_token(db, SLUG, None, NOW)
        host_token, _ = issue_token(db, SLUG, "amara@example.org", NOW)
        old = served.feed_tokens["kai@example.org"]
        new, revoked, _ = reset_tokens(db, SLUG, "kai@example.org", NOW)
    served.feed_tokens["kai@example.org"] = new
    assert revoked >= 1
    for token in (cohort_token, host_token, old):
        answer = httpx.get(f"{served.base}/me/{token}")
        assert answer.status_code == 404
        assert answer.headers["cache-control"] == "no-store"
        assert "unknown or was reset" in answer.text
    assert httpx.get(f"{served.base}/me/{new}").status_code == 200
