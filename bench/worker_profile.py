"""Where one delivery worker spends its CPU per message (issue 16).

    .venv/bin/python bench/worker_profile.py [--learners 3000] [--sink null|aiosmtpd]
                                             [--worker-gc] [--cprofile N]

Sets up a PostgreSQL database as bench/delivery.py does (its ``prepare``: the example cohort,
N bulk learners, one class-1h reminder due for each), then runs the worker's two halves
in this process, one after the other (no pipelining, so each phase's CPU is its own):
``prepare_batch`` (claim, compose) and ``finish_batch`` (renew leases, send, record), batch
after batch until nothing is due. Every phase is timed with ``time.thread_time`` (CPU of this
thread: the machine's load does not count), plus the database server's CPU from /proc.

Phases: claim (the two claim statements), composer (Composer.__init__: people, roles,
meetings, mail tokens), render (EmailTemplates.render: subject, text and HTML), mime
(build_message), decide-other (the rest of Composer.decide), renew, send (the mailer), record.

``--sink null`` sends to a mailer that only counts (no SMTP: the worker's own cost);
``aiosmtpd`` to tests/smtp_sink.py in this process's machine (smtplib's cost included).
``--worker-gc`` sets the garbage collector as ``cohort worker`` does (after the setup).
``--cprofile N`` also prints the N most expensive functions (by own time, then cumulative),
from a second database, so the breakdown is not distorted by the profiler. The run counts
the first batches (templates compiled per language, memos empty), as a worker's first
seconds do. PostgreSQL's CPU is that of this script's own server (tests/pg.py).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))

import delivery as bench  # noqa: E402  (bench/delivery.py)

from scheduler.outputs.email import templates as email_templates  # noqa: E402
from scheduler.outputs.mailers import Outcome, Outgoing, SendResult, SmtpMailer  # noqa: E402
from scheduler.services import compose, delivery  # noqa: E402

CPU: dict[str, float] = defaultdict(float)


@contextmanager
def timed(name: str) -> Iterator[None]:
    start = time.thread_time()
    try:
        yield
    finally:
        CPU[name] += time.thread_time() - start


def wrap(owner: Any, attr: str, name: str) -> None:
    original = getattr(owner, attr)

    def timed_call(*args: Any, **kwargs: Any) -> Any:
        with timed(name):
            return original(*args, **kwargs)

    setattr(owner, attr, timed_call)


class NullMailer:
    def send_batch(
        self, messages: Sequence[Outgoing], before_each: Callable[[int], None] | None = None
    ) -> list[SendResult]:
        return [SendResult(m.message_id, Outcome.SENT) for m in messages]

    def close(self) -> None:
        pass


def instrument() -> None:
    wrap(delivery, "claim_rows", "claim")
    wrap(compose.Composer, "__init__", "composer")
    wrap(email_templates.EmailTemplates, "render", "render")
    if hasattr(email_templates.EmailTemplates, "_templates"):  # compiled per language on use
        wrap(email_templates.EmailTemplates, "_templates", "compile")
    wrap(compose, "build_message", "mime")
    wrap(compose.Composer, "decide", "decide (all)")
    wrap(delivery, "_renew_leases", "renew")
    wrap(delivery, "record", "record")
    wrap(SmtpMailer, "send_batch", "send")
    wrap(NullMailer, "send_batch", "send")


def drain(url: str, mailer: Any, t0: datetime) -> tuple[int, float]:
    runtime = bench._runtime(url, t0)
    templates = runtime.templates()
    config = runtime.delivery_config()
    sent = 0
    wall = time.perf_counter()
    try:
        while True:
            decisions = delivery.prepare_batch(
                runtime.sessions,
                templates,
                config,
                "profile",
                runtime.clock.now,
                skip_locked=True,
            )
            if not decisions:
                break
            counts = delivery.finish_batch(
                runtime.sessions, mailer, config, "profile", runtime.clock.now, decisions
            )
            sent += counts.sent
    finally:
        runtime.close()
    return sent, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learners", type=int, default=3000)
    parser.add_argument("--sink", choices=("null", "aiosmtpd"), default="null")
    parser.add_argument("--cprofile", type=int, default=0)
    parser.add_argument(
        "--worker-gc",
        action="store_true",
        help="the garbage collector as `cohort worker` sets it (jobs.worker.tune_gc)",
    )
    args = parser.parse_args()

    databases = bench.Databases("postgresql", Path("/tmp"))
    databases.start()
    sink_process = None
    try:
        mailer: Any = NullMailer()
        if args.sink == "aiosmtpd":
            folder = Path(bench.tempfile.mkdtemp(prefix="profile-sink-"))
            sink = bench.Sink(folder)
            sink.start()
            sink_process = sink
            mailer = SmtpMailer("127.0.0.1", sink.port)
        postmaster = databases.postmaster()
        assert postmaster is not None
        with databases.fresh() as url:
            prepared = bench.prepare(url, args.learners, 0, want_sample=False)
            t0 = prepared.t0
            # No warm-up: the first batch (compiling, empty memos) is measured, as in a
            # worker's first seconds.
            instrument()
            if args.worker_gc:
                from jobs.worker import tune_gc

                tune_gc()
            pg_before = bench.postgres_cpu(postmaster)
            cpu_before = time.thread_time()
            sent, wall = drain(url, mailer, t0)
            total = time.thread_time() - cpu_before
            pg = bench.postgres_cpu(postmaster) - pg_before
        print(f"{sent} messages sent ({len(prepared.expected)} expected), wall {wall:.2f} s")
        if not sent:
            return
        each = lambda s: s / sent * 1e6  # noqa: E731
        render, mime, decide = CPU["render"], CPU["mime"], CPU["decide (all)"]
        rows = [
            ("claim", CPU["claim"]),
            ("composer init", CPU["composer"]),
            ("render (compiling)", CPU["compile"]),
            ("render", render - CPU["compile"]),
            ("mime", mime),
            ("decide other", decide - render - mime),
            ("renew", CPU["renew"]),
            ("send", CPU["send"]),
            ("record", CPU["record"]),
        ]
        accounted = sum(v for _, v in rows)
        rows.append(("other (session, loop)", total - accounted))
        print(f"{'phase':<24}{'µs/msg':>10}")
        for name, value in rows:
            print(f"{name:<24}{each(value):>10.0f}")
        print(f"{'worker total':<24}{each(total):>10.0f}")
        print(f"{'postgresql':<24}{each(pg):>10.0f}")

        if args.cprofile:
            with databases.fresh() as url:
                prepared = bench.prepare(url, args.learners, 0, want_sample=False)
                profile = cProfile.Profile(time.thread_time)
                profile.enable()
                drain(url, mailer, prepared.t0)
                profile.disable()
            stats = pstats.Stats(profile)
            stats.sort_stats("tottime").print_stats(args.cprofile)
            stats.sort_stats("cumulative").print_stats(args.cprofile)
    finally:
        if sink_process is not None:
            sink_process.stop()
        databases.stop()


if __name__ == "__main__":
    main()
