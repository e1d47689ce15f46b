"""A real SMTP server on loopback for tests and benchmarks, built on aiosmtpd.

In tests, as a context manager::

    with SmtpSink(["451 4.3.0 try later"]) as sink:   # first DATA gets 451, then 250 OK
        ... send to 127.0.0.1:sink.port ...
        sink.wait_for(1)
        assert sink.message_ids() == ["<a@example.org>"]

``script`` gives the replies to successive DATA commands. The special reply ``"DROP"`` closes
the connection once the message has been received, without replying: the client cannot know
whether it was accepted (such messages land in ``dropped``, not in ``messages``). A callable
``script(n, envelope)`` decides instead (``None`` means accept). ``rcpt_replies`` refuses
chosen recipients at RCPT time. ``auth=(user, password)`` requires AUTH LOGIN/PLAIN before
MAIL (allowed without TLS on loopback). ``tls_context`` offers STARTTLS; with
``implicit_tls=True`` the whole connection is TLS instead (port 465 style).

As a process, for benchmarks::

    python tests/smtp_sink.py --port 0 --count-file PATH [--ids-file PATH]
                              [--arrivals-file PATH] [--limit-per-second R] [--refused-file PATH]

prints ``PORT <n>`` once listening, accepts every message without parsing it, keeps PATH
holding the number accepted so far (rewritten atomically about every 50 ms and on exit) and,
with ``--ids-file``, appends each accepted message's Message-ID on its own line. With
``--arrivals-file`` it appends ``<time.time() at the end of DATA, seconds> <Message-ID>``
per accepted message instead (or as well). ``--limit-per-second R`` answers
``421 4.7.0 Try again later (rate limit)`` at the end of DATA, and closes the connection,
for any message that would make more than R accepted messages within the last 1.0 s (a
sliding window): such a message is not accepted, not counted and not in the ids or arrivals
file; ``--refused-file`` gets a ``<time> <Message-ID>`` line for each. All files are flushed
before the count is rewritten, so a count of N means at least N lines in the ids and arrivals
files. Stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import os
import re
import signal
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

DROP = "DROP"
SERVER_NAME = "smtp-sink.test"

Script = Callable[[int, Envelope], str | None] | Sequence[str]


class _Handler:
    """aiosmtpd handler: counts connections, follows the DATA script, records messages."""

    def __init__(
        self,
        script: Script | None,
        rcpt_replies: Mapping[str, str],
        auth: tuple[str, str] | None,
    ) -> None:
        self.script = script
        self.rcpt_replies = {addr.lower(): reply for addr, reply in rcpt_replies.items()}
        self.auth = auth
        self.lock = threading.Condition()
        self.data_commands = 0
        self.raw: list[bytes] = []
        self.envelopes: list[tuple[str, tuple[str, ...]]] = []
        self.dropped: list[bytes] = []

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            self.auth is not None
            and isinstance(data, LoginPassword)
            and (data.login, data.password) == tuple(s.encode() for s in self.auth)
        )
        # handled=False makes aiosmtpd reply "535 5.7.8 Authentication credentials invalid";
        # its default (handled=True) means "I already replied" and leaves the client hanging.
        return AuthResult(success=ok, handled=False)

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # Enforced here rather than with auth_required=True, which warns without TLS.
        if self.auth is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self.lock:
            n = self.data_commands
            self.data_commands += 1
        reply = self._reply(n, envelope)
        if reply == DROP:
            with self.lock:
                self.dropped.append(content)
            # Close without a reply. Raising CancelledError ends aiosmtpd's session task the
            # way a lost connection does, so nothing is written after the close.
            assert server.transport is not None
            server.transport.close()
            raise asyncio.CancelledError
        if reply.startswith("2"):
            with self.lock:
                self.raw.append(content)
                self.envelopes.append((envelope.mail_from or "", tuple(envelope.rcpt_tos)))
                self.lock.notify_all()
        return reply

    def _reply(self, n: int, envelope: Envelope) -> str:
        if self.script is None:
            return "250 OK"
        if callable(self.script):
            return self.script(n, envelope) or "250 OK"
        return self.script[n] if n < len(self.script) else "250 OK"


class _Controller(Controller):
    """Controller that counts TCP connections and learns its port when bound to port 0."""

    def __init__(self, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.connections = 0

    def factory(self) -> SMTP:
        self.connections += 1  # aiosmtpd makes one SMTP protocol object per connection
        return cast(SMTP, super().factory())

    def _trigger_server(self) -> None:
        # Controller keeps port=0 as given and would probe port 0; ask the bound socket.
        if self.port == 0 and self.server is not None:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpSink:
    """A real SMTP server on loopback that records what it accepts. Thread-safe to read."""

    def __init__(
        self,
        script: Script | None = None,
        *,
        auth: tuple[str, str] | None = None,
        hostname: str = "127.0.0.1",
        rcpt_replies: Mapping[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        session_timeout: float = 300,
    ) -> None:
        self._handler = _Handler(script, rcpt_replies or {}, auth)
        kwargs: dict[str, Any] = {
            "hostname": hostname,
            "port": 0,
            "server_hostname": SERVER_NAME,
            "timeout": session_timeout,
        }
        if auth is not None:  # offered in plain text too: this is loopback
            kwargs["auth_require_tls"] = False
            kwargs["authenticator"] = self._handler.authenticate
        if implicit_tls:
            kwargs["ssl_context"] = tls_context
        elif tls_context is not None:
            kwargs["tls_context"] = tls_context
        self._controller = _Controller(self._handler, **kwargs)
        self.host = hostname
        self.port = 0
        self._parse_lock = threading.Lock()
        self._parsed: list[EmailMessage] = []

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._controller.start()
        self.port = self._controller.port
        self._controller.connections = 0  # forget the probe start() makes
        assert self.port, "SMTP sink did not learn its port"

    def stop(self) -> None:
        self._controller.stop()

    @property
    def connections(self) -> int:
        """TCP connections accepted since start (one per SMTP session)."""
        return self._controller.connections

    @property
    def data_commands(self) -> int:
        """Messages received after DATA, whatever the reply (accepted, refused, dropped)."""
        with self._handler.lock:
            return self._handler.data_commands

    @property
    def raw(self) -> list[bytes]:
        """Accepted messages, byte for byte as received (dot-unstuffed), in order."""
        with self._handler.lock:
            return list(self._handler.raw)

    @property
    def messages(self) -> list[EmailMessage]:
        """Accepted messages, parsed (each parsed once, so polling a big sink stays cheap)."""
        raw = self.raw
        with self._parse_lock:
            for content in raw[len(self._parsed) :]:
                self._parsed.append(email.message_from_bytes(content, policy=email.policy.default))
            return self._parsed[: len(raw)]

    @property
    def envelopes(self) -> list[tuple[str, tuple[str, ...]]]:
        """(MAIL FROM, accepted RCPT TOs) of each accepted message."""
        with self._handler.lock:
            return list(self._handler.envelopes)

    @property
    def dropped(self) -> list[bytes]:
        """Messages received in full whose connection was dropped instead of replying."""
        with self._handler.lock:
            return list(self._handler.dropped)

    def message_ids(self) -> list[str]:
        """The Message-ID of each accepted message, in order (read from the header block
        with a regex: parsing 10,000 whole messages would take half a minute)."""
        ids = []
        for content in self.raw:
            head = content.split(b"\r\n\r\n", 1)[0]
            found = _MESSAGE_ID.search(head)
            ids.append(found.group(1).decode("ascii", "replace") if found else "")
        return ids

    def wait_for(self, count: int, timeout: float = 10) -> None:
        with self._handler.lock:
            if not self._handler.lock.wait_for(lambda: len(self._handler.raw) >= count, timeout):
                raise AssertionError(
                    f"SMTP sink accepted {len(self._handler.raw)} message(s) "
                    f"within {timeout} s, expected {count}"
                )


# --- process mode for benchmarks --------------------------------------------------------------

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(?:\r\n[ \t]+)?(<[^>\r\n]*>)", re.I | re.M)


RATE_LIMITED = "421 4.7.0 Try again later (rate limit)"


class _CountingHandler:
    """Accepts everything as fast as aiosmtpd allows: no parsing, one regex for the id.
    With ``limit`` (messages per second), refuses with a 421 any message that would make more
    than ``limit`` accepted within the last 1.0 s."""

    def __init__(
        self,
        ids_file: Path | None,
        arrivals_file: Path | None = None,
        limit: float | None = None,
        refused_file: Path | None = None,
    ) -> None:
        self.count = 0
        self.refused = 0
        self.ids = ids_file.open("ab") if ids_file else None
        self.arrivals = arrivals_file.open("ab") if arrivals_file else None
        self.refused_out = refused_file.open("ab") if refused_file else None
        self.limit = limit
        self.window: deque[float] = deque()  # monotonic times of the last second's acceptances

    def files(self) -> list[BinaryIO]:
        return [f for f in (self.ids, self.arrivals, self.refused_out) if f is not None]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        arrived, now = time.time(), time.monotonic()
        if self.limit is not None:
            while self.window and self.window[0] <= now - 1.0:
                self.window.popleft()
            if len(self.window) + 1 > self.limit:
                self.refused += 1
                if self.refused_out is not None:
                    self.refused_out.write(b"%.6f %s\n" % (arrived, _message_id(envelope)))
                # 421 closes the channel (RFC 5321 4.2.3): the reply is written before this
                # runs, and close() sends what is buffered first.
                if server.transport is not None:
                    asyncio.get_running_loop().call_soon(server.transport.close)
                return RATE_LIMITED
            self.window.append(now)
        self.count += 1
        if self.ids is not None or self.arrivals is not None:
            found = _message_id(envelope)
            if self.ids is not None:
                self.ids.write(found + b"\n")
            if self.arrivals is not None:
                self.arrivals.write(b"%.6f %s\n" % (arrived, found))
        return "250 OK"


def _message_id(envelope: Envelope) -> bytes:
    content = envelope.original_content or b""
    head = content[: content.find(b"\r\n\r\n")]
    found = _MESSAGE_ID.search(head)
    return found.group(1) if found else b"<missing>"


def _write_count(path: Path, count: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(f"{count}\n", encoding="ascii")
    os.replace(tmp, path)


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (uvicorn[standard] brings it): the sink should not be the
    bottleneck of a benchmark."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(
    port: int,
    count_file: Path,
    ids_file: Path | None,
    host: str = "127.0.0.1",
    *,
    arrivals_file: Path | None = None,
    limit_per_second: float | None = None,
    refused_file: Path | None = None,
) -> None:
    handler = _CountingHandler(ids_file, arrivals_file, limit_per_second, refused_file)
    loop = _new_loop()
    server = loop.run_until_complete(
        loop.create_server(
            lambda: SMTP(handler, hostname=SERVER_NAME, enable_SMTPUTF8=True, loop=loop),
            host=host,
            port=port,
        )
    )
    written = refused_written = -1

    def flush() -> None:
        nonlocal written, refused_written
        if handler.count != written or handler.refused != refused_written:
            for f in handler.files():
                f.flush()
            written, refused_written = handler.count, handler.refused
            _write_count(count_file, written)

    def tick() -> None:
        flush()
        loop.call_later(0.05, tick)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    _write_count(count_file, 0)
    written = refused_written = 0
    loop.call_soon(tick)
    sys.stdout.write(f"PORT {server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    try:
        loop.run_forever()
    finally:
        server.close()
        flush()
        for f in handler.files():
            f.close()
        loop.close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fast counting SMTP sink on loopback.")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--count-file", type=Path, required=True)
    parser.add_argument("--ids-file", type=Path, default=None, help="append each Message-ID")
    parser.add_argument(
        "--arrivals-file", type=Path, default=None, help="append '<time.time()> <Message-ID>'"
    )
    parser.add_argument(
        "--limit-per-second",
        type=float,
        default=None,
        help="421 any message that would make more than this many accepted in the last 1.0 s",
    )
    parser.add_argument(
        "--refused-file", type=Path, default=None, help="append '<time> <Message-ID>' per 421"
    )
    args = parser.parse_args(argv)
    if args.limit_per_second is not None and args.limit_per_second <= 0:
        parser.error("--limit-per-second must be positive")
    serve(
        args.port,
        args.count_file,
        args.ids_file,
        args.host,
        arrivals_file=args.arrivals_file,
        limit_per_second=args.limit_per_second,
        refused_file=args.refused_file,
    )


if __name__ == "__main__":
    main()
