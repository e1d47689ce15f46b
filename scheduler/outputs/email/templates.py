"""Email templates: the Jinja environment, its loaders (CSS inlined into the sources) and
rendering a notification into a :class:`Rendered` (subject, text and HTML bodies).

Templates
---------

Each kind in :data:`KINDS` has three files in the email template folder (``templates/email``):

- ``<kind>.subject``: the subject line, a one-line Jinja template (no autoescape). Whatever it
  renders is made one line (every run of whitespace and control characters, CR and LF included,
  becomes one space), stripped and capped at :data:`SUBJECT_LIMIT` characters;
- ``<kind>.txt``: the plain-text body, extending ``_layout.txt``;
- ``<kind>.html``: the HTML body, extending ``_layout.html``; autoescaped because the name ends in
  ``.html`` (no ``.j2`` suffix).

**CSS** lives in one ``<style>`` block in ``_layout.html`` and reaches the output as ``style``
attributes, inlined by css-inline (remote stylesheets off). It is inlined once, into the template
*sources* as they are loaded (see :class:`_InliningLoader`), not into every rendered email: a
live reminder then renders in ~0.2 ms instead of ~0.3 ms, and learner text never goes through an
HTML parser. This needs templates css-inline can re-serialise unchanged apart from the added
attributes: simple selectors (a type or a class; kind templates are inlined as fragments, so no
selector may span the layout and a kind template), literal ``class`` values, no markup
characters (``<``, ``>``, ``&``) inside Jinja tags, and every element closed in the Jinja branch
that opens it. Each template is checked when loaded; if one fails, a warning is logged and every
email is inlined at render time instead (same output, slower).

A kind template fills the blocks ``content`` and ``reason`` (the footer line saying why the
learner gets the email) and may set, at its top level, ``join_url`` (a link that passed the
``link`` filter) and ``agenda`` (a list of lines); the layout shows those, the greeting, the
cohort title, the calendar links (``links.feed``/``webcal``/``google``/``outlook``) and the
learner's page (``links.page``), each only when present.

The environment uses ``StrictUndefined``: a missing key is an error, never an empty string.
Keys that may be ``None`` must still be present. Dates, times and durations are in the
learner's locale (Babel) and zone.

**Language.** Every word the templates write goes through gettext (``jinja2.ext.i18n``,
newstyle: ``{{ _("Hello %(name)s,", name=learner.name) }}``, ``ngettext`` for plurals), so a
learner reads their email in their language: the catalog of
:func:`scheduler.outputs.i18n.translations` for ``learner.locale``, falling back to
``cohort.locale`` (optional in the context) and then English. Text the course runner wrote
(titles, agenda lines, names) is shown as written. Each render gets its own ``gettext`` family
and ``i18n`` (:mod:`scheduler.outputs.email.language`) as render variables; nothing shared
changes per render. Each catalog also gets templates of its own, compiled on first use, in
which the literal messages are already looked up (see :class:`EmailTemplates`: the same
bytes, ~40 % less rendering time). The HTML layout sets ``lang`` and ``dir`` from
``i18n``; in HTML, names, titles, times and links inside a sentence are wrapped in ``<bdi>``
(the ``bdi`` filter) so Latin text keeps its order inside a right-to-left email.
``make messages`` extracts the strings (``babel.cfg``) into ``scheduler/locale``.

The filters are in :mod:`scheduler.outputs.email.filters`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from gettext import NullTranslations
from pathlib import Path
from typing import Any, Final

import css_inline
from jinja2 import (
    BaseLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    nodes,
    select_autoescape,
)

from scheduler.domain.status import NotificationKind
from scheduler.outputs.email.filters import (
    _activity,
    _bdi,
    _lang_tag,
    _link,
    _local_date_filter,
    _local_datetime_filter,
    _local_span_filter,
    _local_time_filter,
    _minutes_filter,
    _zone_label,
)
from scheduler.outputs.email.headers import SUBJECT_LIMIT, _one_line
from scheduler.outputs.email.language import (
    ENGLISH,
    fill_markup,
    fill_text,
    learner_catalog,
    page_language,
    render_variables,
)

# The logger keeps the name it had before the email module became a package.
logger = logging.getLogger("scheduler.outputs.email")

KINDS: tuple[str, ...] = tuple(NotificationKind)  # one set of templates per kind
_STYLE_BLOCK = re.compile(r"<style>(.*?)</style>", re.DOTALL)
_STYLE_BLOCK_WHOLE = re.compile(r"<style>.*?</style>", re.DOTALL)
_STYLE_ATTRIBUTE = re.compile(r' style="[^"]*"')
_WHITESPACE = re.compile(r"\s+")
_LAYOUTS: Final = ("_layout.txt", "_layout.html")
_EXTENSIONS: Final = ("subject", "txt", "html")
_LANGUAGES: Final = 16  # catalogs with their own compiled templates; others use the generic ones
_GETTEXT: Final = frozenset({"_", "gettext"})
_I18N_NAMES: Final = frozenset({"_", "gettext", "ngettext", "pgettext", "npgettext"})
_FILL_TEXT: Final = "_i18n_fill_text"  # filters the resolved messages with variables go through
_FILL_MARKUP: Final = "_i18n_fill_markup"
_DICT_ATTRIBUTES: Final = frozenset(dir(dict))


@dataclass(frozen=True, slots=True)
class Rendered:
    """One email's rendered parts: a one-line subject, a text body and an inlined HTML body."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class _KindTemplates:
    subject: Template
    text: Template
    html: Template


class EmailTemplates:
    """The email templates of one folder, compiled once: construct one per process.

    ``render`` is safe to call from several threads (compiled Jinja templates and the CSS
    inliner hold no per-render state).

    **Per-language templates.** Besides the generic templates (:attr:`environment`, where
    every ``_()`` is a call to the render's gettext), each catalog gets, on first use, templates
    of its own in which the words are looked up once, when a template is compiled
    (:class:`_Environment`): a message without variables is a constant of the compiled
    template, and a message with variables is its translation, filled in by a filter (no
    ``Context.call``). What they write is what the generic templates write, byte for byte (the
    same translation, filled by the same function). A kind's templates are compiled for a
    catalog the first time an email of that kind is rendered with it; after
    :data:`_LANGUAGES` catalogs (only tests make that many) the generic templates serve the
    others.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._inliner = css_inline.CSSInliner(
            load_remote_stylesheets=False, keep_link_tags=False, keep_style_tags=False
        )
        self._loader: BaseLoader
        try:
            self._loader = _InliningLoader(folder, self._inliner)
            self.environment = self._compile(self._loader)
            self.inline_at_render = False
        except _NotInlinable as e:
            logger.warning("email templates: %s; inlining CSS at every render instead", e)
            self._loader = FileSystemLoader(folder)
            self.environment = self._compile(self._loader)
            self.inline_at_render = True
        get = self.environment.get_template
        self._kinds = {
            kind: _KindTemplates(get(f"{kind}.subject"), get(f"{kind}.txt"), get(f"{kind}.html"))
            for kind in KINDS
        }
        self._languages: dict[NullTranslations, _Environment] = {}
        self._localised: dict[tuple[NullTranslations, str], _KindTemplates] = {}
        self._compiling = threading.Lock()

    @staticmethod
    def _compile(loader: BaseLoader, catalog: NullTranslations | None = None) -> _Environment:
        environment = _Environment(
            loader=loader,
            autoescape=select_autoescape(["html"], default_for_string=False, default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # compiled once; ``extends`` never stats the layout again
            cache_size=-1,
            extensions=["jinja2.ext.i18n"],
        )
        environment.catalog = catalog
        # English callables as globals, for a template rendered outside ``render`` (each render
        # passes the learner's own, which take precedence over globals).
        environment.install_gettext_translations(ENGLISH, newstyle=True)  # type: ignore[attr-defined]
        environment.filters.update(
            local_datetime=_local_datetime_filter,
            local_time=_local_time_filter,
            local_span=_local_span_filter,
            local_date=_local_date_filter,
            minutes=_minutes_filter,
            activity=_activity,
            link=_link,
            lang_tag=_lang_tag,
            zone_name=_zone_label,
            bdi=_bdi,
        )
        environment.filters[_FILL_TEXT] = fill_text
        environment.filters[_FILL_MARKUP] = fill_markup
        if catalog is None:  # the generic templates: compile all now, a broken one fails at start
            for name in (*_LAYOUTS, *(f"{kind}.{ext}" for kind in KINDS for ext in _EXTENSIONS)):
                environment.get_template(name)
        return environment

    def _templates(self, kind: str, catalog: NullTranslations) -> _KindTemplates:
        """``kind``'s templates with ``catalog``'s words compiled in (compiled on first use)."""
        found = self._localised.get((catalog, kind))
        if found is not None:
            return found
        with self._compiling:
            found = self._localised.get((catalog, kind))
            if found is not None:
                return found
            environment = self._languages.get(catalog)
            if environment is None:
                if len(self._languages) >= _LANGUAGES:
                    return self._kinds[kind]
                environment = self._languages[catalog] = self._compile(self._loader, catalog)
            get = environment.get_template
            found = _KindTemplates(get(f"{kind}.subject"), get(f"{kind}.txt"), get(f"{kind}.html"))
            self._localised[(catalog, kind)] = found
        return found

    def render(
        self,
        kind: str,
        context: Mapping[str, Any],
        translations: NullTranslations | None = None,
    ) -> Rendered:
        """Render ``kind`` with ``context`` in the learner's language; ``ValueError`` for an
        unknown kind, ``UndefinedError`` (from Jinja) for a missing key, ``ValueError`` for a
        naive datetime or unknown zone.

        ``translations`` is the learner's catalog; by default the one of ``learner.locale``
        (then ``cohort.locale``, when the context has it) from
        :func:`scheduler.outputs.i18n.translations`."""
        if kind not in self._kinds:
            raise ValueError(f"unknown email kind {kind!r}; expected one of {', '.join(KINDS)}")
        locale, fallback = _locales(context)
        if translations is None:
            translations = learner_catalog(locale, fallback)
        templates = self._templates(kind, translations)
        plain, markup = render_variables(translations, *page_language(locale, fallback))
        subject = _one_line(templates.subject.render(context, **plain), SUBJECT_LIMIT)
        text = _tidy_text(templates.text.render(context, **plain))
        html = templates.html.render(context, **markup)
        if self.inline_at_render:
            html = self._inliner.inline(html)
        return Rendered(subject=subject, text=text, html=html)


class _Environment(Environment):
    """The Jinja environment of the email templates.

    - With a ``catalog``, the templates it compiles have that catalog's words in them: a call
      ``_("...")`` or ``gettext("...")`` of a literal message (``{% trans %}`` makes the same
      calls) becomes, without variables, the finished text (markup in an HTML template, as the
      render's newstyle gettext returns it), and with keyword variables, the translated message
      filled in by the ``_i18n_fill_text`` or ``_i18n_fill_markup`` filter
      (:func:`~scheduler.outputs.email.language.fill_text`, ``fill_markup``: what the render's
      gettext calls). ``pgettext`` of literals without variables is resolved the same way;
      ``ngettext`` and ``npgettext`` (the form depends on the count) stay calls. A template
      that assigns one of those names is left as it is.
    - A template's globals are a plain ``dict`` (:meth:`make_globals`).
    - ``getattr`` (``learner.name``) looks a plain ``dict``'s keys up directly instead of
      trying the attribute first and catching ``AttributeError``: the same answer (a key that
      is also a ``dict`` attribute, like ``items``, still goes the generic way), a few µs less
      for each of the ~45 lookups of an email.
    """

    catalog: NullTranslations | None = None

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        if self.catalog is not None:
            autoescape = self.autoescape(name) if callable(self.autoescape) else self.autoescape
            _resolve_gettext(tree, self.catalog, html=bool(autoescape))
        return tree

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        # A template's globals as a plain dict, not Jinja's ChainMap over the environment's:
        # every render copies them into its context, and copying a ChainMap runs in Python
        # (~10 µs a render). The globals are complete before any template is loaded
        # (``EmailTemplates._compile``) and never change afterwards.
        return {**self.globals, **(d or {})}

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict and attribute not in _DICT_ATTRIBUTES:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)


def _resolve_gettext(tree: nodes.Template, catalog: NullTranslations, *, html: bool) -> None:
    """Replace, in ``tree``, the gettext calls of literal messages by what they return with
    ``catalog`` (see :class:`_Environment`)."""
    if any(
        isinstance(node, nodes.Name) and node.ctx != "load" and node.name in _I18N_NAMES
        for node in tree.find_all(nodes.Name)
    ):
        return  # a template that defines _ (or gettext) itself: calls stay calls
    fill = fill_markup if html else fill_text
    for parent in list(tree.find_all(nodes.Node)):
        for field, value in parent.iter_fields():
            if isinstance(value, list):
                for index, item in enumerate(value):
                    found = (
                        _resolved(item, catalog, fill, html)
                        if isinstance(item, nodes.Call)
                        else None
                    )
                    if found is not None:
                        value[index] = found
            elif isinstance(value, nodes.Call):
                found = _resolved(value, catalog, fill, html)
                if found is not None:
                    setattr(parent, field, found)


def _resolved(
    call: nodes.Call, catalog: NullTranslations, fill: Callable[..., str], html: bool
) -> nodes.Expr | None:
    """The node replacing ``call``, or None to keep it."""
    function = call.node
    if (
        not isinstance(function, nodes.Name)
        or call.dyn_args is not None
        or call.dyn_kwargs is not None
        or not all(isinstance(a, nodes.Const) and isinstance(a.value, str) for a in call.args)
    ):
        return None
    args = [a.value for a in call.args if isinstance(a, nodes.Const)]
    if function.name in _GETTEXT and len(args) == 1:
        message = catalog.gettext(args[0])
        if call.kwargs:
            filler = _FILL_MARKUP if html else _FILL_TEXT
            return nodes.Filter(
                nodes.Const(message, lineno=call.lineno),
                filler,
                [],
                list(call.kwargs),
                None,
                None,
                lineno=call.lineno,
            )
        return _constant(fill(message), html, call.lineno)
    if function.name == "pgettext" and len(args) == 2 and not call.kwargs:
        context, message = args
        return _constant(
            fill(catalog.pgettext(context, message), context=context), html, call.lineno
        )
    return None


def _constant(text: str, html: bool, lineno: int) -> nodes.Expr:
    constant = nodes.Const(str(text), lineno=lineno)
    return nodes.MarkSafe(constant, lineno=lineno) if html else constant


class _NotInlinable(Exception):
    """An HTML template whose markup css-inline would change beyond adding style attributes."""


class _InliningLoader(FileSystemLoader):
    """Loads ``.html`` templates with the layout's ``<style>`` already inlined into the source.

    The layout is inlined as a document (its ``<style>`` block is removed), every other HTML
    template as a fragment with the layout's CSS. css-inline parses and re-serialises the source,
    which would break Jinja syntax it mistakes for markup (``{{ a < b }}`` becomes ``&lt;``) or
    an element opened in one branch of an ``{% if %}`` and closed after it (an extra end tag).
    So the result is accepted only when, style attributes and whitespace aside, it equals the
    source; otherwise :class:`_NotInlinable` makes :class:`EmailTemplates` inline at render.
    """

    def __init__(self, folder: Path, inliner: css_inline.CSSInliner) -> None:
        super().__init__(folder)
        self._inliner = inliner
        layout = (folder / _LAYOUTS[1]).read_text(encoding="utf-8")
        styles = _STYLE_BLOCK.findall(layout)
        if len(styles) != 1:
            raise _NotInlinable(f"{_LAYOUTS[1]} needs exactly one <style> block")
        self._css: str = styles[0]

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        source, filename, uptodate = super().get_source(environment, template)
        if not template.endswith(".html"):
            return source, filename, uptodate
        if template == _LAYOUTS[1]:
            inlined = self._inliner.inline(source)
        else:
            inlined = self._inliner.inline_fragment(source, self._css)
        if _markup(inlined, drop=_STYLE_ATTRIBUTE) != _markup(source, drop=_STYLE_BLOCK_WHOLE):
            raise _NotInlinable(f"css-inline would change the markup of {template}")
        return inlined, filename, uptodate


def _locales(context: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(``learner.locale``, ``cohort.locale``) when present; a missing learner locale is left
    to the templates, which fail on it with ``UndefinedError``."""
    found: list[str | None] = []
    for key in ("learner", "cohort"):
        part = context.get(key)
        value = part.get("locale") if isinstance(part, Mapping) else None
        found.append(value if isinstance(value, str) else None)
    return found[0], found[1]


def _markup(html: str, *, drop: re.Pattern[str]) -> str:
    return _WHITESPACE.sub("", drop.sub("", html))


def _tidy_text(text: str) -> str:
    """Trailing spaces and tabs off every line, at most one blank line in a row, no blank
    lines at either end, one final newline: what ``re.sub(r"[ \t]+$", "", text, flags=M)``,
    then ``re.sub(r"\n{3,}", "\n\n", ...).strip("\n") + "\n"`` give, in a fifth of their
    time (tests/unit/outputs/test_email_compiled_languages.py compares the two)."""
    kept: list[str] = []
    for line in text.split("\n"):
        line = line.rstrip(" \t")
        if line or (kept and kept[-1]):
            kept.append(line)
    while kept and not kept[-1]:
        kept.pop()
    return "\n".join(kept) + "\n"
