"""The learner's language in an email: the catalog its words come from, and the ``lang`` and
``dir`` of its HTML.

:meth:`~scheduler.outputs.email.templates.EmailTemplates.render` passes, with every render, the
template variables of :func:`render_variables`: the newstyle ``_``, ``gettext``, ``ngettext``,
``pgettext`` and ``npgettext`` of the learner's catalog (what ``_()`` and ``{% trans %}`` call;
they are resolved from the render context before the environment's globals, so nothing shared
is changed per render and threads rendering for learners in different languages do not meet)
and ``i18n``, a :class:`Language` (``i18n.lang``, ``i18n.dir``; the filters read
``i18n.catalog``).

Newstyle gettext: the translated string is always a ``%``-format string (``%(name)s``), its
variables are passed as keyword arguments, and in an HTML template the string is markup whose
variables are escaped (a variable that is already markup, like ``value|bdi``, is kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from gettext import NullTranslations
from typing import Any

from jinja2.runtime import Context
from markupsafe import Markup, escape

from scheduler.outputs.i18n import catalog_locale, language_tag, text_direction, translations

I18N_KEY = "i18n"  # the render variable holding the Language
ENGLISH = NullTranslations()


def N_(message: str) -> str:
    """Mark ``message`` for extraction (``make messages``) without translating it here: it is
    translated where it is shown, with the learner's catalog."""
    return message


@dataclass(frozen=True, slots=True)
class Language:
    """The language an email is written in: ``catalog`` (its gettext), ``lang`` (the BCP 47 tag
    for ``lang=""``) and ``dir`` (``"ltr"`` or ``"rtl"``)."""

    catalog: NullTranslations
    lang: str
    dir: str


def catalog_of(ctx: Context) -> NullTranslations:
    """The catalog of the email being rendered (English outside :meth:`EmailTemplates.render`)."""
    language = ctx.get(I18N_KEY)
    return language.catalog if isinstance(language, Language) else ENGLISH


@lru_cache(maxsize=256)
def learner_catalog(locale: str | None, fallback: str | None) -> NullTranslations:
    """:func:`scheduler.outputs.i18n.translations`, memoised per (locale, cohort locale)."""
    return translations(locale, fallback)


@lru_cache(maxsize=256)
def page_language(locale: str | None, fallback: str | None) -> tuple[str, str]:
    """(``lang``, ``dir``) of an email to a learner with ``locale`` in a cohort with locale
    ``fallback``: the learner's own tag (``en-GB``, ``pt-PT``) when the catalog they read is in
    their language, else the catalog's (a learner whose language has no catalog reads the
    cohort's language, and the page says so)."""
    catalog = catalog_locale(locale, fallback)
    own = language_tag(locale)
    shown = locale if own.split("-")[0] == catalog.split("_")[0] else catalog
    return language_tag(shown), text_direction(shown)


@lru_cache(maxsize=256)
def render_variables(
    catalog: NullTranslations, lang: str, direction: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The variables every render of an email in this language gets: (for the text templates,
    for the HTML ones). Never mutate them: they are shared (Jinja copies them into each render's
    context).

    Two sets rather than one function asking the context whether it autoescapes: a template
    calls a function through ``Context.call``, and one call instead of three (the alias ``_``,
    then a context-taking gettext) keeps the cost of translating an email small.
    """
    language = Language(catalog, lang, direction)
    return _variables(catalog, language, html=False), _variables(catalog, language, html=True)


def _fill(message: str, variables: dict[str, Any], html: bool) -> str:
    """``message % variables``; in HTML the result is markup and each text variable is escaped
    (unless it is markup already, like ``value|bdi``). The messages and their translations are
    ours, like the template source, so they are markup as they are."""
    if not html:
        return message % variables
    escaped = {k: escape(v) if isinstance(v, str) else v for k, v in variables.items()}
    return Markup(message % escaped)  # noqa: S704 (the variables are escaped just above)


def fill_text(message: str, /, **variables: Any) -> str:
    """A translated message filled in for a text template: what ``_(message, **variables)``
    returns there (the per-language templates call it as a filter, see
    :class:`scheduler.outputs.email.templates.EmailTemplates`)."""
    return _fill(message, variables, False)


def fill_markup(message: str, /, **variables: Any) -> str:
    """:func:`fill_text` for an HTML template: markup, its text variables escaped."""
    return _fill(message, variables, True)


def _variables(catalog: NullTranslations, language: Language, *, html: bool) -> dict[str, Any]:
    """Newstyle gettext functions of ``catalog`` (``gettext`` keeps the finished text of a
    message without variables: most of an email's words, the same in every email)."""
    gettext_, ngettext_ = catalog.gettext, catalog.ngettext
    pgettext_, npgettext_ = catalog.pgettext, catalog.npgettext
    finished: dict[str, str] = {}

    def gettext(message: str, /, **variables: Any) -> str:
        if variables:
            return _fill(gettext_(message), variables, html)
        text = finished.get(message)
        if text is None:
            text = finished[message] = _fill(gettext_(message), variables, html)
        return text

    def ngettext(singular: str, plural: str, n: int, /, **variables: Any) -> str:
        variables.setdefault("num", n)
        return _fill(ngettext_(singular, plural, n), variables, html)

    def pgettext(context: str, message: str, /, **variables: Any) -> str:
        variables.setdefault("context", context)
        return _fill(pgettext_(context, message), variables, html)

    def npgettext(context: str, singular: str, plural: str, n: int, /, **variables: Any) -> str:
        variables.setdefault("context", context)
        variables.setdefault("num", n)
        return _fill(npgettext_(context, singular, plural, n), variables, html)

    return {
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
        "pgettext": pgettext,
        "npgettext": npgettext,
        I18N_KEY: language,
    }
