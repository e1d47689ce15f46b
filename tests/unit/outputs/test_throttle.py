"""is_throttle_reply(): which SMTP replies say the sender is going too fast."""

from __future__ import annotations

import pytest

from scheduler.outputs.throttle import is_throttle_reply


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (421, "4.7.0 Try again later, closing connection. (EHLO)"),
        (421, "4.7.28 Our system has detected an unusual rate of unsolicited mail"),
        (451, "4.7.1 Please try later: rate limit exceeded"),
        (450, "4.7.1 Error: too many messages from 192.0.2.1"),
        (454, "Throttling failure: Maximum sending rate exceeded."),
        (454, "Throttling failure: Daily message quota exceeded."),
        (421, "4.3.2 Error: too many connections from 192.0.2.1"),
        (421, "4.3.2 Connection rate limit exceeded."),
        (
            450,
            "4.2.1 The user you are trying to contact is receiving mail at a rate that\n"
            "prevents additional messages from being delivered.",
        ),
        (450, "4.2.1 The user is receiving mail too quickly"),
        (450, "4.7.1 Error: too much mail from 192.0.2.1"),
        (451, "4.7.500 Server busy. Please try again later from [192.0.2.1]. (S77714)"),
        (421, "4.7.650 The mail server [192.0.2.1] has been temporarily rate limited"),
        (
            421,
            "4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected"
            " volume or user complaints",
        ),
        (451, "4.7.1 Sender RATELIMIT exceeded"),
        (450, "4.2.1 Peak SMTP relay limit exceeded for customer. To learn more visit ..."),
        (451, "Too fast, SLOW DOWN"),
        (421, "4.3.2 System busy, try again later"),
        (421, "4.7.28 see https://support.google.com/mail/answer/81126"),
    ],
    ids=[
        "gmail-421-4.7.0-try-again-later",
        "gmail-421-4.7.28-unusual-rate",
        "451-4.7.1-rate-limit",
        "postfix-450-too-many-messages",
        "ses-454-max-sending-rate",
        "ses-454-daily-quota",
        "421-4.3.2-too-many-connections",
        "sendmail-421-connection-rate",
        "gmail-450-4.2.1-receiving-at-a-rate",
        "gmail-450-4.2.1-too-quickly",
        "postfix-450-too-much-mail",
        "microsoft-451-4.7.500",
        "microsoft-421-4.7.650",
        "yahoo-421-tss04",
        "ratelimit-uppercase",
        "google-relay-450-peak-limit",
        "too-fast-slow-down",
        "421-4.3.2-try-again-later",
        "gmail-4.7.28-code-alone",
    ],
)
def test_rate_limit_replies_are_throttle_replies(code: int, text: str) -> None:
    assert is_throttle_reply(code, text)
    assert is_throttle_reply(code, text.encode())  # smtplib hands over bytes


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (451, "4.3.0 mailbox busy"),
        (451, "4.3.0 try later"),
        (451, "4.3.0 try again later"),
        (421, "Try again later"),
        (451, "4.7.1 Greylisted, please try again later"),
        (450, "4.2.0 Recipient address rejected: Greylisted, see postgrey"),
        (451, "4.3.0 scripted temporary failure"),
        (450, "4.2.1 mailbox busy"),
        (421, "4.3.2 shutting down"),
        (421, "4.3.2 busy"),
        (421, "4.4.2 connection timed out"),
        (421, "4.7.0 host Error: too many errors"),
        (451, "4.5.3 too many recipients"),
        (454, "4.7.0 TLS not available due to local problem"),
        (451, "4.3.0 message could not be generated, separate error"),
        (452, "4.5.3 Error: too many recipients"),
        (452, "4.3.1 Insufficient system storage, try again later"),
        (550, "5.7.1 sending rate exceeded"),
        (554, "Throttling failure: Maximum sending rate exceeded."),
        (250, "2.0.0 OK rate noted"),
    ],
    ids=[
        "451-mailbox-busy",
        "451-try-later",
        "451-4.3.0-try-again-later",
        "try-again-later-without-enhanced-code",
        "greylisting-4.7.1",
        "greylisting-postgrey",
        "memory-mailer-retry",
        "450-mailbox-busy",
        "421-shutting-down",
        "421-busy",
        "421-timeout",
        "421-too-many-errors",
        "451-too-many-recipients",
        "454-tls-not-available",
        "rate-inside-words",
        "452-not-a-throttle-code",
        "452-try-again-later",
        "5xx-with-rate-words",
        "5xx-throttling-failure",
        "2xx",
    ],
)
def test_other_replies_are_not_throttle_replies(code: int, text: str) -> None:
    assert not is_throttle_reply(code, text)
    assert not is_throttle_reply(code, text.encode())
