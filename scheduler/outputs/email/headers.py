"""Header values of an email: the one-line rule, and the From, To and Subject values.

Header safety: a display name or subject can never add, remove or change a header. Both are
made one line (every run of whitespace and control characters becomes one space) and written by
this module, on both paths of :func:`~scheduler.outputs.email.mime.build_message`, as plain
atoms, one quoted string, or RFC 2047 encoded words of the whole text (always for non-ASCII text
and for text containing ``=?`` or ``?=``, so an encoded-word look-alike in a name is encoded,
never interpreted). The stdlib never parses them: its header parser decodes encoded words it is
handed and can re-fold the decoded CR LF into new header lines (seen on CPython 3.11.7), so the
stdlib path stores From, To and Subject as header objects built here (see
:class:`_BuiltHeader`), which ``EmailMessage`` keeps and writes unchanged. Addresses must be
ASCII addr-specs without ``=?`` (what :mod:`scheduler.roster.addresses` stores); other addresses
raise ``ValueError`` (they are programming errors, not learner input).

:func:`_one_line` (and :data:`SUBJECT_LIMIT`) is also what the templates use for the rendered
subject, and :data:`_NOT_ONE_LINE` what the ``link`` filter rejects.

``List-Unsubscribe`` (RFC 2369) and ``List-Unsubscribe-Post`` (RFC 8058), on reminders and
digests: :func:`unsubscribe_headers` builds them from the one-click URL, and
:func:`list_unsubscribe_value` is how :func:`~scheduler.outputs.email.mime.build_message` writes
a ``List-Unsubscribe`` value, on both paths: each URI in angle brackets, checked to be printable
ASCII without spaces, angle brackets, commas or quotes (a value that could end the bracket, add
a URI or a header raises ``ValueError``), folded only between URIs. The stdlib is not used for
it: it writes a word longer than a line (a capability URL is) as RFC 2047 encoded words, which
no mail client reads as a link.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.policy import Policy
from functools import lru_cache
from typing import Final

from scheduler.outputs.links import HTTP_ORIGIN

SUBJECT_LIMIT: Final = 200
# Whitespace (str.isspace: CR, LF, tabs, U+0085, U+2028/9, ...), other control characters
# (Unicode Cc) and lone surrogates: every run becomes one space in a one-line value.
_NOT_ONE_LINE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ud800-\udfff]+")


def _one_line(value: str, limit: int) -> str:
    """``value`` as one stripped line of at most ``limit`` characters (cut ones end in ``…``)."""
    line = _NOT_ONE_LINE.sub(" ", value).strip()
    if len(line) > limit:
        line = line[: limit - 1].rstrip() + "…"
    return line


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


# An http(s) URI a List-Unsubscribe header may carry: scheme, host (and port), then RFC 3986
# characters other than the ones that would end or split the bracketed list (``<>,``) or be
# read as a quoted string (``"``); no space, no control character, ASCII only.
_UNSUBSCRIBE_URL = re.compile(HTTP_ORIGIN + r"(?:/[A-Za-z0-9\-._~%!$&'()*+;=:@/?]*)?")
_UNSUBSCRIBE_MAILTO = re.compile(r"mailto:[A-Za-z0-9!#$&'*+/=?^_`{|}~.%@-]+")
UNSUBSCRIBE_URL_LIMIT: Final = 900  # a header line may hold 998 characters
ONE_CLICK: Final = "List-Unsubscribe=One-Click"  # RFC 8058's List-Unsubscribe-Post value


def _unsubscribe_uri(uri: str) -> str:
    if len(uri) > UNSUBSCRIBE_URL_LIMIT or not (
        _UNSUBSCRIBE_URL.fullmatch(uri) or _UNSUBSCRIBE_MAILTO.fullmatch(uri)
    ):
        # never the URI itself: it holds the learner's link (a capability), and this message
        # may end up in a row's last_error
        raise ValueError("not a URI a List-Unsubscribe header can carry unchanged")
    return uri


def unsubscribe_headers(url: str, mailto: str | None = None) -> dict[str, str]:
    """``List-Unsubscribe`` with the one-click ``url`` (and a ``mailto:`` address, optional) and
    ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058: a POST of that body to
    ``url`` unsubscribes, no login, no further step). Mail providers honour one-click for https
    URLs only, so a production ``base_url`` is https; an http one (a local demo) still gets the
    headers. Raises ``ValueError`` for a URL that could not stand in the header unchanged."""
    uris = [_unsubscribe_uri(url)]
    if not url.startswith(("https://", "http://")):
        raise ValueError("the List-Unsubscribe one-click URL must be http(s)")
    if mailto is not None:
        uris.append(_unsubscribe_uri(f"mailto:{mailto}"))
    return {
        "List-Unsubscribe": ", ".join(f"<{u}>" for u in uris),
        "List-Unsubscribe-Post": ONE_CLICK,
    }


def list_unsubscribe_value(value: str) -> str:
    """The ``List-Unsubscribe`` header value for ``value`` (``<uri>, <uri>``): every URI
    checked (see :func:`unsubscribe_headers`) and written unchanged, folded between URIs."""
    parts = [p.strip() for p in value.split(",")]
    if not parts or any(len(p) < 3 or p[0] != "<" or p[-1] != ">" for p in parts):
        raise ValueError(f"List-Unsubscribe takes <uri>, <uri>: {value[:100]!r}")
    uris = [f"<{_unsubscribe_uri(p[1:-1])}>" for p in parts]
    return _fold("List-Unsubscribe", [u + "," for u in uris[:-1]] + uris[-1:])


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
