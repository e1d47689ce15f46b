"""The mailers against real transports: an aiosmtpd server on loopback, a maildir on disk.

No mocks: every SMTP test talks to ``SmtpSink`` over TCP, so what is asserted is what a real
server saw (connections opened, DATA commands, bytes received).
"""

from __future__ import annotations

import email.policy
import logging
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from smtp_sink import SmtpSink

from scheduler.outputs import mailers
from scheduler.outputs.mailers import (
    MaildirMailer,
    MemoryMailer,
    Outcome,
    Outgoing,
    SmtpMailer,
)

SENDER = "noreply@cohort.test"
ANN = "ann@learners.test"
GHOST = "ghost@learners.test"
PASSWORD = "correct horse battery staple"
WRONG_PASSWORD = "tr0ub4dor&3"


def outgoing(
    i: int = 0, *, tag: str = "m", recipients: tuple[str, ...] = (ANN,), sender: str = SENDER
) -> Outgoing:
    """A realistic message: built by EmailMessage, CRLF endings, a line starting with a dot."""
    message_id = f"<{tag}.{i}@cohort.test>"
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = f"Session {i} starts in one hour"
    msg["Message-ID"] = message_id
    msg.set_content(f"Hello,\nsession {i} starts soon.\n.this line starts with a dot\n")
    return Outgoing(message_id, sender, recipients, msg.as_bytes())


@pytest.fixture
def start_sink() -> Iterator[Callable[..., SmtpSink]]:
    """Factory: start an SmtpSink (same arguments); all are stopped after the test."""
    sinks: list[SmtpSink] = []

    def start(*args: Any, **kwargs: Any) -> SmtpSink:
        sink = SmtpSink(*args, **kwargs)
        sink.start()
        sinks.append(sink)
        return sink

    yield start
    for sink in sinks:
        sink.stop()


@pytest.fixture
def make_mailer(start_sink: Callable[..., SmtpSink]) -> Iterator[Callable[..., SmtpMailer]]:
    """Factory: an SmtpMailer for 127.0.0.1:port with short timeouts; closed before the sinks
    stop (this fixture depends on ``start_sink`` so it is torn down first)."""
    mailers: list[SmtpMailer] = []

    def make(port: int, **kwargs: Any) -> SmtpMailer:
        kwargs.setdefault("timeout", 2.0)
        kwargs.setdefault("local_hostname", "worker.test")
        mailer = SmtpMailer(kwargs.pop("host", "127.0.0.1"), port, **kwargs)
        mailers.append(mailer)
        return mailer

    yield make
    for mailer in mailers:
        mailer.close()


def free_port() -> int:
    """A port nothing listens on (bound once by us, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# --- one connection, reused -----------------------------------------------------------------


def test_batch_goes_over_one_connection_reused_across_batches(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink()
    mailer = make_mailer(sink.port)
    batch = [outgoing(i) for i in range(5)]

    results = mailer.send_batch(batch)

    assert [(r.message_id, r.outcome) for r in results] == [
        (m.message_id, Outcome.SENT) for m in batch
    ]
    sink.wait_for(5)
    assert sink.message_ids() == [m.message_id for m in batch]
    assert sink.raw == [m.data for m in batch]  # byte for byte: no re-encoding, dots unstuffed
    assert sink.connections == 1

    later = outgoing(5)
    assert mailer.send_batch([later])[0].outcome is Outcome.SENT
    assert sink.connections == 1  # NOOP found the connection alive: reused, not reopened


def test_connection_closed_by_server_while_idle_is_reopened_transparently(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink(session_timeout=0.2)
    mailer = make_mailer(sink.port)
    assert mailer.send_batch([outgoing(1)])[0].outcome is Outcome.SENT

    time.sleep(0.5)  # the server hangs up on the idle connection
    results = mailer.send_batch([outgoing(2)])

    assert results[0].outcome is Outcome.SENT, results[0].detail
    assert sink.message_ids() == ["<m.1@cohort.test>", "<m.2@cohort.test>"]
    assert sink.connections == 2


# --- temporary and permanent replies ----------------------------------------------------------


def test_4xx_is_retry_and_the_same_message_later_goes_through_once(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink(["451 4.3.0 try later"])
    mailer = make_mailer(sink.port)
    message = outgoing(1)

    first = mailer.send_batch([message])
    second = mailer.send_batch([message])

    assert first[0].outcome is Outcome.RETRY
    assert "451" in first[0].detail
    assert second[0].outcome is Outcome.SENT
    assert sink.message_ids() == [message.message_id]  # exactly once, same Message-ID
    assert sink.data_commands == 2


def test_5xx_is_failed_not_retried_and_the_connection_carries_on(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink(["550 5.1.1 no such user"])
    mailer = make_mailer(sink.port)

    rejected, accepted = mailer.send_batch([outgoing(1), outgoing(2)])

    assert rejected.outcome is Outcome.FAILED
    assert rejected.detail == "550 5.1.1 no such user"
    assert accepted.outcome is Outcome.SENT
    assert sink.data_commands == 2  # the rejected message was offered once, not again
    assert sink.message_ids() == ["<m.2@cohort.test>"]
    assert sink.connections == 1


def test_421_closing_reply_is_retry_and_the_next_message_reconnects(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink(["421 4.3.2 shutting down"])
    mailer = make_mailer(sink.port)

    closing, after = mailer.send_batch([outgoing(1), outgoing(2)])

    assert closing.outcome is Outcome.RETRY
    assert closing.detail.startswith("421")
    assert after.outcome is Outcome.SENT
    assert sink.connections == 2


# --- a connection dropped after DATA -----------------------------------------------------------


def test_drop_after_data_is_retry_and_next_batch_reconnects_and_delivers(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink(["DROP"])
    mailer = make_mailer(sink.port)
    message = outgoing(1)

    dropped = mailer.send_batch([message])
    redelivered = mailer.send_batch([message])

    assert dropped[0].outcome is Outcome.RETRY
    assert dropped[0].detail == "connection lost after DATA"
    assert sink.dropped == [message.data]  # the server had it all: the duplicate window
    assert redelivered[0].outcome is Outcome.SENT
    assert sink.message_ids() == [message.message_id]
    assert sink.connections == 2


def test_drop_mid_batch_only_costs_that_message(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink(["250 OK", "DROP"])
    mailer = make_mailer(sink.port)

    results = mailer.send_batch([outgoing(i) for i in range(3)])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.RETRY, Outcome.SENT]
    assert sink.message_ids() == ["<m.0@cohort.test>", "<m.2@cohort.test>"]
    assert sink.connections == 2


# --- recipients refused ------------------------------------------------------------------------


def test_partial_refusal_is_sent_with_the_refused_recipient_listed(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink(rcpt_replies={GHOST: "550 5.1.1 no such user"})
    mailer = make_mailer(sink.port)

    (result,) = mailer.send_batch([outgoing(1, recipients=(ANN, GHOST))])

    assert result.outcome is Outcome.SENT
    assert result.refused == {GHOST: "550 5.1.1 no such user"}
    assert sink.envelopes == [(SENDER, (ANN,))]


@pytest.mark.parametrize(
    ("replies", "expected"),
    [
        pytest.param(
            {ANN: "551 5.1.6 moved", GHOST: "550 5.1.1 no such user"},
            Outcome.FAILED,
            id="all_permanent",
        ),
        pytest.param(
            {ANN: "450 4.2.1 mailbox busy", GHOST: "550 5.1.1 no such user"},
            Outcome.RETRY,
            id="one_temporary",
        ),
    ],
)
def test_all_recipients_refused(
    start_sink: Callable[..., SmtpSink],
    make_mailer: Callable[..., SmtpMailer],
    replies: dict[str, str],
    expected: Outcome,
) -> None:
    sink = start_sink(rcpt_replies=replies)
    mailer = make_mailer(sink.port)

    refused, fine = mailer.send_batch(
        [outgoing(1, recipients=(ANN, GHOST)), outgoing(2, recipients=("bob@learners.test",))]
    )

    assert refused.outcome is expected
    assert refused.refused == replies
    assert "all recipients refused" in refused.detail
    assert fine.outcome is Outcome.SENT  # the transaction was reset, the connection kept
    assert sink.data_commands == 1
    assert sink.connections == 1


# --- no server, a stalled server ------------------------------------------------------------


def test_closed_port_makes_every_message_retry_at_once(
    make_mailer: Callable[..., SmtpMailer],
) -> None:
    mailer = make_mailer(free_port())

    started = time.monotonic()
    results = mailer.send_batch([outgoing(i) for i in range(3)])

    assert time.monotonic() - started < 1.0
    assert [r.outcome for r in results] == [Outcome.RETRY] * 3
    assert all("refused" in r.detail.lower() for r in results), results


def test_silent_server_costs_one_connect_timeout_per_batch_not_one_per_message(
    make_mailer: Callable[..., SmtpMailer],
) -> None:
    # A listener that never accepts: the TCP handshake succeeds, the greeting never comes.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        mailer = make_mailer(listener.getsockname()[1], timeout=0.4)

        started = time.monotonic()
        results = mailer.send_batch([outgoing(i) for i in range(3)])
        elapsed = time.monotonic() - started

    assert [r.outcome for r in results] == [Outcome.RETRY] * 3
    assert "timed out" in results[0].detail
    assert elapsed < 0.8  # one timeout (0.4 s), not three (1.2 s)


def test_server_stalling_after_data_is_not_given_the_rest_of_the_batch(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    def stall(n: int, envelope: object) -> str | None:
        time.sleep(0.8)  # blocks the sink's event loop: no reply within the client's timeout
        return None

    sink = start_sink(stall)
    mailer = make_mailer(sink.port, timeout=0.3)

    started = time.monotonic()
    results = mailer.send_batch([outgoing(i) for i in range(3)])
    elapsed = time.monotonic() - started

    assert [r.outcome for r in results] == [Outcome.RETRY] * 3
    assert results[0].detail == "timed out after DATA (0.3 s)"
    assert results[1].detail.startswith("not attempted")
    assert elapsed < 0.6  # one timeout, not three
    assert sink.data_commands == 1


# --- authentication ------------------------------------------------------------------------------


def test_auth_with_right_credentials_delivers(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink(auth=("worker", PASSWORD))
    mailer = make_mailer(sink.port, username="worker", password=PASSWORD)

    results = mailer.send_batch([outgoing(1), outgoing(2)])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT]
    assert sink.connections == 1  # authenticated once for both messages


def test_auth_is_required_by_the_sink(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink(auth=("worker", PASSWORD))
    mailer = make_mailer(sink.port)  # no credentials

    (result,) = mailer.send_batch([outgoing(1)])

    assert result.outcome is Outcome.FAILED
    assert result.detail.startswith("530")


def test_wrong_password_is_retried_clearly_and_never_shows_a_password(
    start_sink: Callable[..., SmtpSink],
    make_mailer: Callable[..., SmtpMailer],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # also captures aiosmtpd's logging of the SMTP dialogue
    sink = start_sink(auth=("worker", PASSWORD))
    mailer = make_mailer(sink.port, username="worker", password=WRONG_PASSWORD)
    good = make_mailer(sink.port, username="worker", password=PASSWORD)

    results = mailer.send_batch([outgoing(1), outgoing(2)])
    assert good.send_batch([outgoing(3)])[0].outcome is Outcome.SENT

    # A login problem is the connection's, not the messages': retried, never failed for good.
    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY]
    assert results[0].detail.startswith(f"authentication as 'worker' with 127.0.0.1:{sink.port}")
    assert "535" in results[0].detail
    assert sink.connections == 2  # one per mailer: the failed batch did not retry the login
    assert sink.message_ids() == ["<m.3@cohort.test>"]
    exposed = [caplog.text, repr(mailer), repr(good), *map(repr, results)]
    assert caplog.text  # the dialogue was logged, so the check below looked at something
    for secret in (PASSWORD, WRONG_PASSWORD):
        assert not [text for text in exposed if secret in text]


# --- TLS ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl command not available")
    folder = tmp_path_factory.mktemp("tls")
    ca, ca_key, cert, key, csr, ext = (
        folder / n for n in ("ca.pem", "ca.key", "srv.pem", "srv.key", "srv.csr", "ext")
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE"]
    ca_ext += ["-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    run = ["openssl", "req", "-x509", *ec, "-days", "2", "-subj", "/CN=Test CA", *ca_ext]
    subprocess.run([*run, "-keyout", ca_key, "-out", ca], check=True, capture_output=True)
    run = ["openssl", "req", *ec, "-subj", "/CN=localhost", "-keyout", key, "-out", csr]
    subprocess.run(run, check=True, capture_output=True)
    ext.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    run = ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key]
    run += ["-CAcreateserial", "-days", "2", "-out", cert, "-extfile", ext]
    subprocess.run(run, check=True, capture_output=True)
    return {"ca": ca, "cert": cert, "key": key}


@pytest.fixture
def server_tls(certificates: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates["cert"], certificates["key"])
    return context


@pytest.fixture
def trust_test_ca(certificates: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """ssl.create_default_context() reads SSL_CERT_FILE: make it trust the throwaway CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates["ca"]))


@pytest.mark.usefixtures("trust_test_ca")
@pytest.mark.parametrize(
    ("security", "implicit_tls"), [("starttls", False), ("tls", True)], ids=["starttls", "tls"]
)
def test_tls_with_auth_delivers(
    start_sink: Callable[..., SmtpSink],
    make_mailer: Callable[..., SmtpMailer],
    server_tls: ssl.SSLContext,
    security: str,
    implicit_tls: bool,
) -> None:
    sink = start_sink(auth=("worker", PASSWORD), tls_context=server_tls, implicit_tls=implicit_tls)
    mailer = make_mailer(sink.port, security=security, username="worker", password=PASSWORD)

    results = mailer.send_batch([outgoing(1), outgoing(2)])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT], results
    assert sink.connections == 1


def test_untrusted_certificate_is_not_accepted(
    start_sink: Callable[..., SmtpSink],
    make_mailer: Callable[..., SmtpMailer],
    server_tls: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    sink = start_sink(tls_context=server_tls)
    mailer = make_mailer(sink.port, security="starttls")

    (result,) = mailer.send_batch([outgoing(1)])

    assert result.outcome is Outcome.RETRY
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
    assert sink.data_commands == 0


def test_starttls_required_but_not_offered_is_retried_instead_of_sending_in_clear(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink()  # no TLS context: STARTTLS is not advertised
    mailer = make_mailer(sink.port, security="starttls")

    results = mailer.send_batch([outgoing(1), outgoing(2)])

    # Retried (a man in the middle can strip STARTTLS), never sent in clear.
    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY]
    assert "STARTTLS" in results[0].detail
    assert sink.data_commands == 0


# --- maildir and memory ----------------------------------------------------------------------------


def test_maildir_writes_each_message_byte_for_byte_into_new(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "mail" / "outbox"  # nothing of it exists yet
    mailer = MaildirMailer(folder)
    batch = [outgoing(i) for i in range(3)]

    results = mailer.send_batch(batch)
    mailer.close()

    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    written = sorted(path.read_bytes() for path in (folder / "new").iterdir())
    assert written == sorted(m.data for m in batch)
    assert list((folder / "tmp").iterdir()) == []


def test_memory_mailer_follows_its_script_then_sends() -> None:
    mailer = MemoryMailer([Outcome.RETRY, Outcome.FAILED])
    batch = [outgoing(i) for i in range(3)]

    results = mailer.send_batch(batch)
    again = mailer.send_batch([batch[0]])

    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.FAILED, Outcome.SENT]
    assert results[0].detail.startswith("451") and results[1].detail.startswith("550")
    assert again[0].outcome is Outcome.SENT
    assert mailer.sent == [batch[2], batch[0]]
    assert mailer.attempts == [*batch, batch[0]]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"message_id": "m.1@cohort.test"}, id="message_id_without_brackets"),
        pytest.param({"recipients": ()}, id="no_recipients"),
        pytest.param({"recipients": ("ann@x.test\r\nRCPT TO:<eve@x.test>",)}, id="crlf_in_rcpt"),
    ],
)
def test_outgoing_rejects_malformed_envelopes(fields: dict[str, Any]) -> None:
    base: dict[str, Any] = {
        "message_id": "<m.1@cohort.test>",
        "sender": SENDER,
        "recipients": (ANN,),
        "data": b"Message-ID: <m.1@cohort.test>\r\n\r\nhi\r\n",
    }
    with pytest.raises(ValueError, match=r"message_id|recipient|line break"):
        Outgoing(**(base | fields))


# --- no password in clear ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    ["smtp.example.org", "192.0.2.25", "2001:db8::25", "localhost.example.org"],
    ids=["name", "ipv4", "ipv6", "name_starting_with_localhost"],
)
def test_security_none_with_a_login_is_refused_for_a_host_off_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="in clear") as caught:
        SmtpMailer(host, 25, security="none", username="worker", password=PASSWORD)
    assert PASSWORD not in str(caught.value)
    SmtpMailer(host, 25, security="none")  # no login: nothing secret travels
    SmtpMailer(host, 587, security="starttls", username="worker", password=PASSWORD)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_security_none_with_a_login_still_authenticates_on_loopback(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer], host: str
) -> None:
    sink = start_sink(auth=("worker", PASSWORD))
    mailer = make_mailer(
        sink.port, host=host, security="none", username="worker", password=PASSWORD
    )

    (result,) = mailer.send_batch([outgoing(1)])

    assert result.outcome is Outcome.SENT, result
    assert sink.message_ids() == ["<m.1@cohort.test>"]


def non_loopback_ipv4() -> str | None:
    """This machine's address towards the outside, if it has one (a UDP connect sends nothing,
    it only picks the source address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("198.51.100.1", 9))
        except OSError:
            return None
        address: str = s.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_no_auth_in_clear_when_localhost_leads_off_loopback(
    start_sink: Callable[..., SmtpSink],
    make_mailer: Callable[..., SmtpMailer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Defence in depth: the login looks at the connection itself. Here ``localhost`` resolves
    to an address off loopback (a tampered hosts file or resolver), which the constructor's
    check of the host name cannot see."""
    address = non_loopback_ipv4()
    if address is None:
        pytest.skip("no non-loopback IPv4 address to listen on")
    caplog.set_level(logging.INFO, logger="mail.log")  # aiosmtpd logs each command it reads
    sink = start_sink(auth=("worker", PASSWORD), hostname=address)
    resolve = socket.getaddrinfo

    def tampered(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return resolve(address if host == "localhost" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", tampered)
    mailer = make_mailer(
        sink.port, host="localhost", security="none", username="worker", password=PASSWORD
    )

    (result,) = mailer.send_batch([outgoing(1)])

    assert result.outcome is Outcome.RETRY
    assert "not encrypted" in result.detail and PASSWORD not in result.detail
    commands = [
        r.getMessage().partition(" >> b'")[2].upper()
        for r in caplog.records
        if r.name == "mail.log" and " >> b'" in r.getMessage()
    ]
    assert any(c.startswith("EHLO") for c in commands)  # the server was reached, its log read
    assert not [c for c in commands if c.startswith("AUTH")]
    assert sink.connections == 1 and sink.data_commands == 0


# --- throttle replies ------------------------------------------------------------------------


class MailReplies:
    """aiosmtpd handler: answers successive MAIL FROM commands from ``replies`` (then 250 OK)
    and records when each MAIL FROM arrived (``time.monotonic()``, same process)."""

    def __init__(self, replies: list[str] | None = None) -> None:
        self.replies = iter(replies or ())
        self.mail_times: list[float] = []
        self.delivered: list[str] = []

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.mail_times.append(time.monotonic())
        reply = next(self.replies, "250 OK")
        if reply.startswith("250"):
            envelope.mail_from = address
            envelope.mail_options.extend(options)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.delivered.append(envelope.mail_from or "")
        return "250 OK"


@pytest.fixture
def start_mail_replies() -> Iterator[Callable[..., tuple[MailReplies, int]]]:
    """Factory: an aiosmtpd server on loopback with a :class:`MailReplies` handler; returns
    the handler and the port. All are stopped after the test."""
    controllers: list[Controller] = []

    def start(replies: list[str] | None = None) -> tuple[MailReplies, int]:
        handler = MailReplies(replies)
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return handler, port

    yield start
    for controller in controllers:
        controller.stop()


def test_421_try_again_later_to_mail_from_is_a_throttled_retry(
    start_mail_replies: Callable[..., tuple[MailReplies, int]],
    make_mailer: Callable[..., SmtpMailer],
) -> None:
    server, port = start_mail_replies(["421 4.7.0 Try again later"])
    mailer = make_mailer(port)

    throttled, after = mailer.send_batch([outgoing(1), outgoing(2)])

    assert throttled.outcome is Outcome.RETRY
    assert throttled.throttled is True
    assert throttled.detail == "421 4.7.0 Try again later"
    assert throttled.connection_failures == 0
    assert after.outcome is Outcome.SENT and after.throttled is False  # reconnected
    assert server.delivered == [SENDER]


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [
        ("451 4.3.0 mailbox busy", Outcome.RETRY),
        ("421 4.3.2 shutting down", Outcome.RETRY),
        ("550 5.7.1 sending rate exceeded", Outcome.FAILED),
        ("554 Throttling failure: Maximum sending rate exceeded.", Outcome.FAILED),
    ],
    ids=["451-busy", "421-shutting-down", "550-rate-words", "554-throttling-words"],
)
def test_other_replies_to_mail_from_are_not_throttled(
    start_mail_replies: Callable[..., tuple[MailReplies, int]],
    make_mailer: Callable[..., SmtpMailer],
    reply: str,
    outcome: Outcome,
) -> None:
    _, port = start_mail_replies([reply])
    mailer = make_mailer(port)

    (result,) = mailer.send_batch([outgoing(1)])

    assert result.outcome is outcome
    assert result.throttled is False
    assert result.detail == reply


@pytest.mark.parametrize(
    ("reply", "throttled"),
    [
        ("451 4.7.1 Please slow down: rate limit exceeded", True),
        ("454 Throttling failure: Maximum sending rate exceeded.", True),
        ("451 4.3.0 try later", False),
    ],
    ids=["451-rate-limit", "ses-454", "451-try-later"],
)
def test_throttle_reply_to_data(
    start_sink: Callable[..., SmtpSink],
    make_mailer: Callable[..., SmtpMailer],
    reply: str,
    throttled: bool,
) -> None:
    sink = start_sink([reply])
    mailer = make_mailer(sink.port)

    first, second = mailer.send_batch([outgoing(1), outgoing(2)])

    assert first.outcome is Outcome.RETRY
    assert first.throttled is throttled
    assert first.detail == reply
    assert second.outcome is Outcome.SENT and second.throttled is False


@pytest.mark.parametrize(
    ("replies", "outcome", "throttled"),
    [
        ({ANN: "450 4.7.1 Error: too many messages from 127.0.0.1"}, Outcome.RETRY, True),
        (
            {ANN: "450 4.7.1 too many messages", GHOST: "550 5.1.1 no such user"},
            Outcome.RETRY,
            True,
        ),
        ({ANN: "450 4.2.1 mailbox busy"}, Outcome.RETRY, False),
        ({ANN: "550 5.7.1 rate limit exceeded"}, Outcome.FAILED, False),
    ],
    ids=["450-too-many", "450-too-many-and-550", "450-busy", "550-rate-words"],
)
def test_throttle_reply_to_every_rcpt(
    start_sink: Callable[..., SmtpSink],
    make_mailer: Callable[..., SmtpMailer],
    replies: dict[str, str],
    outcome: Outcome,
    throttled: bool,
) -> None:
    sink = start_sink(rcpt_replies=replies)
    mailer = make_mailer(sink.port)

    (result,) = mailer.send_batch([outgoing(1, recipients=tuple(replies))])

    assert result.outcome is outcome
    assert result.throttled is throttled
    assert result.refused == replies
    assert sink.data_commands == 0


def test_a_throttle_reply_to_one_recipient_of_a_sent_message_is_not_throttled(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink(rcpt_replies={GHOST: "450 4.7.1 too many messages"})
    mailer = make_mailer(sink.port)

    (result,) = mailer.send_batch([outgoing(1, recipients=(ANN, GHOST))])

    assert result.outcome is Outcome.SENT and result.throttled is False
    assert result.refused == {GHOST: "450 4.7.1 too many messages"}


# --- before_each: the caller's hook for send slots ------------------------------------------


def test_before_each_is_called_in_order_on_an_open_connection_before_each_message(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    sink = start_sink(["250 OK", "DROP"])  # message 1 breaks the connection: 2 reconnects
    mailer = make_mailer(sink.port)
    seen: list[tuple[int, int, int]] = []  # position, connections, DATA commands so far

    results = mailer.send_batch(
        [outgoing(i) for i in range(3)],
        before_each=lambda k: seen.append((k, sink.connections, sink.data_commands)),
    )

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.RETRY, Outcome.SENT]
    # Called once the connection is (re)opened, and before the message reaches the server.
    assert seen == [(0, 1, 0), (1, 1, 1), (2, 2, 2)]


def test_before_each_that_waits_delays_each_message_until_it_returns(
    start_mail_replies: Callable[..., tuple[MailReplies, int]],
    make_mailer: Callable[..., SmtpMailer],
) -> None:
    server, port = start_mail_replies()
    mailer = make_mailer(port)
    returned: list[float] = []

    def wait_for_slot(position: int) -> None:
        time.sleep(0.15)
        returned.append(time.monotonic())

    results = mailer.send_batch([outgoing(i) for i in range(4)], before_each=wait_for_slot)

    assert [r.outcome for r in results] == [Outcome.SENT] * 4
    assert len(returned) == len(server.mail_times) == 4
    for k in range(4):
        assert server.mail_times[k] >= returned[k]  # MAIL FROM k came after call k returned
    gaps = [b - a for a, b in zip(server.mail_times, server.mail_times[1:], strict=False)]
    assert min(gaps) >= 0.14, gaps


def test_before_each_is_not_called_for_messages_not_attempted(
    start_sink: Callable[..., SmtpSink], make_mailer: Callable[..., SmtpMailer]
) -> None:
    refused = make_mailer(free_port())
    calls: list[int] = []

    results = refused.send_batch([outgoing(i) for i in range(3)], before_each=calls.append)

    assert [r.outcome for r in results] == [Outcome.RETRY] * 3
    assert calls == []  # the connection never opened: nothing attempted

    def stall(n: int, envelope: object) -> str | None:
        time.sleep(0.8)  # blocks the sink's event loop: no reply within the client's timeout
        return None

    sink = start_sink(stall)
    stalled = make_mailer(sink.port, timeout=0.3)

    results = stalled.send_batch([outgoing(i) for i in range(3)], before_each=calls.append)

    assert [r.outcome for r in results] == [Outcome.RETRY] * 3
    assert results[1].detail.startswith("not attempted")
    assert calls == [0]  # only the message that was tried


def test_a_connection_closed_during_a_long_wait_is_reopened_before_sending(
    start_sink: Callable[..., SmtpSink],
    make_mailer: Callable[..., SmtpMailer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mailers, "_IDLE_CHECK", 0.1)
    sink = start_sink(session_timeout=0.2)
    mailer = make_mailer(sink.port)

    def wait_for_slot(position: int) -> None:
        if position == 1:
            time.sleep(0.5)  # the server hangs up on the idle connection meanwhile

    results = mailer.send_batch([outgoing(1), outgoing(2)], before_each=wait_for_slot)

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.SENT], results
    assert sink.message_ids() == ["<m.1@cohort.test>", "<m.2@cohort.test>"]
    assert sink.connections == 2


def test_maildir_calls_before_each_before_writing_each_message(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    mailer = MaildirMailer(folder)
    seen: list[tuple[int, int]] = []  # position, messages already written

    results = mailer.send_batch(
        [outgoing(i) for i in range(3)],
        before_each=lambda k: seen.append((k, len(list((folder / "new").iterdir())))),
    )
    mailer.close()

    assert [r.outcome for r in results] == [Outcome.SENT] * 3
    assert seen == [(0, 0), (1, 1), (2, 2)]


def test_memory_mailer_calls_before_each_before_handing_over_each_message() -> None:
    mailer = MemoryMailer([Outcome.RETRY])
    seen: list[tuple[int, int]] = []  # position, messages already handed over

    results = mailer.send_batch(
        [outgoing(i) for i in range(3)],
        before_each=lambda k: seen.append((k, len(mailer.attempts))),
    )

    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.SENT, Outcome.SENT]
    assert seen == [(0, 0), (1, 1), (2, 2)]
    assert all(r.throttled is False for r in results)
