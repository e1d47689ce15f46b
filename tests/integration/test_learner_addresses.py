"""Learner addresses end to end, on SQLite and PostgreSQL: the roster import and the
single-learner service store the same deliverable form, and every email to it goes out."""

from __future__ import annotations

from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from draining import drain
from smtp_sink import SmtpSink

from scheduler.errors import InputError
from scheduler.outputs.mailers import SmtpMailer
from scheduler.runtime import Runtime
from scheduler.services.learners import add_learner, get_learner

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Zoë", "zoe@exämple.org", "Europe/Berlin", "", "de_DE", ""],
]
ZOE = "zoe@xn--exmple-cua.org"


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def test_imported_internationalised_domain_is_stored_ascii_and_every_email_is_sent(
    published: Runtime,
) -> None:
    with SmtpSink() as sink:  # a real server on loopback, without SMTPUTF8 like many relays
        mailer = SmtpMailer("127.0.0.1", sink.port, timeout=5)
        counts = drain(published, mailer)
        mailer.close()
        received = sink.raw
        envelopes = sink.envelopes

    assert counts.failed == counts.retried == 0 and counts.sent == len(received) > 0
    to_zoe = [
        parse(data) for data, (_, rcpt) in zip(received, envelopes, strict=True) if rcpt == (ZOE,)
    ]
    assert {str(m["To"].addresses[0].addr_spec) for m in to_zoe} == {ZOE}
    # both builders: the welcome (fast path) and the invitations (with a calendar part)
    assert {m.get_content_type() for m in to_zoe} == {"multipart/alternative", "multipart/mixed"}
    with published.transaction() as db:
        assert get_learner(db, SLUG, "Zoe@EXÄMPLE.org").email == ZOE  # found as typed


def test_single_learner_follows_the_import_rule(published: Runtime) -> None:
    now = published.clock.now()
    with pytest.raises(InputError) as caught, published.transaction() as db:
        add_learner(db, SLUG, name="Ünï", email="ünï@exämple.org", zone="UTC", now=now)
    (problem,) = caught.value.problems
    assert (problem.field, problem.value) == ("email", "ünï@exämple.org")
    assert "ASCII" in problem.message and problem.hint

    with published.transaction() as db:
        add_learner(db, SLUG, name="Ann", email="Ann@Exämple.org", zone="UTC", now=now)
    with published.transaction() as db:
        assert get_learner(db, SLUG, "ann@xn--exmple-cua.org").email == "ann@xn--exmple-cua.org"
