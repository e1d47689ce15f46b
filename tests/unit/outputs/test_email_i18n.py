"""Emails in the learner's language: every kind renders in every shipped language; the words
come from the learner's catalog (a fake one here, so the wiring is proven whatever the shipped
catalogs hold) while course text stays as written; the HTML carries ``lang`` and ``dir`` and
isolates names, titles and times; the catalogs hold every string the emails use."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import test_email as base  # the contexts of test_email.py (pytest puts this folder on sys.path)
import test_email_coworking as coworking
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import StrictUndefined

import scheduler.outputs.i18n as i18n
from scheduler.outputs.email import KINDS, EmailTemplates
from scheduler.outputs.email.language import learner_catalog, page_language
from scheduler.services.compose import lead_text

templates = base.templates  # module fixtures, shared with test_email.py's definitions
make_context = base.make_context

REPO = Path(__file__).resolve().parents[3]
POT = REPO / "scheduler" / "locale" / "messages.pot"
EMAIL_SOURCES = [
    REPO / "scheduler" / "outputs" / "email" / "filters.py",
    REPO / "scheduler" / "services" / "compose.py",
]

GERMAN_PO = r"""
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

msgid "Hello %(name)s,"
msgstr "Hallo %(name)s,"

msgid "Reminder: %(session)s starts %(lead)s, at %(time)s"
msgstr "Erinnerung: %(session)s beginnt %(lead)s, um %(time)s"

msgid "%(session)s starts %(lead)s"
msgstr "%(session)s beginnt %(lead)s"

msgid "%(session)s (%(activity)s) is on"
msgstr "%(session)s (%(activity)s) findet statt am"

msgid "class"
msgstr "Kurs"

msgid "Join the session"
msgstr "Zur Sitzung"

msgid "Agenda"
msgstr "Ablauf"

msgid "Agenda:"
msgstr "Ablauf:"

msgid "You receive this reminder because you are enrolled in %(cohort)s and %(session)s is on your schedule."
msgstr "Sie erhalten diese Erinnerung, weil Sie in %(cohort)s eingeschrieben sind und %(session)s in Ihrem Plan steht."

msgid "This weekly %(activity)s has %(num)s meeting."
msgid_plural "This weekly %(activity)s has %(num)s meetings."
msgstr[0] "Dieser wöchentliche %(activity)s hat %(num)s Termin."
msgstr[1] "Dieser wöchentliche %(activity)s hat %(num)s Termine."

msgid "in %(num)d minute"
msgid_plural "in %(num)d minutes"
msgstr[0] "in %(num)d Minute"
msgstr[1] "in %(num)d Minuten"

msgid "in about an hour"
msgstr "in etwa einer Stunde"
"""

PORTUGUESE_PO = r"""
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

msgid "Hello %(name)s,"
msgstr "Olá %(name)s,"
"""


def compiled(catalog: Catalog) -> Translations:
    """The catalog as the product loads one: compiled to .mo bytes and read back."""
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def from_po(text: str, locale: str) -> Translations:
    return compiled(read_po(io.StringIO(text), locale=locale))


def pseudo_catalog() -> Translations:
    """Every string of messages.pot translated as ``‹English›``: text left outside ‹› in an
    email was not translated."""
    with POT.open("rb") as f:
        template = read_po(f)
    catalog = Catalog(locale="en")
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, tuple | list):
            catalog.add(message.id, tuple(f"‹{form}›" for form in message.id))
        else:
            catalog.add(message.id, f"‹{message.id}›")
    return compiled(catalog)


@pytest.fixture(scope="module")
def german() -> Translations:
    return from_po(GERMAN_PO, "de")


@pytest.fixture
def shipped(monkeypatch: pytest.MonkeyPatch, german: Translations) -> Iterator[None]:
    """The shipped catalogs replaced: ``de`` by the fake German one, ``pt_BR`` by a fake
    Portuguese one, the others English; the memoised lookups cleared around the test."""
    catalogs = {"de": german, "pt_BR": from_po(PORTUGUESE_PO, "pt_BR")}
    monkeypatch.setattr(i18n, "_load", lambda name: catalogs.get(name, Translations()))
    learner_catalog.cache_clear()
    yield
    learner_catalog.cache_clear()


def visible(markup: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def every_context(make: Callable[..., dict[str, Any]], locale: str) -> list[dict[str, Any]]:
    """One context per kind (test_email.py's), plus the co-working reminder and check-in
    variants of test_email_coworking.py, for a learner in ``locale``."""
    contexts = [make(kind, locale=locale) for kind in KINDS]
    for extra in (
        coworking.reminder(),
        coworking.reminder(names=[]),
        coworking.checkin(),
        coworking.checkin(deadline=False, following=False),
    ):
        extra["learner"] = extra["learner"] | {"locale": locale}
        contexts.append(extra)
    return contexts


# --- every kind, every language ---------------------------------------------------------------


def test_templates_are_strict(templates: EmailTemplates) -> None:
    assert templates.environment.undefined is StrictUndefined


@pytest.mark.parametrize("locale", [*i18n.SHIPPED, "en", "en_GB", "ar_EG", "pt_PT", "zz"])
def test_every_kind_renders_in_every_shipped_language(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], locale: str
) -> None:
    lang, direction = page_language(locale, None)
    for context in every_context(make_context, locale):
        rendered = templates.render(context["kind"], context)
        assert rendered.subject and "\n" not in rendered.subject
        for body in (rendered.subject, rendered.text, rendered.html):
            assert "None" not in body and "%(" not in body
        assert "Ann Example" in rendered.text
        assert "<bdi>Ann Example</bdi>" in rendered.html
        assert f'<html lang="{lang}" dir="{direction}">' in rendered.html
        assert f'<div dir="{direction}" lang="{lang}">' in rendered.html


@pytest.mark.parametrize(
    ("locale", "cohort", "lang", "direction"),
    [
        pytest.param("ar", None, "ar", "rtl", id="arabic"),
        pytest.param("ar_EG", "de_DE", "ar-EG", "rtl", id="arabic_egypt"),
        pytest.param("de_DE", None, "de-DE", "ltr", id="german"),
        pytest.param("en_GB", None, "en-GB", "ltr", id="english"),
        pytest.param("pt_PT", "de_DE", "pt-PT", "ltr", id="portuguese_reads_pt_BR"),
        pytest.param("it_IT", "de_DE", "de", "ltr", id="no_italian_reads_german"),
        pytest.param("zz", None, "en", "ltr", id="unknown"),
    ],
)
def test_html_lang_and_dir_follow_the_learner(
    templates: EmailTemplates,
    make_context: Callable[..., dict[str, Any]],
    locale: str,
    cohort: str | None,
    lang: str,
    direction: str,
) -> None:
    context = make_context("welcome", locale=locale)
    context["cohort"]["locale"] = cohort
    page = templates.render("welcome", context).html
    assert f'<html lang="{lang}" dir="{direction}">' in page
    assert f'<div dir="{direction}" lang="{lang}">' in page  # webmail drops <html>'s attributes


# --- the words come from the learner's catalog -------------------------------------------------


def test_fake_catalog_translates_subject_text_and_html(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], german: Translations
) -> None:
    context = make_context("live_reminder", locale="de_DE")
    context["session"]["lead"] = lead_text(timedelta(minutes=45), german)
    rendered = templates.render("live_reminder", context, german)
    assert rendered.subject.startswith("Erinnerung: Week 1: Pandas beginnt in 45 Minuten, um 20:00")
    assert rendered.subject.endswith(" · Data Science, Spring 2027")
    assert "Hallo Ann Example," in rendered.text
    assert "Week 1: Pandas (Kurs) findet statt am" in rendered.text
    assert "Ablauf:\n- Recap\n- Group work" in rendered.text  # agenda lines as written
    assert "Sie erhalten diese Erinnerung" in rendered.text
    assert ">Hallo <bdi>Ann Example</bdi>,</p>" in rendered.html
    assert ">Zur Sitzung</a>" in rendered.html
    assert "<bdi>Week 1: Pandas</bdi> (Kurs) findet statt am" in rendered.html
    for body in (rendered.text, visible(rendered.html)):
        assert "Hello" not in body and "You receive" not in body and "(class)" not in body


def test_fake_catalog_plurals(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], german: Translations
) -> None:
    for meetings, words in ((1, "hat 1 Termin."), (8, "hat 8 Termine.")):
        context = make_context("invite", locale="de_DE")
        context["series"]["meetings"] = meetings
        rendered = templates.render("invite", context, german)
        assert f"Dieser wöchentliche Kurs {words}" in rendered.text
        assert f"Dieser wöchentliche Kurs {words}" in rendered.html


def test_translated_html_escapes_course_text(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], german: Translations
) -> None:
    context = make_context("live_reminder", locale="de_DE", name="<b>Ann & Bob</b>")
    context["session"]["title"] = "<i>Week 1</i>"
    rendered = templates.render("live_reminder", context, german)
    assert "Hallo <bdi>&lt;b&gt;Ann &amp; Bob&lt;/b&gt;</bdi>," in rendered.html
    assert "<bdi>&lt;i&gt;Week 1&lt;/i&gt;</bdi> beginnt" in rendered.html
    assert "<b>" not in rendered.html and "<i>" not in rendered.html
    assert "Hallo <b>Ann & Bob</b>," in rendered.text
    assert "Erinnerung: <i>Week 1</i> beginnt" in rendered.subject


@pytest.mark.usefixtures("shipped")
def test_learner_locale_picks_the_catalog(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    # No ``translations`` argument: the catalog comes from learner.locale, then cohort.locale.
    german = templates.render("welcome", make_context("welcome", locale="de_DE"))
    assert "Hallo Ann Example," in german.text
    english = templates.render("welcome", make_context("welcome", locale="en_GB"))
    assert "Hello Ann Example," in english.text


@pytest.mark.usefixtures("shipped")
def test_portuguese_learner_in_german_cohort_reads_brazilian_portuguese(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    context = make_context("welcome", locale="pt_PT")
    context["cohort"]["locale"] = "de_DE"
    rendered = templates.render("welcome", context)
    assert "Olá Ann Example," in rendered.text and "Hallo" not in rendered.text
    assert '<html lang="pt-PT" dir="ltr">' in rendered.html
    italian = make_context("welcome", locale="it_IT")
    italian["cohort"]["locale"] = "de_DE"
    assert "Hallo Ann Example," in templates.render("welcome", italian).text  # the cohort's


def test_lead_text_in_the_learners_language(german: Translations) -> None:
    assert lead_text(timedelta(minutes=45), german) == "in 45 Minuten"
    assert lead_text(timedelta(seconds=20), german) == "in 1 Minute"
    assert lead_text(timedelta(hours=1), german) == "in etwa einer Stunde"
    assert lead_text(timedelta(hours=3), german) == "in about 3 hours"  # not in the fake catalog
    assert lead_text(timedelta(hours=3)) == "in about 3 hours"


def test_renders_in_threads_do_not_mix_languages(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], german: Translations
) -> None:
    english = Translations()

    def render(i: int) -> tuple[bool, str]:
        is_german = i % 2 == 0
        context = make_context("live_reminder", locale="de_DE" if is_german else "en_GB")
        catalog = german if is_german else english
        return is_german, templates.render("live_reminder", context, catalog).text

    with ThreadPoolExecutor(max_workers=8) as pool:
        for is_german, text in pool.map(render, range(400)):
            assert ("Hallo Ann" in text) is is_german
            assert ("Hello Ann" in text) is not is_german


# --- every word is translatable, and the catalogs hold it --------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_no_english_left_outside_the_catalog(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], kind: str
) -> None:
    """With every catalog string shown as ‹...› and dates in Japanese, what is left outside
    ‹...› is course text (in the context) or punctuation: no untranslated English."""
    catalog = pseudo_catalog()
    contexts = [c for c in every_context(make_context, "ja") if c["kind"] == kind]
    for context in contexts:
        rendered = templates.render(kind, context, catalog)
        course_text = sorted(_strings(context), key=len, reverse=True)
        for body in (rendered.subject, rendered.text, visible(rendered.html)):
            left = body
            while re.search(r"‹[^‹›]*›", left):
                left = re.sub(r"‹[^‹›]*›", " ", left)
            for value in course_text:
                left = left.replace(value, " ")
            assert not re.search(r"[A-Za-z]", left), (kind, left)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_catalog_template_holds_every_email_string() -> None:
    """``make messages`` was run after the last change to an email string."""
    with POT.open("rb") as f:
        known = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    used: set[str] = set()
    for path in sorted((REPO / "templates" / "email").iterdir()):
        options = {"extensions": "jinja2.ext.i18n", "silent": "false"}
        for found in extract_from_file("jinja2.ext:babel_extract", path, options=options):
            used.add(found[1] if isinstance(found[1], str) else found[1][0])
    for path in EMAIL_SOURCES:
        for found in extract_from_file("python", path):
            used.add(found[1] if isinstance(found[1], str) else found[1][0])
    assert used and not used - known, sorted(used - known)


@pytest.mark.parametrize("language", i18n.SHIPPED)
def test_every_shipped_language_has_a_compiled_catalog(language: str) -> None:
    folder = REPO / "scheduler" / "locale" / language / "LC_MESSAGES"
    assert (folder / "messages.po").is_file() and (folder / "messages.mo").is_file()
