"""The one address rule (scheduler.roster.addresses): what the roster import stores is what the
message builder can send, so no stored address fails for good at send time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scheduler.errors import Problem
from scheduler.outputs.email import Rendered, build_message
from scheduler.roster import parse_roster
from scheduler.roster.addresses import email_address

Build = Callable[..., bytes]
CALENDAR = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"


def row(email: str) -> list[str]:
    return ["Ann", email, "UTC", "", "", ""]


def to_address(address: str, *, calendar: bool) -> str:
    """Build a message to ``address`` on one path; the one address its To header holds."""
    data = build_message(
        Rendered(subject="Welcome", text="Hi\n", html="<p>Hi</p>\n"),
        sender=("Cohort", "cohort@localhost"),
        recipient=("Ann", address),
        message_id="<m-1@cohort-scheduler>",
        date=datetime(2027, 3, 1, 18, 0, tzinfo=UTC),
        calendar=CALENDAR if calendar else None,
    )
    (found,) = BytesParser(policy=policy.default).parsebytes(data)["To"].addresses
    return str(found.addr_spec)


def test_non_ascii_local_part_is_refused_at_import_with_a_row_error(make_roster: Build) -> None:
    report = parse_roster(make_roster([row("ünï@exämple.org")]))
    (problem,) = report.errors
    assert (problem.line, problem.field, problem.value) == (2, "email", "ünï@exämple.org")
    assert "ASCII" in problem.message and "ASCII" in (problem.hint or "")
    assert problem.describe().startswith("roster.csv:2: email: has characters outside ASCII")
    assert report.entries == []


def test_internationalised_domain_is_stored_in_its_idna_form(make_roster: Build) -> None:
    report = parse_roster(make_roster([row("ann@exämple.org"), row("ANN@xn--exmple-cua.org")]))
    (entry,) = report.entries
    assert entry.email == "ann@xn--exmple-cua.org"
    # The same mailbox written the other way is the same person: a duplicate.
    assert [(p.line, p.field, p.message) for p in report.errors] == [
        (3, "email", "duplicate email, first seen on line 2")
    ]
    assert to_address(entry.email, calendar=False) == "ann@xn--exmple-cua.org"
    assert to_address(entry.email, calendar=True) == "ann@xn--exmple-cua.org"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("ünï@exämple.org", "outside ASCII", id="non_ascii_local_part"),
        pytest.param("=?utf-8?q?x?=@example.org", "encoded word", id="encoded_word_local_part"),
        pytest.param("a@x.local", "not a valid email address", id="special_use_domain"),
        pytest.param("", "is empty", id="empty"),
    ],
)
def test_refused_addresses_say_why(value: str, message: str) -> None:
    problem = email_address(value)
    assert isinstance(problem, Problem)
    assert message in problem.message and problem.hint


IDN_DOMAINS = st.sampled_from(
    ["exämple.org", "EXÄMPLE.org", "bücher.example", "xn--bcher-kva.example", "例え.テスト"]
)
CANDIDATES = st.one_of(
    st.emails(),
    st.emails(domains=IDN_DOMAINS),
    st.builds(
        "{}@{}".format,
        st.text(st.characters(codec="utf-8"), max_size=12),
        st.one_of(IDN_DOMAINS, st.sampled_from(["example.org", "localhost", "[127.0.0.1]"])),
    ),
    st.from_regex(r"[a-zA-Z0-9._%+=?-]{0,20}@[a-zA-Z0-9.-]{0,20}", fullmatch=True),
)


@settings(max_examples=300, deadline=None)
@given(value=CANDIDATES)
def test_every_accepted_address_is_plain_ascii_and_builds_a_message(value: str) -> None:
    stored = email_address(value)
    assume(not isinstance(stored, Problem))
    assert isinstance(stored, str)
    assert stored.isascii() and stored == stored.lower() and "=?" not in stored
    assert email_address(stored) == stored  # stored form is accepted as it is
    assert to_address(stored, calendar=False) == stored
    assert to_address(stored, calendar=True) == stored


def _whole(value: str) -> str | None:
    """The rule written out in full, without the per-domain shortcut."""
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    address = (result.ascii_email or "").lower()
    return None if "=?" in address else address


@settings(max_examples=300, deadline=None)
@given(value=st.one_of(CANDIDATES, st.text(max_size=40)))
def test_per_domain_shortcut_agrees_with_the_whole_rule(value: str) -> None:
    ours = email_address(value.strip())
    assert (None if isinstance(ours, Problem) else ours) == _whole(value.strip())
