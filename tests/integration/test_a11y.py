"""Pages everyone can use: axe-core (the copy axe-playwright-python bundles) in headless
Chromium (Playwright, Debian's /usr/bin/chromium) against a real server (uvicorn on 127.0.0.1),
and the dashboard's and the learner page's actions done with the keyboard alone.

axe runs on the login page, the cohorts list, a cohort with a published plan (heatmap and
cards), the learners page, a change's preview, the cohort calendar link, the error page and the
learner page in English and in Arabic (right to left). Any violation axe rates serious or
critical fails the test and is printed with its rule, impact, elements and help, so the
failure says what to fix.

The keyboard walks press Tab, Shift+Tab, Enter, Space and arrow keys only: a runner logs in,
opens a cohort, previews and applies a change, adds a learner and logs out; a learner reaches
each subscribe link and resets their link. Every element the walk reaches must show a focus
outline. Needs Debian's Chromium (see test_browser.py): without it the tests fail, not skip.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from babel.support import NullTranslations
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright
from sqlalchemy import select, update
from test_browser import ARGS, CHROMIUM
from test_dashboard import NOW, SLUG, Served, serve_cohort

from scheduler.outputs.i18n import translations
from scheduler.persistence.models import LiveSeriesRow, PersonRow
from scheduler.services.feeds import issue_token

BLOCKING = ("serious", "critical")  # axe's impacts that fail the test
ENGLISH_LEARNER = "ann.bob@example.org"  # "<b>Ann & Bob</b>", Europe/Berlin, the cohort's English
ARABIC_LEARNER = "kai@example.org"  # given the locale ar_EG below
ARABIC = translations("ar_EG")
NEW_TIME = "Tue 12:00"  # Europe/Berlin, the cohort's home zone
MAX_TABS = 400  # more presses than this to reach one element is a broken tab order


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the accessibility tests need Debian's Chromium "
            "(apt-get install -y chromium; .ci/run installs it)",
            pytrace=False,
        )
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_cohort(tmp_path_factory.mktemp("a11y"), learners=30) as s:
        with s.runtime.transaction() as db:
            db.execute(
                update(PersonRow).where(PersonRow.email == ARABIC_LEARNER).values(locale="ar_EG")
            )
        yield s


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def learner_link(served: Served, email: str) -> str:
    """A fresh link to the learner's page (the keyboard test resets one)."""
    with served.runtime.transaction() as db:
        token, _ = issue_token(db, SLUG, email, NOW)
    return f"{served.base}/me/{token}"


def class_choice(served: Served) -> str:
    """The change form's value for the cohort's first live class series."""
    with served.runtime.transaction() as db:
        row = db.scalars(
            select(LiveSeriesRow)
            .where(LiveSeriesRow.kind == "class")
            .order_by(LiveSeriesRow.section, LiveSeriesRow.slot)
        ).first()
        assert row is not None
        return f"class:{row.section}:{row.slot}"


def log_in(page: Page, served: Served) -> None:
    page.goto(f"{served.base}/login")
    page.get_by_label("Admin token").fill(served.admin_token)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{served.base}/")


# --- axe ---------------------------------------------------------------------------------------

AXE = Axe()


def blocking_violations(page: Page) -> list[dict[str, Any]]:
    """axe's violations on the page as it is now that are serious or critical."""
    results = AXE.run(page)
    return [v for v in results.response["violations"] if v["impact"] in BLOCKING]


def report(where: str, violations: list[dict[str, Any]]) -> str:
    lines = [f"{where}: {len(violations)} serious or critical accessibility violation(s)"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:8]:
            lines.append(f"    {' '.join(map(str, node['target']))}: {node['failureSummary']}")
        if len(v["nodes"]) > 8:
            lines.append(f"    ... and {len(v['nodes']) - 8} more element(s)")
    return "\n".join(lines)


def assert_accessible(page: Page, where: str) -> None:
    violations = blocking_violations(page)
    assert not violations, report(where, violations)


@pytest.fixture(scope="module")
def runner(browser: Browser, served: Served) -> Iterator[BrowserContext]:
    """A logged-in browser context for the pages that only look (the keyboard tests log in
    and out in their own)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    log_in(context.new_page(), served)
    yield context
    context.close()


DASHBOARD_PAGES = {
    "cohorts": "/",
    "cohort": f"/cohorts/{SLUG}",
    "cohort_week_3_filtered": f"/cohorts/{SLUG}?week=3&reason=hours#left-out-list",
    "learners": f"/cohorts/{SLUG}/learners",
    "learners_found": f"/cohorts/{SLUG}/learners?q=example",
    "change_with_errors": f"/cohorts/{SLUG}/change?scope=from&week=99&to=Blursday&action=move",
    "error": "/cohorts/no-such-cohort",
}


@pytest.mark.parametrize("path", DASHBOARD_PAGES.values(), ids=DASHBOARD_PAGES.keys())
def test_dashboard_pages_pass_axe(runner: BrowserContext, served: Served, path: str) -> None:
    page = runner.new_page()
    page.goto(f"{served.base}{path}")
    expect(page.locator("h1")).to_be_visible()
    assert_accessible(page, path)
    page.close()


def test_login_and_error_pages_pass_axe(page: Page, served: Served) -> None:
    page.goto(f"{served.base}/login")
    assert_accessible(page, "login")
    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page, "login with an error")
    page.goto(f"{served.base}/me/no-such-link")
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page, "a learner's unknown link")


CONTRAST = """() => {
  const luminance = (css) => {
    const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const seen = {};
  for (const cell of document.querySelectorAll('#heatmap td')) {
    const level = [...cell.classList].find((c) => /^h\\d$/.test(c));
    const style = getComputedStyle(cell);
    const [a, b] = [luminance(style.color), luminance(style.backgroundColor)].sort((x, y) => y - x);
    seen[level] = Math.min(seen[level] ?? 99, (a + 0.05) / (b + 0.05));
  }
  return seen;
}"""


def test_heatmap_numbers_are_readable_on_every_shade(
    runner: BrowserContext, served: Served
) -> None:
    """axe only flags text of two characters or more: the heatmap's single digits are checked
    here, for every shade the page shows (WCAG AA: 4.5:1)."""
    page = runner.new_page()
    page.goto(f"{served.base}/cohorts/{SLUG}")
    ratios = page.evaluate(CONTRAST)
    assert {"h0", "h8"} <= set(ratios), ratios  # nobody free and the peak are both shown
    low = {level: round(ratio, 2) for level, ratio in ratios.items() if ratio < 4.5}
    assert not low, f"heatmap numbers below 4.5:1 contrast: {low}"
    page.close()


def test_a_refused_learner_passes_axe(runner: BrowserContext, served: Served) -> None:
    page = runner.new_page()
    page.goto(f"{served.base}/cohorts/{SLUG}/learners")
    page.get_by_label("Name", exact=True).fill("Nobody")
    page.get_by_label("Email", exact=True).fill("nobody@example.org")
    page.locator("#add-zone").fill("Atlantis/Nowhere")
    page.get_by_role("button", name="Add learner").click()
    expect(page.get_by_role("alert")).to_be_visible()
    assert_accessible(page, "learners with errors")
    page.close()


def test_change_preview_and_flash_pass_axe(runner: BrowserContext, served: Served) -> None:
    page = runner.new_page()
    target = class_choice(served)
    page.goto(
        f"{served.base}/cohorts/{SLUG}/change?target={target}&scope=week&week=2"
        f"&to={NEW_TIME.replace(' ', '+')}&action=move"
    )
    expect(page.locator("#preview")).to_be_visible()
    assert_accessible(page, "change_preview")
    page.goto(
        f"{served.base}/cohorts/{SLUG}/change?target={target}&scope=week&week=3&action=cancel"
    )
    expect(page.locator("#preview")).to_be_visible()
    assert_accessible(page, "cancel_preview")
    page.get_by_role("button", name="Confirm the cancellation").click()
    expect(page.get_by_role("status")).to_contain_text("Done")
    assert_accessible(page, "cohort_after_change")


def test_cohort_calendar_link_passes_axe(runner: BrowserContext, served: Served) -> None:
    page = runner.new_page()
    page.goto(f"{served.base}/cohorts/{SLUG}")
    page.get_by_role("button", name="Cohort calendar link…").click()
    expect(page.get_by_role("heading", name="The cohort's calendar")).to_be_visible()
    assert_accessible(page, "feed_link")


@pytest.mark.parametrize(
    ("email", "lang", "direction"),
    [(ENGLISH_LEARNER, "en-GB", "ltr"), (ARABIC_LEARNER, "ar-EG", "rtl")],
    ids=["english", "arabic_rtl"],
)
def test_learner_page_passes_axe(
    page: Page, served: Served, email: str, lang: str, direction: str
) -> None:
    page.goto(learner_link(served, email))
    expect(page.locator("html")).to_have_attribute("lang", lang)
    assert page.evaluate("getComputedStyle(document.documentElement).direction") == direction
    assert_accessible(page, f"learner page ({lang})")
    page.set_viewport_size({"width": 360, "height": 740})  # a phone: the tables stack
    assert_accessible(page, f"learner page ({lang}) on a phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "the page scrolls sideways"
    # a stale form answers with the error page, in the learner's language and direction
    page.locator("#reset").locator("xpath=..").locator("input[name=csrf]").evaluate(
        "e => { e.value = 'stale'; }"
    )
    page.locator("#reset").click()
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", lang)
    assert_accessible(page, f"learner error page ({lang})")


# --- the keyboard alone ------------------------------------------------------------------------

FOCUS = """(target) => {
  const e = document.activeElement;
  const style = e ? getComputedStyle(e) : null;
  const text = e ? (e.getAttribute('aria-label') || e.innerText || e.value || '').trim() : '';
  return {
    hit: e === target,
    what: e ? `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''} "${text.slice(0, 40)}"` : 'none',
    control: !!e && e !== document.body && e.getAttribute('tabindex') !== '-1',
    visible: !!e && style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
  };
}"""


def press_to(page: Page, target: Locator, key: str = "Tab", most: int = MAX_TABS) -> list[str]:
    """Press ``key`` until ``target`` has the focus, at most ``most`` times; every element on
    the way must show a focus outline. Returns the elements passed, in order."""
    passed: list[str] = []
    for _ in range(most):
        page.keyboard.press(key)
        now = target.evaluate(FOCUS)
        if now["control"]:
            assert now["visible"], f"no visible focus outline on {now['what']} (after {passed})"
        passed.append(now["what"])
        if now["hit"]:
            return passed
    raise AssertionError(f"{most} x {key} did not reach {target}; focus went: {passed}")


def next_is(page: Page, target: Locator, key: str = "Tab") -> None:
    """One press of ``key`` moves the focus to ``target`` (the order is the reading order)."""
    press_to(page, target, key, most=1)


def assert_no_positive_tabindex(page: Page) -> None:
    jumps = page.locator("[tabindex]:not([tabindex='0']):not([tabindex='-1'])")
    assert jumps.count() == 0, "a positive tabindex reorders the keyboard's way through the page"


def skip_to_content(page: Page, skip_text: str) -> None:
    """The first Tab reaches the skip link, shown on screen; Enter moves the focus to main."""
    skip = page.get_by_role("link", name=skip_text)
    next_is(page, skip)
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0, "the skip link stays off screen"
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_a_runner_does_everything_with_the_keyboard(page: Page, served: Served) -> None:
    base = served.base

    # log in: the token field has the focus; Shift+Tab and Tab walk the form in reading order
    page.goto(f"{base}/login")
    token, log_in_button = (
        page.get_by_label("Admin token"),
        page.get_by_role("button", name="Log in"),
    )
    expect(token).to_be_focused()
    assert_no_positive_tabindex(page)
    page.keyboard.type(served.admin_token)
    next_is(page, log_in_button)
    next_is(page, token, "Shift+Tab")
    next_is(page, log_in_button)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/")

    # open the cohort: skip link, then the first link in main is the cohort
    skip_to_content(page, "Skip to content")
    next_is(page, page.get_by_role("link", name="Machine Learning Foundations, Spring 2027"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/cohorts/{SLUG}")
    assert_no_positive_tabindex(page)

    # preview a move: series (arrow keys), scope (radios), week, time, then the preview button
    series = page.get_by_label("Series")
    passed = press_to(page, series)
    assert 'a "Learners"' in passed, "the cohort's links come before its forms"
    assert 'div "Availability heatmap"' in passed, "the heatmap scrolls with the keyboard"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    expect(series).to_have_value(class_choice(served))
    next_is(page, page.get_by_label("only that week"))
    page.keyboard.press("ArrowRight")
    expect(page.get_by_label("from that week on")).to_be_checked()
    expect(page.get_by_label("from that week on")).to_be_focused()
    next_is(page, page.get_by_label("Course week"))
    page.keyboard.type("1")
    next_is(page, page.get_by_label("New weekday and time"))
    page.keyboard.type(NEW_TIME)
    next_is(page, page.get_by_role("button", name="Preview the move"))
    page.keyboard.press("Enter")
    expect(page.locator("#preview-title")).to_contain_text(f"move to {NEW_TIME}")

    # apply it with Space, from the preview
    confirm = page.get_by_role("button", name="Confirm the move")
    passed = press_to(page, confirm)
    assert "skip to content" in passed[0].lower(), "the skip link comes first"
    page.keyboard.press("Space")
    expect(page).to_have_url(f"{base}/cohorts/{SLUG}")
    expect(page.get_by_role("status")).to_contain_text(f"Done: move to {NEW_TIME}")

    # add a learner
    press_to(page, page.get_by_role("link", name="Learners", exact=True))
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{base}/cohorts/{SLUG}/learners")
    press_to(page, page.get_by_label("Name", exact=True))
    page.keyboard.type("Noor Keyboard")
    next_is(page, page.get_by_label("Email", exact=True))
    page.keyboard.type("noor.keyboard@example.org")
    next_is(page, page.locator("#add-zone"))
    page.keyboard.type("Asia/Amman")
    next_is(page, page.locator("#add-availability"))
    next_is(page, page.locator("#add-locale"))
    add = page.get_by_role("button", name="Add learner")
    next_is(page, add)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Added Noor Keyboard")
    expect(page.locator("#learners")).to_contain_text("noor.keyboard@example.org")

    # log out: back to the top of the page
    page.goto(f"{base}/")
    passed = press_to(page, page.get_by_role("button", name="Log out"))
    assert len(passed) == 4, f"skip link, brand, Cohorts, Log out; not {passed}"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_role("status")).to_contain_text("You are logged out")
    assert_accessible(page, "login after logging out")
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/login\?next="))


@pytest.mark.parametrize(
    ("email", "words"),
    [(ENGLISH_LEARNER, translations("en")), (ARABIC_LEARNER, ARABIC)],
    ids=["english", "arabic_rtl"],
)
def test_a_learner_does_everything_with_the_keyboard(
    page: Page, served: Served, email: str, words: NullTranslations
) -> None:
    page.goto(learner_link(served, email))
    old_url = page.url
    assert_no_positive_tabindex(page)
    skip_to_content(page, words.gettext("Skip to content"))

    # every subscribe link in turn, in the order they are shown; Enter on the last downloads
    links = ["#sub-webcal", "#sub-google", "#sub-outlook", "#sub-ics"]
    press_to(page, page.locator(links[0]))
    for link in links[1:]:
        next_is(page, page.locator(link))
    next_is(page, page.locator(links[-2]), "Shift+Tab")
    next_is(page, page.locator(links[-1]))
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    assert download.value.suggested_filename.endswith(".ics")

    # the reset form, reached further down and sent with the keyboard
    press_to(page, page.get_by_role("button", name=words.gettext("Reset my calendar link")))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_be_visible()
    assert page.url != old_url
    assert_accessible(page, f"learner page after a reset ({email})")
