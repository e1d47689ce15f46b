"""MIME messages: build the bytes of an email from a rendered notification, through the
stdlib :class:`~email.message.EmailMessage` or, for messages without a calendar, a fast path.

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

From, To and Subject are written by :mod:`scheduler.outputs.email.headers` (see its header
safety notes). The Message-ID and extra header values containing CR or LF raise ``ValueError``
(they are programming errors, not learner input), as do extra header names that are not RFC 5322
field names or that would replace a structural header (``From``, ``Sender``, ``To``, ``Cc``,
``Bcc``, ``Subject``, ``Date``, ``Message-ID``, ``MIME-Version``, ``Content-*``). Extra header
values are product text, folded by the stdlib's header classes.
``Auto-Submitted: auto-generated`` is set on every message; ``headers`` may replace it.
``List-Unsubscribe`` is the exception to the stdlib folding: its URIs are written unchanged
(:func:`~scheduler.outputs.email.headers.list_unsubscribe_value`).
"""

from __future__ import annotations

import binascii
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import lru_cache
from typing import Final

from scheduler.outputs.email.headers import (
    _address_value,
    _BuiltHeader,
    _subject_value,
    list_unsubscribe_value,
)
from scheduler.outputs.email.templates import Rendered

CALENDAR_METHODS: Final = frozenset({"REQUEST", "CANCEL"})
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII except ':'
_MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")  # printable ASCII, no '<' '>' or space
_METHOD_LINE = re.compile(rb"^METHOD:([A-Za-z-]+)\r?$", re.MULTILINE)
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
        if name.lower() == "list-unsubscribe":  # URIs unchanged, never encoded words
            msg[name] = _BuiltHeader(name, list_unsubscribe_value(value))
            continue
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


@lru_cache(maxsize=1024)
def _extra_header(name: str, value: str) -> str:
    """An extra header folded by the stdlib's own header class (the same few every time, e.g.
    ``Auto-Submitted: auto-generated``: folded once, not once per message)."""
    return str(_POLICY.header_factory(name, value).fold(policy=_POLICY))


def _qp(text: str) -> bytes:
    """``text`` quoted-printable with CRLF line ends: ``binascii.b2a_qp(..., istext=True)`` of
    the whole body, computed line by line with each line's encoding memoised.

    With ``istext`` and LF line ends, ``b2a_qp`` encodes each line on its own (the line length
    restarts at every LF, and what it does at a line's end depends only on that line and its
    LF), so the lines, each with its own LF (the last one as it is), encode to the same bytes
    one at a time. An email's lines are mostly the template's (the HTML's long, inlined-style
    lines above all): the same for every learner, encoded once (``b2a_qp`` costs ~20 ns a
    byte: ~100 µs an HTML body). tests/unit/outputs/test_email_compiled_languages.py
    compares the two with Hypothesis."""
    body = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded = b"".join([_qp_line(line) for line in body.splitlines(keepends=True)])
    return encoded.replace(b"\n", b"\r\n")


@lru_cache(maxsize=64)
def _date_value(date: datetime, offset: object) -> str:
    """``format_datetime(date)``, memoised: a batch's messages share their date. The offset is
    part of the key because equal datetimes (one instant) in two offsets read differently."""
    return format_datetime(date)


@lru_cache(maxsize=4096)
def _qp_line(line: bytes) -> bytes:
    return binascii.b2a_qp(line, istext=True)


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
            f"Date: {_date_value(date, date.utcoffset())}\r\n",
            f"Message-ID: {message_id}\r\n",
            "MIME-Version: 1.0\r\n",
            *(
                f"{k}: {list_unsubscribe_value(v)}\r\n"
                if k.lower() == "list-unsubscribe"
                else _extra_header(k, v)
                for k, v in extra.items()
            ),
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
