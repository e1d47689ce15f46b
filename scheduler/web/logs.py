"""Logging for `cohort serve`: uvicorn's loggers with feed tokens redacted from every line."""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time
from typing import Any, TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scheduler.outputs.links import redact_feed_path


class RedactFeedTokens(logging.Filter):
    """Rewrite ``/feeds/<token>`` to ``/feeds/[redacted]`` in a record's message and arguments
    (uvicorn's access log passes the request path as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_feed_path(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_feed_path(a) if isinstance(a, str) else a for a in record.args
            )
        elif isinstance(record.args, dict):
            record.args = {
                k: redact_feed_path(v) if isinstance(v, str) else v for k, v in record.args.items()
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

    Capability paths (``/feeds/<token>``, ``/me/<token>``) are redacted before the line is
    made, so no token can reach it. Lines are collected in memory and written by a background
    thread ten times a second in one write: formatting a record through ``logging`` for every
    request (uvicorn's access log) halved the feed throughput; this costs a few microseconds.
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
        who = f"{client[0]}:{client[1]}" if client else "-"
        path = redact_feed_path(scope.get("path", ""))
        query = "?…" if scope.get("query_string") else ""  # queries are not logged
        line = (
            f"{self._stamp},{int(now * 1000) % 1000:03d} access {who} "
            f'"{scope.get("method", "")} {path}{query} HTTP/{scope.get("http_version", "1.1")}" '
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
