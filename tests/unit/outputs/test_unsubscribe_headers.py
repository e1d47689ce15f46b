"""List-Unsubscribe (RFC 2369) and List-Unsubscribe-Post (RFC 8058) on both paths of
build_message: the one-click URL stands in the header as written (one line, never encoded
words, however long), and nothing in a URL can end the bracket, add a URI or a header."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.outputs.email import Rendered, build_message, build_with_email_message
from scheduler.outputs.email.headers import (
    ONE_CLICK,
    list_unsubscribe_value,
    unsubscribe_headers,
)
from scheduler.services.preferences import unsubscribe_url

WHEN = datetime(2027, 3, 1, 18, 0, tzinfo=UTC)
SENDER = ("Cohort Scheduler", "cohort@example.org")
TOKEN = "Zq3x-_" + "a" * 37  # the shape of a mail token: 43 URL-safe base64 characters
RENDERED = Rendered("Your week", "text body\n", "<p>html body</p>")
URL = f"https://courses.example.org/me/{TOKEN}/unsubscribe/live_reminder/class-24h"


def _both(headers: dict[str, str]) -> list[tuple[bytes, EmailMessage]]:
    """The message built on the fast path and through EmailMessage, raw and parsed back."""
    out = []
    for build in (build_message, build_with_email_message):
        raw = build(
            RENDERED,
            sender=SENDER,
            recipient=("Sam", "sam@example.org"),
            message_id="<m1@cohort-scheduler>",
            date=WHEN,
            headers=headers,
        )
        out.append((raw, email.message_from_bytes(raw, policy=policy.default)))
    return out  # type: ignore[return-value]


def test_the_url_is_written_as_is_on_one_line_on_both_paths() -> None:
    assert len(URL) > 78  # longer than a folded line: the stdlib would encode it
    for raw, parsed in _both(unsubscribe_headers(URL)):
        assert f"List-Unsubscribe: <{URL}>\r\n".encode() in raw
        assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
        assert parsed["List-Unsubscribe"] == f"<{URL}>"
        assert parsed["List-Unsubscribe-Post"] == ONE_CLICK
        assert parsed.get_all("List-Unsubscribe") == [f"<{URL}>"]


def test_a_mailto_is_optional_and_folded_between_the_uris() -> None:
    headers = unsubscribe_headers(URL, "unsubscribe@example.org")
    assert headers["List-Unsubscribe"] == f"<{URL}>, <mailto:unsubscribe@example.org>"
    for raw, parsed in _both(headers):
        assert f"List-Unsubscribe: <{URL}>,\r\n <mailto:unsubscribe@example.org>".encode() in raw
        assert parsed["List-Unsubscribe"] == f"<{URL}>, <mailto:unsubscribe@example.org>"


def test_the_url_the_composer_builds_names_exactly_one_kind() -> None:
    base = "https://courses.example.org/"
    assert unsubscribe_url(base, TOKEN, "digest", "weekly-digest") == (
        f"https://courses.example.org/me/{TOKEN}/unsubscribe/digest"  # a digest has no rule
    )
    assert unsubscribe_url(base, TOKEN, "live_reminder", "class 1h/x") == (
        f"https://courses.example.org/me/{TOKEN}/unsubscribe/live_reminder/class%201h%2Fx"
    )
    assert unsubscribe_url(base, TOKEN, "coworking_reminder", "lead2h").endswith(
        "/unsubscribe/coworking_reminder"
    )
    with pytest.raises(ValueError, match="not a kind a learner may turn off"):
        unsubscribe_url(base, TOKEN, "invite")  # invitations cannot be turned off
    unsubscribe_headers(unsubscribe_url(base, TOKEN, "live_reminder", "class 1h/x"))


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(URL + "\r\nBcc: attacker@evil.example", id="crlf_adds_a_header"),
        pytest.param(URL + "\nX-Injected: 1", id="lf_adds_a_header"),
        pytest.param(URL + ">, <https://evil.example/", id="closes_the_bracket"),
        pytest.param(URL + ",https://evil.example/", id="adds_a_uri"),
        pytest.param(URL + " x", id="space"),
        pytest.param(URL + "\u2028", id="unicode_line_separator"),
        pytest.param(URL + "é", id="non_ascii"),
        pytest.param('https://example.org/"quoted"', id="quote"),
        pytest.param("javascript:alert(1)", id="not_http"),
        pytest.param("mailto:x@example.org", id="mailto_as_the_one_click_url"),
        pytest.param("https://example.org/" + "a" * 1000, id="longer_than_a_header_line"),
        pytest.param("https://exa mple.org/", id="space_in_host"),
        pytest.param("", id="empty"),
    ],
)
def test_a_url_that_could_change_the_header_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        unsubscribe_headers(url)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(f"<{URL}>\r\nBcc: x@evil.example", id="crlf"),
        pytest.param(URL, id="no_brackets"),
        pytest.param(f"<{URL}>, ", id="empty_second_uri"),
        pytest.param(f"<{URL}> <https://evil.example/>", id="two_without_a_comma"),
        pytest.param("<javascript:alert(1)>", id="scheme"),
    ],
)
def test_a_list_unsubscribe_value_passed_to_build_message_is_checked(value: str) -> None:
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        list_unsubscribe_value(value)
    for build in (build_message, build_with_email_message):
        with pytest.raises(ValueError, match=r"List-Unsubscribe|CR or LF"):
            build(
                RENDERED,
                sender=SENDER,
                recipient=("Sam", "sam@example.org"),
                message_id="<m1@cohort-scheduler>",
                date=WHEN,
                headers={"List-Unsubscribe": value},
            )


@given(st.text(max_size=60))
def test_any_path_either_is_refused_or_stands_unchanged_in_one_header(path: str) -> None:
    url = f"https://courses.example.org/me/{path}"
    try:
        headers = unsubscribe_headers(url)
    except ValueError:
        return
    for _raw, parsed in _both(headers):
        assert parsed["List-Unsubscribe"] == f"<{url}>"
        names = [name.lower() for name in parsed]
        assert names.count("list-unsubscribe") == 1 and names.count("bcc") == 0
        assert set(names) <= {
            "from",
            "to",
            "subject",
            "date",
            "message-id",
            "mime-version",
            "auto-submitted",
            "list-unsubscribe",
            "list-unsubscribe-post",
            "content-type",
        }


def test_the_error_never_carries_the_url() -> None:
    """The URL holds the learner's link: a refusal (which may land in a row's last_error, shown
    by `cohort status`) must not repeat it."""
    secret = "Z4Jvm539BvO7dFXdtQpvcmBafNe1yPGkDjSwPPSiU-k"
    with pytest.raises(ValueError, match="List-Unsubscribe") as info:
        unsubscribe_headers(f"https://example.org/me/{secret}/unsubscribe/digest é")
    assert secret not in str(info.value)


@pytest.mark.parametrize(
    "base",
    ["http://course_host:8000", "http://[::1]:8000", "https://example.org/cohorts", "http://test"],
)
def test_every_base_url_settings_accept_gives_the_headers(base: str) -> None:
    url = f"{base}/me/tok-_en/unsubscribe/live_reminder/class-1h"
    assert unsubscribe_headers(url)["List-Unsubscribe"] == f"<{url}>"
