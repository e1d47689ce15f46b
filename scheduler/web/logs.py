"""Logging for `cohort serve`: uvicorn's loggers and our access log, with feed tokens redacted
and control characters escaped in every line (a request path cannot forge a line or colour a
terminal)."""

from __future__ import annotations

import atexit
import logging
import re
import sys
import threading
import time
from typing import Any, TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.outputs.links import redact_feed_path
from scheduler.outputs.text import printable

# Characters of a decoded path that would end the quoted request (or a redaction) early.
_PATH_FIELD = str.maketrans({" ": "%20", '"': "%22", "'": "%27", "?": "%3F", "#": "%23"})
_PATH_SPECIAL = re.compile("[ \"'?#]")


def _clean(text: str) -> str:
    # Escape first: a line break inside a token must not end the redaction early.
    return redact_feed_path(printable(text))


class RedactFeedTokens(logging.Filter):
    """Rewrite ``/feeds/<token>`` to ``/feeds/[redacted]`` (``/me/<token>/...`` to
    ``/me/[redacted]``) and escape control characters in a record's message and string
    arguments (uvicorn's access log passes the request path as an argument; a name in a
    worker's log line is an argument too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):  # a trailing line break is the logger's, not news
            record.msg = _clean(record.msg.rstrip("\n"))
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: _clean(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def log_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for uvicorn whose every handler redacts feed tokens."""
    redact = {"redact": {"()": RedactFeedTokens}}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": redact,
        "formatters": {
            "default": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
            "access": {
                "format": '%(asctime)s access %(client_addr)s "%(request_line)s" %(status_code)s',
                "()": "uvicorn.logging.AccessFormatter",
                "use_colors": False,
            },
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
            "scheduler": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }


class AccessLog:
    """The access log of `cohort serve`, as an ASGI middleware: one line per request,
    ``2026-11-25 15:30:01,123 access 127.0.0.1:5555 "GET /feeds/[redacted] HTTP/1.1" 200``.

    Capability paths (``/feeds/<token>``, ``/me/<token>``, mistyped ones too) are redacted
    before the line is made, with everything after the token (a one-click link from an email,
    ``/me/<token>/unsubscribe/digest``, reads ``/me/[redacted]``), so no token can reach it;
    control characters in the path are escaped (``\\x1b``), spaces, quotes, ``?`` and ``#``
    percent-encoded, so the line is one line with one quoted request. Lines are collected in
    memory and written by a background thread ten times a second in one write: formatting a
    record through ``logging`` for every request (uvicorn's access log) halved the feed
    throughput; this costs a few microseconds.
    """

    def __init__(self, app: ASGIApp, stream: TextIO | None = None, every: float = 0.1) -> None:
        self.app = app
        self.stream = stream or sys.stderr
        self.every = every
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._second = -1
        self._stamp = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flusher, name="access-log", daemon=True)
        self._thread.start()
        atexit.register(self.flush)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self._add(scope, status or 500)

    def _add(self, scope: Scope, status: int) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        client = scope.get("client")
        # Behind a trusted proxy the host comes from X-Forwarded-For: user-controlled text too.
        who = f"{printable(str(client[0]))}:{client[1]}" if client else "-"
        path = printable(scope.get("path", ""))
        if _PATH_SPECIAL.search(path) is not None:  # rare: translate() costs microseconds
            path = path.translate(_PATH_FIELD)
        path = redact_feed_path(path)
        query = "?…" if scope.get("query_string") else ""  # queries are not logged
        line = (
            f"{self._stamp},{int(now * 1000) % 1000:03d} access {who} "
            f'"{printable(scope.get("method", ""))} {path}{query} '
            f'HTTP/{printable(scope.get("http_version", "1.1"))}" '
            f"{status}\n"
        )
        with self._lock:
            self._lines.append(line)

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
        if lines:
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except (OSError, ValueError):  # the stream was closed at exit
                pass

    def _flusher(self) -> None:
        while not self._stop.wait(self.every):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()
