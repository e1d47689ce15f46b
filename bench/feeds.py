"""Serving benchmark: one 50-event personal feed from `cohort serve`, Radicale and static bytes.

    .venv/bin/python bench/feeds.py [--seconds 10] [--runs 3] [--connections 8] [--client auto]

Setup (not timed): the example cohort (examples/cohort.toml, shortened to 6 weeks, which still
cross both March DST changes) with the `cohort init` roster of 150 learners, planned and
published into a SQLite file; the learner whose personal feed has 50 events (or the nearest
count) gets a feed link. The same feed is then served three ways, one after the other:

- cohort: the real `cohort serve` (one uvicorn worker, as shipped: access log on, tokens
  redacted), with COHORT_FEED_RATE_PER_MINUTE raised so that the load is not answered with 429.
  Every request resolves the token, reads the plan and assembles the feed from cached bytes;
- radicale: a real Radicale server (no auth, filesystem storage in a temporary folder) holding
  the same calendar, PUT as a whole to a calendar collection; the load GETs the collection;
- static: a minimal Starlette app under uvicorn (one worker, no access log) returning the bytes
  `cohort serve` returned, with the same content type: the ceiling for this server stack.

Load: wrk (Debian's `wrk`) when installed, else a bounded asyncio httpx client (slower: it is
then the client that limits the static baseline); 8 connections, 10 s per run, several runs
interleaved (cohort, radicale, static, cohort, ...). Prints req/s and p50/p99 latency per run,
the medians, and the ratios against the goals of issue 5 (>= 100x Radicale, >= 50% of the
static baseline). Any non-200 answer or socket error is reported. It measures; it asserts
nothing about the goals.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

SLUG = "ml-foundations-2027"
WEEKS = 6
TARGET_EVENTS = 50
LEARNERS = 150


# --- servers -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(args: list[str], probe: str, log: Path, env: dict[str, str]) -> Iterator[None]:
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(probe, timeout=2)
                    break
                except httpx.TransportError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(
                            f"{args[:3]} did not start:\n{log.read_text()}"
                        ) from None
                    time.sleep(0.1)
            yield
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _serve_static(port: int, path: Path) -> None:
    """The baseline server (run in a child process): the same bytes, nothing else."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = path.read_bytes()

    async def feed(request: Request) -> Response:
        return Response(body, media_type="text/calendar; charset=utf-8")

    app = Starlette(routes=[Route("/feed.ics", feed)])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
    )


@dataclass(frozen=True)
class Published:
    database_url: str
    email: str
    token: str
    events: int


def _publish(folder: Path) -> Published:
    """The example cohort over WEEKS weeks, planned and published; a link to the personal feed
    whose size is nearest TARGET_EVENTS."""
    from sqlalchemy import select

    from scheduler.clock import SystemClock
    from scheduler.persistence import migrations
    from scheduler.persistence.db import make_engine, make_session_factory
    from scheduler.persistence.models import PersonRow
    from scheduler.resources import resource_dir
    from scheduler.runtime import Runtime
    from scheduler.sample import example_roster, roster_csv
    from scheduler.services import publishing
    from scheduler.services.cohorts import load_cohort
    from scheduler.services.feeds import feed_events, issue_token, resolve_token
    from scheduler.services.plans import plan_cohort
    from scheduler.services.roster import import_roster
    from scheduler.settings import Settings

    url = f"sqlite:///{folder / 'bench.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    runtime = Runtime(
        Settings.model_construct(database_url=url),
        engine,
        make_session_factory(engine),
        SystemClock(),
    )
    text = (resource_dir("examples") / "cohort.toml").read_text(encoding="utf-8")
    shortened = re.sub(r"(?m)^weeks = \d+", f"weeks = {WEEKS}", text)
    assert shortened != text, "examples/cohort.toml has no `weeks = N` line any more"
    roster = roster_csv(example_roster(LEARNERS, random.Random(2027))).encode()
    now = runtime.clock.now()
    with runtime.transaction() as db:
        load_cohort(db, shortened, "cohort.toml", now)
        import_roster(db, SLUG, roster, "roster.csv", now)
        _, _, plan = plan_cohort(db, SLUG)
        publishing.publish(db, SLUG, plan, now)
    best: tuple[int, str, str] | None = None
    with runtime.transaction() as db:
        for email in sorted(db.scalars(select(PersonRow.email))):
            token, target = issue_token(db, SLUG, email, now)
            if target.kind != "learner":
                continue
            resolved = resolve_token(db, token)
            assert resolved is not None
            size = len(feed_events(db, resolved))
            if best is None or abs(size - TARGET_EVENTS) < abs(best[0] - TARGET_EVENTS):
                best = (size, email, token)
    runtime.close()
    assert best is not None
    return Published(url, best[1], best[2], best[0])


# --- load ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int  # non-200 answers and socket errors


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def _wrk(wrk: str, url: str, seconds: int, connections: int, threads: int) -> Run:
    out = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 60,
    ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    failures = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        failures += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        failures += sum(int(n) for n in match.groups())
    return Run(rps, _ms(percentiles["50"]), _ms(percentiles["99"]), requests, failures)


async def _httpx_load(url: str, seconds: int, connections: int) -> Run:
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker() -> None:
            nonlocal failures
            while (begin := time.perf_counter()) < deadline:
                try:
                    response = await client.get(url)
                except httpx.HTTPError:
                    failures += 1
                    continue
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - begin)
                else:
                    failures += 1

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    if not latencies:
        return Run(0.0, float("nan"), float("nan"), 0, failures)
    cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return Run(len(latencies) / elapsed, cuts[49] * 1e3, cuts[98] * 1e3, len(latencies), failures)


# --- main ---------------------------------------------------------------------------------------


def _count_events(body: bytes) -> int:
    return body.count(b"BEGIN:VEVENT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of one run (10)")
    parser.add_argument("--runs", type=int, default=3, help="runs per server (3)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections (8)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--client", choices=["auto", "wrk", "httpx"], default="auto")
    parser.add_argument(
        "--no-access-log", action="store_true", help="run cohort serve without its access log"
    )
    parser.add_argument("--serve-static", nargs=2, metavar=("PORT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_static:
        _serve_static(int(args.serve_static[0]), Path(args.serve_static[1]))
        return

    wrk = shutil.which("wrk") if args.client in ("auto", "wrk") else None
    if args.client == "wrk" and wrk is None:
        parser.error("wrk is not installed (apt-get install -y wrk)")
    client = "wrk" if wrk else "httpx (asyncio)"
    cohort_exe = shutil.which("cohort", path=str(Path(sys.executable).parent)) or "cohort"
    extra_serve_args = ["--no-access-log"] if args.no_access_log else []

    with (
        tempfile.TemporaryDirectory(prefix="bench-feeds-") as name,
        contextlib.ExitStack() as stack,
    ):
        folder = Path(name)
        started = time.perf_counter()
        published = _publish(folder)
        print(
            f"setup: {LEARNERS} learners, {WEEKS} weeks, published in "
            f"{time.perf_counter() - started:.1f} s; feed of {published.email}: "
            f"{published.events} events"
        )

        # (a) cohort serve
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
        env |= {
            "COHORT_DATABASE_URL": published.database_url,
            "COHORT_BASE_URL": f"http://127.0.0.1:{port}",
            "COHORT_FEED_RATE_PER_MINUTE": str(10**9),
        }
        base = f"http://127.0.0.1:{port}"
        stack.enter_context(
            _server(
                [cohort_exe, "serve", "--port", str(port), *extra_serve_args],
                f"{base}/healthz",
                folder / "cohort.log",
                env,
            )
        )
        cohort_url = f"{base}/feeds/{published.token}.ics"
        body = httpx.get(cohort_url, timeout=30).raise_for_status().content
        feed = folder / "feed.ics"
        feed.write_bytes(body)

        # (b) Radicale with the same calendar
        port = _free_port()
        dav = f"http://127.0.0.1:{port}"
        stack.enter_context(
            _server(
                [
                    sys.executable,
                    "-m",
                    "radicale",
                    "--config",
                    "",
                    "--server-hosts",
                    f"127.0.0.1:{port}",
                    "--auth-type",
                    "none",
                    "--storage-filesystem-folder",
                    str(folder / "radicale"),
                    "--logging-level",
                    "warning",
                ],
                f"{dav}/.web/",
                folder / "radicale.log",
                dict(os.environ),
            )
        )
        with httpx.Client(base_url=dav, timeout=30) as http:
            assert http.request("MKCOL", "/bench/").status_code == 201
            put = http.put(
                "/bench/feed/",
                content=body,
                headers={"Content-Type": "text/calendar; charset=utf-8"},
            )
            assert put.status_code == 201, (
                f"Radicale rejected the feed: {put.status_code} {put.text}"
            )
        radicale_url = f"{dav}/bench/feed/"

        # (c) the static baseline
        port = _free_port()
        stack.enter_context(
            _server(
                [sys.executable, __file__, "--serve-static", str(port), str(feed)],
                f"http://127.0.0.1:{port}/feed.ics",
                folder / "static.log",
                dict(os.environ),
            )
        )
        static_url = f"http://127.0.0.1:{port}/feed.ics"

        targets = {"cohort serve": cohort_url, "Radicale": radicale_url, "static": static_url}
        for label, url in targets.items():
            answer = httpx.get(url, timeout=30).raise_for_status().content
            assert _count_events(answer) == published.events, (label, _count_events(answer))
        assert httpx.get(static_url).content == body
        print(
            f"feed: {len(body):,} bytes, {published.events} events; client: {client}, "
            f"{args.connections} connections, {args.seconds} s x {args.runs} runs (interleaved)"
        )

        results: dict[str, list[Run]] = {label: [] for label in targets}
        for run in range(1, args.runs + 1):
            for label, url in targets.items():
                if wrk:
                    result = _wrk(wrk, url, args.seconds, args.connections, args.threads)
                else:
                    result = asyncio.run(_httpx_load(url, args.seconds, args.connections))
                results[label].append(result)
                note = f", {result.failures} FAILED" if result.failures else ""
                print(
                    f"  run {run} {label:<13} {result.rps:>9,.1f} req/s"
                    f"   p50 {result.p50_ms:8.2f} ms   p99 {result.p99_ms:8.2f} ms"
                    f"   ({result.requests:,} requests{note})"
                )

    def median(label: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in results[label])

    print()
    print(f"| server | req/s (median of {args.runs}) | p50 ms | p99 ms | failures |")
    print("|---|---:|---:|---:|---:|")
    for label in targets:
        failures = sum(r.failures for r in results[label])
        print(
            f"| {label} | {median(label, 'rps'):,.0f} | {median(label, 'p50_ms'):.2f} "
            f"| {median(label, 'p99_ms'):.2f} | {failures} |"
        )
    ours, radicale, static = (median(label, "rps") for label in targets)
    print()
    print(f"cohort serve / Radicale: {ours / radicale:,.1f}x   (goal >= 100x)")
    print(f"cohort serve / static:   {ours / static:.0%}   (goal >= 50%)")


if __name__ == "__main__":
    main()
