"""Which SMTP replies say the sender is going too fast: the words and codes mail providers use
when they throttle, as :func:`is_throttle_reply` reads them. The mailers mark such replies
(:attr:`scheduler.outputs.mailers.SendResult.throttled`) and the delivery slows down for every
worker (:mod:`scheduler.services.pacing`) instead of backing the message off.
"""

from __future__ import annotations

import re

_THROTTLE_CODES = frozenset({421, 450, 451, 454})
# Words (case-insensitive) and enhanced status codes that providers use when a sender goes too
# fast. Replies this covers, among others:
#   Google      450 4.2.1 Peak SMTP relay limit exceeded for customer (Workspace relay)
#   Gmail       421-4.7.0 Try again later, closing connection.
#               421-4.7.28 ... detected an unusual rate of unsolicited mail ...
#               450-4.2.1 The user you are trying to contact is receiving mail at a rate that
#               prevents additional messages from being delivered / ... too quickly
#   Amazon SES  454 Throttling failure: Maximum sending rate exceeded.
#               454 Throttling failure: Daily message quota exceeded.
#   Microsoft   451 4.7.500 Server busy. Please try again later from [IP]
#               421 4.7.650 The mail server [IP] has been temporarily rate limited ...
#   Yahoo       421 4.7.0 [TSS04] Messages from IP temporarily deferred due to unexpected
#               volume or user complaints
#   Postfix     421 4.7.0 host Error: too many connections from IP (anvil)
#               450 4.7.1 Error: too much mail from IP (anvil)
#   sendmail    421 4.3.2 Connection rate limit exceeded.
#   Exim, Mailgun, SendGrid and others: "rate limit", "ratelimit", "sender rate overlimit",
#               "too many messages", "slow down"
_THROTTLE_TEXT = re.compile(
    r"\brate"  # rate, rate limit(ed), ratelimit, rates (not "separate", "generated")
    r"|too\s+(?:much|fast|quickly|frequent)"
    r"|too\s+many(?!\s+(?:errors|recipients|hops|invalid|bad|unknown))"  # not about the rate
    r"|throttl"  # throttled, throttling
    r"|slow\s*down"
    r"|unexpected\s+volume"
    r"|peak\b[^\n]*\blimit"  # Google Workspace relay: "Peak SMTP relay limit exceeded"
    r"|\b4\.7\.28\b",  # Gmail's enhanced code for a sending rate it finds unusual
    re.IGNORECASE,
)
# "Try again later" alone is also said for any temporary trouble ("451 4.3.0 try again
# later"): it counts only with a policy code 4.7.x (Gmail 4.7.0, Microsoft 4.7.500-699) or
# 4.3.2. Greylisting ("451 4.7.1 Greylisted, please try again later") is not about the rate.
_TRY_LATER = re.compile(r"try\s+again\s+later", re.IGNORECASE)
_ENHANCED = re.compile(r"\b4\.(\d{1,3})\.(\d{1,3})\b")
_GREYLIST = re.compile(r"gr[ae]y[\s-]*list", re.IGNORECASE)


def is_throttle_reply(code: int, text: bytes | str) -> bool:
    """Whether an SMTP reply says the sender is going too fast (rate limiting, throttling).

    The rule: the reply code is ``421``, ``450``, ``451`` or ``454`` (temporary), and its text
    (enhanced status code included) contains, ignoring case, one of: a word starting with
    ``rate`` (``rate limit``, ``ratelimit``, ``unusual rate``), ``too many`` (but not ``too many
    errors``, ``recipients``, ``hops``, ``invalid``, ``bad`` or ``unknown``), ``too much``,
    ``too fast``, ``too quickly``, ``too frequent``, ``throttl`` (``throttled``,
    ``Throttling failure``), ``slow down``, ``unexpected volume``, ``peak ... limit``
    (Google Workspace's relay), or Gmail's rate code
    ``4.7.28``; or ``try again later`` with an enhanced status code ``4.7.x`` or ``4.3.2``
    (``421 4.7.0 Try again later``; not ``451 4.3.0 try again later``). A greylisting reply is
    never a throttle reply. The usual enhanced codes of such replies (``4.7.0``,
    ``4.7.1``, ``4.3.2``, ``4.2.1``) are not enough on their own: they are used for other
    temporary trouble too (``451 4.3.0 mailbox busy``, ``421 4.3.2 shutting down``). A 5xx
    reply is never a throttle reply (it stays a permanent failure), nor are other 4xx codes
    (``452 4.5.3 too many recipients`` is about the message, not the rate).
    """
    if code not in _THROTTLE_CODES:
        return False
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if _GREYLIST.search(text):
        return False
    if _THROTTLE_TEXT.search(text):
        return True
    if _TRY_LATER.search(text):
        enhanced = _ENHANCED.search(text)
        return enhanced is not None and (
            enhanced.group(1) == "7" or enhanced.group(1, 2) == ("3", "2")
        )
    return False
