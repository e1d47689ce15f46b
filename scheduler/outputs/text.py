"""User-controlled text made safe to show in a log line or on a terminal.

Names, emails, titles, request paths and the like are stored exactly as given; only where they
are shown — a log line, a CLI table — do control characters get written as escapes, so nobody
can forge a log line (``\\n``), colour or clear a terminal (ESC, the C1 CSI ``\\x9b``) or make
text read backwards (bidi overrides). Markup escaping (Rich, HTML) is the caller's business.
"""

from __future__ import annotations

import re
from typing import Final

# C0 controls (line breaks and ESC included), DEL, C1 controls (CSI U+009B, NEL U+0085), the
# line and paragraph separators, and the bidi embeddings, overrides and isolates.
_NOT_C0: Final = r"\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_UNSAFE: Final = re.compile(rf"[\x00-\x1f{_NOT_C0}]")
_UNSAFE_KEEP_NEWLINE: Final = re.compile(rf"[\x00-\x09\x0b-\x1f{_NOT_C0}]")
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character written as an escape (``\\x1b``, ``\\x9b``,
    ``\\u202e``, ``\\n``); other text, backslashes included, is left as it is.

    ``keep_newlines`` leaves ``\\n`` alone, for text the program itself lays out on lines.
    """
    pattern = _UNSAFE_KEEP_NEWLINE if keep_newlines else _UNSAFE
    if pattern.search(text) is None:  # the common case: one scan, no copy
        return text
    return pattern.sub(_escape, text)
