"""The learner's side in the learner's language: the learner page (its words, ``<html lang dir>``)
and the calendar feed's own words, through the catalog of the learner's locale (else the
cohort's). Text the course runner wrote (series and assignment titles, names) stays as written.

Shipped catalogs are empty for now, so a fake German one (a .po built in memory, compiled with
babel's mofile) stands in for ``translations``, the name the feeds and the page call.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from icalendar import Calendar
from jinja2 import Environment
from served_app import serve
from sqlalchemy import select, update

from scheduler.domain import labels
from scheduler.domain.cohort import SeriesKind
from scheduler.outputs.i18n import catalog_locale
from scheduler.persistence.models import LiveSeriesRow, PersonRow
from scheduler.runtime import Runtime
from scheduler.services import feeds
from scheduler.services.deadlines import learner_items
from scheduler.services.feeds import (
    FeedCache,
    feed_events,
    feed_name,
    issue_token,
    meeting_title,
    resolve_token,
)
from scheduler.web.dashboard.me import KIND_WORDS
from scheduler.web.dashboard.rendering import gettext_callables

SLUG = "ml-foundations-2027"
ROWS = [
    ["Nour", "nour@example.org", "Africa/Cairo", "Mon-Fri 16:00-22:00", "ar_EG", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "Mon-Fri 16:00-22:00", "de_DE", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
]

GERMAN_PO = r"""
msgid ""
msgstr ""
"Language: de\n"
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

msgid "Live sessions"
msgstr "Live-Termine"

msgid "When"
msgstr "Wann"

msgid "What"
msgstr "Was"

msgid "Deadlines"
msgstr "Fristen"

msgid "Due"
msgstr "Fällig"

msgid "Live class"
msgstr "Live-Kurs"

msgid "Practice exercise"
msgstr "Übungsaufgabe"

msgid "Skip to content"
msgstr "Zum Inhalt"

msgid "Reset my calendar link"
msgstr "Kalenderlink erneuern"

msgid "%(name)s's schedule"
msgstr "Zeitplan von %(name)s"

msgid "All times on your clock: <strong>%(zone)s</strong>."
msgstr "Alle Zeiten in Ihrer Zeitzone: <strong>%(zone)s</strong>."

msgid "Your calendar link is new: the old one stopped working. Subscribe again below (calendars using the old link stop updating)."
msgstr "Ihr Kalenderlink ist neu."

msgid "Due: {title}"
msgstr "Fällig: {title}"

msgid "Week {week} of {course}."
msgstr "Woche {week} von {course}."

msgid "Soft deadline for week {week} of {course}."
msgstr "Empfohlene Frist für Woche {week} von {course}."

msgid "{title} · section {number}"
msgstr "{title} · Gruppe {number}"

msgid "{cohort} ({name})"
msgstr "{name}: {cohort}"

msgid "Join: {url}"
msgstr "Teilnehmen: {urll}"

msgid "week %(number)s"
msgstr "Woche %(number)s"
"""


def german() -> Translations:
    """The fake German catalog, compiled in memory. ("Join: {url}" is a translator's mistake:
    its placeholder does not fit, so the English sentence is used.)"""
    catalog = read_po(io.StringIO(GERMAN_PO), locale="de")
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


GERMAN = german()


def fake_translations(locale: str | None, fallback: str | None = None) -> NullTranslations:
    """The fallback chain of scheduler.outputs.i18n, with a German catalog to find."""
    return GERMAN if catalog_locale(locale, fallback) == "de" else NullTranslations()


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


@pytest.fixture
def base(published: Runtime) -> Iterator[str]:
    with serve(published) as url:
        yield url


@pytest.fixture
def in_german(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "translations", fake_translations)


def token_of(runtime: Runtime, email: str | None) -> str:
    with runtime.transaction() as db:
        token, _ = issue_token(db, SLUG, email, runtime.clock.now())
    return token


def html_tag(page: str) -> str:
    found = re.search(r"<html[^>]*>", page)
    assert found is not None
    return found.group(0)


def feed_of(base: str, token: str) -> Calendar:
    answer = httpx.get(f"{base}/feeds/{token}.ics", timeout=20)
    assert answer.status_code == 200
    return Calendar.from_ical(answer.content)


def calendar_name(feed: Calendar) -> str:
    return str(feed["X-WR-CALNAME"]).replace("\\,", ",")  # an X- property: left escaped


def series_titles(runtime: Runtime) -> set[str]:
    with runtime.transaction() as db:
        return set(db.scalars(select(LiveSeriesRow.title)))


# --- the page's language and direction ---------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("email", "tag"),
    [
        ("nour@example.org", '<html lang="ar-EG" dir="rtl">'),
        ("lea@example.org", '<html lang="de-DE">'),  # left-to-right: the default, not written
        ("sam@example.org", '<html lang="en-US">'),
    ],
)
def test_the_page_carries_the_learners_language_and_direction(
    published: Runtime, base: str, email: str, tag: str
) -> None:
    page = httpx.get(f"{base}/me/{token_of(published, email)}", timeout=20)
    assert page.status_code == 200
    assert html_tag(page.text) == tag


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_runner_and_learner_text_is_isolated(published: Runtime, base: str) -> None:
    page = httpx.get(f"{base}/me/{token_of(published, 'nour@example.org')}", timeout=20).text
    assert "<h1>جدول <bdi>Nour</bdi></h1>" in page  # Arabic words, the Latin name isolated
    assert '<span class="brand"><bdi>Machine Learning Foundations, Spring 2027</bdi></span>' in page
    assert "<strong><bdi>Africa/Cairo</bdi></strong>" in page
    assert "<bdi>Practice exercise</bdi>" in page


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_dashboard_pages_stay_english_and_left_to_right(published: Runtime, base: str) -> None:
    login = httpx.get(f"{base}/login", timeout=20)
    assert html_tag(login.text) == '<html lang="en">'
    assert ">Skip to content<" in login.text


# --- with a catalog ----------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("in_german")
def test_the_page_words_are_translated_and_runner_text_is_not(
    published: Runtime, base: str
) -> None:
    page = httpx.get(f"{base}/me/{token_of(published, 'lea@example.org')}", timeout=20).text
    assert html_tag(page) == '<html lang="de-DE">'
    for word in ("Live-Termine", "Wann", "Was", "Fristen", "Zum Inhalt", "Kalenderlink erneuern"):
        assert word in page, word
    assert "<h1>Zeitplan von <bdi>Lea</bdi></h1>" in page
    assert "Alle Zeiten in Ihrer Zeitzone: <strong><bdi>Europe/Berlin</bdi></strong>." in page
    assert 'data-label="Wann"' in page
    for english in (">Live sessions<", ">When<", ">Deadlines<", "Skip to content", "'s schedule"):
        assert english not in page, english
    assert '<span class="badge info">Fällig</span>' in page  # the kind label, translated
    # The assignment is called "Practice exercise" by the runner: the catalog has those words
    # too, and they stay as written.
    assert "<bdi>Practice exercise</bdi>" in page and "Übungsaufgabe" not in page
    assert "<bdi>Live class</bdi>" in page and "Live-Kurs" not in page  # a series title
    assert "Woche 1" in page and "week 1" not in page  # the notes beside each entry

    # Another learner's page, rendered meanwhile, is English: nothing leaks between requests.
    english = httpx.get(f"{base}/me/{token_of(published, 'sam@example.org')}", timeout=20).text
    assert ">Live sessions<" in english and "Live-Termine" not in english
    assert "week 1" in english


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("in_german")
def test_the_reset_message_is_in_the_learners_language(published: Runtime, base: str) -> None:
    token = token_of(published, "lea@example.org")
    with httpx.Client(base_url=base, timeout=20) as client:
        page = client.get(f"/me/{token}").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        answer = client.post(f"/me/{token}/reset", data={"csrf": csrf.group(1)})
        assert answer.status_code == 303
        after = client.get(answer.headers["location"])
    assert "Ihr Kalenderlink ist neu." in after.text
    stale = httpx.post(f"{base}{answer.headers['location']}/reset", data={"csrf": "x"})
    assert stale.status_code == 403 and html_tag(stale.text) == '<html lang="de-DE">'


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("in_german")
def test_the_feed_words_are_translated_and_titles_are_not(published: Runtime, base: str) -> None:
    feed = feed_of(base, token_of(published, "lea@example.org"))
    assert calendar_name(feed) == "Lea: Machine Learning Foundations, Spring 2027"
    events = list(feed.walk("VEVENT"))
    summaries = {str(e["SUMMARY"]) for e in events}
    descriptions = [str(e.get("DESCRIPTION", "")) for e in events]
    assert "Fällig: Practice exercise" in summaries  # the runner's title, as written
    assert not any(s.startswith("Due: ") for s in summaries)
    assert summaries & series_titles(published)  # "Live class" and co stay as written
    assert any(d.startswith("Woche 1 von Machine Learning Foundations") for d in descriptions)
    assert any(d.startswith("Empfohlene Frist für Woche") for d in descriptions)
    # "Join: {url}" has a broken translation: the English sentence, not a failed feed.
    assert all("Teilnehmen" not in d for d in descriptions)

    cohort = feed_of(base, token_of(published, None))  # the cohort's feed: the cohort's locale
    assert calendar_name(cohort) == "Machine Learning Foundations, Spring 2027"
    cohort_text = [str(e.get("DESCRIPTION", "")) for e in cohort.walk("VEVENT")]
    assert any(d.startswith("Week 1 of ") for d in cohort_text)
    assert not any("Woche" in d for d in cohort_text)


@pytest.mark.usefixtures("in_german")
def test_bodies_are_kept_per_language(published: Runtime) -> None:
    """A learner's new locale shows at the next token check, even when no feeds version moved
    (here: changed behind the services' back)."""
    cache = FeedCache(published.engine, published.sessions, lookup_seconds=0.0)
    token = token_of(published, "sam@example.org")
    key = cache.lookup(token)
    assert key is not None and key.language == "en"
    english = cache.render(token, key)
    assert english is not None and b"Due: " in english.body
    with published.transaction() as db:
        db.execute(
            update(PersonRow).where(PersonRow.email == "sam@example.org").values(locale="de_AT")
        )
    german_key = cache.lookup(token)
    assert german_key is not None and german_key.language == "de"
    assert german_key.feeds_version == key.feeds_version  # no bump: the language tells them apart
    assert cache.cached(german_key) is None
    german_body = cache.render(token, german_key)
    assert german_body is not None and "Fällig: ".encode() in german_body.body
    assert german_body.etag != english.etag
    assert cache.cached(key) is english and cache.cached(german_key) is german_body


# --- English stays as it was -------------------------------------------------------------------


def test_english_feed_words_are_the_ones_written_before(published: Runtime) -> None:
    """With no catalog the feed's words are the English sentences of before, byte for byte
    (the golden feeds in test_feeds.py check whole feeds)."""
    english = NullTranslations()
    with published.transaction() as db:
        token, target = issue_token(db, SLUG, "sam@example.org", published.clock.now())
        assert resolve_token(db, token) == target
        events = feed_events(db, target)
        assert feed_events(db, target, english) == events
        items = list(learner_items(db, target.cohort_id, target.person_id or 0))
        name = feed_name(target)
    assert name == f"{target.cohort_title} ({target.name})"
    summaries = {e.summary for e in events}
    for item in items:
        assert (item.title if item.kind == "replay" else f"Due: {item.title}") in summaries
    week_one = f"Week 1 of {target.cohort_title}."
    assert any(e.description.split("\n")[0] == week_one for e in events)
    deadline_lines = [e.description.split("\n") for e in events if e.transparent]
    assert deadline_lines and all(
        lines[0].startswith("Soft deadline for week ") for lines in deadline_lines
    )
    assert any(
        re.fullmatch(r"Late work is still accepted until \d{4}-\d\d-\d\d \d\d:\d\d UTC\.", line)
        for lines in deadline_lines
        for line in lines
    )


@pytest.mark.parametrize("kind", [k.value for k in SeriesKind])
def test_meeting_titles_match_the_domain_words_in_english(kind: str) -> None:
    for sections in (1, 2, 3):
        for section in range(sections):
            expected = labels.meeting_title("Live class", kind, section, sections)
            got = meeting_title(NullTranslations(), "Live class", kind, section, sections)
            assert got == expected
    assert meeting_title(GERMAN, "Live class", "class", 1, 2) == "Live class · Gruppe 2"


def test_every_kind_label_is_marked_for_translation() -> None:
    assert set(labels.KIND_LABELS.values()) <= set(KIND_WORDS)


def test_the_render_context_callables_behave_like_jinjas_new_style() -> None:
    env = Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    template = env.from_string(
        '{{ _("Due") }}|{{ ngettext("%(num)s day", "%(num)s days", n) }}|'
        '{{ _("%(name)s\'s schedule", name=name) }}|{% trans %}When{% endtrans %}|'
        '{{ pgettext("table", "What") }}'
    )
    english = template.render(n=2, name="<b>A</b>")
    assert english == "Due|2 days|&lt;b&gt;A&lt;/b&gt;'s schedule|When|What"
    german = template.render(n=1, name="<b>A</b>", **gettext_callables(GERMAN))
    assert german == "Fällig|1 day|Zeitplan von &lt;b&gt;A&lt;/b&gt;|Wann|What"
