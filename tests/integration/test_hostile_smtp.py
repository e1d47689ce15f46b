"""SmtpMailer against hostile or broken SMTP servers: small scripted servers on loopback.

What a server does before a message is under way (greeting, EHLO, STARTTLS, AUTH) is about the
connection, not the messages: it never fails mail for good. A server cannot make the worker
hold a reply of unbounded size in memory, nor keep it longer than ``timeout`` per operation
by trickling its replies.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from draining import drain
from smtp_sink import SmtpSink
from sqlalchemy import select

from scheduler.clock import FixedClock
from scheduler.outputs.mailers import Outcome, Outgoing, SmtpMailer
from scheduler.persistence.models import NotificationRow
from scheduler.runtime import Runtime

SENDER = "noreply@cohort.test"
PASSWORD = "correct horse battery staple"
EHLO_OK = b"250-hostile.test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n"


def outgoing(i: int, recipient: str = "ann@learners.test") -> Outgoing:
    data = (
        f"From: {SENDER}\r\nTo: {recipient}\r\nSubject: {i}\r\n"
        f"Message-ID: <h.{i}@cohort.test>\r\n\r\nHello {i}\r\n"
    ).encode()
    return Outgoing(f"<h.{i}@cohort.test>", SENDER, (recipient,), data)


Session = Callable[[socket.socket, "Hostile"], None]
Reply = bytes | Session


class Hostile:
    """A TCP server on 127.0.0.1 that runs ``session(conn, self)`` for each connection, in a
    thread. ``commands`` lists the SMTP verbs received, ``sent`` the bytes handed to the
    kernel. ``stop`` is set at teardown: sessions that trickle should watch it."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port: int = self.listener.getsockname()[1]
        self.commands: list[str] = []
        self.connections = 0
        self.sent = 0
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client hung up: often the point
            self.session(conn, self)

    def send(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        self.sent += len(data)

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)


def smtp(
    greeting: bytes = b"220 hostile.test ESMTP\r\n",
    replies: dict[str, Reply] | None = None,
) -> Session:
    """A session that greets with ``greeting`` and answers each verb from ``replies`` (EHLO
    offers AUTH PLAIN but no STARTTLS, everything else is accepted by default). A reply may
    be a callable ``(conn, server)`` that sends it itself."""
    answers: dict[str, Reply] = {
        "EHLO": EHLO_OK,
        "HELO": b"250 hostile.test\r\n",
        "AUTH": b"235 2.7.0 ok\r\n",
        "MAIL": b"250 2.1.0 ok\r\n",
        "RCPT": b"250 2.1.5 ok\r\n",
        "DATA": b"354 go ahead\r\n",
        ".": b"250 2.0.0 queued\r\n",
        "NOOP": b"250 2.0.0 ok\r\n",
        "RSET": b"250 2.0.0 ok\r\n",
        "QUIT": b"221 2.0.0 bye\r\n",
        **(replies or {}),
    }

    def answer(conn: socket.socket, server: Hostile, verb: str) -> None:
        reply = answers.get(verb, b"502 5.5.1 unknown command\r\n")
        if isinstance(reply, bytes):
            server.send(conn, reply)
        else:
            reply(conn, server)

    def session(conn: socket.socket, server: Hostile) -> None:
        reader = conn.makefile("rb")
        server.send(conn, greeting)
        while (line := reader.readline(1 << 16)) and not server.stop.is_set():
            verb = line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace")
            server.commands.append(verb)
            if verb == "RCPT" and b"ghost@" in line:
                server.send(conn, b"550 5.1.1 no such user\r\n")
                continue
            answer(conn, server, verb)
            if verb == "DATA":
                while reader.readline(1 << 16) not in (b".\r\n", b""):
                    pass
                server.commands.append(".")
                answer(conn, server, ".")
            if verb == "QUIT":
                return

    return session


@pytest.fixture
def hostile() -> Iterator[Callable[[Session], Hostile]]:
    servers: list[Hostile] = []

    def start(session: Session) -> Hostile:
        server = Hostile(session)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def make_mailer() -> Iterator[Callable[..., SmtpMailer]]:
    mailers: list[SmtpMailer] = []

    def make(port: int, **kwargs: object) -> SmtpMailer:
        kwargs.setdefault("timeout", 2.0)
        mailer = SmtpMailer("127.0.0.1", port, local_hostname="worker.test", **kwargs)  # type: ignore[arg-type]
        mailers.append(mailer)
        return mailer

    yield make
    for mailer in mailers:
        mailer.close()


Start = Callable[[Session], Hostile]


# --- 1. connection-level failures are retried, never fail the mail ---------------------------


@pytest.mark.parametrize(
    ("session", "why"),
    [
        (smtp(greeting=b"554 5.3.2 no service\r\n"), "554 5.3.2 no service"),
        (smtp(greeting=b"220 " + b"x" * 9000 + b"\r\n"), "line longer than 8192"),
        (smtp(greeting=b"421 4.3.2 busy\r\n"), "421 4.3.2 busy"),
        (
            smtp(replies={"EHLO": b"550 go away\r\n", "HELO": b"550 5.7.1 go away\r\n"}),
            "550 5.7.1 go away",
        ),
    ],
    ids=["554-greeting", "over-long-greeting", "421-greeting", "5xx-ehlo-and-helo"],
)
def test_failure_before_the_first_message_retries_the_whole_batch(
    hostile: Start,
    make_mailer: Callable[..., SmtpMailer],
    session: Session,
    why: str,
) -> None:
    server = hostile(session)
    mailer = make_mailer(server.port)

    results = mailer.send_batch([outgoing(i) for i in range(3)])

    assert [r.outcome for r in results] == [Outcome.RETRY] * 3, results
    assert all(why in r.detail for r in results), results
    assert [r.connection_failures for r in results] == [1, 1, 1]
    assert server.connections == 1 and "MAIL" not in server.commands


def test_wrong_password_535_is_retried_not_failed_and_the_password_never_shows(
    hostile: Start, make_mailer: Callable[..., SmtpMailer], caplog: pytest.LogCaptureFixture
) -> None:
    server = hostile(smtp(replies={"AUTH": b"535 5.7.8 authentication failed\r\n"}))
    mailer = make_mailer(server.port, username="worker", password=PASSWORD)

    results = mailer.send_batch([outgoing(1), outgoing(2)])

    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY], results
    assert "535 5.7.8 authentication failed" in results[0].detail
    assert results[0].detail.startswith(f"authentication as 'worker' with 127.0.0.1:{server.port}")
    assert "MAIL" not in server.commands
    assert PASSWORD not in caplog.text and not [r for r in results if PASSWORD in repr(r)]


def test_starttls_stripped_from_ehlo_is_retried_and_nothing_goes_in_clear(
    hostile: Start, make_mailer: Callable[..., SmtpMailer]
) -> None:
    """A man in the middle removes STARTTLS from the EHLO reply: the mail waits (RETRY), it is
    neither sent in clear nor failed for good."""
    server = hostile(smtp())  # EHLO_OK offers no STARTTLS
    mailer = make_mailer(server.port, security="starttls", username="worker", password=PASSWORD)

    results = mailer.send_batch([outgoing(1), outgoing(2)])

    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY], results
    assert "STARTTLS" in results[0].detail
    assert server.commands == ["EHLO"]  # no AUTH, no MAIL: nothing went in clear


def test_control_characters_in_a_reply_are_escaped_in_detail_and_log(
    hostile: Start, make_mailer: Callable[..., SmtpMailer], caplog: pytest.LogCaptureFixture
) -> None:
    server = hostile(smtp(greeting=b"554 5.3.2 no\x1b[2J\x9b31m service\xe2\x80\xae\r\n"))
    mailer = make_mailer(server.port)

    (result,) = mailer.send_batch([outgoing(1)])

    assert result.outcome is Outcome.RETRY
    assert "\\x1b[2J" in result.detail and "\\u202e" in result.detail
    for text in (result.detail, caplog.text):
        assert not [c for c in text if c in "\x1b\x9b\u202e\r"], text


def test_5xx_to_mail_rcpt_or_data_still_fails_only_that_message(
    hostile: Start, make_mailer: Callable[..., SmtpMailer]
) -> None:
    server = hostile(smtp())
    mailer = make_mailer(server.port)

    results = mailer.send_batch([outgoing(1), outgoing(2, "ghost@learners.test"), outgoing(3)])

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.FAILED, Outcome.SENT]
    assert results[1].detail.endswith("550 5.1.1 no such user")
    assert [r.connection_failures for r in results] == [0, 0, 0]
    assert server.connections == 1


def test_consecutive_connection_failures_are_counted_for_backoff(
    hostile: Start, make_mailer: Callable[..., SmtpMailer]
) -> None:
    server = hostile(smtp(greeting=b"554 5.3.2 no service\r\n"))
    mailer = make_mailer(server.port)

    streak = [mailer.send_batch([outgoing(i)])[0].connection_failures for i in range(3)]

    assert streak == [1, 2, 3]


# --- 1, end to end: the outbox survives an outage or a wrong password ------------------------


def outbox(runtime: Runtime) -> list[NotificationRow]:
    with runtime.transaction() as db:
        found = list(db.scalars(select(NotificationRow).order_by(NotificationRow.id)))
        db.expunge_all()
        return found


def test_a_refusing_server_leaves_the_outbox_pending_past_max_attempts_then_it_all_goes(
    make_published: Callable[[list[list[str]]], Runtime], hostile: Start
) -> None:
    runtime = make_published(
        [["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""]]
    )
    clock = runtime.clock
    assert isinstance(clock, FixedClock)
    max_attempts = runtime.delivery_config().max_attempts
    server = hostile(smtp(greeting=b"554 5.3.2 no service\r\n"))
    refusing = SmtpMailer("127.0.0.1", server.port, timeout=2)
    delays: list[float] = []
    for _ in range(max_attempts + 2):  # more rounds than max_attempts: nothing runs out
        before = clock.now()
        counts = drain(runtime, refusing)
        assert counts.claimed > 0 and counts.failed == 0 and counts.sent == 0
        rows = outbox(runtime)
        assert {r.status for r in rows} == {"pending"}
        assert {r.attempts for r in rows} == {0}  # the outage is not held against them
        assert all("554 5.3.2 no service" in (r.last_error or "") for r in rows)
        due = min(r.next_attempt_at for r in rows)
        assert due > before
        delays.append((due - before).total_seconds())
        clock.advance(max(r.next_attempt_at for r in rows) - clock.now())
    refusing.close()
    assert delays[-1] > delays[0] * 4  # backoff grew with the outage (jitter is 0.5-1.5)
    assert delays[-1] <= runtime.delivery_config().retry_cap.total_seconds() * 1.5

    with SmtpSink() as sink:  # the server is back: everything goes, once
        working = SmtpMailer("127.0.0.1", sink.port, timeout=5)
        clock.advance(timedelta(hours=2))
        drain(runtime, working)
        working.close()
        rows = outbox(runtime)
        assert {r.status for r in rows} == {"sent"} and {r.attempts for r in rows} == {1}
        assert sorted(sink.message_ids()) == sorted(r.message_id for r in rows)


# --- 2. a reply of unbounded size ----------------------------------------------------------------

FLOOD = 40 * 1024 * 1024


def flood(verb: str) -> Session:
    """Answers ``verb`` with 8000-byte continuation lines, up to 40 MB, then hangs up."""
    line = b"250-" + b"A" * 7994 + b"\r\n"

    def endless(conn: socket.socket, server: Hostile) -> None:
        reader = conn.makefile("rb")
        server.send(conn, b"220 hostile.test ESMTP\r\n")
        while line_in := reader.readline(1 << 16):
            got = line_in.split(b" ", 1)[0].strip().upper().decode()
            server.commands.append(got)
            if got == verb:
                while server.sent < FLOOD and not server.stop.is_set():
                    server.send(conn, line)
                return
            server.send(conn, EHLO_OK if got == "EHLO" else b"250 ok\r\n")

    return endless


@pytest.mark.parametrize("verb", ["EHLO", "MAIL"])
def test_a_huge_multi_line_reply_is_cut_off_at_64_kib(
    hostile: Start, make_mailer: Callable[..., SmtpMailer], verb: str
) -> None:
    server = hostile(flood(verb))
    mailer = make_mailer(server.port, timeout=10)

    tracemalloc.start()
    try:
        started = time.monotonic()
        results = mailer.send_batch([outgoing(1), outgoing(2)])
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 4 * 1024 * 1024, peak  # the unpatched mailer holds the whole 40 MB
    assert elapsed < 5.0
    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY], results
    assert "reply longer than 65536 bytes" in results[0].detail
    # The server's writes stop once the kernel buffers are full (a few MB on loopback).
    time.sleep(0.2)
    assert server.sent < FLOOD // 2


# --- 3. a deadline per operation, not per read -----------------------------------------------


def trickle(before: bytes, reply: bytes = b"x") -> Session:
    """Sends ``before`` then the greeting one byte every 0.2 s, for at most 8 s."""

    def slow(conn: socket.socket, server: Hostile) -> None:
        server.send(conn, before)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not server.stop.is_set():
            server.send(conn, reply)
            time.sleep(0.2)

    return slow


def test_a_greeting_trickled_byte_by_byte_is_cut_off_at_the_timeout(
    hostile: Start, make_mailer: Callable[..., SmtpMailer]
) -> None:
    server = hostile(trickle(b"220 "))
    mailer = make_mailer(server.port, timeout=1.0)

    started = time.monotonic()
    results = mailer.send_batch([outgoing(1), outgoing(2)])
    elapsed = time.monotonic() - started

    assert elapsed < 3.0  # one timeout for the whole greeting, not one per byte (8 s and more)
    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY], results
    assert "timed out after 1 s" in results[0].detail


def test_opening_the_connection_gets_one_timeout_for_all_its_steps(
    hostile: Start, make_mailer: Callable[..., SmtpMailer]
) -> None:
    """Greeting and EHLO reply each come within the timeout, but not both together."""

    def late_ehlo(conn: socket.socket, server: Hostile) -> None:
        time.sleep(0.7)
        server.send(conn, EHLO_OK)

    def session(conn: socket.socket, server: Hostile) -> None:
        time.sleep(0.7)
        smtp(replies={"EHLO": late_ehlo})(conn, server)

    server = hostile(session)
    mailer = make_mailer(server.port, timeout=1.0)

    started = time.monotonic()
    (result,) = mailer.send_batch([outgoing(1)])
    elapsed = time.monotonic() - started

    assert result.outcome is Outcome.RETRY, result
    assert result.detail.startswith("EHLO with") and "timed out" in result.detail
    assert elapsed < 2.0
    assert "MAIL" not in server.commands


def test_a_reply_to_data_trickled_byte_by_byte_is_cut_off_per_message(
    hostile: Start, make_mailer: Callable[..., SmtpMailer]
) -> None:
    server = hostile(smtp(replies={".": trickle(b"2")}))
    mailer = make_mailer(server.port, timeout=1.0)

    started = time.monotonic()
    results = mailer.send_batch([outgoing(1), outgoing(2)])
    elapsed = time.monotonic() - started

    assert elapsed < 3.0  # one timeout for the message, not one per byte (8 s and more)
    assert [r.outcome for r in results] == [Outcome.RETRY, Outcome.RETRY], results
    assert results[0].detail == "timed out after DATA (1 s)"
    assert results[1].detail.startswith("not attempted")
    assert server.commands.count("MAIL") == 1


# --- 4. a 421 "too fast" while opening the connection ------------------------------------------


@pytest.mark.parametrize(
    ("greeting", "throttled"),
    [
        (b"421 4.7.0 Try again later, closing connection.\r\n", True),
        (b"421 4.3.2 Error: too many connections from 127.0.0.1\r\n", True),
        (b"421 4.3.2 busy\r\n", False),
        (b"554 5.3.2 no service\r\n", False),
    ],
    ids=["421-try-again-later", "421-too-many-connections", "421-busy", "554"],
)
def test_a_421_rate_greeting_marks_every_message_of_the_batch_throttled(
    hostile: Start, make_mailer: Callable[..., SmtpMailer], greeting: bytes, throttled: bool
) -> None:
    server = hostile(smtp(greeting=greeting))
    mailer = make_mailer(server.port)
    calls: list[int] = []

    results = mailer.send_batch([outgoing(i) for i in range(3)], before_each=calls.append)

    assert [r.outcome for r in results] == [Outcome.RETRY] * 3, results
    assert [r.throttled for r in results] == [throttled] * 3
    assert [r.connection_failures for r in results] == [1, 1, 1]
    assert calls == []  # no message was attempted
    assert server.connections == 1 and "MAIL" not in server.commands


def test_a_421_rate_reply_to_auth_is_throttled_but_a_454_is_not(
    hostile: Start, make_mailer: Callable[..., SmtpMailer]
) -> None:
    too_fast = hostile(smtp(replies={"AUTH": b"421 4.7.0 Too many connections, slow down\r\n"}))
    attempts = hostile(smtp(replies={"AUTH": b"454 4.7.0 Too many login attempts\r\n"}))

    (closing,) = make_mailer(too_fast.port, username="w", password=PASSWORD).send_batch(
        [outgoing(1)]
    )
    (refused,) = make_mailer(attempts.port, username="w", password=PASSWORD).send_batch(
        [outgoing(1)]
    )

    assert closing.outcome is Outcome.RETRY and closing.throttled is True
    assert refused.outcome is Outcome.RETRY and refused.throttled is False
    assert "454 4.7.0 Too many login attempts" in refused.detail


def test_throttle_replies_to_mail_and_data_on_a_scripted_server(
    hostile: Start, make_mailer: Callable[..., SmtpMailer]
) -> None:
    mail = hostile(smtp(replies={"MAIL": b"451-4.7.1 Sending rate\r\n451 4.7.1 exceeded\r\n"}))
    data = hostile(
        smtp(replies={".": b"454 Throttling failure: Maximum sending rate exceeded\r\n"})
    )

    mail_results = make_mailer(mail.port).send_batch([outgoing(1), outgoing(2)])
    data_results = make_mailer(data.port).send_batch([outgoing(1)])

    assert [(r.outcome, r.throttled) for r in mail_results] == [(Outcome.RETRY, True)] * 2
    assert mail_results[0].detail == "451 4.7.1 Sending rate 4.7.1 exceeded"
    assert [(r.outcome, r.throttled) for r in data_results] == [(Outcome.RETRY, True)]
    assert [r.connection_failures for r in (*mail_results, *data_results)] == [0, 0, 0]
