"""The per-language templates (gettext of literal messages resolved when a template is
compiled, see ``EmailTemplates``) write exactly what the generic templates write, where every
``_()`` is a call at render time: every kind, every shipped language and English, learner text
that needs escaping, a right-to-left learner and a learner whose language has no catalog; and
the text bodies' tidying, which replaced two regular expressions, and the bodies'
quoted-printable encoding, memoised line by line."""

from __future__ import annotations

import binascii
import email
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from gettext import NullTranslations
from typing import Any

import pytest
import test_email as base  # the contexts of test_email.py (pytest puts this folder on sys.path)
from hypothesis import example, given
from hypothesis import strategies as st
from jinja2 import nodes
from markupsafe import Markup

from scheduler.outputs.email import KINDS, EmailTemplates, build_message, mime
from scheduler.outputs.email import templates as templates_module
from scheduler.outputs.i18n import SHIPPED, translations

make_context = base.make_context
LOCALES = [*SHIPPED, "en_GB", "ko_KR"]  # ko: no catalog, the cohort's language is used
HOSTILE = {"name": "<b>Ann & Bob</b> 100% %(name)s", "zone": "Asia/Kolkata"}


@pytest.fixture(scope="module")
def compiled() -> EmailTemplates:
    return EmailTemplates(base.FOLDER)


@pytest.fixture(scope="module")
def generic() -> EmailTemplates:
    return EmailTemplates(base.FOLDER)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", KINDS)
def test_per_language_templates_write_the_same_bytes_as_the_generic_ones(
    compiled: EmailTemplates,
    generic: EmailTemplates,
    make_context: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    locale: str,
) -> None:
    for learner in ({"locale": locale}, {"locale": locale} | HOSTILE):
        context = make_context(kind, **learner)
        context["cohort"] = dict(context["cohort"], locale="fr_FR", title="R&D <Spring> 50%")
        fast = compiled.render(kind, context)
        assert compiled._localised, "the per-language templates were used"
        with monkeypatch.context() as m:
            m.setattr(templates_module, "_LANGUAGES", 0)  # every catalog: the generic templates
            slow = generic.render(kind, context)
        assert not generic._localised
        assert fast == slow


def test_resolved_calls_leave_no_gettext_call_for_literal_messages() -> None:
    """What makes them faster: the live reminder's literal ``_()`` calls are gone from the
    compiled source of the German templates (``ngettext`` would stay a call)."""
    templates = EmailTemplates(base.FOLDER)
    german = translations("de_DE")
    environment = templates_module.EmailTemplates._compile(templates._loader, german)
    for name in ("live_reminder.html", "live_reminder.txt", "_layout.html", "_layout.txt"):
        source, _, _ = environment.loader.get_source(environment, name)  # type: ignore[union-attr]
        tree = environment.parse(source, name)
        calls = [
            c
            for c in tree.find_all(nodes.Call)
            if isinstance(c.node, nodes.Name) and c.node.name in ("_", "gettext")
        ]
        assert calls == [], name


def test_a_template_that_defines_its_own_gettext_is_left_alone(tmp_path: Any) -> None:
    """A template assigning ``_`` keeps its calls: resolving them would ignore its ``_``."""
    catalog = NullTranslations()
    environment = templates_module._Environment(extensions=["jinja2.ext.i18n"])
    environment.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
    environment.catalog = catalog
    source = '{% set _ = gettext %}{{ _("Hello") }}'
    tree = environment.parse(source)
    assert any(isinstance(c, nodes.Call) for c in tree.find_all(nodes.Call))
    assert environment.from_string(source).render() == "Hello"


def test_lookups_on_dicts_keep_jinjas_order() -> None:
    """``getattr`` on a plain dict: keys, but a name that is a dict attribute is the
    attribute (as in Jinja), and a missing key is undefined."""
    environment = templates_module._Environment()
    assert environment.from_string("{{ d.name }}").render(d={"name": "Ann"}) == "Ann"
    assert environment.from_string("{{ d.items is callable }}").render(d={"items": 1}) == "True"
    assert environment.from_string("{{ d.missing is defined }}").render(d={}) == "False"
    markup = environment.from_string("{{ d.x }}", globals={"d": {"x": Markup("<i>")}}).render()
    assert markup == "<i>"


def _tidy_text_by_regex(text: str) -> str:
    """The text bodies' tidying as it was written first, with two regular expressions."""
    text = re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


@given(st.text(alphabet=st.sampled_from(["\n", " ", "\t", "\r", "a", "é", "\u2028", "\x0b"])))
@example("")
@example("\n\n\n  a  \n\n\n\nb\t\n \n")
def test_text_bodies_are_tidied_as_the_regular_expressions_tidied_them(text: str) -> None:
    assert templates_module._tidy_text(text) == _tidy_text_by_regex(text)


@given(
    st.text(
        alphabet=st.sampled_from([" ", "\t", "\n", "\r", ".", "=", "a", "é", "字", "\x00", "\x7f"]),
        max_size=400,
    )
    | st.lists(st.sampled_from(["a" * 74, "a" * 75, " ", "\t", ".", "=", "é", "\n", "\r\n"])).map(
        "".join
    )
)
@example("a" * 75 + " \n" + "b" * 76 + "\t")
@example(".\n.\r\n.")
def test_quoted_printable_line_by_line_is_the_whole_body_encoded_at_once(text: str) -> None:
    """The message bodies' encoding, memoised per line, gives the bytes of one b2a_qp call."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    whole = binascii.b2a_qp(body, istext=True).replace(b"\n", b"\r\n")
    assert mime._qp(text) == whole


def test_the_memoised_date_header_keeps_each_offset() -> None:
    """One instant in two offsets: equal datetimes, two Date headers (the memo is keyed by
    the offset too)."""
    rendered = templates_module.Rendered("Subject", "Text\n", "<p>HTML</p>")
    utc = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
    berlin = utc.astimezone(timezone(timedelta(hours=1)))
    assert utc == berlin
    dates = [
        email.message_from_bytes(
            build_message(
                rendered,
                sender=base.SENDER,
                recipient=base.RECIPIENT,
                message_id=base.MESSAGE_ID,
                date=when,
            )
        )["Date"]
        for when in (utc, berlin, utc)
    ]
    assert dates == [
        "Mon, 01 Mar 2027 09:00:00 +0000",
        "Mon, 01 Mar 2027 10:00:00 +0100",
        "Mon, 01 Mar 2027 09:00:00 +0000",
    ]
