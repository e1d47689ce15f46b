"""Email addresses as the product stores them: the one rule for the roster import
(:mod:`scheduler.roster.parser`) and for single learners (:mod:`scheduler.services.learners`).

What is stored is always deliverable by any SMTP server, so the message builder
(:func:`scheduler.outputs.email.build_message`) accepts every address this rule accepts:

- checked by email-validator without SMTPUTF8 (``allow_smtputf8=False``): a local part (before
  the ``@``) with characters outside ASCII is refused, since relays need not offer SMTPUTF8 and
  many do not;
- an internationalised domain is stored in its IDNA ASCII form, which every server routes
  (``ann@exämple.org`` -> ``ann@xn--exmple-cua.org``);
- a local part containing ``=?`` is refused: mail programs decode it as an RFC 2047 encoded word
  and would show, or choke on, another address;
- the whole address is lowercased.

Pure: no I/O (deliverability is not checked over DNS).
"""

from __future__ import annotations

import re
from functools import lru_cache

from email_validator import EmailNotValidError, validate_email

from scheduler.errors import Problem

__all__ = ["ADDRESS_HINT", "email_address"]

ADDRESS_HINT = "write an address like ann@example.org"
_ASCII_LOCAL_HINT = (
    "use an address with only ASCII letters, digits and . _ + - before the @"
    " (many mail servers cannot deliver to others)"
)
# A plain ASCII dot-atom local part is valid for email-validator as it is; only the domain needs
# its checks (IDNA, special-use names), and rosters repeat a handful of domains. So such
# addresses validate the domain once per domain; anything else goes through email-validator whole.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def email_address(value: str) -> str | Problem:
    """The address as it is stored (ASCII, IDNA domain, lowercased), or the problem with it.

    ``value`` is taken as given (strip it first). The problem has a message and a hint; the
    caller adds where it was found (source, line, field, value).
    """
    if not value:
        return Problem("is empty", hint=ADDRESS_HINT)
    local, at, domain = value.rpartition("@")
    if at and not local.isascii():
        return Problem(
            "has characters outside ASCII before the @, which many mail servers cannot deliver to",
            hint=_ASCII_LOCAL_HINT,
        )
    if at and len(local) <= 64 and len(value) <= 254 and _DOT_ATOM.fullmatch(local):
        checked = _domain(domain)
        address = checked if isinstance(checked, Problem) else f"{local}@{checked}".lower()
    else:
        address = _validate_whole(value)
    if isinstance(address, str) and "=?" in address:
        return Problem(
            "contains '=?', which mail programs read as an encoded word (RFC 2047)",
            hint=ADDRESS_HINT,
        )
    return address


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str | Problem:
    checked = _validate_whole(f"a@{domain}")
    return checked if isinstance(checked, Problem) else checked.partition("@")[2]


def _validate_whole(value: str) -> str | Problem:
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as e:
        return Problem(f"is not a valid email address: {e}", hint=ADDRESS_HINT)
    if result.ascii_email is None:  # pragma: no cover - always set without SMTPUTF8
        return Problem("is not a valid email address", hint=ADDRESS_HINT)
    return result.ascii_email.lower()
