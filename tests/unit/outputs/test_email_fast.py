"""The fast path of build_message (messages without a calendar) against the stdlib's
EmailMessage path: whatever the names, subjects and bodies, a mail client reads the same."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.outputs.email import (
    SUBJECT_LIMIT,
    Rendered,
    build_message,
    build_with_email_message,
)
from scheduler.outputs.email.headers import _one_line

WHEN = datetime(2027, 3, 1, 18, 0, tzinfo=UTC)
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=120)
names = st.one_of(
    texts,
    st.sampled_from(
        ['Ann "the boss" Lee', "Lee, Ann", "Zoë Müller", "佐藤 ユキ", "=?utf-8?q?x?=", "a\\b", ""]
    ),
)
addresses = st.sampled_from(
    ["ann@example.org", "o'brien+tag@mail.example.co.uk", "x.y-z@sub.example.org"]
)


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def address(data: bytes, name: str) -> tuple[str, str]:
    """(display name, address) as RFC 2047 says to read them. The modern parser keeps the
    whitespace between adjacent encoded words inside a display name (a CPython bug that
    misreads the stdlib's own output as well), so the header is decoded with the legacy
    decoder, which drops it as the RFC says."""
    raw = email.message_from_bytes(data, policy=policy.compat32)[name]
    decoded = str(make_header(decode_header(raw)))
    display, _, rest = decoded.rpartition("<")
    display = display.strip()
    if display.startswith('"') and display.endswith('"'):
        display = display[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return display, rest.rstrip(">")


def read(data: bytes) -> dict[str, object]:
    message = parse(data)
    to = address(data, "To")
    sender = address(data, "From")
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    return {
        "from": sender,
        "to": to,
        "subject": str(message["Subject"]),
        "message_id": message["Message-ID"],
        "date": message["Date"].datetime,
        "auto": message["Auto-Submitted"],
        "text": plain.get_content(),
        "html": html.get_content(),
        "type": message.get_content_type(),
        "defects": [type(d).__name__ for part in message.walk() for d in part.defects],
    }


@settings(max_examples=150, deadline=None)
@given(name=names, address=addresses, subject=texts, text=texts, html=texts)
def test_fast_path_reads_like_the_stdlib_path(
    name: str, address: str, subject: str, text: str, html: str
) -> None:
    rendered = Rendered(subject=subject, text=text + "\n", html=f"<p>{html}</p>\n")
    args = {
        "sender": ("Cohort Scheduler", "cohort@example.org"),
        "recipient": (name, address),
        "message_id": "<abc-123@cohort-scheduler>",
        "date": WHEN,
        "headers": {"List-Id": "cohort <cohort.example.org>"},
    }
    fast = build_message(rendered, **args)  # type: ignore[arg-type]
    slow = build_with_email_message(rendered, **args)  # type: ignore[arg-type]
    assert fast.isascii()
    lines = fast.split(b"\r\n")
    assert all(len(line) <= 998 and b"\n" not in line and b"\r" not in line for line in lines)
    got, want = read(fast), read(slow)
    # A reader sees exactly the one-lined name and subject. (The stdlib path is not the oracle
    # for these: where it folds between encoded words it can drop or add a space.)
    assert got.pop("to") == (_one_line(name, SUBJECT_LIMIT), address)
    assert got.pop("subject") == _one_line(subject, SUBJECT_LIMIT)
    want.pop("to"), want.pop("subject")
    # Everything else reads the same as the EmailMessage-built message.
    assert got == want


def test_fast_path_headers_cannot_be_injected() -> None:
    rendered = Rendered(subject="Hi\r\nBcc: evil@example.org", text="x\n", html="<p>x</p>\n")
    data = build_message(
        rendered,
        sender=("Cohort", "cohort@example.org"),
        recipient=("Eve\r\nBcc: evil@example.org", "eve@example.org"),
        message_id="<m1@cohort-scheduler>",
        date=WHEN,
    )
    message = parse(data)
    assert message["Bcc"] is None
    assert data.count(b"\r\nBcc:") == 0
    assert str(message["Subject"]) == "Hi Bcc: evil@example.org"
