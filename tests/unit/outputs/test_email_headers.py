"""Header safety of build_message on both paths: a display name or a subject can never add,
remove or change a header, and an encoded-word look-alike in one is encoded, not interpreted.

Each message is parsed back as a mail client would (``BytesParser``, ``policy.default``) and
must have exactly the headers the product sets, one ``To`` address equal to the intended one,
and the name and subject it was given, made one line.
"""

from __future__ import annotations

import base64
import email
from datetime import UTC, datetime
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scheduler.outputs.email import SUBJECT_LIMIT, Rendered, build_message
from scheduler.outputs.email.headers import _one_line

WHEN = datetime(2027, 3, 1, 18, 0, tzinfo=UTC)
SENDER = ("Cohort Scheduler", "cohort@example.org")
CALENDAR = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//cohort-scheduler//test//EN\r\n"
    b"METHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:series-1@school.example\r\n"
    b"DTSTAMP:20270301T090000Z\r\nDTSTART:20270302T190000Z\r\nDTEND:20270302T203000Z\r\n"
    b"SUMMARY:Weekly class\r\nSEQUENCE:0\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)
# The headers build_message sets, in order; the calendar only changes the Content-Type.
HEADERS = ["From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "Auto-Submitted"]
HEADERS += ["Content-Type"]

# Decodes to CR LF "Bcc: attacker@evil.example" CR LF "Reply-To: ..." CR LF "X-Injected: 1".
CRLF_ENCODED_WORD = (
    "=?utf-8?b?DQpCY2M6IGF0dGFja2VyQGV2aWwuZXhhbXBsZQ0KUmVwbHktVG86IGF0dGFja2VyQGV2aWwuZXhh"
    "bXBsZQ0KWC1JbmplY3RlZDogMQ==?="
)
# Decodes to "Bcc: x@evil.example": turned To into a group reading as x@evil.example.
GROUP_ENCODED_WORD = "=?utf-8?b?QmNjOiB4QGV2aWwuZXhhbXBsZQ==?="
HOSTILE = [
    pytest.param(CRLF_ENCODED_WORD, id="encoded_crlf_bcc_reply_to"),
    pytest.param(GROUP_ENCODED_WORD, id="encoded_group_colon"),
]
# Plain dot-atom addresses; one without a dot in its domain (like the default sender
# cohort@localhost), which the fast path used to hand to the stdlib's header parser whole.
ADDRESSES = ["ann@example.org", "ann@localhost", "ann@xn--exmple-cua.org"]
BUILDERS = [pytest.param(False, id="fast_path"), pytest.param(True, id="calendar_stdlib_path")]


def build(name: str, address: str, subject: str, *, calendar: bool) -> bytes:
    rendered = Rendered(subject=subject, text="Hello\n", html="<p>Hello</p>\n")
    return build_message(
        rendered,
        sender=SENDER,
        recipient=(name, address),
        message_id="<m-1@cohort-scheduler>",
        date=WHEN,
        calendar=CALENDAR if calendar else None,
    )


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def display_name(data: bytes, header: str) -> str:
    """The display name as RFC 2047 says to read it. The modern parser keeps the whitespace
    between adjacent encoded words inside a display name (a CPython bug), so the name is
    decoded with the legacy decoder, which drops it as the RFC says."""
    raw = email.message_from_bytes(data, policy=policy.compat32)[header]
    decoded = str(make_header(decode_header(raw)))
    name, _, _ = decoded.rpartition("<")
    name = name.strip()
    # A quoted string on the wire is unquoted; quotes inside encoded words are the name's own.
    if str(raw).lstrip().startswith('"') and name.startswith('"') and name.endswith('"'):
        name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return name


def check(data: bytes, name: str, address: str, subject: str) -> None:
    message = parse(data)
    assert message.keys() == HEADERS, data.split(b"\r\n\r\n")[0].decode()
    to = message["To"]
    assert len(to.groups) == 1 and to.groups[0].display_name is None  # not a group
    assert [a.addr_spec for a in to.addresses] == [address]
    assert display_name(data, "To") == _one_line(name, SUBJECT_LIMIT)
    assert message.get_all("Subject") == [_one_line(subject, SUBJECT_LIMIT)]


@pytest.mark.parametrize("calendar", BUILDERS)
@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("hostile", HOSTILE)
def test_encoded_word_in_a_name_or_title_is_encoded_not_interpreted(
    hostile: str, address: str, calendar: bool
) -> None:
    data = build(hostile, address, f"Welcome to {hostile}", calendar=calendar)
    check(data, hostile, address, f"Welcome to {hostile}")
    assert b"evil.example" not in data  # not in clear anywhere: the look-alike itself is encoded


def encoded_word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


SPECIALS = ("\r", "\n", "\r\n", "=?", "?=", '"', "<", ">", ",", ";", ":", "\\", "@", " ", "\t")
OTHERS = ("\x00", "\u2028", "é", "佐藤", "Bcc: x@evil.example", "=?utf-8?b?", "?q?", "ann")
FRAGMENTS = st.sampled_from([*SPECIALS, *OTHERS])
PIECES = st.one_of(
    FRAGMENTS,
    st.text(st.characters(codec="utf-8"), max_size=8),
    st.lists(FRAGMENTS, max_size=4).map("".join).map(encoded_word),  # decodes to CR, LF, ...
)
HOSTILE_TEXT = st.lists(PIECES, max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    name=HOSTILE_TEXT,
    title=HOSTILE_TEXT,
    address=st.sampled_from(ADDRESSES),
    calendar=st.booleans(),
)
@example(name='"é"', title='"é"', address=ADDRESSES[0], calendar=True)  # quotes in encoded words
def test_no_name_or_title_changes_the_headers(
    name: str, title: str, address: str, calendar: bool
) -> None:
    data = build(name, address, title, calendar=calendar)
    assert data.isascii()
    check(data, name, address, title)
