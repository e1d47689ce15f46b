"""Sanitising user text for iCalendar: :func:`sanitize_text`, the length caps applied to every
user text, and the cleaning of URLs, email addresses and person names (parameter values)."""

from __future__ import annotations

import re
from typing import Final

# Length caps, in code points, applied to every user text at serialisation.
SUMMARY_LIMIT: Final = 255
DESCRIPTION_LIMIT: Final = 8000
LOCATION_LIMIT: Final = 1000
URL_LIMIT: Final = 2000
CATEGORY_LIMIT: Final = 64
MAX_CATEGORIES: Final = 16
NAME_LIMIT: Final = 255
PERSON_LIMIT: Final = 200


# Unicode Cc (C0 without TAB/LF, DEL, C1 without NEL) and lone surrogates (Cs): removed.
_CONTROL: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff]")
_LINE_BREAK: Final = re.compile("[\n\x85\u2028\u2029]")
_TRAILING_SPACE: Final = re.compile("[ ]+\n")


def sanitize_text(value: str, *, limit: int, multiline: bool = False) -> str:
    """Make user text safe for any iCalendar property (X- properties included).

    CRLF and a lone CR become a line break; line breaks are kept only when ``multiline`` (for
    DESCRIPTION), otherwise they become a space; other control characters and lone surrogates
    are removed, tabs become spaces, the ends are stripped; at most ``limit`` code points remain
    (a cut value ends in "…"). Idempotent.
    """
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    if not text.isprintable():
        text = _CONTROL.sub("", text).replace("\t", " ")
        text = _LINE_BREAK.sub("\n" if multiline else " ", text)
        if multiline:
            text = _TRAILING_SPACE.sub("\n", text)
    text = text.strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _clean_url(value: str) -> str:
    url = sanitize_text(value, limit=URL_LIMIT).replace(" ", "%20")
    return url if url.lower().startswith(("https://", "http://")) else ""


def _clean_email(value: str) -> str:
    email = value.strip()
    if (
        not email
        or "@" not in email
        or not email.isprintable()
        or any(char in email for char in ' "<>,;:\\')
    ):
        raise ValueError(f"not a usable email address: {value!r}")
    return email


def _clean_person(name: str) -> str:
    # A double quote cannot appear in a parameter value; RFC 6868 escapes are not read everywhere.
    # A backslash is legal there but parsers (icalendar's among them) read "\:" as an escape and
    # lose the address after it, so it becomes a slash.
    return sanitize_text(name, limit=PERSON_LIMIT).replace('"', "'").replace("\\", "/")
