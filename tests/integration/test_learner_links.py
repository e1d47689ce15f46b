"""A withdrawn learner's links (feed, page and the links in their emails) stop working at once
and stay dead: a learner who comes back gets new ones. On SQLite and PostgreSQL."""

from __future__ import annotations

import email
import re
import time
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage

import httpx
import pytest
from draining import drain
from served_app import serve
from sqlalchemy import select, update

from scheduler.outputs.mailers import MemoryMailer
from scheduler.persistence import migrations, repo
from scheduler.persistence.models import FeedTokenRow, PersonRow
from scheduler.runtime import Runtime
from scheduler.services.feeds import issue_token, mail_tokens, resolve_token
from scheduler.services.learners import add_learner, remove_learner
from scheduler.services.roster import import_roster
from scheduler.web.app import LOOKUP_SECONDS

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
]
SECRET = b"a-secret-key-for-the-mail-token-tests-0123456789"


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


@pytest.fixture
def base(published: Runtime) -> Iterator[str]:
    with serve(published) as url:
        yield url


def _ids(runtime: Runtime, email: str) -> tuple[int, int]:
    """(cohort id, person id)."""
    with runtime.transaction() as db:
        person = db.scalar(select(PersonRow.id).where(PersonRow.email == email))
        assert person is not None
        return repo.get_cohort(db, SLUG).id, person


def _links(runtime: Runtime, email: str) -> tuple[str, str, str]:
    """Two feed tokens and the mail token of ``email``."""
    cohort_id, person = _ids(runtime, email)
    now = runtime.clock.now()
    with runtime.transaction() as db:
        first, _ = issue_token(db, SLUG, email, now)
        second, _ = issue_token(db, SLUG, email, now)
        mail = mail_tokens(db, cohort_id, {person: "learner"}, SECRET, now)[person]
    return first, second, mail


def _withdraw(runtime: Runtime, email: str) -> None:
    with runtime.transaction() as db:
        remove_learner(db, SLUG, email, now=runtime.clock.now())
    time.sleep(LOOKUP_SECONDS + 0.1)  # the server trusts a token check this long


def _add_back(runtime: Runtime, email: str) -> None:
    with runtime.transaction() as db:
        add_learner(
            db, SLUG, name="Sam", email=email, zone="Europe/Berlin", now=runtime.clock.now()
        )


def _answers(base: str, token: str) -> tuple[int, int]:
    """What the feed URL and the learner's page answer for ``token``."""
    feed = httpx.get(f"{base}/feeds/{token}.ics", timeout=20)
    page = httpx.get(f"{base}/me/{token}", timeout=20)
    return feed.status_code, page.status_code


def test_withdrawing_ends_every_link_and_a_return_brings_none_back(
    published: Runtime, base: str
) -> None:
    old = _links(published, "sam@example.org")
    yuki = _links(published, "yuki@example.org")
    for token in old:
        assert _answers(base, token) == (200, 200)
    _withdraw(published, "sam@example.org")
    for token in old:
        assert _answers(base, token) == (404, 404)
    _add_back(published, "sam@example.org")
    for token in old:
        assert _answers(base, token) == (404, 404)
    new = _links(published, "sam@example.org")
    assert set(new).isdisjoint(old)  # the mail token too: a new row, a new token
    for token in new:
        assert _answers(base, token) == (200, 200)
    for token in yuki:  # nobody else's links changed
        assert _answers(base, token) == (200, 200)


def test_withdrawing_revokes_every_token_row_of_that_learner_in_that_cohort(
    published: Runtime,
) -> None:
    _links(published, "sam@example.org")
    _links(published, "yuki@example.org")
    now = published.clock.now()
    with published.transaction() as db:
        cohort_token, _ = issue_token(db, SLUG, None, now)
    _withdraw(published, "sam@example.org")
    cohort_id, sam = _ids(published, "sam@example.org")
    with published.transaction() as db:
        rows = list(db.scalars(select(FeedTokenRow).where(FeedTokenRow.cohort_id == cohort_id)))
        assert resolve_token(db, cohort_token) is not None
    assert {r.purpose for r in rows if r.person_id == sam} == {"url", "mail"}
    assert all(r.revoked_at == now for r in rows if r.person_id == sam)
    assert all(r.revoked_at is None for r in rows if r.person_id != sam)


def test_a_roster_import_that_brings_a_learner_back_brings_no_old_link_back(
    published: Runtime, base: str, make_roster: Callable[..., bytes]
) -> None:
    old = _links(published, "sam@example.org")
    _withdraw(published, "sam@example.org")
    with published.transaction() as db:
        result = import_roster(db, SLUG, make_roster(ROWS), "r.csv", published.clock.now())
    assert result.updated == ["sam@example.org"]  # enrolled again
    for token in old:
        assert _answers(base, token) == (404, 404)


def test_the_upgrade_revokes_the_links_of_learners_withdrawn_before_it(
    published: Runtime,
) -> None:
    """Learners withdrawn by an earlier version kept live links: migration 0012 revokes them
    (at the time they left), so coming back cannot revive them either."""
    old = _links(published, "sam@example.org")
    kept = _links(published, "yuki@example.org")
    _withdraw(published, "sam@example.org")
    with published.transaction() as db:  # as an earlier version left them
        db.execute(update(FeedTokenRow).values(revoked_at=None))
        assert resolve_token(db, old[0]) is not None
    migrations.downgrade(published.engine, "0011_orchestration")
    migrations.upgrade(published.engine)
    with published.transaction() as db:
        assert all(resolve_token(db, token) is None for token in old)
        assert all(resolve_token(db, token) is not None for token in kept)


def _drain(runtime: Runtime) -> list[EmailMessage]:
    mailer = MemoryMailer()
    drain(runtime, mailer)
    return [email.message_from_bytes(m.data, policy=policy.default) for m in mailer.sent]


def _live_rows(runtime: Runtime, email_address: str) -> list[FeedTokenRow]:
    cohort_id, person = _ids(runtime, email_address)
    with runtime.transaction() as db:
        rows = list(
            db.scalars(
                select(FeedTokenRow).where(
                    FeedTokenRow.cohort_id == cohort_id,
                    FeedTokenRow.person_id == person,
                    FeedTokenRow.revoked_at.is_(None),
                )
            )
        )
        db.expunge_all()
    return rows


def _feed_tokens(messages: list[EmailMessage], to: str) -> list[str]:
    """The feed tokens in the plain-text bodies of the messages sent to ``to``."""
    found = []
    for message in messages:
        if to in str(message["To"]):
            text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            found += [part.split(".ics", 1)[0] for part in text.split("/feeds/")[1:]]
    return found


def test_the_mail_sent_after_withdrawal_carries_no_live_link(published: Runtime) -> None:
    """A withdrawn learner is still sent the cancellation of their invitations: that email
    carries no calendar link at all (a new one would open a feed now and work again if they
    came back; a dead one would only confuse them)."""
    before = _feed_tokens(_drain(published), "sam@example.org")  # welcome and invitations
    assert before
    _withdraw(published, "sam@example.org")
    sent = _drain(published)
    assert any("sam@example.org" in str(m["To"]) for m in sent)  # sent, not failed
    after = _feed_tokens(sent, "sam@example.org")
    assert after == []
    with published.transaction() as db:
        assert all(resolve_token(db, token) is None for token in before)
    assert _live_rows(published, "sam@example.org") == []
    _add_back(published, "sam@example.org")
    assert _live_rows(published, "sam@example.org") == []  # nothing revived
    cohort_id, sam = _ids(published, "sam@example.org")
    with published.transaction() as db:  # the next email carries a new, working link
        new = mail_tokens(db, cohort_id, {sam: "learner"}, SECRET, published.clock.now())[sam]
        target = resolve_token(db, new)
    assert target is not None and target.email == "sam@example.org"
    assert new not in before + after


def _bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_every_email_to_a_learner_links_their_page_and_it_opens(
    published: Runtime, base: str
) -> None:
    """The page holds their reminder choices and catching up: each learner's email links it
    (text and HTML), the link opens their page; a facilitator's email has no page link (the
    page opens for learners only)."""
    sent = _drain(published)  # welcome emails and invitations
    to_sam = [m for m in sent if "sam@example.org" in str(m["To"])]
    to_amara = [m for m in sent if "amara@example.org" in str(m["To"])]
    assert to_sam and to_amara
    pages = set()
    for message in to_sam:
        text, html = _bodies(message)
        found = re.findall(r"http://test/me/([A-Za-z0-9_-]+)", text)
        assert found, message["Subject"]
        assert f'href="http://test/me/{found[0]}"' in html
        pages.update(found)
    for token in pages:
        page = httpx.get(f"{base}/me/{token}", timeout=20)
        assert page.status_code == 200 and 'id="preferences"' in page.text
    for message in to_amara:
        assert "/me/" not in _bodies(message)[0]
