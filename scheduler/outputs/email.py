"""Email: render a notification from Jinja templates and build the MIME message to send.

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
Keys that may be ``None`` must still be present. Prose is English; dates, times and durations
are in the learner's locale (Babel) and zone.

Filters (``learner.zone`` and ``learner.locale`` are read from the template context):

- ``local_datetime(zone=True)``: ``Tue 2 Mar, 20:00 (Europe/Berlin)``;
- ``local_time(zone=False)``: ``20:00``;
- ``local_span(end)``: ``Tue 2 Mar, 20:00–21:30 (Europe/Berlin)`` (the end's date is shown
  when it falls on another local day);
- ``local_date(skeleton="MMMMEd")``: a :class:`datetime.date` as ``Mon 1 March``;
- ``minutes``: ``90`` -> ``1 hour, 30 minutes``;
- ``activity``: ``office_hours`` -> ``office hours``;
- ``link``: the URL when it is ``http(s)``, ``webcal`` or ``mailto``, else ``None``;
- ``lang_tag``: ``pt_BR`` -> ``pt-BR`` (the HTML ``lang`` attribute);
- ``zone_name``: the canonical IANA name (``Asia/Calcutta`` -> ``Asia/Kolkata``).

A naive datetime in the context raises ``ValueError``. Formatted instants are memoised per
(UTC instant, zone, locale): a worker sending one reminder to a whole cohort formats each
session time once per zone and locale, not once per learner.

Messages
--------

:func:`build_message` builds a stdlib :class:`~email.message.EmailMessage`. Without a calendar
it is ``multipart/alternative`` (``text/plain``, ``text/html``); with one it has the shape Gmail
and Outlook send and read::

    multipart/mixed
        multipart/alternative
            text/plain; charset="utf-8"
            text/html; charset="utf-8"
            text/calendar; charset="utf-8"; method="REQUEST"   (shows the invite buttons)
        application/ics, attachment; filename="invite.ics"  (for other clients)

The policy is ``SMTP`` with ``cte_type="7bit"``: non-ASCII bodies go quoted-printable or base64
(no relay needs 8BITMIME) and lines end in CRLF. MIME boundaries are derived from the
Message-ID, so the same arguments always give the same bytes (golden files, byte-identical
retries). Through ``EmailMessage`` a message takes about 2 ms, almost all of it in the stdlib's
header parsing and folding (:class:`_HeaderClasses` takes off a quarter of that). Messages
without a calendar (reminders, digests, welcome emails: the ones sent by the thousand at one
instant) take a fast path that writes that one fixed shape directly, with the same header
safety, in ~0.1 ms; see the comment above :func:`_build_plain`.

Header safety: a display name or subject can never add, remove or change a header. Both are
made one line (every run of whitespace and control characters becomes one space) and written by
this module, on both paths, as plain atoms, one quoted string, or RFC 2047 encoded words of the
whole text (always for non-ASCII text and for text containing ``=?`` or ``?=``, so an encoded-word
look-alike in a name is encoded, never interpreted). The stdlib never parses them: its header
parser decodes encoded words it is handed and can re-fold the decoded CR LF into new header lines
(seen on CPython 3.11.7), so the stdlib path stores From, To and Subject as header objects built
here (see :class:`_BuiltHeader`), which ``EmailMessage`` keeps and writes unchanged. Addresses
must be ASCII addr-specs without ``=?`` (what :mod:`scheduler.roster.addresses` stores); other
addresses, the Message-ID and extra header values containing CR or LF raise ``ValueError`` (they
are programming errors, not learner input), as do extra header names that are not RFC 5322 field
names or that would replace a structural header (``From``, ``Sender``, ``To``, ``Cc``, ``Bcc``,
``Subject``, ``Date``, ``Message-ID``, ``MIME-Version``, ``Content-*``). Extra header values are
product text, folded by the stdlib's header classes. ``Auto-Submitted: auto-generated`` is set on
every message; ``headers`` may replace it.
"""

from __future__ import annotations

import binascii
import hashlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP, Policy
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import css_inline
from babel.dates import format_skeleton
from babel.lists import format_list
from babel.units import format_unit
from jinja2 import (
    BaseLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    Undefined,
    UndefinedError,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context

from scheduler.domain.status import NotificationKind
from scheduler.outputs.formatting import local_datetime, local_time, locale_or_default
from scheduler.timeutil import canonical_zone
from scheduler.timeutil import zone as zone_info

__all__ = ["KINDS", "SUBJECT_LIMIT", "EmailTemplates", "Rendered", "build_message"]

logger = logging.getLogger(__name__)

KINDS: tuple[str, ...] = tuple(NotificationKind)  # one set of templates per kind
SUBJECT_LIMIT: Final = 200
CALENDAR_METHODS: Final = frozenset({"REQUEST", "CANCEL"})

_ACTIVITY: Final = {"class": "class", "office_hours": "office hours", "coworking": "co-working"}
_LINK_SCHEMES: Final = ("https://", "http://", "webcal://", "mailto:")
# Whitespace (str.isspace: CR, LF, tabs, U+0085, U+2028/9, ...), other control characters
# (Unicode Cc) and lone surrogates: every run becomes one space in a one-line value.
_NOT_ONE_LINE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]+")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)
_BLANK_LINES = re.compile(r"\n{3,}")
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII except ':'
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")  # printable ASCII, no '<' '>' or space
_METHOD_LINE = re.compile(rb"^METHOD:([A-Za-z-]+)\r?$", re.MULTILINE)
_STYLE_BLOCK = re.compile(r"<style>(.*?)</style>", re.DOTALL)
_STYLE_BLOCK_WHOLE = re.compile(r"<style>.*?</style>", re.DOTALL)
_STYLE_ATTRIBUTE = re.compile(r' style="[^"]*"')
_WHITESPACE = re.compile(r"\s+")
_LAYOUTS: Final = ("_layout.txt", "_layout.html")
_EXTENSIONS: Final = ("subject", "txt", "html")
_RESERVED_HEADERS: Final = frozenset(
    {"from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version", "sender"}
)


class _HeaderClasses(HeaderRegistry):
    """The stdlib registry, remembering the header class it builds for each name.

    ``HeaderRegistry`` creates a new class with ``type()`` for every header it parses; reusing
    one per name makes :func:`build_message` about a quarter faster, with identical output.
    """

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


# ``7bit``: non-ASCII bodies are sent quoted-printable or base64, never as raw 8-bit data, so the
# message needs no 8BITMIME from any relay on its way.
_POLICY: Final = SMTP.clone(cte_type="7bit", header_factory=_HeaderClasses())


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
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._inliner = css_inline.CSSInliner(
            load_remote_stylesheets=False, keep_link_tags=False, keep_style_tags=False
        )
        try:
            self.environment = self._compile(_InliningLoader(folder, self._inliner))
            self.inline_at_render = False
        except _NotInlinable as e:
            logger.warning("email templates: %s; inlining CSS at every render instead", e)
            self.environment = self._compile(FileSystemLoader(folder))
            self.inline_at_render = True
        get = self.environment.get_template
        self._kinds = {
            kind: _KindTemplates(get(f"{kind}.subject"), get(f"{kind}.txt"), get(f"{kind}.html"))
            for kind in KINDS
        }

    @staticmethod
    def _compile(loader: BaseLoader) -> Environment:
        environment = Environment(
            loader=loader,
            autoescape=select_autoescape(["html"], default_for_string=False, default=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # compiled once; ``extends`` never stats the layout again
            cache_size=-1,
        )
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
        )
        for name in (*_LAYOUTS, *(f"{kind}.{ext}" for kind in KINDS for ext in _EXTENSIONS)):
            environment.get_template(name)  # compile all now: a broken template fails at start
        return environment

    def render(self, kind: str, context: Mapping[str, Any]) -> Rendered:
        """Render ``kind`` with ``context``; ``ValueError`` for an unknown kind, ``UndefinedError``
        (from Jinja) for a missing key, ``ValueError`` for a naive datetime or unknown zone."""
        templates = self._kinds.get(kind)
        if templates is None:
            raise ValueError(f"unknown email kind {kind!r}; expected one of {', '.join(KINDS)}")
        subject = _one_line(templates.subject.render(context), SUBJECT_LIMIT)
        text = _tidy_text(templates.text.render(context))
        html = templates.html.render(context)
        if self.inline_at_render:
            html = self._inliner.inline(html)
        return Rendered(subject=subject, text=text, html=html)


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


def _markup(html: str, *, drop: re.Pattern[str]) -> str:
    return _WHITESPACE.sub("", drop.sub("", html))


def _one_line(value: str, limit: int) -> str:
    """``value`` as one stripped line of at most ``limit`` characters (cut ones end in ``…``)."""
    line = _NOT_ONE_LINE.sub(" ", value).strip()
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


def _tidy_text(text: str) -> str:
    text = _TRAILING_SPACE.sub("", text)
    return _BLANK_LINES.sub("\n\n", text).strip("\n") + "\n"


# --- filters ------------------------------------------------------------------------------


def _clock(ctx: Context) -> tuple[str, str]:
    """The learner's (zone, locale) from the template context."""
    learner = ctx.get("learner")
    try:
        return str(learner["zone"]), str(learner["locale"])
    except (KeyError, TypeError) as e:
        raise UndefinedError(
            "date and time filters need learner.zone and learner.locale in the context"
        ) from e


def _defined(value: Any) -> None:
    """Make a missing value passed to a filter fail like any other use of it would."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the missing key
        raise UndefinedError("a value passed to an email template filter is undefined")


def _utc(instant: datetime) -> datetime:
    _defined(instant)
    if not isinstance(instant, datetime) or instant.utcoffset() is None:
        raise ValueError(f"email templates need aware datetimes, got {instant!r}")
    return instant.astimezone(UTC)


@lru_cache(maxsize=256)
def _zone_label(zone_name: str) -> str:
    return canonical_zone(zone_name) or zone_name


@lru_cache(maxsize=8192)
def _format_datetime(instant: datetime, zone_name: str, locale: str) -> str:
    return local_datetime(instant, zone_name, locale)


@lru_cache(maxsize=8192)
def _format_time(instant: datetime, zone_name: str, locale: str) -> str:
    return local_time(instant, zone_name, locale)


@lru_cache(maxsize=8192)
def _format_span(start: datetime, end: datetime, zone_name: str, locale: str) -> str:
    first = _format_datetime(start, zone_name, locale)
    tz = zone_info(zone_name)
    if start.astimezone(tz).date() == end.astimezone(tz).date():
        return f"{first}–{_format_time(end, zone_name, locale)}"
    return f"{first} – {_format_datetime(end, zone_name, locale)}"


@pass_context
def _local_datetime_filter(ctx: Context, instant: datetime, zone: bool = True) -> str:
    zone_name, locale = _clock(ctx)
    text = _format_datetime(_utc(instant), zone_name, locale)
    return f"{text} ({_zone_label(zone_name)})" if zone else text


@pass_context
def _local_time_filter(ctx: Context, instant: datetime, zone: bool = False) -> str:
    zone_name, locale = _clock(ctx)
    text = _format_time(_utc(instant), zone_name, locale)
    return f"{text} ({_zone_label(zone_name)})" if zone else text


@pass_context
def _local_span_filter(ctx: Context, start: datetime, end: datetime, zone: bool = True) -> str:
    zone_name, locale = _clock(ctx)
    text = _format_span(_utc(start), _utc(end), zone_name, locale)
    return f"{text} ({_zone_label(zone_name)})" if zone else text


@pass_context
def _local_date_filter(ctx: Context, day: date, skeleton: str = "MMMMEd") -> str:
    _, locale = _clock(ctx)
    _defined(day)
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ValueError(f"local_date needs a date, not an instant: {day!r}")
    return _format_date(day, skeleton, locale)


@lru_cache(maxsize=1024)
def _format_date(day: date, skeleton: str, locale: str) -> str:
    # format_skeleton turns a date into midnight UTC and formats it without a zone shift.
    return format_skeleton(skeleton, day, locale=locale_or_default(locale))


@pass_context
def _minutes_filter(ctx: Context, minutes: int) -> str:
    _, locale = _clock(ctx)
    _defined(minutes)
    return _format_minutes(int(minutes), locale)


@lru_cache(maxsize=1024)
def _format_minutes(minutes: int, locale: str) -> str:
    language = locale_or_default(locale)
    hours, rest = divmod(max(minutes, 0), 60)
    parts = [format_unit(hours, "duration-hour", length="long", locale=language)] if hours else []
    if rest or not hours:
        parts.append(format_unit(rest, "duration-minute", length="long", locale=language))
    return format_list(parts, style="unit", locale=language)


def _activity(kind: str) -> str:
    return _ACTIVITY.get(kind, kind.replace("_", " "))


def _link(url: str | None) -> str | None:
    """The URL when it is one a mail client may open (http(s), webcal, mailto), else ``None``."""
    if not url:
        return None
    clean = url.strip()
    if clean.lower().startswith(_LINK_SCHEMES) and not _NOT_ONE_LINE.search(clean):
        return clean
    return None


@lru_cache(maxsize=256)
def _lang_tag(locale: str | None) -> str:
    return str(locale_or_default(locale)).replace("_", "-")


# --- messages -----------------------------------------------------------------------------


def build_message(
    rendered: Rendered,
    *,
    sender: tuple[str, str],
    recipient: tuple[str, str],
    message_id: str,
    date: datetime,
    calendar: bytes | None = None,
    calendar_method: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """The message as bytes for SMTP (CRLF line ends); see the module docstring for its shape.

    ``sender`` and ``recipient`` are (display name, address). ``message_id`` (``<...@...>``) is
    used verbatim. ``calendar`` is an iCalendar body; ``calendar_method`` (``REQUEST`` or
    ``CANCEL``) defaults to the body's own ``METHOD`` and must agree with it. ``headers`` adds
    or replaces other headers (``List-Unsubscribe``, ``Auto-Submitted``, ...).
    """
    if calendar is None and calendar_method is None:
        _check_envelope(message_id, date)
        return _build_plain(rendered, sender, recipient, message_id, date, headers)
    return build_with_email_message(
        rendered,
        sender=sender,
        recipient=recipient,
        message_id=message_id,
        date=date,
        calendar=calendar,
        calendar_method=calendar_method,
        headers=headers,
    )


def build_with_email_message(
    rendered: Rendered,
    *,
    sender: tuple[str, str],
    recipient: tuple[str, str],
    message_id: str,
    date: datetime,
    calendar: bytes | None = None,
    calendar_method: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """:func:`build_message` through the stdlib :class:`EmailMessage` (every message with a
    calendar part goes this way; the fast path for the others is checked against it)."""
    _check_envelope(message_id, date)
    msg = EmailMessage(policy=_POLICY)
    msg["From"] = _BuiltHeader("From", _address_value("From", sender))
    msg["To"] = _BuiltHeader("To", _address_value("To", recipient))
    msg["Subject"] = _BuiltHeader("Subject", _subject_value(rendered.subject))
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id
    msg["MIME-Version"] = "1.0"
    msg["Auto-Submitted"] = "auto-generated"
    for name, value in (headers or {}).items():
        _check_extra_header(name)
        del msg[name]
        msg[name] = value  # the policy raises ValueError for CR or LF in the value
    if calendar is None and calendar_method is not None:
        raise ValueError("calendar_method is given but there is no calendar")
    invitation = (
        None
        if calendar is None
        else (calendar, calendar.decode("utf-8"), _calendar_method(calendar, calendar_method))
    )
    bodies = (rendered.text, rendered.html, "" if invitation is None else invitation[1])
    msg.set_content(rendered.text, subtype="plain", charset="utf-8")
    msg.make_alternative(boundary=_boundary(message_id, "alt", bodies))
    msg.add_alternative(rendered.html, subtype="html", charset="utf-8")
    if invitation is not None:
        raw, text, method = invitation
        msg.add_alternative(text, subtype="calendar", charset="utf-8", params={"method": method})
        msg.make_mixed(boundary=_boundary(message_id, "mix", bodies))
        msg.add_attachment(raw, maintype="application", subtype="ics", filename="invite.ics")
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]  # added to each part by the stdlib; only the top needs it
    return msg.as_bytes(policy=_POLICY)


def _check_envelope(message_id: str, date: datetime) -> None:
    if date.utcoffset() is None:
        raise ValueError("the message date must be an aware datetime")
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError(f"message_id must look like <local@domain>, got {message_id!r}")


def _check_extra_header(name: str) -> None:
    """An extra header must be a field name, and not one build_message writes itself."""
    if not _HEADER_NAME.fullmatch(name):
        raise ValueError(f"not a header name: {name!r}")
    lowered = name.lower()
    if lowered in _RESERVED_HEADERS or lowered.startswith("content-"):
        raise ValueError(f"the {name} header is set by build_message itself")


def _boundary(message_id: str, role: str, bodies: tuple[str, ...]) -> str | None:
    """A MIME boundary derived from the Message-ID, so a message is a pure function of its
    inputs (golden files, byte-identical retries). ``=_`` never occurs in quoted-printable or
    base64 text; a 7bit body containing it (never in practice) gets a random boundary."""
    digest = hashlib.sha256(message_id.encode("ascii")).hexdigest()[:32]
    boundary = f"=_{role}_{digest}"
    return None if any(boundary in body for body in bodies) else boundary


def _calendar_method(calendar: bytes, given: str | None) -> str:
    found = _METHOD_LINE.search(calendar)
    own = found.group(1).decode("ascii").upper() if found else None
    method = (given or own or "").upper()
    if method not in CALENDAR_METHODS:
        raise ValueError(f"calendar_method must be one of {sorted(CALENDAR_METHODS)}: {given!r}")
    if own is not None and own != method:
        raise ValueError(f"calendar_method {method} disagrees with the calendar's METHOD:{own}")
    return method


# --- the fast path for messages without a calendar -------------------------------------------
#
# Reminders, digests and welcome emails are sent by the thousand at one instant; building
# each through EmailMessage costs ~2 ms, almost all of it parsing and re-folding headers the
# stdlib has just generated itself. These messages have one fixed shape (multipart/alternative
# of a text and an HTML part), so they are written directly, keeping each safety the stdlib
# gives: user text only reaches headers one-lined and either as plain atoms or RFC 2047
# encoded words (so no CR/LF, no header injection, no "=?" look-alikes); bodies are
# quoted-printable (7-bit clean, lines <= 76); boundaries start with "=_", which
# quoted-printable cannot produce. From, To and Subject are written by the same helpers as on
# the stdlib path (_address_value, _subject_value); extra headers (product text, not learner
# input) go through the stdlib's own header classes.
# tests/unit/outputs/test_email_fast.py checks the two paths agree, with Hypothesis.

_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_WORD_BYTES = 45  # 45 bytes -> 60 base64 characters -> a 72-character encoded word


def _encoded_words(text: str) -> list[str]:
    """``text`` as RFC 2047 base64 encoded words, split on character boundaries."""
    chunks: list[bytes] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES:
            chunks.append(chunk)
            chunk = b""
        chunk += data
    if chunk:
        chunks.append(chunk)
    return [f"=?utf-8?b?{binascii.b2a_base64(c, newline=False).decode()}?=" for c in chunks]


def _fold(name: str, parts: list[str]) -> str:
    """The value of header ``name`` (what follows ``Name: ``): ``parts`` joined by spaces, folded
    (CRLF) before a part that would take a line past 78 characters."""
    first = f"{name}:"
    lines = [first]
    for part in parts:
        if len(lines[-1]) + 1 + len(part) > 78 and lines[-1] != first:
            lines.append("")
        lines[-1] += " " + part
    return "\r\n".join(lines)[len(first) + 1 :]


def _looks_encoded(text: str) -> bool:
    """Whether a reader could take part of ``text`` for an RFC 2047 encoded word."""
    return "=?" in text or "?=" in text


@lru_cache(maxsize=4096)
def _subject_value(subject: str) -> str:
    """The Subject header value: the one-lined subject as words, or as encoded words when it is
    not plain printable ASCII or looks like an encoded word."""
    line = _one_line(subject, SUBJECT_LIMIT)
    if line.isascii() and line.isprintable() and not _looks_encoded(line):
        return _fold("Subject", line.split(" "))
    return _fold("Subject", _encoded_words(line))


@lru_cache(maxsize=65536)
def _address_value(name: str, person: tuple[str, str]) -> str:
    """The value of address header ``name`` for (display name, address): the one-lined name as
    a phrase (atoms, one quoted string, or encoded words) and the address in angle brackets."""
    display, address = person
    spec = _addr_spec(address)
    display = _one_line(display, SUBJECT_LIMIT)
    if not display:
        return spec
    if _looks_encoded(display):
        phrase = _encoded_words(display)
    elif _ATOMS.fullmatch(display):
        phrase = display.split(" ")
    elif display.isascii() and display.isprintable():
        escaped = display.replace("\\", "\\\\").replace('"', '\\"')
        phrase = [f'"{escaped}"'] if len(escaped) <= 70 else _encoded_words(display)
    else:
        phrase = _encoded_words(display)
    return _fold(name, [*phrase, f"<{spec}>"])


def _addr_spec(address: str) -> str:
    """``address`` as written in a header: printable ASCII, no ``=?`` (the stdlib decodes an
    encoded word even in an address), checked by the stdlib's addr-spec parser unless it is a
    plain dot-atom address (every address :mod:`scheduler.roster.addresses` stores is)."""
    if "\r" in address or "\n" in address:
        raise ValueError(f"an email address cannot contain CR or LF: {address!r}")
    clean = address.strip()
    if "=?" not in clean:
        if _PLAIN_ADDRESS.fullmatch(clean) and ".." not in clean:
            return clean
        try:
            spec = Address(addr_spec=clean).addr_spec  # e.g. cohort@localhost, "a b"@x.org
        except (ValueError, IndexError, HeaderParseError) as e:
            raise ValueError(f"not a valid email address: {address!r}") from e
        if spec.isascii() and spec.isprintable():
            return spec
    raise ValueError(f"not a valid email address: {address!r}")


@dataclass(frozen=True, slots=True)
class _BuiltHeader:
    """A header whose folded value this module built, for an :class:`EmailMessage`.

    The policy stores a value whose ``name`` attribute matches the header name unchanged
    (``EmailPolicy.header_store_parse``) and writes it by calling its ``fold``
    (``EmailPolicy.fold``), so the stdlib never parses, decodes or re-folds it.
    """

    name: str
    value: str

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self.value}\r\n".replace("\r\n", policy.linesep)

    def __str__(self) -> str:
        return self.value.replace("\r\n", "")


@lru_cache(maxsize=1024)
def _extra_header(name: str, value: str) -> str:
    """An extra header folded by the stdlib's own header class (the same few every time, e.g.
    ``Auto-Submitted: auto-generated``: folded once, not once per message)."""
    return str(_POLICY.header_factory(name, value).fold(policy=_POLICY))


def _qp(text: str) -> bytes:
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    encoded = binascii.b2a_qp(body.encode("utf-8"), istext=True)
    return encoded.replace(b"\n", b"\r\n")


def _build_plain(
    rendered: Rendered,
    sender: tuple[str, str],
    recipient: tuple[str, str],
    message_id: str,
    date: datetime,
    headers: Mapping[str, str] | None,
) -> bytes:
    boundary = "=_alt_" + hashlib.sha256(message_id.encode("ascii")).hexdigest()[:32]
    extra = {"Auto-Submitted": "auto-generated"}
    for name, value in (headers or {}).items():
        _check_extra_header(name)
        if "\r" in value or "\n" in value:
            raise ValueError(f"a header value cannot contain CR or LF: {name}")
        extra = {k: v for k, v in extra.items() if k.lower() != name.lower()}
        extra[name] = value
    head = "".join(
        [
            f"From: {_address_value('From', sender)}\r\n",
            f"To: {_address_value('To', recipient)}\r\n",
            f"Subject: {_subject_value(rendered.subject)}\r\n",
            f"Date: {format_datetime(date)}\r\n",
            f"Message-ID: {message_id}\r\n",
            "MIME-Version: 1.0\r\n",
            *(_extra_header(k, v) for k, v in extra.items()),
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n',
        ]
    )
    part = (
        '--{b}\r\nContent-Type: text/{sub}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return b"".join(
        [
            head.encode("ascii"),
            part.format(b=boundary, sub="plain").encode("ascii"),
            _qp(rendered.text),
            b"\r\n",
            part.format(b=boundary, sub="html").encode("ascii"),
            _qp(rendered.html),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        ]
    )
