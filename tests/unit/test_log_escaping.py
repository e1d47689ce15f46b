"""Log lines cannot be forged or used against a terminal, and capability paths stay redacted
however they are typed: the real AccessLog (written to a StringIO) and uvicorn's own loggers
through the RedactFeedTokens filter that `cohort serve` installs."""

from __future__ import annotations

import asyncio
import io
import logging
import logging.config
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from scheduler.outputs.links import redact_feed_path
from scheduler.web.logs import AccessLog, RedactFeedTokens, log_config

TOKEN = "s3cr3tT0kenAbCdEfGhIjKlMnOpQrSt"
FORGED = '/x\n2026-12-02 08:10:00,000 access 10.0.0.1:1 "GET /admin HTTP/1.1" 200\n\x1b[31mRED'


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _access_lines(*paths: str, query: bytes = b"") -> list[str]:
    stream = io.StringIO()
    log = AccessLog(_ok, stream=stream, every=3600)
    try:

        async def requests() -> None:
            for path in paths:
                scope: dict[str, Any] = {
                    "type": "http",
                    "method": "GET",
                    "path": path,
                    "raw_path": path.encode("utf-8", "surrogateescape"),
                    "query_string": query,
                    "http_version": "1.1",
                    "client": ("127.0.0.1", 5555),
                    "headers": [(b"user-agent", b"evil\x1b[2J")],
                }

                async def receive() -> dict[str, Any]:
                    return {"type": "http.request", "body": b"", "more_body": False}

                async def send(message: Any) -> None:
                    pass

                await log(scope, receive, send)

        asyncio.run(requests())
    finally:
        log.close()
    return stream.getvalue().splitlines(keepends=True)


def test_a_path_cannot_forge_an_access_line_or_reach_the_terminal_raw() -> None:
    lines = _access_lines(FORGED, "/csi\x9b2J/\u202eevil")
    assert len(lines) == 2  # one line per request, however many line breaks the path has
    text = "".join(lines)
    assert "\x1b" not in text and "\x9b" not in text and "\u202e" not in text
    assert "/x\\n2026-12-02%2008:10:00,000%20access" in lines[0]
    assert "\\x1b[31mRED" in lines[0]
    assert lines[0].endswith('HTTP/1.1" 200\n')
    assert "/csi\\x9b2J/\\u202eevil" in lines[1]


def test_a_path_cannot_close_the_quoted_request_early() -> None:
    (line,) = _access_lines('/a" 200 "GET /b')
    assert line.count('"') == 2
    assert "/a%22%20200%20%22GET%20/b" in line


@pytest.mark.parametrize(
    "path",
    [
        f"/feeds/{TOKEN}.ics",
        f"/feeds//{TOKEN}.ics",
        f"/ME/{TOKEN}",
        f"/Feeds/{TOKEN}.ics",
        f"/me/{TOKEN}/",
        f"/me/{TOKEN}//reset",
        f"/feeds/{TOKEN}.ics/",
        f"//feeds///{TOKEN}.ics",
        f"/feeds%2F{TOKEN}.ics",
        f"/feeds%2f{TOKEN}.ics",
        f"%2Fme%2F{TOKEN}",
        f"/feeds%252F{TOKEN}.ics",
        f"/feeds\\{TOKEN}.ics",
        f"/feeds/\n{TOKEN}.ics",
        f"/feeds/{TOKEN[:8]} {TOKEN[8:]}.ics",
        f"/feeds/{TOKEN[:8]}?{TOKEN[8:]}.ics",
        f"/feeds/{TOKEN[:8]}#{TOKEN[8:]}.ics",
        f"/feeds/{TOKEN[:8]}\x1b{TOKEN[8:]}.ics",
    ],
    ids=[
        "plain",
        "double_slash",
        "upper_case_me",
        "capitalised_feeds",
        "trailing_slash",
        "double_slash_after_token",
        "trailing_slash_after_ics",
        "many_slashes",
        "encoded_slash",
        "encoded_slash_lower_case",
        "encoded_slashes_me",
        "double_encoded_slash",
        "backslash",
        "line_break_before_token",
        "space_in_token",
        "decoded_question_mark_in_token",
        "decoded_hash_in_token",
        "escape_in_token",
    ],
)
def test_capability_paths_stay_redacted_when_mistyped(path: str) -> None:
    (line,) = _access_lines(path)
    for part in (TOKEN, TOKEN[:8], TOKEN[8:]):
        assert part not in line
    assert "[redacted]" in line


def test_queries_and_user_agents_are_not_logged() -> None:
    (line,) = _access_lines("/healthz", query=f"token={TOKEN}\x1b[2J".encode())
    assert TOKEN not in line and "\x1b" not in line and "evil" not in line
    assert '"GET /healthz?… HTTP/1.1" 200' in line


def test_ordinary_paths_are_logged_as_they_are() -> None:
    (line,) = _access_lines("/cohorts/ml-foundations-2027/learners")
    assert '"GET /cohorts/ml-foundations-2027/learners HTTP/1.1" 200' in line


@pytest.mark.parametrize(
    "text",
    ["/metrics", "/members/ann", "/api/cohorts/x/learners/me@example.org", "/feeds/", "/me"],
    ids=["metrics", "members", "email_with_me", "feeds_folder", "me_alone"],
)
def test_redaction_leaves_other_paths_alone(text: str) -> None:
    assert redact_feed_path(text) == text


def _uvicorn_access_output(path: str, user_agent: str = "") -> str:
    """One request line through uvicorn's access logger as `cohort serve` configures it."""
    config = log_config("INFO")
    stream = io.StringIO()
    config["handlers"]["access"]["stream"] = stream
    config["handlers"]["default"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        # uvicorn's own call (protocols/http/*_impl.py): the path is an argument
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5555", "GET", path, "1.1", 404
        )
        logging.getLogger("uvicorn.error").warning("Invalid HTTP request: %s", user_agent)
    finally:
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "scheduler"):
            logger = logging.getLogger(name)
            for handler in logger.handlers[:]:
                logger.removeHandler(handler)
            logger.propagate = True
    return stream.getvalue()


def test_uvicorn_log_lines_are_escaped_and_redacted() -> None:
    text = _uvicorn_access_output(FORGED + f"/feeds//{TOKEN}.ics", user_agent="ua\x1b[2J\x9b")
    assert len(text.splitlines()) == 2
    assert "\x1b" not in text and "\x9b" not in text
    assert TOKEN not in text and "/feeds/[redacted]" in text
    assert "ua\\x1b[2J\\x9b" in text


def test_worker_log_records_are_escaped() -> None:
    """The same filter sits on the root handlers of every `cohort` command (the worker's log
    lines name cohorts and people as arguments)."""
    record = logging.LogRecord(
        "cohort.worker",
        logging.INFO,
        __file__,
        1,
        "%s: placed %s",
        ("demo", "Ann\x1b]0;pwn\x07"),
        None,
    )
    assert RedactFeedTokens().filter(record)
    assert record.getMessage() == "demo: placed Ann\\x1b]0;pwn\\x07"
