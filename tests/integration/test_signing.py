"""One key per purpose, derived from the server's secret: a value signed (or a MAC made) for
one purpose never verifies for another; ``unsign`` never raises; mail tokens have their own
key and are replaced when it changes (on SQLite and PostgreSQL)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from scheduler.runtime import Runtime
from scheduler.services import admin
from scheduler.services.feeds import mail_tokens, resolve_token

SLUG = "ml-foundations-2027"
ROWS = [["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""]]
SECRET = b"a-secret-key-for-the-signing-tests-0123456789"


# --- one key per purpose -----------------------------------------------------------------------

PURPOSES: tuple[admin.Purpose, ...] = get_args(admin.Purpose)


def test_every_purpose_has_its_own_key() -> None:
    keys = {purpose: admin.purpose_key(SECRET, purpose) for purpose in PURPOSES}
    assert set(PURPOSES) >= {"session", "flash", "csrf"}
    assert len(set(keys.values())) == len(PURPOSES)
    assert SECRET not in keys.values()
    assert admin.purpose_key(SECRET, "session") == keys["session"]  # deterministic
    assert admin.purpose_key(SECRET + b"!", "session") != keys["session"]


@pytest.mark.parametrize("signed_for", PURPOSES)
def test_a_value_signed_for_one_purpose_verifies_for_no_other(signed_for: admin.Purpose) -> None:
    signed = admin.sign(SECRET, signed_for, "1:2:3")
    assert admin.unsign(SECRET, signed_for, signed) == "1:2:3"
    for other in PURPOSES:
        if other != signed_for:
            assert admin.unsign(SECRET, other, signed) is None
            assert admin.mac(SECRET, other, "m") != admin.mac(SECRET, signed_for, "m")
    # nor does anything made with the bare secret, as everything was before
    bare = hmac.new(SECRET, b"1:2:3", hashlib.sha256).hexdigest()
    assert admin.unsign(SECRET, signed_for, f"1:2:3.{bare}") is None


def test_unsign_refuses_a_tampered_value() -> None:
    signed = admin.sign(SECRET, "session", "abc")
    assert admin.unsign(SECRET, "session", "abd" + signed[3:]) is None
    flipped = signed[:-1] + ("1" if signed.endswith("0") else "0")
    assert admin.unsign(SECRET, "session", flipped) is None
    assert admin.unsign(b"another-secret-key-of-enough-length-00000", "session", signed) is None


@given(st.text(max_size=300))
def test_unsign_never_raises(text: str) -> None:
    for purpose in PURPOSES:
        assert admin.unsign(SECRET, purpose, text) is None


def test_signing_with_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        admin.purpose_key(b"", "session")


# --- mail tokens -------------------------------------------------------------------------------


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def _person(runtime: Runtime) -> int:
    from scheduler.persistence.models import PersonRow

    with runtime.transaction() as db:
        found = db.scalar(select(PersonRow.id).where(PersonRow.email == "yuki@example.org"))
    assert found is not None
    return found


def test_mail_tokens_keep_their_own_label_and_share_no_key(published: Runtime) -> None:
    from scheduler.persistence import repo
    from scheduler.persistence.models import FeedTokenRow

    person = _person(published)
    now = published.clock.now()
    with published.transaction() as db:
        cohort = repo.get_cohort(db, SLUG)
        token = mail_tokens(db, cohort.id, {person: "learner"}, SECRET, now)[person]
        target = resolve_token(db, token)
        assert target is not None and target.email == "yuki@example.org"
        row_id = db.scalar(
            select(FeedTokenRow.id).where(
                FeedTokenRow.person_id == person, FeedTokenRow.purpose == "mail"
            )
        )
    # The derivation links were first emailed with (so links already sent keep working) ...
    digest = hmac.new(SECRET, f"mail-token/{row_id}/{person}".encode(), hashlib.sha256)
    assert token == base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    # ... and nothing else signs under the bare secret: every purpose has a key of its own, so
    # no session, flash or CSRF value made from the same text gives the token's MAC.
    for purpose in PURPOSES:
        assert admin.mac(SECRET, purpose, f"mail-token/{row_id}/{person}") != digest.hexdigest()
        assert admin.purpose_key(SECRET, purpose) != SECRET


def test_a_new_secret_key_replaces_the_mail_token(published: Runtime) -> None:
    """A rotated secret key: the row's hash is replaced, the next email carries a token that
    works, and the old one stops working."""
    from scheduler.persistence import repo

    person = _person(published)
    now = published.clock.now()
    with published.transaction() as db:
        cohort_id = repo.get_cohort(db, SLUG).id
        old = mail_tokens(db, cohort_id, {person: "learner"}, SECRET, now)[person]
    other = b"the-next-secret-key-after-a-rotation-0123456789"
    with published.transaction() as db:
        new = mail_tokens(db, cohort_id, {person: "learner"}, other, now)[person]
    assert new != old
    with published.transaction() as db:
        assert resolve_token(db, old) is None
        target = resolve_token(db, new)
        assert target is not None and target.email == "yuki@example.org"
        again = mail_tokens(db, cohort_id, {person: "learner"}, other, now)[person]
    assert again == new  # stable while the key is
