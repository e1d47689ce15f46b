"""Mail transports: hand rendered messages to a mail server, a folder or a list.

One interface, three implementations (the composition root picks one)::

    Mailer (protocol)      send_batch(messages, before_each=None) -> one SendResult per
                           message, same order
    ├── SmtpMailer         a real SMTP server; one reused connection, STARTTLS/TLS, AUTH
    ├── MaildirMailer      a maildir folder: the embedded default, no mail server needed
    └── MemoryMailer       a list in memory, with scripted outcomes: unit tests only

Contract every mailer keeps:

- ``send_batch`` never raises for SMTP or network trouble; each message gets a
  :class:`SendResult` whose :class:`Outcome` tells the caller what to do next:
  ``SENT`` (done), ``RETRY`` (temporary: try again later with backoff) or ``FAILED``
  (permanent: do not try again, show it on the dashboard).
- A message is never re-sent by the mailer itself: the caller owns retries, so that every
  attempt is recorded and the duplicate window stays visible (the Message-ID is fixed by the
  caller and travels unchanged in ``data``).
- No detail, log line or ``repr`` contains the SMTP password.
- ``before_each(position)``, when given, is called just before each message is handed over
  (position in the batch, from 0), so the caller can wait there for that message's send slot;
  never for a message not attempted. See :meth:`Mailer.send_batch`.

How :class:`SmtpMailer` classifies what happens (RFC 5321 reply classes). Only the server's
answer about a message (MAIL, RCPT, DATA) can fail it for good; whatever goes wrong while
opening the connection is about the connection, and every message waiting for it is retried:

========================================================  ========================================
what happened                                             outcome
========================================================  ========================================
5xx reply to MAIL or DATA                                 FAILED
4xx reply to MAIL or DATA (421 closing included)          RETRY
every recipient refused                                   FAILED if all codes are 5xx, else RETRY
some recipients refused, the rest accepted                SENT, ``refused`` lists the others
address that cannot be encoded (non-ASCII)                FAILED
connection lost, reset or timed out during a message      RETRY (next message reconnects)
opening the connection failed: refused, timed out, TLS    RETRY for every message left in the
error, any reply to the greeting, EHLO, STARTTLS or AUTH  batch, not tried (``connection_failures``
other than success (5xx too: ``554`` greeting, ``535``    counts the failures in a row, so the
wrong password), STARTTLS or AUTH not offered, AUTH due   caller backs off without holding it
on a connection neither TLS nor to loopback               against the messages)
a reply longer than 64 KiB or a line over 8 KiB           connection closed; RETRY
========================================================  ========================================

A temporary reply that says the sender is going too fast (:func:`is_throttle_reply`) to MAIL,
RCPT or DATA, or a ``421`` such reply while opening the connection, keeps its outcome ``RETRY``
and also sets ``SendResult.throttled``, so the caller can lower its send rate.

STARTTLS or AUTH missing never falls back to plain text, and a password is never sent over a
connection neither TLS nor to loopback: the mail waits, and the reason shows in ``detail``.
A server cannot take more than ``timeout`` seconds for opening the connection (connect,
greeting, EHLO, STARTTLS, AUTH together) nor for one message, however slowly it trickles its
replies, nor more than 64 KiB of memory for one reply.

The password never travels in clear: ``security="none"`` with credentials is refused by the
constructor unless the host is loopback (``localhost``, 127.0.0.0/8, ``::1``), and at login the
connection itself must be TLS or have a loopback peer address, whatever the host name resolved to.

When opening a connection fails, every remaining message of the batch gets that connection's
outcome without another attempt, so a dead server costs one connect timeout per batch, not one
per message. The same holds after a timeout in the middle of a message: a server that stalls
once is not given the chance to stall again for each remaining message.
"""

from __future__ import annotations

import logging
import mailbox
import pathlib
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal, Protocol

from scheduler.outputs.text import printable
from scheduler.outputs.throttle import is_throttle_reply
from scheduler.settings import is_loopback_host

if TYPE_CHECKING:
    from _socket import _Address as _SourceAddress

    from _typeshed import ReadableBuffer

log = logging.getLogger(__name__)

Security = Literal["none", "starttls", "tls"]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One rendered message, ready for the wire.

    ``data`` is the full RFC 5322 message with CRLF line endings and contains ``message_id`` in
    its Message-ID header; ``sender`` and ``recipients`` are the SMTP envelope, which may differ
    from the From/To headers.
    """

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    data: bytes

    def __post_init__(self) -> None:
        if not (self.message_id.startswith("<") and self.message_id.endswith(">")):
            raise ValueError(f"message_id must look like <local@domain>, got {self.message_id!r}")
        if not self.recipients:
            raise ValueError(f"{self.message_id}: a message needs at least one recipient")
        for address in (self.sender, *self.recipients):
            if "\r" in address or "\n" in address:
                raise ValueError(f"{self.message_id}: line break in address {address!r}")


class Outcome(StrEnum):
    """What the caller should do with a message after one attempt."""

    SENT = "sent"
    RETRY = "retry"
    """Temporary: a 4xx reply, a timeout, a refused or dropped connection. Retry with backoff."""
    FAILED = "failed"
    """Permanent: a 5xx reply or a configuration the server rejects. Do not retry."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one attempt to send one message.

    ``detail`` is for people (the dashboard, logs): the server's reply such as
    ``"451 4.3.0 try again later"`` or what went wrong locally. ``refused`` maps recipients the
    server refused to its reply (``"550 5.1.1 no such user"``); with outcome ``SENT`` those are
    the recipients left out while the others were accepted.

    ``connection_failures`` is 0 when the message was tried on an open connection. Otherwise
    (outcome ``RETRY``) the message was not tried at all: no connection could be opened
    (connect, greeting, EHLO, STARTTLS or AUTH failed, or took too long), or the server stalled
    on an earlier message of the batch. It then counts this mailer's consecutive connection
    failures, this one included, so the caller can back off further the longer the trouble
    lasts without holding it against the message.

    ``throttled`` is True when the server said the sender is going too fast (see
    :func:`is_throttle_reply`): in reply to MAIL, RCPT (every recipient refused, one of them
    with such a reply) or DATA, or with a ``421`` while the connection was being opened, in
    which case the messages of the batch not tried are marked too. The outcome is then
    ``RETRY``, as for any 4xx reply; the caller picks the retry time and lowers its rate.
    """

    message_id: str
    outcome: Outcome
    detail: str = ""
    refused: Mapping[str, str] = field(default_factory=dict)
    connection_failures: int = 0
    throttled: bool = False


BeforeEach = Callable[[int], None]
"""Called with a message's position in the batch just before it is handed over."""


class Mailer(Protocol):
    """Hands messages to a transport. Implementations are not thread-safe: one per worker."""

    def send_batch(
        self, messages: Sequence[Outgoing], before_each: BeforeEach | None = None
    ) -> list[SendResult]:
        """Try each message once; one result per message, in order. Never raises for SMTP or
        network errors: they become ``RETRY`` or ``FAILED`` results.

        ``before_each(position)``, when given, is called with the message's position in
        ``messages`` just before that message is handed over (for SMTP: once the connection is
        open, before MAIL FROM; otherwise before it is written), once per message attempted
        and in order; the caller waits there for the message's send slot. It is not called for
        messages not attempted (the rest of a batch after a failed connection or a stalled
        server). It should not raise: an exception propagates and the results of the
        messages already handed over in this batch are lost."""
        ...

    def close(self) -> None:
        """Release the connection or files; the mailer may be used again afterwards."""
        ...


# --- SMTP ------------------------------------------------------------------------------------


_MAX_LINE = 8192
"""Longest reply line accepted (smtplib's own limit), CRLF included: RFC 5321 allows 512."""
_MAX_REPLY = 64 * 1024
"""Longest reply accepted, all its lines together: a real EHLO reply is well under 1 KiB."""
_RECV = 4096
_IDLE_CHECK = 10.0
"""After ``before_each`` waited longer than this (seconds), check the connection with NOOP
before sending: the server may have closed it meanwhile."""


class _BadReply(smtplib.SMTPServerDisconnected):
    """The server's reply broke a limit (a line or the whole reply too long); the connection
    was closed. A connection-level failure: the message is not to blame."""


class _Smtp(smtplib.SMTP):
    """smtplib.SMTP that remembers the last command sent, to say where a connection broke,
    and that does not let a server take more time or memory than it is given.

    - **Deadline**: ``deadline`` (a ``time.monotonic()`` instant) bounds a whole operation,
      not each read: :meth:`connect` sets it to ``timeout`` seconds ahead, and it covers
      connect, greeting, EHLO, STARTTLS and AUTH together; the mailer sets it again with
      :meth:`start_clock` before each message (and NOOP, QUIT). Before every read and write
      the socket timeout is set to the time left, so a server trickling a byte at a time
      cannot hold the worker longer than ``timeout`` per operation.
    - **Size**: :meth:`getreply` reads with its own buffer and refuses a reply longer than
      ``_MAX_REPLY`` bytes in all (smtplib limits each line, not the number of lines) or a
      line longer than ``_MAX_LINE``. Either closes the connection and raises
      :class:`_BadReply` (smtplib would make up a ``500`` reply for a long line, which would
      fail the message for good).
    """

    last_command = ""
    deadline = 0.0
    _buffer = b""
    _buffer_of: object = None

    def putcmd(self, cmd: str, args: str = "") -> None:
        self.last_command = cmd.upper()
        super().putcmd(cmd, args)

    def start_clock(self) -> None:
        """Give the next operation ``timeout`` seconds, from now."""
        self.deadline = time.monotonic() + self.timeout

    def _time_left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer within {self.timeout:g} s")
        return left

    def connect(
        self,
        host: str = "localhost",
        port: int = 0,
        source_address: _SourceAddress | None = None,
    ) -> tuple[int, bytes]:
        self.start_clock()
        return super().connect(host, port, source_address)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        # SMTP_SSL._get_socket calls this, then wraps the socket: the TLS handshake gets the
        # time left at that point as its timeout (CPython's ssl applies it to the whole call).
        return socket.create_connection((host, port), self._time_left(), self.source_address)

    def send(self, s: ReadableBuffer | str) -> None:
        if self.sock is not None:
            try:
                self.sock.settimeout(self._time_left())  # sendall: a total, not per chunk
            except OSError as error:
                self.close()
                raise smtplib.SMTPServerDisconnected(f"timed out: {error}") from error
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        """smtplib's ``getreply`` with a deadline and a cap on the whole reply."""
        lines: list[bytes] = []
        total = 0
        while True:
            line = self._readline()
            total += len(line)
            if len(line) > _MAX_LINE:
                self.close()
                raise _BadReply(f"reply line longer than {_MAX_LINE} bytes")
            if total > _MAX_REPLY:
                self.close()
                raise _BadReply(f"reply longer than {_MAX_REPLY} bytes")
            lines.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:  # not a reply: do not read on (smtplib does the same)
                code = -1
                break
            if line[3:4] != b"-":
                break
        if self.sock is not None:  # what follows (a TLS handshake) gets the time left
            self.sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
        return code, b"\n".join(lines)

    def _readline(self) -> bytes:
        """One line (``\\n`` included) of at most ``_MAX_LINE + 1`` bytes, within the
        deadline. Bytes buffered from an earlier socket (before STARTTLS) are dropped."""
        sock = self.sock
        if sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        if self._buffer_of is not sock:
            self._buffer, self._buffer_of = b"", sock
        buffer = self._buffer
        while True:
            end = buffer.find(b"\n", 0, _MAX_LINE + 1)
            if end >= 0 or len(buffer) > _MAX_LINE:
                cut = end + 1 if end >= 0 else _MAX_LINE + 1
                line, self._buffer = buffer[:cut], buffer[cut:]
                return line
            try:
                sock.settimeout(self._time_left())
                chunk = sock.recv(_RECV)
            except OSError as error:
                self.close()
                raise smtplib.SMTPServerDisconnected(
                    f"Connection unexpectedly closed: {error}"
                ) from error
            if not chunk:
                self.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            buffer += chunk
            self._buffer = buffer

    def close(self) -> None:
        self._buffer, self._buffer_of = b"", None
        super().close()


class _SmtpSsl(smtplib.SMTP_SSL, _Smtp):
    """Implicit TLS (port 465) with the same bookkeeping and limits."""


@dataclass(frozen=True, slots=True)
class _Verdict:
    """An outcome and its explanation, before it is attached to a message."""

    outcome: Outcome
    detail: str
    connection_failures: int = 0
    throttled: bool = False

    def result(self, message: Outgoing) -> SendResult:
        return SendResult(
            message.message_id,
            self.outcome,
            self.detail,
            connection_failures=self.connection_failures,
            throttled=self.throttled,
        )


@dataclass(frozen=True, slots=True)
class _NotOpened:
    """Why a connection could not be opened, and whether the server said "too fast"."""

    why: str
    throttled: bool = False


def _by_code(code: int) -> Outcome:
    return Outcome.FAILED if 500 <= code <= 599 else Outcome.RETRY


def _reply(code: int, text: bytes | str) -> str:
    """A server reply on one line, control characters escaped (it is logged and shown)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return printable(" ".join(f"{code} {text}".split()))


def _may_send_password(conn: _Smtp) -> bool:
    """Whether a password may be sent over ``conn``: it is TLS, or its peer is this machine's
    loopback interface (checked on the socket, not the configured host name)."""
    sock = conn.sock
    if isinstance(sock, ssl.SSLSocket):
        return True
    if sock is None:
        return False
    try:
        peer = sock.getpeername()
    except OSError:
        return False
    return isinstance(peer, tuple) and is_loopback_host(str(peer[0]))


def _throttled_closing(error: BaseException) -> bool:
    """Whether opening a connection failed on a ``421`` reply saying the sender goes too fast
    (``421 4.7.0 Try again later``, ``421 4.3.2 too many connections``): usually the greeting.
    Other replies while opening (a 454 to AUTH, say) are about the connection, not the rate."""
    return (
        isinstance(error, smtplib.SMTPResponseException)
        and error.smtp_code == 421
        and is_throttle_reply(error.smtp_code, error.smtp_error)
    )


def _timed_out(error: BaseException) -> bool:
    """smtplib wraps socket timeouts in SMTPServerDisconnected; look through the chain."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class SmtpMailer:
    """Sends through an SMTP server over one connection, reused across messages and batches.

    The connection opens lazily on the first message, negotiates STARTTLS or implicit TLS
    (verified with ``ssl.create_default_context()``) and authenticates once. A connection kept
    from an earlier batch is checked with NOOP before use and reopened if the server has closed
    it meanwhile; within a batch, a message that breaks the connection makes the next message
    reconnect. Not thread-safe.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        security: Security = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        local_hostname: str | None = None,
    ) -> None:
        if security not in ("none", "starttls", "tls"):
            raise ValueError(f"security must be none, starttls or tls, got {security!r}")
        if (username is None) != (password is None):
            raise ValueError("SMTP username and password must be given together")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if security == "none" and username is not None and not is_loopback_host(host):
            raise ValueError(
                f"security none would send the SMTP password in clear to {host[:80]!r}:"
                " use starttls or tls (none with a login is for a server on loopback)"
            )
        self._host = host
        self._port = port
        self._security: Security = security
        self._username = username
        self._password = password
        self._timeout = timeout
        self._local_hostname = local_hostname
        self._conn: _Smtp | None = None
        self._failures = 0  # consecutive connection failures (open failed, server stalled)

    def __repr__(self) -> str:
        user = f", username={self._username!r}" if self._username is not None else ""
        return (
            f"SmtpMailer(host={self._host!r}, port={self._port}, security={self._security!r}{user})"
        )

    @property
    def _where(self) -> str:
        return f"{self._host}:{self._port}"

    def send_batch(
        self, messages: Sequence[Outgoing], before_each: BeforeEach | None = None
    ) -> list[SendResult]:
        """See :meth:`Mailer.send_batch`. ``before_each`` is called once the connection is
        open (connection set-up does not eat into the message's slot). If it took longer than
        ``_IDLE_CHECK`` seconds, the connection is checked with NOOP and reopened if the server
        closed it during the wait (the message then goes a little after its slot, never
        before; if reopening fails, that message and the rest are retried unsent)."""
        if messages and self._conn is not None and not self._still_open(self._conn):
            log.debug("SMTP connection to %s went away while idle; reconnecting", self._where)
            self._drop()
        results: list[SendResult] = []
        give_up: _Verdict | None = None
        for position, message in enumerate(messages):
            if give_up is not None:
                results.append(give_up.result(message))
                continue
            conn = self._conn
            if conn is None:
                opened = self._open()
                if isinstance(opened, _NotOpened):
                    give_up = self._not_opened(opened, len(messages) - position)
                    results.append(give_up.result(message))
                    continue
                conn = self._conn = opened
            if before_each is not None:
                waited = time.monotonic()
                before_each(position)
                if time.monotonic() - waited > _IDLE_CHECK and not self._still_open(conn):
                    log.debug("SMTP connection to %s went away during the wait", self._where)
                    self._drop()
                    opened = self._open()  # the message goes after its slot: never early
                    if isinstance(opened, _NotOpened):
                        give_up = self._not_opened(opened, len(messages) - position)
                        results.append(give_up.result(message))
                        continue
                    conn = self._conn = opened
            result, stalled = self._send_one(conn, message)
            if stalled:
                self._failures += 1
                give_up = _Verdict(
                    Outcome.RETRY,
                    f"not attempted: an earlier message {result.detail}",
                    self._failures,
                )
            elif result.outcome is not Outcome.RETRY:  # the server answered: it works
                self._failures = 0
            if result.outcome is not Outcome.SENT:
                log.info("%s %s: %s", message.message_id, result.outcome, result.detail)
            results.append(result)
        return results

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.start_clock()
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            conn.close()

    # -- connection ---------------------------------------------------------------------------

    def _not_opened(self, failure: _NotOpened, unsent: int) -> _Verdict:
        """Count a failure to open the connection; the verdict for every message left."""
        self._failures += 1
        log.warning("SMTP %s (%d message(s) not sent, retried)", failure.why, unsent)
        return _Verdict(Outcome.RETRY, failure.why, self._failures, failure.throttled)

    def _open(self) -> _Smtp | _NotOpened:
        """Connect, greet, secure and authenticate, all within one ``timeout``; or say why
        not, without raising.

        Whatever goes wrong here is about the connection, not the messages, so the caller
        retries them all: a 5xx greeting, a refused EHLO, STARTTLS missing from the EHLO reply
        (which a man in the middle can strip), a refused login (a wrong password) or a reply
        too long or too slow. None of them says anything about a message, and none of them may
        cost the outbox its mail; the reason is logged and kept on each message."""
        step = "connect to"
        try:
            conn: _Smtp
            if self._security == "tls":
                conn = _SmtpSsl(
                    self._host,
                    self._port,
                    local_hostname=self._local_hostname,
                    timeout=self._timeout,
                    context=ssl.create_default_context(),
                )
            else:
                conn = _Smtp(
                    self._host,
                    self._port,
                    local_hostname=self._local_hostname,
                    timeout=self._timeout,
                )
        except (smtplib.SMTPException, OSError) as error:  # incl. a greeting other than 220
            return _NotOpened(self._failed(step, error), _throttled_closing(error))
        try:
            step = "EHLO with"
            conn.ehlo_or_helo_if_needed()
            if self._security == "starttls":
                step = "STARTTLS with"
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if self._username is not None and self._password is not None:
                step = f"authentication as {printable(self._username)!r} with"
                if not _may_send_password(conn):
                    conn.close()
                    return _NotOpened(
                        f"{step} {self._where} refused: the connection is not encrypted and"
                        " its peer is not loopback, so the password is not sent; use starttls"
                        " or tls"
                    )
                conn.login(self._username, self._password)
        except UnicodeError:  # credentials smtplib cannot encode; str(error) would quote them
            why = _NotOpened(f"{step} {self._where} failed: username or password is not ASCII")
        except (smtplib.SMTPException, OSError) as error:
            # 4xx/5xx replies (incl. SMTPAuthenticationError), STARTTLS or AUTH not offered,
            # TLS handshake or certificate failure, reset, timeout, a reply too long
            why = _NotOpened(self._failed(step, error), _throttled_closing(error))
        else:
            log.debug("SMTP connection to %s open", self._where)
            return conn
        conn.close()
        return why

    def _failed(self, step: str, error: BaseException) -> str:
        if isinstance(error, smtplib.SMTPResponseException):
            what = _reply(error.smtp_code, error.smtp_error)
        elif _timed_out(error):
            what = f"timed out after {self._timeout:g} s"
        else:
            what = printable(str(error) or type(error).__name__)
        return f"{step} {self._where} failed: {what}"

    @staticmethod
    def _still_open(conn: _Smtp) -> bool:
        try:
            conn.start_clock()
            code, _ = conn.noop()
        except (smtplib.SMTPException, OSError):
            return False
        return code == 250

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- one message --------------------------------------------------------------------------

    def _send_one(self, conn: _Smtp, message: Outgoing) -> tuple[SendResult, bool]:
        """Send one message over ``conn``. Returns the result and whether the server stalled
        (timed out), in which case the rest of the batch is not attempted."""
        conn.last_command = ""
        try:
            conn.start_clock()  # the whole message (MAIL to the reply after DATA): one timeout
            refused = conn.sendmail(message.sender, list(message.recipients), message.data)
        except smtplib.SMTPRecipientsRefused as error:
            self._drop_if_closed(conn)
            replies = {addr: _reply(code, text) for addr, (code, text) in error.recipients.items()}
            permanent = bool(replies) and all(
                500 <= code <= 599 for code, _ in error.recipients.values()
            )
            detail = "all recipients refused: " + "; ".join(f"{a}: {r}" for a, r in replies.items())
            outcome = Outcome.FAILED if permanent else Outcome.RETRY
            throttled = any(is_throttle_reply(c, t) for c, t in error.recipients.values())
            result = SendResult(message.message_id, outcome, detail, replies, throttled=throttled)
            return result, False
        except smtplib.SMTPResponseException as error:  # MAIL or DATA refused, 421 closing
            self._drop_if_closed(conn)
            code, text = error.smtp_code, error.smtp_error
            result = SendResult(
                message.message_id,
                _by_code(code),
                _reply(code, text),
                throttled=is_throttle_reply(code, text),
            )
            return result, False
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self._drop()
            stalled = _timed_out(error)
            after = f" after {conn.last_command}" if conn.last_command else ""
            if stalled:
                detail = f"timed out{after} ({self._timeout:g} s)"
            elif isinstance(error, _BadReply):
                detail = f"{error}{after}; connection closed"
            elif isinstance(error, smtplib.SMTPServerDisconnected):
                detail = f"connection lost{after}"
            else:
                detail = f"network error{after}: {printable(str(error))}"
            return SendResult(message.message_id, Outcome.RETRY, detail), stalled
        except UnicodeEncodeError as error:  # non-ASCII address; smtplib speaks ASCII commands
            self._drop()  # the transaction may be half open: start clean
            detail = f"address cannot be sent without SMTPUTF8: {error.reason}"
            return SendResult(message.message_id, Outcome.FAILED, detail), False
        except smtplib.SMTPException as error:  # unforeseen protocol state: keep the message
            self._drop()
            detail = f"SMTP error: {printable(str(error))}"
            return SendResult(message.message_id, Outcome.RETRY, detail), False
        replies = {addr: _reply(code, text) for addr, (code, text) in refused.items()}
        return SendResult(message.message_id, Outcome.SENT, refused=replies), False

    def _drop_if_closed(self, conn: _Smtp) -> None:
        """smtplib closes the socket itself on a 421 reply; forget such a connection."""
        if conn.sock is None:
            self._drop()


# --- maildir ---------------------------------------------------------------------------------


class MaildirMailer:
    """Delivers into a maildir folder: the default when no mail server is configured.

    Each message is written byte for byte into ``tmp/`` and renamed into ``new/``, so a reader
    never sees a half-written file. Any mail client that reads maildir shows the result.
    """

    def __init__(self, folder: pathlib.Path) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._box = mailbox.Maildir(folder, create=True)

    def __repr__(self) -> str:
        return f"MaildirMailer({str(self.folder)!r})"

    def send_batch(
        self, messages: Sequence[Outgoing], before_each: BeforeEach | None = None
    ) -> list[SendResult]:
        results: list[SendResult] = []
        for position, message in enumerate(messages):
            if before_each is not None:
                before_each(position)
            try:
                self._box.add(message.data)
            except OSError as error:  # disk full, permissions: the operator can fix it
                log.warning("%s not written to %s: %s", message.message_id, self.folder, error)
                results.append(SendResult(message.message_id, Outcome.RETRY, str(error)))
            else:
                results.append(SendResult(message.message_id, Outcome.SENT))
        return results

    def close(self) -> None:
        self._box.close()


# --- memory ----------------------------------------------------------------------------------


class MemoryMailer:
    """Keeps messages in memory. For unit tests only.

    ``script`` gives the outcomes of successive sends (``[Outcome.RETRY, Outcome.FAILED]``);
    once it runs out every send succeeds. ``sent`` holds the messages that were "delivered",
    ``attempts`` every message handed over, in order.
    """

    _DETAILS: Mapping[Outcome, str] = {
        Outcome.SENT: "",
        Outcome.RETRY: "451 4.3.0 scripted temporary failure",
        Outcome.FAILED: "550 5.0.0 scripted permanent failure",
    }

    def __init__(self, script: Iterable[Outcome] | None = None) -> None:
        self.sent: list[Outgoing] = []
        self.attempts: list[Outgoing] = []
        self.closed = False
        self._script = iter(script or ())

    def send_batch(
        self, messages: Sequence[Outgoing], before_each: BeforeEach | None = None
    ) -> list[SendResult]:
        results: list[SendResult] = []
        for position, message in enumerate(messages):
            if before_each is not None:
                before_each(position)
            self.attempts.append(message)
            outcome = next(self._script, Outcome.SENT)
            if outcome is Outcome.SENT:
                self.sent.append(message)
            results.append(SendResult(message.message_id, outcome, self._DETAILS[outcome]))
        return results

    def close(self) -> None:
        self.closed = True
