"""``cohort worker``: an APScheduler ``BlockingScheduler`` with a few periodic jobs.

The jobs are thin; the work is in :mod:`scheduler.services.delivery`,
:mod:`scheduler.services.reminders` and :mod:`scheduler.services.orchestration`, and this
process's bookkeeping (its ``worker`` row, the reaper's checks) in
:mod:`scheduler.services.workers`. There is no APScheduler job per email: the database outbox
is the queue, and APScheduler only ticks (an in-memory job store, nothing to lose).

=============  ==========  ======================================================================
job            every       what
=============  ==========  ======================================================================
dispatch       1 s         claim due notifications, render, send, record; batch after batch
                           until nothing is due or the worker is asked to stop
materialise    5 min       place late joiners, re-plan (cohorts with ``auto_replan``), then write
                           reminders and digests now within the horizon, for every cohort
orchestrate    10 s        place late joiners, only in cohorts that have some (one cheap query);
                           re-plan the ``auto_replan`` cohorts whose roster changed since the
                           last look (one grouped query)
reaper         30 s        count leases that expired (their worker died) so they show in logs;
                           mark workers without a heartbeat for 2 minutes as gone
heartbeat      5 s         this worker's row in ``worker``: shown by ``/readyz`` and
                           ``cohort status``
=============  ==========  ======================================================================

On SQLite exactly one worker runs: it holds an exclusive lock on ``<database>.worker.lock``
and a second one exits with a clear message. On PostgreSQL any number run, on any number of
machines, sharing the queue with ``FOR UPDATE SKIP LOCKED``.

``SIGTERM``/``SIGINT``: the batch in hand is finished and recorded, then the worker exits 0.
A lost database connection (PostgreSQL restarted) fails a tick, is logged, and the next tick
reconnects: the worker needs no help to recover.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO

from sqlalchemy.engine import make_url

from scheduler.errors import SchedulerError
from scheduler.outputs.mailers import Mailer
from scheduler.runtime import Runtime
from scheduler.services.cohorts import cohort_slugs
from scheduler.services.delivery import BatchCounts, finish_batch, prepare_batch, release
from scheduler.services.orchestration import (
    assign_late_joiners,
    cohorts_with_late_joiners,
    replan_cohort,
    replan_fingerprints,
)
from scheduler.services.pacing import Pacer, planning_rate, send_ahead_horizon
from scheduler.services.reminders import sync_reminders
from scheduler.services.workers import (
    count_expired_leases,
    mark_gone_workers,
    record_heartbeat,
    register_worker,
    unregister_worker,
)

log = logging.getLogger("cohort.worker")

HEARTBEAT_EVERY = 5.0
MATERIALISE_EVERY = 300.0
ORCHESTRATE_EVERY = 10.0
REAP_EVERY = 30.0
GONE_AFTER = timedelta(minutes=2)
AHEAD_REFRESH = timedelta(seconds=1)  # how long a computed send-ahead horizon is used
SLOTS_PER_BATCH_SECONDS = 10  # at a limited rate, a batch holds at most 10 s of slots
MEASURE_FROM = 5  # batches smaller than this say little about throughput
MEASURE_WEIGHT = 0.3  # moving average: the newest batch's share
GC_THRESHOLDS = (50_000, 20, 20)
"""The cyclic garbage collector's thresholds in a worker process (CPython's are 700, 10, 10).
Composing allocates a lot (rows, template contexts, strings) and frees almost all of it by
reference counting; at the default the collector ran every ~700 allocations and took ~215 µs
of CPU per message (~16 % of one worker's, measured with bench/worker_profile.py), against
~80 µs with these and the start-up objects frozen (:func:`tune_gc`)."""


class WorkerLockedError(SchedulerError):
    """Another worker already runs on this SQLite database."""


@contextmanager
def sqlite_lock(database_url: str) -> Iterator[None]:
    """Hold the one-worker lock of a SQLite database (no-op for other databases)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    path = Path(url.database).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = (path.parent / f"{path.name}.worker.lock").open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise WorkerLockedError(
                f"a worker is already running on {path} ({holder}); on SQLite only one worker "
                "runs at a time — stop it first, or use PostgreSQL to run several"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield
    finally:
        handle.close()


def tune_gc() -> None:
    """Set :data:`GC_THRESHOLDS` and move everything alive now (modules, compiled templates,
    the runtime) out of the collector's sight (``gc.freeze``). For a process that is the
    worker's alone (:meth:`Worker.run`; not ``drain``, which tests and the CLI call in their
    own process). Cycles are still collected, less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@dataclass(slots=True)
class Totals:
    counts: BatchCounts
    batches: int = 0


class Worker:
    """The delivery loop and its periodic jobs, for one process."""

    def __init__(self, runtime: Runtime, mailer: Mailer | None = None) -> None:
        self.runtime = runtime
        self.mailer = mailer or runtime.mailer()
        self.templates = runtime.templates()
        self.config = runtime.delivery_config()
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.stopping = threading.Event()
        self.totals = Totals(BatchCounts())
        self._lock = threading.Lock()
        self._placing = threading.Lock()  # materialise and orchestrate change cohorts in turn
        self._rosters: dict[str, tuple[object, ...]] = {}  # slug -> roster fingerprint seen
        self._sender = ThreadPoolExecutor(1, thread_name_prefix="sender")
        self.pacer = Pacer(
            runtime.sessions,
            runtime.settings.mail_rate_per_second,
            runtime.clock.now,
            lock_rows=runtime.is_postgres,
        )
        self._ahead: tuple[datetime, datetime, float | None] | None = None  # at, horizon, rate
        self._per_message: list[float | None] = [None, None]  # seconds: composing, sending

    # -- jobs ---------------------------------------------------------------------------------
    def dispatch(self) -> BatchCounts:
        """Deliver batch after batch until nothing is due (or a stop is requested).

        Pipelined: while one batch is being sent (network wait, in the sender thread) the next
        is claimed and composed (CPU, here). A crash loses no more than before: only the batch
        being sent can have reached the server unrecorded; a stop gives the prepared batch back.
        """
        tick = BatchCounts()
        in_flight: Future[BatchCounts] | None = None
        while not self.stopping.is_set():
            horizon, rate = self._send_ahead()
            composing = time.monotonic()
            decisions = prepare_batch(
                self.runtime.sessions,
                self.templates,
                self.config,
                self.id,
                self.runtime.clock.now,
                skip_locked=self.runtime.is_postgres,
                horizon=horizon,
                limit=max(1, int(rate * SLOTS_PER_BATCH_SECONDS)) if rate else None,
            )
            self._measure(0, len(decisions), time.monotonic() - composing)
            if in_flight is not None:
                self._count(tick, in_flight.result())
                in_flight = None
            if not decisions:
                break
            if self.stopping.is_set():
                release(self.runtime.sessions, self.id, decisions)
                break
            in_flight = self._sender.submit(
                finish_batch,
                self.runtime.sessions,
                self.mailer,
                self.config,
                self.id,
                self.runtime.clock.now,
                decisions,
                None,
                self.pacer,
            )
        if in_flight is not None:
            self._count(tick, in_flight.result())
        self._beat(tick=True)
        return tick

    def _send_ahead(self) -> tuple[datetime, float | None]:
        """The send-ahead horizon (see :mod:`scheduler.services.pacing`) and the pacer's rate
        in force, computed at most once per :data:`AHEAD_REFRESH`."""
        now = self.runtime.clock.now()
        if self._ahead is None or now - self._ahead[0] >= AHEAD_REFRESH:
            rate = self.pacer.rate()
            with self.runtime.transaction() as db:
                horizon = send_ahead_horizon(db, now, planning_rate(db, now, rate))
            self._ahead = (now, horizon, rate)
        return max(self._ahead[1], now), self._ahead[2]

    def _measure(self, which: int, messages: int, seconds: float) -> None:
        """Fold one batch's composing (0) or sending (1) time into the moving averages."""
        if messages < MEASURE_FROM or seconds <= 0:
            return
        each = seconds / messages
        old = self._per_message[which]
        self._per_message[which] = each if old is None else old + MEASURE_WEIGHT * (each - old)

    @property
    def send_rate(self) -> float | None:
        """Messages per second this worker can hand over. Composing and sending run in two
        threads but share one interpreter (and the machine with the database and the mail
        server), so they are counted one after the other: measured on a 20,000-message burst,
        the slower of the two alone promised ~40 % more than was delivered and the burst
        finished late."""
        known = [t for t in self._per_message if t is not None]
        return 1 / sum(known) if len(known) == 2 else None

    def _count(self, tick: BatchCounts, counts: BatchCounts) -> None:
        self._measure(1, counts.claimed, counts.sending_seconds)
        tick.add(counts)
        with self._lock:
            self.totals.counts.add(counts)
            self.totals.batches += 1

    def materialise(self) -> int:
        """Place late joiners, re-plan where ``auto_replan`` is on, then write the reminders
        that came within the horizon, for every cohort (each step in its own transaction)."""
        queued = 0
        with self.runtime.transaction() as db:
            slugs = cohort_slugs(db)
            auto = replan_fingerprints(db)
        for slug in slugs:
            self._place(slug)
            if slug in auto:
                self._replan(slug, auto[slug])
            with self.runtime.transaction() as db:
                queued += sync_reminders(
                    db, slug, self.runtime.clock.now(), self.runtime.horizon
                ).queued
        return queued

    def orchestrate(self) -> int:
        """Within a tick of a roster change: place late joiners (one cheap query finds the
        cohorts that have some; the others are not touched), then re-plan the ``auto_replan``
        cohorts whose roster changed since this worker last looked."""
        with self.runtime.transaction() as db:
            slugs = cohorts_with_late_joiners(db)
            rosters = replan_fingerprints(db)
        placed = sum(self._place(slug) for slug in slugs)
        for slug, fingerprint in rosters.items():
            if self._rosters.get(slug) != fingerprint:
                self._replan(slug, fingerprint)
        return placed

    def _replan(self, slug: str, fingerprint: tuple[object, ...]) -> bool:
        with self._placing, self.runtime.transaction() as db:
            result = replan_cohort(
                db, slug, self.runtime.clock.now(), self.runtime.horizon, f"worker:{self.id}"
            )
        if result.outcome != "busy":  # another worker holds the cohort: look again next tick
            self._rosters[slug] = fingerprint
        decision = result.decision
        if result.outcome == "applied" and decision is not None:
            log.info(
                "%s: re-planned %s (coverage %.1f%% -> %.1f%%), version %s",
                slug,
                ", ".join(decision.moves),
                decision.before * 100,
                decision.after * 100,
                result.version,
            )
        elif decision is not None and decision.after > decision.before:
            log.info(
                "%s: re-plan not applied: coverage %.1f%% -> %.1f%% is below the margin",
                slug,
                decision.before * 100,
                decision.after * 100,
            )
        return result.outcome == "applied"

    def _place(self, slug: str) -> int:
        with self._placing, self.runtime.transaction() as db:
            now = self.runtime.clock.now()
            placed = assign_late_joiners(
                db, slug, now, self.runtime.horizon, actor=f"worker:{self.id}"
            )
        if placed:
            log.info(
                "%s: %d late joiner placement(s) for %d learner(s)",
                slug,
                len(placed),
                len({p.email for p in placed}),
            )
        return len(placed)

    def reap(self) -> int:
        """Count leases that expired (their worker died mid-batch; the rows are claimable
        again) and mark silent workers as gone."""
        now = self.runtime.clock.now()
        with self.runtime.transaction() as db:
            expired = count_expired_leases(db, now)
            mark_gone_workers(db, now, GONE_AFTER)
        if expired:
            log.warning("%d notifications had an expired lease and will be sent again", expired)
        return expired

    def heartbeat(self) -> None:
        self._beat(tick=False)

    def _beat(self, *, tick: bool) -> None:
        now = self.runtime.clock.now()
        with self.runtime.transaction() as db:
            record_heartbeat(
                db, self.id, now, self.totals.counts.sent, tick=tick, send_rate=self.send_rate
            )

    def register(self) -> None:
        now = self.runtime.clock.now()
        with self.runtime.transaction() as db:
            register_worker(db, self.id, socket.gethostname(), os.getpid(), now)
        self.pacer.ensure()

    def unregister(self) -> None:
        with self.runtime.transaction() as db:
            unregister_worker(db, self.id, self.runtime.clock.now(), self.totals.counts.sent)

    # -- running ------------------------------------------------------------------------------
    def drain(self) -> Totals:
        """Materialise, then deliver everything due now, once (``cohort worker --once``)."""
        self.register()
        try:
            self.materialise()
            self.dispatch()
        finally:
            self._sender.shutdown(wait=True)
            self.unregister()
            self.mailer.close()
        return self.totals

    def run(self, tick_seconds: float) -> Totals:
        """Run until SIGTERM/SIGINT: the periodic jobs on a BlockingScheduler."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.schedulers.blocking import BlockingScheduler

        # Under a backlog a dispatch tick outlasts its interval: APScheduler would log "skipped:
        # maximum number of running instances reached" at every tick, and "Running job" lines
        # at INFO. Neither is news; job failures are logged by _logged.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        job_scheduler = BlockingScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 60},
            timezone="UTC",
        )
        now = self.runtime.clock.now()
        jobs = (
            (self.materialise, MATERIALISE_EVERY),
            (self.orchestrate, ORCHESTRATE_EVERY),
            (self.dispatch, tick_seconds),
            (self.reap, REAP_EVERY),
            (self.heartbeat, HEARTBEAT_EVERY),
        )
        for job, every in jobs:
            job_scheduler.add_job(
                _logged(job), "interval", seconds=every, next_run_time=now, id=job.__name__
            )

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: finishing the batch in hand, then stopping", signum)
            self.stopping.set()
            threading.Thread(target=job_scheduler.shutdown, kwargs={"wait": True}).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        tune_gc()
        self.register()
        log.info("worker %s started", self.id)
        try:
            job_scheduler.start()  # blocks until shutdown
        finally:
            self._sender.shutdown(wait=True)
            self.unregister()
            self.mailer.close()
        return self.totals


def _logged(job: Callable[[], object]) -> Callable[[], None]:
    """Run ``job``; a failure (e.g. the database is restarting) is logged, the next tick retries."""
    name = getattr(job, "__name__", "job")

    def run() -> None:
        try:
            job()
        except Exception:
            log.exception("%s failed; retrying on the next tick", name)

    run.__name__ = name
    return run
