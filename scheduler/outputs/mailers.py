"""Mail transports: hand rendered messages to a mail server, a folder or a list.

One interface, three implementations (the composition root picks one)::

    Mailer (protocol)      send_batch(messages) -> one SendResult per message, same order
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

How :class:`SmtpMailer` classifies what happens (RFC 5321 reply classes):

======================================================  ==========================================
what happened                                           outcome
======================================================  ==========================================
4xx reply (to MAIL, DATA, the greeting, STARTTLS, AUTH)  RETRY
5xx reply                                               FAILED
every recipient refused                                 FAILED if all codes are 5xx, else RETRY
some recipients refused, the rest accepted              SENT, ``refused`` lists the others
connection refused / lost / reset, timeout, TLS error   RETRY (connection dropped, next reconnects)
STARTTLS or AUTH not offered by the server              FAILED (never falls back to plain text)
AUTH due on a connection neither TLS nor to loopback    FAILED (the password is not sent)
address that cannot be encoded (non-ASCII)              FAILED
======================================================  ==========================================

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
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

from scheduler.settings import is_loopback_host

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
    """

    message_id: str
    outcome: Outcome
    detail: str = ""
    refused: Mapping[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    """Hands messages to a transport. Implementations are not thread-safe: one per worker."""

    def send_batch(self, messages: Sequence[Outgoing]) -> list[SendResult]:
        """Try each message once; one result per message, in order. Never raises for SMTP or
        network errors: they become ``RETRY`` or ``FAILED`` results."""
        ...

    def close(self) -> None:
        """Release the connection or files; the mailer may be used again afterwards."""
        ...


# --- SMTP ------------------------------------------------------------------------------------


class _Smtp(smtplib.SMTP):
    """smtplib.SMTP that remembers the last command sent, to say where a connection broke."""

    last_command = ""

    def putcmd(self, cmd: str, args: str = "") -> None:
        self.last_command = cmd.upper()
        super().putcmd(cmd, args)


class _SmtpSsl(smtplib.SMTP_SSL, _Smtp):
    """Implicit TLS (port 465) with the same bookkeeping."""


@dataclass(frozen=True, slots=True)
class _Verdict:
    """An outcome and its explanation, before it is attached to a message."""

    outcome: Outcome
    detail: str

    def result(self, message: Outgoing) -> SendResult:
        return SendResult(message.message_id, self.outcome, self.detail)


def _by_code(code: int) -> Outcome:
    return Outcome.FAILED if 500 <= code <= 599 else Outcome.RETRY


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return " ".join(f"{code} {text}".split())


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

    def __repr__(self) -> str:
        user = f", username={self._username!r}" if self._username is not None else ""
        return (
            f"SmtpMailer(host={self._host!r}, port={self._port}, security={self._security!r}{user})"
        )

    @property
    def _where(self) -> str:
        return f"{self._host}:{self._port}"

    def send_batch(self, messages: Sequence[Outgoing]) -> list[SendResult]:
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
                if isinstance(opened, _Verdict):
                    unsent = len(messages) - position
                    log.warning("SMTP %s (%d message(s) not sent)", opened.detail, unsent)
                    give_up = opened
                    results.append(opened.result(message))
                    continue
                conn = self._conn = opened
            result, stalled = self._send_one(conn, message)
            if stalled:
                give_up = _Verdict(
                    Outcome.RETRY, f"not attempted: an earlier message {result.detail}"
                )
            if result.outcome is not Outcome.SENT:
                log.info("%s %s: %s", message.message_id, result.outcome, result.detail)
            results.append(result)
        return results

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            pass
        finally:
            conn.close()

    # -- connection ---------------------------------------------------------------------------

    def _open(self) -> _Smtp | _Verdict:
        """Connect, greet, secure and authenticate; or say why not, without raising."""
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
        except smtplib.SMTPResponseException as error:  # a greeting other than 220
            return _Verdict(_by_code(error.smtp_code), self._failed(step, error))
        except (smtplib.SMTPException, OSError) as error:
            return _Verdict(Outcome.RETRY, self._failed(step, error))
        try:
            step = "EHLO with"
            conn.ehlo_or_helo_if_needed()
            if self._security == "starttls":
                step = "STARTTLS with"
                conn.starttls(context=ssl.create_default_context())
                conn.ehlo()
            if self._username is not None and self._password is not None:
                step = f"authentication as {self._username!r} with"
                if not _may_send_password(conn):
                    verdict = _Verdict(
                        Outcome.FAILED,
                        f"{step} {self._where} refused: the connection is not encrypted and"
                        " its peer is not loopback, so the password is not sent; use starttls"
                        " or tls",
                    )
                    conn.close()
                    return verdict
                conn.login(self._username, self._password)
        except smtplib.SMTPResponseException as error:  # incl. SMTPAuthenticationError
            verdict = _Verdict(_by_code(error.smtp_code), self._failed(step, error))
        except smtplib.SMTPServerDisconnected as error:
            verdict = _Verdict(Outcome.RETRY, self._failed(step, error))
        except smtplib.SMTPException as error:  # STARTTLS/AUTH not offered, no usable mechanism
            verdict = _Verdict(Outcome.FAILED, self._failed(step, error))
        except UnicodeError:  # credentials smtplib cannot encode; str(error) would quote them
            verdict = _Verdict(
                Outcome.FAILED, f"{step} {self._where} failed: username or password is not ASCII"
            )
        except OSError as error:  # TLS handshake or certificate failure, reset, timeout
            verdict = _Verdict(Outcome.RETRY, self._failed(step, error))
        else:
            log.debug("SMTP connection to %s open", self._where)
            return conn
        conn.close()
        return verdict

    def _failed(self, step: str, error: BaseException) -> str:
        if isinstance(error, smtplib.SMTPResponseException):
            what = _reply(error.smtp_code, error.smtp_error)
        elif _timed_out(error):
            what = f"timed out after {self._timeout:g} s"
        else:
            what = str(error) or type(error).__name__
        return f"{step} {self._where} failed: {what}"

    @staticmethod
    def _still_open(conn: _Smtp) -> bool:
        try:
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
            refused = conn.sendmail(message.sender, list(message.recipients), message.data)
        except smtplib.SMTPRecipientsRefused as error:
            self._drop_if_closed(conn)
            replies = {addr: _reply(code, text) for addr, (code, text) in error.recipients.items()}
            permanent = bool(replies) and all(
                500 <= code <= 599 for code, _ in error.recipients.values()
            )
            detail = "all recipients refused: " + "; ".join(f"{a}: {r}" for a, r in replies.items())
            outcome = Outcome.FAILED if permanent else Outcome.RETRY
            return SendResult(message.message_id, outcome, detail, replies), False
        except smtplib.SMTPResponseException as error:  # MAIL or DATA refused, 421 closing
            self._drop_if_closed(conn)
            detail = _reply(error.smtp_code, error.smtp_error)
            return SendResult(message.message_id, _by_code(error.smtp_code), detail), False
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self._drop()
            stalled = _timed_out(error)
            after = f" after {conn.last_command}" if conn.last_command else ""
            if stalled:
                detail = f"timed out{after} ({self._timeout:g} s)"
            elif isinstance(error, smtplib.SMTPServerDisconnected):
                detail = f"connection lost{after}"
            else:
                detail = f"network error{after}: {error}"
            return SendResult(message.message_id, Outcome.RETRY, detail), stalled
        except UnicodeEncodeError as error:  # non-ASCII address; smtplib speaks ASCII commands
            self._drop()  # the transaction may be half open: start clean
            detail = f"address cannot be sent without SMTPUTF8: {error.reason}"
            return SendResult(message.message_id, Outcome.FAILED, detail), False
        except smtplib.SMTPException as error:  # unforeseen protocol state: keep the message
            self._drop()
            detail = f"SMTP error: {error}"
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

    def send_batch(self, messages: Sequence[Outgoing]) -> list[SendResult]:
        results: list[SendResult] = []
        for message in messages:
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

    def send_batch(self, messages: Sequence[Outgoing]) -> list[SendResult]:
        results: list[SendResult] = []
        for message in messages:
            self.attempts.append(message)
            outcome = next(self._script, Outcome.SENT)
            if outcome is Outcome.SENT:
                self.sent.append(message)
            results.append(SendResult(message.message_id, outcome, self._DETAILS[outcome]))
        return results

    def close(self) -> None:
        self.closed = True
