"""The learner's language: gettext catalogs shipped in the package, and which one a learner
gets.

Catalogs live in ``scheduler/locale/<language>/LC_MESSAGES/messages.po`` (and the compiled
``.mo`` beside it, shipped in the wheel); ``make messages`` extracts the strings from the code
and the templates (``babel.cfg``), updates every catalog and compiles them. Text the course
runner wrote (titles, agenda lines) is never translated.

Which catalog a learner gets (:func:`translations`): their locale exactly (``pt_BR``), then
its language (``pt``), then a shipped variant of that language (``pt_PT`` -> ``pt_BR``), then
the same steps for the cohort's locale, then English (the source strings). A locale Babel does
not know, or none at all, falls through; nothing here raises.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
SHIPPED = ("ar", "de", "es", "fr", "ja", "pt_BR")
"""Languages with a complete catalog (tests/unit/test_catalogs.py checks it)."""
SOURCE = "en"  # the language the strings are written in


def _parsed(name: str | None) -> Locale | None:
    if not name:
        return None
    try:
        return Locale.parse(name.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def _candidates(name: str | None) -> list[str]:
    """The catalogs to try for one locale, most specific first."""
    locale = _parsed(name)
    if locale is None:
        return []
    exact = str(locale)
    found = [exact] if exact in SHIPPED else []
    if locale.language in SHIPPED:
        found.append(locale.language)
    found += [s for s in SHIPPED if s.split("_")[0] == locale.language and s not in found]
    if locale.language == SOURCE:
        found.append(SOURCE)
    return found


@lru_cache(maxsize=1024)
def catalog_locale(locale: str | None, fallback: str | None = None) -> str:
    """The shipped catalog a learner with ``locale`` in a cohort whose locale is ``fallback``
    reads (``"en"``: the source strings). Memoised: parsing the two locales with Babel took
    ~40 µs, and every email asks (a pure function of its arguments and :data:`SHIPPED`)."""
    for candidate in [*_candidates(locale), *_candidates(fallback)]:
        return candidate
    return SOURCE


@lru_cache(maxsize=64)
def _load(name: str) -> NullTranslations:
    if name == SOURCE:
        return NullTranslations()
    return Translations.load(str(LOCALE_DIR), [name], DOMAIN)


def translations(locale: str | None, fallback: str | None = None) -> NullTranslations:
    """The catalog for a learner with ``locale`` in a cohort whose locale is ``fallback``:
    ``gettext``/``ngettext`` (and ``pgettext``) of the best shipped language, English when
    none fits."""
    return _load(catalog_locale(locale, fallback))


def text_direction(locale: str | None) -> str:
    """``"rtl"`` for a right-to-left language (Arabic, Hebrew, Persian, ...), else ``"ltr"``."""
    parsed = _parsed(locale)
    return "rtl" if parsed is not None and parsed.character_order == "right-to-left" else "ltr"


def language_tag(locale: str | None) -> str:
    """The BCP 47 tag for ``lang=""`` (``pt-BR``); ``en`` when unknown."""
    parsed = _parsed(locale)
    return "en" if parsed is None else str(parsed).replace("_", "-")
