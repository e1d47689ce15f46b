"""An ASGI app (by default ``create_app(runtime)``) served over real HTTP by uvicorn, in a
thread, on a port of 127.0.0.1 the OS picked: for tests that drive the web app the way a browser
or a calendar app does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from scheduler.runtime import Runtime
from scheduler.web.app import create_app


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """``app`` served until the block ends; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@contextmanager
def serve(runtime: Runtime) -> Iterator[str]:
    """The app of ``runtime`` served until the block ends; yields its base URL."""
    with serving(create_app(runtime)) as base:
        yield base
