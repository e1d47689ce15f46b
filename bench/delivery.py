"""Delivery benchmark (issue 6): 20,000 reminders due at one instant, sent by `cohort worker`.

    .venv/bin/python bench/delivery.py [--learners 20000] [--runs 3] [--backend postgresql]
                                       [--batch-size N] [--lead 25] [--ceiling 1,2,4]
                                       [--analyze] [--quick]

Setup (not timed), on a fresh database for every worker run: a throwaway PostgreSQL 15 server
(tests/pg.py; one new database per run on it) or, with ``--backend sqlite``, a SQLite file
(then only the one-worker case runs). The example cohort (examples/cohort.toml) is loaded, a
3-learner roster imported, planned and published, as the integration tests do. Then N learners
(default 20,000; zones and locales varied over en_GB, de_DE, fr_FR, ja_JP, pt_BR, en_US) are
bulk-inserted with their enrollments and put in section 0 of the "class" series, as a planner
would. The first class of section 0 is moved to start at T0 + 1 h, T0 being the real time a
few seconds ahead (``--lead``, enough for the workers to start). The reminders are written by
the product's own ``sync_reminders`` at T0 - 5 s, which queues the welcome emails and a
"class-1h" live reminder due exactly at T0 for every member of the section (its facilitator
included). Every other row is marked sent, so only the reminders due at T0 are measured.

What is measured, three configurations interleaved per run (raw, 1 worker, 2 workers):

- 1 worker / 2 workers: real ``cohort worker`` processes (SMTP to the sink, no TLS, tick
  0.2 s, the product's batch size unless ``--batch-size``), started before T0 and reading the
  real clock. End-to-end messages/s = messages received by the sink / (the moment the sink has
  them all - T0): claim, compose (checks, Jinja, Babel, feed link token), build, send and
  record, batch after batch. Afterwards, from the database: rows by status, lateness
  (``sent_at - due_at``: p50, p99, max), and from the sink's Message-ID list: lost (expected
  ids never received), duplicates and unexpected ids. The workers are stopped with SIGTERM
  and must exit 0; warnings and errors in their logs are printed.
- raw: the ceiling of this sink and client stack, measured in the same run against the same
  sink process: plain ``smtplib`` sending the exact bytes of one reminder the product built
  (each copy with its own Message-ID) K times over one connection.

- sink ceiling (a printed line, not a goal): 1, 2 and 4 raw smtplib client processes in
  parallel (``--ceiling``), each over its own connection, sending pre-built bytes to the same
  sink: how many messages per second this sink can accept on this machine at all, whoever
  sends them. The sink is one asyncio process, so more connections only help until its own
  CPU (~0.5 ms per message) is the limit; the lateness goal (20,000 due at one instant, p99
  <= 2 s) needs ~10,000 msg/s.

Statistics: by default T0 comes ~25 s after a bulk load into a brand-new database, before
autovacuum has analysed it, so PostgreSQL plans every query without statistics (the worst
case, and what a fresh install importing a big roster meets for its first minute or so).
``--analyze`` runs ANALYZE after the setup instead (the steady state). Measured on the 20,000
learner database, the worker's late-joiner check (``cohorts_with_late_joiners``, every 10 s)
takes ~20 s of PostgreSQL CPU per call without statistics and ~0.02 s with them.

CPU per message is read from /proc for the worker processes, the sink and this benchmark's
own PostgreSQL server (its postmaster and children: other servers on the machine, such as a
test suite's, are not counted).

The sink is tests/smtp_sink.py in process mode (aiosmtpd on uvloop, counting, no parsing),
one process for the whole benchmark. Prints every run, the medians, the ratios to raw and the
goals of issue 6 (one worker >= 50% of raw, lateness p99 <= 2 s, 0 skipped, 0 lost). It
measures; it asserts nothing about the goals.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import multiprocessing
import os
import re
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import ColumnElement, and_, create_engine, func, not_, select, text, update

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from pg import PgServer  # noqa: E402  (tests/pg.py)

from scheduler.clock import FixedClock  # noqa: E402
from scheduler.persistence import migrations, repo  # noqa: E402
from scheduler.persistence.db import make_engine, make_session_factory  # noqa: E402
from scheduler.persistence.models import (  # noqa: E402
    CohortRow,
    EnrollmentRow,
    LiveSeriesRow,
    NotificationRow,
    OccurrenceRow,
    PersonRow,
    SectionMemberRow,
    WorkerRow,
)
from scheduler.runtime import Runtime  # noqa: E402
from scheduler.services import publishing  # noqa: E402
from scheduler.services.cohorts import load_cohort  # noqa: E402
from scheduler.services.compose import compose  # noqa: E402
from scheduler.services.plans import plan_cohort  # noqa: E402
from scheduler.services.reminders import LIVE_REMINDER, sync_reminders  # noqa: E402
from scheduler.services.roster import import_roster  # noqa: E402
from scheduler.settings import Settings  # noqa: E402

SLUG = "ml-foundations-2027"
SERIES = "class"
RULE = "class-1h"
SECRET = "bench-secret"
BASE_URL = "http://bench"
DOMAIN = "bench.example.org"
ROSTER = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]
PEOPLE = [  # (name, zone, locale) for the bulk learners, cycled
    ("Oliver Smith", "Europe/London", "en_GB"),
    ("Jürgen Weiß", "Europe/Berlin", "de_DE"),
    ("Élodie Martin", "Europe/Paris", "fr_FR"),
    ("佐藤 花子", "Asia/Tokyo", "ja_JP"),
    ("João Souza", "America/Sao_Paulo", "pt_BR"),
    ("Maria Garcia", "America/New_York", "en_US"),
]
LOG_PROBLEM = re.compile(r"WARNING|ERROR|CRITICAL|Traceback|Exception", re.I)
# APScheduler's note that a dispatch tick came while the previous one was still draining the
# queue: expected under a backlog, so counted apart from the other log lines.
TICK_SKIPPED = "maximum number of running instances reached"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def postgres_cpu(postmaster: int) -> float:
    """CPU time of this benchmark's PostgreSQL server: the postmaster ``postmaster`` and its
    live children (backends, autovacuum, ...). Other PostgreSQL servers on the machine (a test
    suite running meanwhile) are not counted."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            content = stat.read_text()
            pid = int(stat.parent.name)
            parent = int(content.rsplit(")", 1)[1].split()[1])
            if pid == postmaster or parent == postmaster:
                total += cpu_seconds(pid)
    return total


# --- databases ---------------------------------------------------------------------------------


class Databases:
    """Hands out a fresh, empty database URL per run and removes it afterwards."""

    def __init__(self, backend: str, folder: Path) -> None:
        self.backend, self.folder = backend, folder
        self.server: PgServer | None = None
        self._n = 0

    def start(self) -> None:
        if self.backend == "postgresql":
            self.server = PgServer.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def postmaster(self) -> int | None:
        """The PostgreSQL server's process id (None on SQLite)."""
        if self.server is None:
            return None
        return int((self.server.root / "data" / "postmaster.pid").read_text().split()[0])

    def _admin(self, sql: str) -> None:
        assert self.server is not None
        admin = create_engine(self.server.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as c:
                c.execute(text(sql))
        finally:
            admin.dispose()

    @contextlib.contextmanager
    def fresh(self) -> Iterator[str]:
        self._n += 1
        name = f"bench{self._n}"
        if self.server is None:
            path = self.folder / f"{name}.db"
            try:
                yield f"sqlite:///{path}"
            finally:
                for leftover in self.folder.glob(f"{name}.db*"):
                    leftover.unlink(missing_ok=True)
            return
        self._admin(f'CREATE DATABASE "{name}"')
        try:
            yield self.server.url(name)
        finally:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- setup -------------------------------------------------------------------------------------


@dataclass
class Prepared:
    url: str
    t0: datetime
    expected: dict[str, int]  # Message-ID -> notification id, the rows measured
    breakdown: Counter[str]  # measured rows by who gets them
    other_rows: int  # rows marked sent by the setup (welcome, invites, ...)
    setup_seconds: float
    sync_seconds: float
    sample: bytes | None  # one built reminder, for the raw baseline
    sample_id: str | None
    sample_envelope: tuple[str, tuple[str, ...]] | None


def _runtime(url: str, at: datetime) -> Runtime:
    engine = make_engine(url)
    settings = Settings.model_construct(
        database_url=url, base_url=BASE_URL, secret_key=SecretStr(SECRET)
    )
    return Runtime(settings, engine, make_session_factory(engine), FixedClock(at))


def _roster_csv() -> bytes:
    header = "name,email,timezone,availability,locale,role"
    return ("\n".join([header, *(",".join(r) for r in ROSTER)]) + "\n").encode()


def _add_learners(runtime: Runtime, count: int, now: datetime) -> None:
    """Bulk-insert ``count`` learners, enrolled and in section 0 of the class series."""
    with runtime.transaction() as db:
        cohort_id = db.scalar(select(CohortRow.id).where(CohortRow.slug == SLUG))
        people = []
        for i in range(count):
            name, zone, locale = PEOPLE[i % len(PEOPLE)]
            people.append(
                {
                    "email": f"learner{i:06d}@{DOMAIN}",
                    "name": f"{name} {i}",
                    "zone": zone,
                    "locale": locale,
                    "availability": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        db.execute(repo.table_of(PersonRow).insert(), people)
        ids = list(db.scalars(select(PersonRow.id).where(PersonRow.email.like(f"%@{DOMAIN}"))))
        assert len(ids) == count, (len(ids), count)
        db.execute(
            repo.table_of(EnrollmentRow).insert(),
            [
                {
                    "cohort_id": cohort_id,
                    "person_id": pid,
                    "role": "learner",
                    "status": "active",
                    "enrolled_at": now,
                }
                for pid in ids
            ],
        )
        # Section 1 of every live series, as the planner would place them (the worker's
        # late-joiner placement then leaves them alone).
        live = sorted(
            set(
                db.scalars(
                    select(LiveSeriesRow.series_key).where(
                        LiveSeriesRow.cohort_id == cohort_id,
                        LiveSeriesRow.kind != "coworking",
                    )
                )
            )
        )
        db.execute(
            repo.table_of(SectionMemberRow).insert(),
            [
                {"cohort_id": cohort_id, "series_key": key, "person_id": pid, "section": 0}
                for pid in ids
                for key in live
            ],
        )


def _measured(t0: datetime) -> ColumnElement[bool]:
    """The rows this benchmark measures: the class-1h live reminders due at T0."""
    return and_(
        NotificationRow.kind == LIVE_REMINDER,
        NotificationRow.rule == RULE,
        NotificationRow.due_at == t0,
    )


def prepare(
    url: str, learners: int, lead: float, *, want_sample: bool, analyze: bool = False
) -> Prepared:
    started = time.perf_counter()
    engine = make_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    now = datetime.now(UTC).replace(microsecond=0)
    runtime = _runtime(url, now)
    try:
        cohort_text = (REPO / "examples" / "cohort.toml").read_text(encoding="utf-8")
        with runtime.transaction() as db:
            load_cohort(db, cohort_text, "cohort.toml", now)
            import_roster(db, SLUG, _roster_csv(), "roster.csv", now)
            _, _, plan = plan_cohort(db, SLUG)
            publishing.publish(db, SLUG, plan, now)
        _add_learners(runtime, learners, now)

        # T0: whole second, `lead` seconds ahead; the first class of section 0 at T0 + 1 h.
        t0 = (datetime.now(UTC) + timedelta(seconds=lead + 1)).replace(microsecond=0)
        with runtime.transaction() as db:
            occurrence = db.scalars(
                select(OccurrenceRow)
                .join(LiveSeriesRow, LiveSeriesRow.id == OccurrenceRow.series_id)
                .where(LiveSeriesRow.series_key == SERIES, LiveSeriesRow.section == 0)
                .order_by(OccurrenceRow.start)
                .limit(1)
            ).one()
            length = occurrence.end - occurrence.start
            occurrence.start = t0 + timedelta(hours=1)
            occurrence.end = occurrence.start + length

        runtime.clock = FixedClock(t0 - timedelta(seconds=5))
        synced = time.perf_counter()
        with runtime.transaction() as db:
            sync_reminders(db, SLUG, runtime.clock.now(), timedelta(hours=2))
        sync_seconds = time.perf_counter() - synced

        with runtime.transaction() as db:
            measured = _measured(t0)
            other_rows = db.execute(
                update(NotificationRow)
                .where(not_(measured), NotificationRow.status == "pending")
                .values(status="sent")
            ).rowcount
            rows = db.execute(
                select(
                    NotificationRow.message_id,
                    NotificationRow.id,
                    PersonRow.email,
                    EnrollmentRow.role,
                )
                .join(PersonRow, PersonRow.id == NotificationRow.person_id)
                .join(
                    EnrollmentRow,
                    and_(
                        EnrollmentRow.person_id == PersonRow.id,
                        EnrollmentRow.cohort_id == NotificationRow.cohort_id,
                    ),
                )
                .where(measured, NotificationRow.status == "pending")
            ).all()
            stray = db.scalar(
                select(func.count()).where(
                    NotificationRow.kind == LIVE_REMINDER,
                    NotificationRow.rule == RULE,
                    NotificationRow.due_at != t0,
                    NotificationRow.status == "pending",
                )
            )
            assert not stray, f"{stray} class-1h reminders are pending with another due time"
        expected = {m: i for m, i, _, _ in rows}
        breakdown: Counter[str] = Counter(
            "bulk learner"
            if email.endswith("@" + DOMAIN)
            else ("roster learner" if role == "learner" else role)
            for _, _, email, role in rows
        )

        sample = sample_id = envelope = None
        if want_sample and expected:
            # The exact bytes a worker would send at T0 (rolled back: composing issues the
            # learner's mail token).
            db = runtime.sessions()
            try:
                (decision,) = compose(
                    db,
                    [min(expected.values())],
                    t0,
                    runtime.templates(),
                    runtime.delivery_config(),
                )
                assert decision.outgoing is not None, decision
                out = decision.outgoing
                sample, sample_id = out.data, out.message_id
                envelope = (out.sender, out.recipients)
            finally:
                db.rollback()
                db.close()
        if analyze and databases_on_postgres(url):
            with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                c.execute(text("ANALYZE"))
    finally:
        runtime.close()
    return Prepared(
        url,
        t0,
        expected,
        breakdown,
        int(other_rows or 0),
        time.perf_counter() - started,
        sync_seconds,
        sample,
        sample_id,
        envelope,
    )


# --- the sink ----------------------------------------------------------------------------------


class Sink:
    """tests/smtp_sink.py as a process: one for the whole benchmark."""

    def __init__(self, folder: Path) -> None:
        self.count_file = folder / "sink.count"
        self.ids_file = folder / "sink.ids"
        self.log = folder / "sink.log"
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self._offset = 0

    def start(self) -> None:
        with self.log.open("w") as err:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(REPO / "tests" / "smtp_sink.py"),
                    "--port",
                    "0",
                    "--count-file",
                    str(self.count_file),
                    "--ids-file",
                    str(self.ids_file),
                ],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.fullmatch(r"PORT (\d+)\n", line)
        if not match:
            raise RuntimeError(f"the SMTP sink did not start: {line!r} {self.log.read_text()}")
        self.port = int(match.group(1))

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cpu(self) -> float:
        assert self.process is not None
        return cpu_seconds(self.process.pid)

    def count(self) -> int:
        for _ in range(100):  # the sink replaces the file atomically; it is never half-written
            with contextlib.suppress(FileNotFoundError, ValueError):
                return int(self.count_file.read_text())
            time.sleep(0.005)
        raise RuntimeError("cannot read the sink's count file")

    def settle(self, timeout: float = 10.0) -> int:
        """Wait until the count stops moving for 0.3 s; return it."""
        deadline = time.monotonic() + timeout
        last, since = self.count(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.count()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= 0.3:
                break
        return last

    def new_ids(self, count: int) -> list[str]:
        """The next ``count`` Message-IDs the sink recorded after the last call."""
        deadline = time.monotonic() + 10
        while True:
            with self.ids_file.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
            end = data.rfind(b"\n") + 1
            lines = data[:end].splitlines()
            if len(lines) >= count or time.monotonic() > deadline:
                taken = lines[:count]
                self._offset += sum(len(line) + 1 for line in taken)
                return [line.decode("ascii", "replace") for line in taken]
            time.sleep(0.05)


# --- measurements ------------------------------------------------------------------------------


@dataclass
class RawRun:
    messages: int
    seconds: float
    sink_cpu: float  # seconds of CPU the sink used meanwhile

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def run_raw(sink: Sink, prepared: Prepared, k: int) -> RawRun:
    """smtplib, one connection, the reminder's bytes K times with distinct Message-IDs."""
    assert prepared.sample is not None
    assert prepared.sample_id is not None
    assert prepared.sample_envelope is not None
    old = prepared.sample_id.encode()
    assert prepared.sample.count(old) == 1, "the Message-ID should appear once in the message"
    sender, recipients = prepared.sample_envelope
    messages = []
    for _ in range(k):
        new = f"<{uuid.uuid4()}@cohort-scheduler>".encode()
        messages.append(prepared.sample.replace(old, new))
    before = sink.count()
    conn = smtplib.SMTP("127.0.0.1", sink.port, timeout=30)
    try:
        conn.ehlo()
        sink_cpu = sink.cpu()
        started = time.perf_counter()
        for data in messages:
            conn.sendmail(sender, list(recipients), data)
        elapsed = time.perf_counter() - started
        sink_cpu = sink.cpu() - sink_cpu
        conn.quit()
    finally:
        conn.close()
    got = sink.settle() - before
    ids = sink.new_ids(got)
    if got != k or len(set(ids)) != k:
        raise RuntimeError(f"raw: the sink received {got} ({len(set(ids))} distinct) of {k}")
    return RawRun(k, elapsed, sink_cpu)


def _raw_client(
    port: int,
    envelope: tuple[str, tuple[str, ...]],
    messages: list[bytes],
    ready: Any,
    go: Any,
    out: Any,
) -> None:
    """One raw client process: connect, wait for the start signal, send, report the times."""
    sender, recipients = envelope
    conn = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        conn.ehlo()
        ready.release()
        go.wait()
        started = time.perf_counter()  # CLOCK_MONOTONIC: comparable across processes
        for data in messages:
            conn.sendmail(sender, list(recipients), data)
        out.put((started, time.perf_counter()))
        conn.quit()
    finally:
        conn.close()


@dataclass
class CeilingRun:
    connections: int
    messages: int
    seconds: float
    sink_cpu: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def run_ceiling(sink: Sink, prepared: Prepared, k: int, connections: int) -> CeilingRun:
    """The sink's own ceiling: ``connections`` smtplib client processes in parallel, each over
    its own connection, sending pre-built bytes (K in all, distinct Message-IDs). Nothing of
    the product runs; this says how many messages per second this sink on this machine can
    accept at all, whoever sends them."""
    assert prepared.sample is not None
    assert prepared.sample_id is not None
    assert prepared.sample_envelope is not None
    old = prepared.sample_id.encode()
    messages = [
        prepared.sample.replace(old, f"<{uuid.uuid4()}@cohort-scheduler>".encode())
        for _ in range(k)
    ]
    context = multiprocessing.get_context("fork")
    ready, go, out = context.Semaphore(0), context.Event(), context.Queue()
    clients = [
        context.Process(
            target=_raw_client,
            args=(sink.port, prepared.sample_envelope, messages[i::connections], ready, go, out),
        )
        for i in range(connections)
    ]
    before = sink.count()
    for client in clients:
        client.start()
    try:
        for _ in clients:
            if not ready.acquire(timeout=30):
                raise RuntimeError("a raw client did not connect to the sink")
        sink_cpu = sink.cpu()
        go.set()
        times = [out.get(timeout=600) for _ in clients]
        sink_cpu = sink.cpu() - sink_cpu
    finally:
        for client in clients:
            client.join(timeout=30)
            if client.is_alive():
                client.kill()
    got = sink.settle() - before
    ids = sink.new_ids(got)
    if got != k or len(set(ids)) != k:
        raise RuntimeError(f"ceiling: the sink received {got} ({len(set(ids))} distinct) of {k}")
    seconds = max(end for _, end in times) - min(start for start, _ in times)
    return CeilingRun(connections, k, seconds, sink_cpu)


@dataclass
class WorkerRun:
    workers: int
    expected: int
    received: int  # at t_end (or at the timeout)
    seconds: float  # t_end - T0
    first_after: float | None  # first message received, seconds after T0
    recorded_after: float | None  # every measured row recorded, seconds after T0
    ready_before: float | None  # all workers had ticked this many seconds before T0
    statuses: dict[str, int]
    lateness: list[float]  # sent_at - due_at, seconds, sent rows
    lost: int
    duplicates: int
    unexpected: int
    retried_rows: int  # measured rows sent after more than one attempt
    exit_codes: list[int | None]
    per_worker: list[int]
    cpu: dict[str, float]  # CPU seconds from T0 until all recorded: workers, sink, postgres
    log_problems: list[str] = field(default_factory=list)
    ticks_skipped: int = 0  # APScheduler "maximum number of running instances" warnings
    timed_out: bool = False

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else float("nan")

    def late(self, q: float) -> float:
        return percentile(self.lateness, q)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return ordered[int(min(rank, len(ordered))) - 1]


def databases_on_postgres(url: str) -> bool:
    return url.startswith("postgresql")


def cohort_exe() -> str:
    return shutil.which("cohort", path=str(Path(sys.executable).parent)) or "cohort"


def worker_env(url: str, port: int, batch_size: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    env |= {
        "COHORT_DATABASE_URL": url,
        "COHORT_MAIL_BACKEND": "smtp",
        "COHORT_SMTP_HOST": "127.0.0.1",
        "COHORT_SMTP_PORT": str(port),
        "COHORT_SMTP_SECURITY": "none",
        "COHORT_SECRET_KEY": SECRET,
        "COHORT_BASE_URL": BASE_URL,
        "COHORT_WORKER_TICK_SECONDS": "0.2",
    }
    if batch_size is not None:
        env["COHORT_WORKER_BATCH_SIZE"] = str(batch_size)
    return env


def _stop(processes: list[subprocess.Popen[bytes]], timeout: float = 30) -> list[int | None]:
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for p in processes:
        try:
            codes.append(p.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            codes.append(None)  # did not stop on SIGTERM
    return codes


def run_workers(
    sink: Sink,
    prepared: Prepared,
    n: int,
    folder: Path,
    batch_size: int | None,
    timeout: float,
    tag: str,
    postmaster: int | None = None,
) -> WorkerRun:
    t0 = prepared.t0.timestamp()
    expected = len(prepared.expected)
    env = worker_env(prepared.url, sink.port, batch_size)
    base = sink.settle(timeout=2)
    logs = [folder / f"{tag}-worker{i}.log" for i in range(n)]
    processes: list[subprocess.Popen[bytes]] = []
    engine = make_engine(prepared.url)
    try:
        for log in logs:
            with log.open("wb") as out:
                processes.append(
                    subprocess.Popen(
                        [cohort_exe(), "worker"], env=env, cwd=folder, stdout=out, stderr=out
                    )
                )

        # Ready: every worker registered and ran its first dispatch tick (before T0, we hope).
        ready_before = None
        while time.time() < t0:
            with engine.connect() as c:
                ticked = c.scalar(
                    select(func.count()).where(
                        WorkerRow.stopped_at.is_(None), WorkerRow.last_tick_at.is_not(None)
                    )
                )
            if ticked == n:
                ready_before = t0 - time.time()
                break
            dead = [p.returncode for p in processes if p.poll() is not None]
            if dead:
                raise RuntimeError(f"a worker exited with {dead}: {logs[0].read_text()[-3000:]}")
            time.sleep(0.2)
        while time.time() < t0:
            time.sleep(0.01)
        pg = databases_on_postgres(prepared.url)
        cpu_start = {
            "workers": sum(cpu_seconds(p.pid) for p in processes),
            "sink": sink.cpu(),
            "postgres": postgres_cpu(postmaster) if pg and postmaster is not None else 0.0,
        }

        # Until the sink has them all. (No database polling here: on SQLite it would get in
        # the way of the worker.)
        first_after = None
        timed_out = False
        while True:
            got = sink.count() - base
            now = time.time()
            if got > 0 and first_after is None:
                first_after = now - t0
            if got >= expected:
                break
            if now - t0 > timeout:
                timed_out = True
                break
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"a worker died: {[p.returncode for p in processes]}")
            time.sleep(0.01)
        t_end = now
        received = got

        # Every measured row recorded (the last batch is written after it is sent).
        recorded_after = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as c:
                pending = c.scalar(
                    select(func.count()).where(
                        _measured(prepared.t0), NotificationRow.status == "pending"
                    )
                )
            if not pending:
                recorded_after = time.time() - t0
                break
            time.sleep(0.1)
        cpu = {
            "workers": sum(cpu_seconds(p.pid) for p in processes) - cpu_start["workers"],
            "sink": sink.cpu() - cpu_start["sink"],
        }
        if pg and postmaster is not None:
            cpu["postgres"] = postgres_cpu(postmaster) - cpu_start["postgres"]
        exit_codes = _stop(processes)
    finally:
        _stop(processes, timeout=5)

    try:
        total = sink.settle() - base
        ids = sink.new_ids(total)
        with engine.connect() as c:
            statuses = {
                status: count
                for status, count in c.execute(
                    select(NotificationRow.status, func.count())
                    .where(_measured(prepared.t0))
                    .group_by(NotificationRow.status)
                )
            }
            lateness = [
                (sent - due).total_seconds()
                for due, sent in c.execute(
                    select(NotificationRow.due_at, NotificationRow.sent_at).where(
                        _measured(prepared.t0), NotificationRow.status == "sent"
                    )
                )
            ]
            retried = c.scalar(
                select(func.count()).where(
                    _measured(prepared.t0),
                    NotificationRow.status == "sent",
                    NotificationRow.attempts > 1,
                )
            )
            per_worker = list(c.scalars(select(WorkerRow.sent).order_by(WorkerRow.sent.desc())))
    finally:
        engine.dispose()
    wanted = set(prepared.expected)
    seen = Counter(ids)
    problems = []
    ticks_skipped = 0
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if TICK_SKIPPED in line:
                ticks_skipped += 1
            elif LOG_PROBLEM.search(line):
                problems.append(f"{log.name}: {line}")
    return WorkerRun(
        workers=n,
        expected=expected,
        received=received,
        seconds=t_end - t0,
        first_after=first_after,
        recorded_after=recorded_after,
        ready_before=ready_before,
        statuses=statuses,
        lateness=lateness,
        lost=len(wanted - set(seen)),
        duplicates=sum(c - 1 for m, c in seen.items() if m in wanted),
        unexpected=sum(c for m, c in seen.items() if m not in wanted),
        retried_rows=int(retried or 0),
        exit_codes=exit_codes,
        per_worker=per_worker,
        cpu=cpu,
        log_problems=problems,
        ticks_skipped=ticks_skipped,
        timed_out=timed_out,
    )


# --- main --------------------------------------------------------------------------------------


def _describe(label: str, run: int, r: WorkerRun) -> str:
    s = r.statuses
    ready = f"ready {r.ready_before:.1f} s before T0" if r.ready_before is not None else "NOT READY"
    first = f"{r.first_after:.2f}" if r.first_after is not None else "-"
    recorded = f"{r.recorded_after:.1f} s" if r.recorded_after is not None else "NOT ALL"
    line = (
        f"  run {run} {label:<10} {r.rate:>8,.0f} msg/s   {r.received:,}/{r.expected:,} in "
        f"{r.seconds:.1f} s (first at T0+{first} s, all recorded at T0+{recorded}; {ready})\n"
        f"           lateness p50 {r.late(50):.1f} s  p99 {r.late(99):.1f} s  "
        f"max {r.late(100):.1f} s;  sent {s.get('sent', 0):,}  skipped {s.get('skipped', 0)}  "
        f"failed {s.get('failed', 0)}  cancelled {s.get('cancelled', 0)}  "
        f"pending {s.get('pending', 0)};  lost {r.lost}  duplicates {r.duplicates}  "
        f"unexpected {r.unexpected}  retried {r.retried_rows};  per worker "
        f"{'/'.join(f'{n:,}' for n in r.per_worker)};  exit {r.exit_codes}"
    )
    per = ", ".join(f"{k} {v / max(r.received, 1) * 1e3:.2f}" for k, v in r.cpu.items())
    line += f"\n           CPU ms per message: {per}"
    if r.ticks_skipped:
        line += f"; {r.ticks_skipped} 'tick skipped: still running' warnings logged"
    if r.timed_out:
        line += "\n           TIMED OUT"
    if r.log_problems:
        line += f"\n           {len(r.log_problems)} warning/error line(s) in the worker logs:"
        for problem in r.log_problems[:8]:
            line += f"\n             {problem[:300]}"
    return line


def code_version() -> str:
    """HEAD and the product files changed on top of it: the workers run the working tree,
    which other people may be editing while this runs."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "-C", str(REPO), "diff", "HEAD", "--", "scheduler", "jobs", "templates"],
            capture_output=True,
            check=True,
        ).stdout
        names = subprocess.run(
            ["git", "-C", str(REPO), "diff", "HEAD", "--name-only", "--", "scheduler", "jobs"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    if not diff:
        return head
    digest = hashlib.sha256(diff).hexdigest()[:8]
    return f"{head} + uncommitted changes {digest} ({', '.join(names)})"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--learners", type=int, default=20_000, help="bulk learners (20000)")
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration (3)")
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="COHORT_WORKER_BATCH_SIZE (product default)"
    )
    parser.add_argument(
        "--lead", type=float, default=25.0, help="seconds from setup to T0, for workers to start"
    )
    parser.add_argument("--raw-messages", type=int, default=5_000, help="raw baseline K (5000)")
    parser.add_argument(
        "--ceiling",
        default="1,2,4",
        help="parallel raw connections for the sink's ceiling, comma-separated ('' to skip)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per worker run")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="ANALYZE each database after setup (as autovacuum would within a minute or so; "
        "by default T0 comes ~25 s after a bulk load into a new database, before any statistics)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: 2,000 learners, 1 run")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs)")
    args = parser.parse_args()
    if args.quick:
        args.learners, args.runs = 2_000, 1
    worker_counts = [1, 2] if args.backend == "postgresql" else [1]
    batch = args.batch_size or Settings.model_fields["worker_batch_size"].default

    code = code_version()
    print(f"code: {code}")
    folder = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    databases = Databases(args.backend, folder)
    sink = Sink(folder)
    raw_runs: list[RawRun] = []
    ceilings: dict[int, list[CeilingRun]] = {
        int(c): [] for c in args.ceiling.split(",") if c.strip()
    }
    results: dict[int, list[WorkerRun]] = {n: [] for n in worker_counts}
    try:
        databases.start()
        sink.start()
        print(
            f"{args.backend}, {args.learners:,} bulk learners, batch size {batch}, tick 0.2 s, "
            f"{args.runs} run(s), lead {args.lead:g} s"
            f"{', ANALYZE after setup' if args.analyze else ', no ANALYZE after setup'}; "
            f"sink pid {sink.process.pid} "  # type: ignore[union-attr]
            f"port {sink.port}; {os.cpu_count()} CPUs, load average {_load()}"
        )
        sample: Prepared | None = None
        for run in range(1, args.runs + 1):
            for n in [0, *worker_counts]:  # 0: the raw baseline
                if n == 0:
                    if sample is None:
                        with databases.fresh() as url:
                            sample = prepare(url, len(PEOPLE), 0, want_sample=True)
                        assert sample.sample is not None
                        print(
                            f"raw baseline message: {len(sample.sample):,} bytes (a class-1h "
                            f"reminder as built by compose), {args.raw_messages:,} copies"
                        )
                    raw = run_raw(sink, sample, args.raw_messages)
                    raw_runs.append(raw)
                    print(
                        f"  run {run} {'raw':<10} {raw.rate:>8,.0f} msg/s   "
                        f"{raw.messages:,} in {raw.seconds:.2f} s, one connection; sink CPU "
                        f"{raw.sink_cpu / raw.messages * 1e3:.2f} ms per message"
                    )
                    if ceilings:
                        shown = []
                        for c in ceilings:
                            ceiling = run_ceiling(sink, sample, args.raw_messages, c)
                            ceilings[c].append(ceiling)
                            shown.append(
                                f"{c}: {ceiling.rate:,.0f} msg/s (sink CPU "
                                f"{ceiling.sink_cpu / ceiling.messages * 1e3:.2f} ms/msg)"
                            )
                        print(
                            f"  run {run} sink ceiling, raw smtplib client processes in "
                            f"parallel: {';  '.join(shown)}"
                        )
                    continue
                with databases.fresh() as url:
                    prepared = prepare(
                        url, args.learners, args.lead, want_sample=False, analyze=args.analyze
                    )
                    parts = ", ".join(
                        f"{c:,} {k}{'s' if c != 1 else ''}"
                        for k, c in sorted(prepared.breakdown.items())
                    )
                    print(
                        f"  setup: {len(prepared.expected):,} reminders pending, due at "
                        f"{prepared.t0:%H:%M:%S} UTC ({parts}); {prepared.other_rows:,} other "
                        f"rows marked sent; setup {prepared.setup_seconds:.1f} s "
                        f"(sync_reminders {prepared.sync_seconds:.1f} s)"
                    )
                    if datetime.now(UTC) >= prepared.t0:
                        print("  WARNING: setup took longer than --lead; T0 already passed")
                    result = run_workers(
                        sink,
                        prepared,
                        n,
                        folder,
                        args.batch_size,
                        args.timeout,
                        f"run{run}-{n}w",
                        databases.postmaster(),
                    )
                results[n].append(result)
                print(_describe(f"{n} worker{'s' if n > 1 else ''}", run, result))
    finally:
        sink.stop()
        databases.stop()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    raw_rate = statistics.median(r.rate for r in raw_runs)
    print()
    print(
        f"| configuration | msg/s (median of {args.runs}) | vs raw | lateness p50 s | p99 s "
        "| max s | sent | skipped | failed | cancelled | lost | duplicates |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| raw smtplib, 1 connection | {raw_rate:,.0f} | 100% | | | | | | | | | |")
    medians: dict[int, float] = {}
    for n, runs in results.items():
        medians[n] = rate = statistics.median(r.rate for r in runs)

        def total(status: str, runs: list[WorkerRun] = runs) -> int:
            return sum(r.statuses.get(status, 0) for r in runs)

        print(
            f"| {n} worker{'s' if n > 1 else ''} ({args.backend}) | {rate:,.0f} "
            f"| {rate / raw_rate:.0%} "
            f"| {statistics.median(r.late(50) for r in runs):.1f} "
            f"| {statistics.median(r.late(99) for r in runs):.1f} "
            f"| {statistics.median(r.late(100) for r in runs):.1f} "
            f"| {total('sent'):,} | {total('skipped')} | {total('failed')} "
            f"| {total('cancelled')} | {sum(r.lost for r in runs)} "
            f"| {sum(r.duplicates for r in runs)} |"
        )
    print("(lateness: median over runs; sent .. duplicates: summed over runs)")
    if ceilings:
        best = max(statistics.median(r.rate for r in runs) for runs in ceilings.values())
        print(
            "sink ceiling (not a goal; pre-built bytes, parallel raw connections, median of "
            f"{args.runs}): "
            + ", ".join(
                f"{c} connection{'s' if c > 1 else ''} "
                f"{statistics.median(r.rate for r in runs):,.0f} msg/s"
                for c, runs in ceilings.items()
            )
            + f"; 20,000 messages need at least {20_000 / best:.1f} s at the best of these "
            "(lateness p99 <= 2 s needs ~10,000 msg/s)"
        )
    print(f"load average at the end: {_load()}")
    if code_version() != code:
        print(f"WARNING: the code changed during the benchmark: now {code_version()}")
    print()
    one = results[1]
    print(f"1 worker / raw:      {medians[1] / raw_rate:.0%}   (goal >= 50%)")
    if 2 in medians:
        print(f"2 workers / raw:     {medians[2] / raw_rate:.0%}")
        print(f"2 workers / 1:       {medians[2] / medians[1]:.2f}x")
    worst_p99 = max(r.late(99) for runs in results.values() for r in runs)
    print(
        f"lateness p99:        1 worker {statistics.median(r.late(99) for r in one):.1f} s, "
        f"worst run {worst_p99:.1f} s   (goal <= 2 s)"
    )
    every = [r for runs in results.values() for r in runs]
    print(
        f"skipped, lost:       {sum(r.statuses.get('skipped', 0) for r in every)}, "
        f"{sum(r.lost for r in every)}   (goal 0, 0)"
    )
    bad_exit = [c for r in every for c in r.exit_codes if c != 0]
    if bad_exit:
        print(f"workers that did not exit 0 on SIGTERM: {bad_exit}")


if __name__ == "__main__":
    main()
