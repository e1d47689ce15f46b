"""The dashboard and the learner's page in a real browser: headless Chromium (Playwright) against
a real server (uvicorn on 127.0.0.1).

Logs in with the keyboard, sees the heatmap with the published times marked, moves a class
through the preview, sees the learner's page show the new time on the learner's clock, resets the
learner's link and sees the old feed URL answer 404. Screenshots land in ``tests/artifacts/``.

Needs Debian's Chromium at /usr/bin/chromium (CI installs it; no browser download). Without it
the test fails and says so: a browser test that skips proves nothing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import select
from test_dashboard import NOW, SLUG, Served, serve_cohort

from scheduler.outputs.formatting import local_datetime
from scheduler.outputs.i18n import translations
from scheduler.persistence.models import (
    LiveSeriesRow,
    OccurrenceRow,
    PersonRow,
    SectionMemberRow,
)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
LEARNER = "yuki.sato@example.org"  # Asia/Tokyo, Mon-Fri 19:00-23:00, ja_JP
JAPANESE = translations("ja_JP")  # her page's words
NEW_LINK = (
    "Your calendar link is new: the old one stopped working. Subscribe again below "
    "(calendars using the old link stop updating)."
)
NEW_TIME = "Mon 12:00"  # Europe/Berlin: 20:00 in Tokyo (19:00 after Europe's DST change)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(apt-get install -y chromium; .ci/run installs it)",
            pytrace=False,
        )
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_cohort(tmp_path_factory.mktemp("browser"), learners=30) as s:
        yield s


def _watch(page: Page) -> list[str]:
    """Console errors (a CSP violation or a missing file shows up here)."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def _learner_section(served: Served) -> LiveSeriesRow:
    with served.runtime.transaction() as db:
        row = (
            db.execute(
                select(LiveSeriesRow)
                .join(
                    SectionMemberRow,
                    (SectionMemberRow.series_key == LiveSeriesRow.series_key)
                    & (SectionMemberRow.section == LiveSeriesRow.section),
                )
                .join(PersonRow, PersonRow.id == SectionMemberRow.person_id)
                .where(PersonRow.email == LEARNER, LiveSeriesRow.kind == "class")
                .order_by(LiveSeriesRow.slot)
            )
            .scalars()
            .first()
        )
        assert row is not None
        db.expunge(row)
        return row


def _first_start(served: Served, series_id: int) -> tuple[int, datetime]:
    with served.runtime.transaction() as db:
        o = db.scalars(
            select(OccurrenceRow)
            .where(OccurrenceRow.series_id == series_id, OccurrenceRow.start >= NOW)
            .order_by(OccurrenceRow.week)
        ).first()
        assert o is not None
        return o.sequence, o.start


def test_move_a_class_and_reset_a_learner_link_in_the_browser(
    browser: Browser, served: Served
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    errors = _watch(page)

    # log in with the keyboard only
    page.goto(f"{served.base}/cohorts/{SLUG}")
    expect(page).to_have_url(f"{served.base}/login?next=%2Fcohorts%2F{SLUG}")
    page.get_by_label("Admin token").focus()
    page.keyboard.type(served.admin_token)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{served.base}/cohorts/{SLUG}")

    # the heatmap marks the learner's class at its published time
    section = _learner_section(served)
    row, column = section.wall_minute // 30, section.weekday
    cell = page.locator("#heatmap tbody tr").nth(row).locator("td").nth(column)
    expect(cell).to_have_class(re.compile(r"\bm-class\b"))
    expect(cell).to_have_attribute("title", re.compile(r"learners available"))

    # move it from week 1 on, through the preview
    before_sequence, before = _first_start(served, section.id)
    page.get_by_label("Series").select_option(f"class:{section.section}:{section.slot}")
    page.get_by_label("from that week on").check()
    page.get_by_label("Course week").fill("1")
    page.get_by_label("New weekday and time").fill(NEW_TIME)
    page.get_by_role("button", name="Preview the move").click()
    expect(page.locator("#preview-title")).to_contain_text(f"move to {NEW_TIME} Europe/Berlin")
    expect(page.locator("#preview")).to_contain_text("email(s) will go out")
    _, unchanged = _first_start(served, section.id)
    assert unchanged == before  # a preview changes nothing
    page.get_by_role("button", name="Confirm the move").click()
    expect(page).to_have_url(f"{served.base}/cohorts/{SLUG}")
    expect(page.get_by_role("status")).to_contain_text(f"Done: move to {NEW_TIME}")
    after_sequence, after = _first_start(served, section.id)
    assert after != before and after_sequence == before_sequence + 1
    moved = page.locator("#heatmap tbody tr").nth(24).locator("td").nth(0)  # Mon 12:00
    expect(moved).to_have_class(re.compile(r"\bm-class\b"))
    page.set_viewport_size({"width": 1280, "height": 1500})
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))

    # the learner's page shows the new time on the learner's clock
    token = served.feed_tokens[LEARNER]
    me = context.new_page()
    me_errors = _watch(me)
    me.goto(f"{served.base}/me/{token}")
    live = me.locator("#live")
    expect(live).to_contain_text(local_datetime(after, "Asia/Tokyo", "ja_JP"))
    expect(live).not_to_contain_text(local_datetime(before, "Asia/Tokyo", "ja_JP"))
    expect(me.locator("#sub-webcal")).to_have_attribute(
        "href", f"webcal://{served.base[7:]}/feeds/{token}.ics"
    )
    me.screenshot(path=str(ARTIFACTS / "learner.png"), full_page=True)

    # reset the link: a new page, the old feed URL answers 404
    old_feed = f"{served.base}/feeds/{token}.ics"
    assert httpx.get(old_feed).status_code == 200
    me.get_by_role("button", name=JAPANESE.gettext("Reset my calendar link")).click()
    expect(me.get_by_role("status")).to_contain_text(JAPANESE.gettext(NEW_LINK))
    new_token = me.url.rsplit("/", 1)[1]
    assert new_token != token
    expect(me.locator("#sub-ics")).to_have_attribute("href", f"{served.base}/feeds/{new_token}.ics")
    time.sleep(1.1)  # the server trusts a token check for a second (app.LOOKUP_SECONDS)
    assert httpx.get(old_feed).status_code == 404
    assert httpx.get(f"{served.base}/feeds/{new_token}.ics").status_code == 200
    assert httpx.get(f"{served.base}/me/{token}").status_code == 404
    assert errors == [] and me_errors == []
    context.close()
