"""Delivery benchmark (issues 6 and 16): 20,000 reminders due at one instant, sent by `cohort
worker`, measured at the SMTP sink.

    .venv/bin/python bench/delivery.py [--learners 20000] [--runs 3] [--backend postgresql]
                                       [--workers 1,2] [--rate R] [--early 5m]
                                       [--sink aiosmtpd|smtp-sink] [--sink-limit R]
                                       [--batch-size N] [--lead 25] [--ceiling 1,2,4]
                                       [--analyze] [--quick] [--keep]

Issue 16's table (3 runs of each configuration, in this order; ~30-40 min)::

    .venv/bin/python bench/delivery.py --preset issue16

    2 workers, rate 300/s, early 5m, aiosmtpd           p99 <= 2 s, max <= 5 s, 0 before
                                                        not_before, <= 315 in any 1 s,
                                                        0 lost / duplicates / skipped
    the same, the sink 421s above 300/s                 the same, and every 421'd Message-ID
                                                        arrives exactly once
    1 and 2 workers, no rate, smtp-sink (Postfix)       p99 <= 2 s; 1 worker >= 60% of raw
    1 and 2 workers, no rate, aiosmtpd                  smtplib to the same sink, same run

A burst bigger than the rate can send within ``early`` (one run)::

    .venv/bin/python bench/delivery.py --learners 100000 --rate 300 [--early 5m]

reports how early the first message went (and how close any came to its not_before), that
none went before not_before, the lateness and that none was skipped.

Setup (not timed), on a fresh database for every worker run: a throwaway PostgreSQL 15 server
(tests/pg.py; one new database per run on it) or, with ``--backend sqlite``, a SQLite file
(one worker only). The example cohort (examples/cohort.toml; with ``--early`` its class-1h
rule's ``early`` rewritten) is loaded, a 3-learner roster imported, planned and published, as
the integration tests do. Then N learners (default 20,000; zones and locales varied over
en_GB, de_DE, fr_FR, ja_JP, pt_BR, en_US) are bulk-inserted with their enrollments and put in
section 0 of the "class" series, as a planner would. The first class of section 0 is moved to
start at T0 + 1 h, T0 being the real time ``--lead`` seconds ahead (enough for the workers to
start; with a rate, plus the time the rate needs for them all, at most the rule's early, plus
10 s, so the workers are up before they should begin). The reminders are written by the
product's own ``sync_reminders`` at the real time (the product never sets a row's not_before
before the moment it is written), which queues the welcome emails and a "class-1h" live
reminder due exactly at T0 for every member of the section (its facilitator included), with
``not_before`` = T0 - early (or the time of writing, if later). Every other row is marked
sent, so only the reminders due at T0 are measured.

What is measured, per configuration and run (configurations in order within each run):

- raw: the ceiling of this sink and client stack, once per sink kind in every run, against
  the same sink (without a 421 limit): plain ``smtplib`` sending the exact bytes of one
  reminder the product built (each copy with its own Message-ID) K times over one connection.
- workers: real ``cohort worker`` processes (SMTP to the sink, no TLS, tick 0.2 s, the
  product's batch size unless ``--batch-size``, ``COHORT_MAIL_RATE_PER_SECOND`` from
  ``--rate``), started ahead of T0 and reading the real clock. The sink records every accepted
  message's arrival time and Message-ID; joined to the rows by Message-ID:
  lateness = arrival - due_at (p50, p99, max; first arrival per row), arrivals before the
  row's ``not_before`` (must be 0), the first arrival relative to T0, the most arrivals within
  any 1.0 s sliding window (all of the run's arrivals), lost (rows never received),
  duplicates, unexpected ids, the 421s the sink gave and how many 421'd Message-IDs did not
  arrive exactly once. msg/s is the sending speed: messages / the time the sink was receiving
  them (gaps of more than 0.25 s between arrivals left out, since workers that send ahead
  pause on purpose); "vs raw" divides it by the raw rate of the same sink in the same run.
  From the database: rows by status (skipped must be 0), ``sent_at - due_at`` as the workers
  record it, rows retried, messages per worker. The workers are stopped with SIGTERM and must
  exit 0; warnings and errors in their logs are printed.
- sink ceiling (a printed line, not a goal): 1, 2 and 4 raw smtplib client processes in
  parallel (``--ceiling``), each over its own connection, sending pre-built bytes to the same
  sink: how many messages per second this sink can accept on this machine at all.

The sinks:

- ``aiosmtpd``: tests/smtp_sink.py in process mode (aiosmtpd on uvloop, no parsing), one
  process per sink configuration for the whole benchmark; arrival = ``time.time()`` at the end
  of DATA. ``--sink-limit R`` starts one that answers ``421 4.7.0 Try again later (rate
  limit)`` (and closes the connection) to any message that would make more than R accepted in
  the last 1.0 s, and records those Message-IDs.
- ``smtp-sink``: Postfix's C test server, found through ``$SMTP_SINK``, else
  /tmp/postfix-root (``cd /tmp && apt-get download postfix && dpkg -x postfix_*.deb
  /tmp/postfix-root``; run with ``LD_LIBRARY_PATH`` set to its usr/lib/postfix), else PATH;
  configurations using it are skipped with a printed line when it is absent. It dumps each
  message to its own file (``-d``): arrival = the file's mtime (written when the final "." is
  read; the kernel's coarse clock, so 10 ms of slack before not_before are not counted as
  early), Message-ID from the file; counts from its ``-c`` counters. Writing a file per
  message costs it throughput; it cannot 421 above a rate.

Statistics: by default T0 comes ~25 s after a bulk load into a brand-new database, before
autovacuum has analysed it, so PostgreSQL plans every query without statistics (the worst
case, and what a fresh install importing a big roster meets for its first minute or so).
``--analyze`` runs ANALYZE after the setup instead (the steady state).

CPU per message is read from /proc for the worker processes, the sink and this benchmark's
own PostgreSQL server (its postmaster and children: other servers on the machine, such as a
test suite's, are not counted), from the moment all workers are ready until all rows are
recorded.

Prints every run, then a table of the medians over the runs per configuration (counts summed
over runs) with the raw rate of each sink, and issue 16's goals beside each configuration
(met / MISSED). It measures; it asserts nothing about the goals. Without the product's
``not_before`` column or ``mail_rate_per_second`` setting, ``--early`` / ``--rate`` have no
effect (a note says so) and "before not_before" compares with due_at.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import hashlib
import multiprocessing
import os
import re
import shutil
import signal
import smtplib
import socket
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
from operator import sub
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
    ReminderRuleRow,
    SectionMemberRow,
    WorkerRow,
)
from scheduler.runtime import Runtime  # noqa: E402
from scheduler.services import publishing  # noqa: E402
from scheduler.services.bursts import busiest_stretch  # noqa: E402
from scheduler.services.cohorts import load_cohort  # noqa: E402
from scheduler.services.compose import compose  # noqa: E402
from scheduler.services.plans import plan_cohort  # noqa: E402
from scheduler.services.reminders import LIVE_REMINDER, sync_reminders  # noqa: E402
from scheduler.services.roster import import_roster  # noqa: E402
from scheduler.settings import Settings  # noqa: E402

SLUG = "ml-foundations-2027"
SERIES = "class"
RULE = "class-1h"
ASSUMED_RATE = 300.0  # msg/s: how long a burst takes without a rate, to set the lead
SECRET = "bench-secret-key-for-the-delivery-benchmark"  # >= 32 bytes, as the product wants
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
# What the product under test supports (other work lands these): the rule's `early` stored as
# each row's `not_before`, and a shared mail rate. Without them the options have no effect.
EARLY_SUPPORTED = hasattr(NotificationRow, "not_before")
RATE_SUPPORTED = "mail_rate_per_second" in Settings.model_fields
POSTFIX_ROOT = Path("/tmp/postfix-root")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def duration_seconds(text_: str) -> float:
    """'5m' -> 300, '90s' -> 90, '1h' -> 3600, '0' -> 0 (the cohort file's short durations)."""
    match = _DURATION.match(text_)
    if not match:
        raise ValueError(f"not a duration like '5m', '90s' or '0': {text_!r}")
    number, unit = match.groups()
    return float(number) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def with_early(cohort_text: str, early: str) -> str:
    """The cohort file with ``early = "<early>"`` on the measured rule (replacing its own)."""
    lines = cohort_text.splitlines(keepends=True)
    key = re.compile(rf'^\s*key\s*=\s*"{re.escape(RULE)}"\s*(#.*)?$')
    starts = [i for i, line in enumerate(lines) if key.match(line)]
    if len(starts) != 1:
        raise RuntimeError(f"cannot find the [[reminders]] rule {RULE!r} in the cohort file")
    start = starts[0]
    end = start + 1
    while end < len(lines) and not lines[end].lstrip().startswith("["):
        end += 1
    block = [line for line in lines[start + 1 : end] if not re.match(r"^\s*early\s*=", line)]
    return "".join([*lines[: start + 1], f'early = "{early}"\n', *block, *lines[end:]])


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
    # Message-ID -> the row's not_before (its due_at where the product has no such column)
    not_before: dict[str, datetime] = field(default_factory=dict)
    rule_early: float | None = None  # the measured rule's early as stored, seconds
    burst: str = ""  # the product's busiest-stretch line at the rate, as publish prints it


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
    url: str,
    learners: int,
    lead: float,
    *,
    want_sample: bool,
    analyze: bool = False,
    early: str | None = None,
    rate: float | None = None,
) -> Prepared:
    started = time.perf_counter()
    engine = make_engine(url)
    migrations.upgrade(engine)
    engine.dispose()
    now = datetime.now(UTC).replace(microsecond=0)
    runtime = _runtime(url, now)
    try:
        cohort_text = (REPO / "examples" / "cohort.toml").read_text(encoding="utf-8")
        if early is not None and EARLY_SUPPORTED:
            cohort_text = with_early(cohort_text, early)
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

        # At the real time (the product never lets a row go before it was written: not_before
        # is at least the moment sync_reminders runs).
        runtime.clock = FixedClock(min(datetime.now(UTC), t0 - timedelta(seconds=5)))
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
                    getattr(NotificationRow, "not_before", NotificationRow.due_at),
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
            stored = getattr(ReminderRuleRow, "early_seconds", None)
            rule_early = (
                db.scalar(
                    select(stored)
                    .join(CohortRow, CohortRow.id == ReminderRuleRow.cohort_id)
                    .where(CohortRow.slug == SLUG, ReminderRuleRow.key == RULE)
                )
                if stored is not None
                else None
            )
        with runtime.transaction() as db:  # what publishing this plan would have warned
            check = busiest_stretch(db, runtime.clock.now(), rate, look_ahead=timedelta(hours=2))
        expected = {m: i for m, i, _, _, _ in rows}
        not_before = {m: nb for m, _, _, _, nb in rows}
        breakdown: Counter[str] = Counter(
            "bulk learner"
            if email.endswith("@" + DOMAIN)
            else ("roster learner" if role == "learner" else role)
            for _, _, email, role, _ in rows
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
        not_before,
        float(rule_early) if rule_early is not None else None,
        "" if check is None else check.text(),
    )


# --- the sink ----------------------------------------------------------------------------------


class Sink:
    """tests/smtp_sink.py as a process (aiosmtpd on uvloop): one per sink configuration for
    the whole benchmark. Records ``<time.time()> <Message-ID>`` per accepted message and, with
    ``limit``, 421s (and records) any message above ``limit`` per 1 s sliding window."""

    kind = "aiosmtpd"
    granularity = 0.0  # arrival times are time.time() in the sink

    def __init__(self, folder: Path, limit: float | None = None) -> None:
        tag = "aiosmtpd" if limit is None else f"aiosmtpd-limit{limit:g}"
        self.limit = limit
        self.count_file = folder / f"{tag}.count"
        self.arrivals_file = folder / f"{tag}.arrivals"
        self.refused_file = folder / f"{tag}.refused"
        self.log = folder / f"{tag}.log"
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self._offset = 0
        self._refused_offset = 0

    def describe(self) -> str:
        limit = f", 421 above {self.limit:g}/s" if self.limit is not None else ""
        return f"{self.kind}{limit} (pid {self.pid}, port {self.port})"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        command = [
            sys.executable,
            str(REPO / "tests" / "smtp_sink.py"),
            "--port",
            "0",
            "--count-file",
            str(self.count_file),
            "--arrivals-file",
            str(self.arrivals_file),
            "--refused-file",
            str(self.refused_file),
        ]
        if self.limit is not None:
            command += ["--limit-per-second", str(self.limit)]
        with self.log.open("w") as err:
            self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True)
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
        return cpu_seconds(self.pid)

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

    @staticmethod
    def _lines(path: Path, offset: int) -> tuple[list[tuple[float, str]], int]:
        """Complete ``<time> <id>`` lines of ``path`` from ``offset``, and the new offset."""
        with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
            f.seek(offset)
            data = f.read()
            end = data.rfind(b"\n") + 1
            out = []
            for line in data[:end].splitlines():
                stamp, _, mid = line.partition(b" ")
                out.append((float(stamp), mid.decode("ascii", "replace")))
            return out, offset + end
        return [], offset

    def new_arrivals(self, count: int) -> list[tuple[float, str]]:
        """(arrival time, Message-ID) of the messages accepted since the last call, at least
        ``count`` of them (the sink flushes the file before it rewrites the count)."""
        deadline = time.monotonic() + 10
        while True:
            lines, end = self._lines(self.arrivals_file, self._offset)
            if len(lines) >= count or time.monotonic() > deadline:
                self._offset = end
                return lines
            time.sleep(0.05)

    def new_refused(self) -> list[tuple[float, str]]:
        """(time, Message-ID) of the messages refused with 421 since the last call."""
        lines, self._refused_offset = self._lines(self.refused_file, self._refused_offset)
        return lines


def find_smtp_sink() -> Path | None:
    """Postfix's smtp-sink: $SMTP_SINK, else a postfix .deb extracted to /tmp/postfix-root
    (``apt-get download postfix && dpkg -x postfix_*.deb /tmp/postfix-root``), else PATH."""
    for candidate in (
        os.environ.get("SMTP_SINK"),
        str(POSTFIX_ROOT / "usr" / "sbin" / "smtp-sink"),
        shutil.which("smtp-sink"),
        "/usr/sbin/smtp-sink",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


class PostfixSink(Sink):
    """Postfix's C ``smtp-sink`` (one process, event-driven), dumping each message to its own
    file with ``-d``: the arrival time is the file's mtime (written when the final "." is
    read, before the 250; the kernel's coarse clock, a few ms of granularity) and the
    Message-ID is read from the file. Counts come from its ``-c`` counters. It cannot 421
    above a rate."""

    kind = "smtp-sink"
    granularity = 0.01  # file mtimes: the kernel's coarse clock lags by up to a tick

    def __init__(self, folder: Path, binary: Path) -> None:
        super().__init__(folder)
        self.binary = binary
        self.dump_dir = folder / "smtp-sink-dumps"
        self.count_file = folder / "smtp-sink.counters"
        self.log = folder / "smtp-sink.log"

    def start(self) -> None:
        self.dump_dir.mkdir(exist_ok=True)
        with socket.socket() as probe:  # a free port (smtp-sink does not report one it picks)
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        env = dict(os.environ)
        libs = [self.binary.parents[1] / "lib" / "postfix", POSTFIX_ROOT / "usr/lib/postfix"]
        found = [str(d) for d in libs if d.is_dir()]
        if found:
            env["LD_LIBRARY_PATH"] = ":".join([*found, env.get("LD_LIBRARY_PATH", "")])
        command = [str(self.binary), "-c"]
        if os.geteuid() == 0:  # required as root; it switches to that user after binding
            command += ["-u", os.environ.get("USER") or getpass.getuser()]
        command += ["-d", f"{self.dump_dir}/m.", f"127.0.0.1:{self.port}", "1000"]
        with self.count_file.open("wb") as out, self.log.open("w") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err, env=env, text=True)
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn,
            ):
                conn.recv(100)  # the 220 greeting
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"smtp-sink did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def count(self) -> int:
        """The last ``mesg=N`` of its counters (``sess=.. quit=.. mesg=N\\r`` per event)."""
        try:
            with self.count_file.open("rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 200))
                tail = f.read()
        except FileNotFoundError:
            return 0
        found = re.findall(rb"mesg=(\d+)\r", tail)
        return int(found[-1]) if found else 0

    def new_arrivals(self, count: int) -> list[tuple[float, str]]:
        """Reads (and deletes) the dump files: (mtime, Message-ID), sorted by time."""
        deadline = time.monotonic() + 10
        while True:
            entries = [e for e in os.scandir(self.dump_dir) if e.is_file()]
            if len(entries) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        out = []
        for entry in entries:
            mtime = entry.stat().st_mtime_ns / 1e9
            with open(entry.path, "rb") as f:
                head = f.read(16384)
            found = _DUMP_MESSAGE_ID.search(head.split(b"\n\n", 1)[0])
            out.append((mtime, found.group(1).decode("ascii", "replace") if found else "<missing>"))
            os.unlink(entry.path)
        out.sort()
        return out

    def new_refused(self) -> list[tuple[float, str]]:
        return []


# smtp-sink writes lines with "\n" only (it drops the CRs)
_DUMP_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?(<[^>\r\n]*>)", re.I | re.M)


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
    ids = [mid for _, mid in sink.new_arrivals(got)]
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
    ids = [mid for _, mid in sink.new_arrivals(got)]
    if got != k or len(set(ids)) != k:
        raise RuntimeError(f"ceiling: the sink received {got} ({len(set(ids))} distinct) of {k}")
    seconds = max(end for _, end in times) - min(start for start, _ in times)
    return CeilingRun(connections, k, seconds, sink_cpu)


@dataclass(frozen=True)
class Config:
    """One measured configuration: workers, the mail rate they honour, the measured rule's
    ``early`` (None: as examples/cohort.toml has it), the sink and the rate it enforces."""

    workers: int
    sink: str = "aiosmtpd"  # or "smtp-sink" (Postfix)
    rate: float | None = None  # COHORT_MAIL_RATE_PER_SECOND
    early: str | None = None
    sink_limit: float | None = None  # the sink 421s above this many per second

    @property
    def label(self) -> str:
        parts = [f"{self.workers} worker{'s' if self.workers > 1 else ''}"]
        parts.append(f"rate {self.rate:g}/s" if self.rate else "no rate")
        if self.early is not None:
            parts.append(f"early {self.early}")
        parts.append(f"to {self.sink}")
        if self.sink_limit is not None:
            parts.append(f"421 above {self.sink_limit:g}/s")
        return ", ".join(parts)


# Issue 16's table, in order.
PRESET_ISSUE16 = [
    Config(2, "aiosmtpd", 300, "5m"),
    Config(2, "aiosmtpd", 300, "5m", 300),
    Config(1, "smtp-sink"),
    Config(2, "smtp-sink"),
    Config(1, "aiosmtpd"),
    Config(2, "aiosmtpd"),
]


@dataclass
class WorkerRun:
    config: Config
    expected: int
    received: int  # measured rows' messages the sink accepted (or had at the timeout)
    # seconds the sink was receiving this run's messages: the gaps between consecutive
    # arrivals, those over BUSY_GAP left out (workers that send ahead pause on purpose)
    seconds: float
    statuses: dict[str, int]
    db_lateness: list[float]  # sent_at - due_at, seconds, sent rows (as the workers record it)
    exit_codes: list[int | None]
    per_worker: list[int]
    cpu: dict[str, float]  # CPU seconds from "all workers ready" until all recorded
    recorded_after: float | None  # every measured row recorded, seconds after T0
    ready_before: float | None  # all workers had ticked this many seconds before T0
    retried_rows: int  # measured rows sent after more than one attempt
    # At the sink, arrivals joined to the rows by Message-ID:
    lateness: list[float] = field(default_factory=list)  # first arrival - due_at, per row
    first_after: float | None = None  # first arrival - T0 (negative: before T0)
    last_after: float | None = None  # last arrival - T0
    margin: float | None = None  # min over arrivals of (arrival - not_before)
    early: int = 0  # arrivals before their row's not_before
    max_1s: int = 0  # most arrivals (all of this run's) within any 1.0 s
    lost: int = 0
    duplicates: int = 0
    unexpected: int = 0
    refused: int = 0  # 421s the sink gave during the run
    refused_rows: int = 0  # distinct measured Message-IDs among them
    refused_not_once: int = 0  # of those, how many did not arrive exactly once
    raw_rate: float | None = None  # raw smtplib to the same sink in the same run
    log_problems: list[str] = field(default_factory=list)
    ticks_skipped: int = 0  # APScheduler "maximum number of running instances" warnings
    timed_out: bool = False

    @property
    def rate(self) -> float:
        return self.received / self.seconds if self.seconds > 0 else float("nan")

    @property
    def vs_raw(self) -> float:
        return self.rate / self.raw_rate if self.raw_rate else float("nan")

    def late(self, q: float) -> float:
        return percentile(self.lateness, q)

    @property
    def skipped(self) -> int:
        return self.statuses.get("skipped", 0)


BUSY_GAP = 0.25  # seconds without an arrival that count as a pause, not as sending time


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most of ``times`` within any ``window`` seconds (a sliding window)."""
    ordered, best, start = sorted(times), 0, 0
    for end, t in enumerate(ordered):
        while t - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def sink_figures(
    run: WorkerRun,
    prepared: Prepared,
    arrivals: list[tuple[float, str]],
    refused: list[tuple[float, str]],
    granularity: float,
) -> None:
    """Fills ``run``'s sink figures from the arrivals (time, Message-ID) of this run."""
    t0 = prepared.t0.timestamp()
    due = dict.fromkeys(prepared.expected, t0)  # every measured row is due at T0
    not_before = {m: nb.timestamp() for m, nb in prepared.not_before.items()}
    seen: Counter[str] = Counter()
    first: dict[str, float] = {}
    for at, mid in sorted(arrivals):
        seen[mid] += 1
        if mid in due:
            first.setdefault(mid, at)
    measured = [(at, mid) for at, mid in arrivals if mid in due]
    run.received = len(first)
    run.lateness = [at - due[m] for m, at in first.items()]
    if measured:
        run.first_after = min(at for at, _ in measured) - t0
        run.last_after = max(at for at, _ in measured) - t0
        times = sorted(at for at, _ in measured)
        run.seconds = sum(g for g in map(sub, times[1:], times[:-1]) if g <= BUSY_GAP)
        margins = [at - not_before.get(m, due[m]) for at, m in measured]
        run.margin = min(margins)
        # A timestamp granularity (smtp-sink's file mtimes) is not counted as early.
        run.early = sum(1 for x in margins if x < -granularity)
    run.max_1s = max_in_window([at for at, _ in arrivals])
    run.lost = len(set(due) - set(first))
    run.duplicates = sum(c - 1 for m, c in seen.items() if m in due)
    run.unexpected = sum(c for m, c in seen.items() if m not in due)
    run.refused = len(refused)
    refused_ids = {m for _, m in refused if m in due}
    run.refused_rows = len(refused_ids)
    run.refused_not_once = sum(1 for m in refused_ids if seen[m] != 1)


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


def worker_env(
    url: str, port: int, batch_size: int | None, rate: float | None = None
) -> dict[str, str]:
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
    if rate is not None and RATE_SUPPORTED:
        env["COHORT_MAIL_RATE_PER_SECOND"] = f"{rate:g}"
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
    config: Config,
    folder: Path,
    batch_size: int | None,
    timeout: float,
    tag: str,
    postmaster: int | None = None,
) -> WorkerRun:
    n = config.workers
    t0 = prepared.t0.timestamp()
    expected = len(prepared.expected)
    env = worker_env(prepared.url, sink.port, batch_size, config.rate)
    base = sink.settle(timeout=2)
    sink.new_arrivals(0)  # forget what came before (a previous run's stragglers)
    sink.new_refused()
    logs = [folder / f"{tag}-worker{i}.log" for i in range(n)]
    processes: list[subprocess.Popen[bytes]] = []
    engine = make_engine(prepared.url)
    pg = databases_on_postgres(prepared.url)
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
        # From here on the workers may send (ahead of T0 when they send early).
        cpu_start = {
            "workers": sum(cpu_seconds(p.pid) for p in processes),
            "sink": sink.cpu(),
            "postgres": postgres_cpu(postmaster) if pg and postmaster is not None else 0.0,
        }

        # Until the sink has them all. (No database polling here: on SQLite it would get in
        # the way of the worker.)
        timed_out = False
        while sink.count() - base < expected:
            if time.time() - t0 > timeout:
                timed_out = True
                break
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"a worker died: {[p.returncode for p in processes]}")
            time.sleep(0.01)

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
        arrivals = sink.new_arrivals(total)
        refused = sink.new_refused()
        with engine.connect() as c:
            statuses = {
                status: count
                for status, count in c.execute(
                    select(NotificationRow.status, func.count())
                    .where(_measured(prepared.t0))
                    .group_by(NotificationRow.status)
                )
            }
            db_lateness = [
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
    problems = []
    ticks_skipped = 0
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if TICK_SKIPPED in line:
                ticks_skipped += 1
            elif LOG_PROBLEM.search(line):
                problems.append(f"{log.name}: {line}")
    run = WorkerRun(
        config=config,
        expected=expected,
        received=0,
        seconds=float("nan"),
        statuses=statuses,
        db_lateness=db_lateness,
        exit_codes=exit_codes,
        per_worker=per_worker,
        cpu=cpu,
        recorded_after=recorded_after,
        ready_before=ready_before,
        retried_rows=int(retried or 0),
        log_problems=problems,
        ticks_skipped=ticks_skipped,
        timed_out=timed_out,
    )
    sink_figures(run, prepared, arrivals, refused, sink.granularity)
    return run


# --- main --------------------------------------------------------------------------------------


def _s(value: float | None, fmt: str = "+.2f") -> str:
    return "-" if value is None or value != value else f"{value:{fmt}}"


def _describe(run: int, r: WorkerRun) -> str:
    s = r.statuses
    ready = f"ready {r.ready_before:.1f} s before T0" if r.ready_before is not None else "NOT READY"
    recorded = f"T0{r.recorded_after:+.1f} s" if r.recorded_after is not None else "NOT ALL"
    raw = f" ({r.vs_raw:.0%} of raw)" if r.raw_rate else ""
    first_early = (
        "-"
        if r.first_after is None
        else f"{-r.first_after:.1f} s before T0"
        if r.first_after < 0
        else "not before T0"
    )
    line = (
        f"  run {run} {r.config.label}\n"
        f"           {r.rate:,.0f} msg/s while sending{raw} ({r.seconds:.1f} s)   "
        f"{r.received:,}/{r.expected:,} at the sink, "
        f"first at T0{_s(r.first_after)} s ({first_early}), last at T0{_s(r.last_after)} s; "
        f"all recorded at {recorded}; {ready}\n"
        f"           at the sink: lateness p50 {_s(r.late(50))} s  p99 {_s(r.late(99))} s  "
        f"max {_s(r.late(100))} s;  before not_before {r.early} (closest {_s(r.margin)} s "
        f"after it);  max in 1 s {r.max_1s};  lost {r.lost}  duplicates {r.duplicates}  "
        f"unexpected {r.unexpected};  421s {r.refused} ({r.refused_rows} rows, "
        f"{r.refused_not_once} not arrived exactly once)\n"
        f"           database: sent {s.get('sent', 0):,}  skipped {s.get('skipped', 0)}  "
        f"failed {s.get('failed', 0)}  cancelled {s.get('cancelled', 0)}  "
        f"pending {s.get('pending', 0)};  sent_at - due_at p99 "
        f"{_s(percentile(r.db_lateness, 99))} s;  retried {r.retried_rows};  per worker "
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


def _median(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def goals(config: Config, runs: list[WorkerRun]) -> list[tuple[str, str, bool]]:
    """Issue 16's goals for this configuration: (goal, measured, met). Timings are medians
    over the runs, counts are summed over them."""
    p99 = _median([r.late(99) for r in runs])
    out = [("lateness p99 <= 2 s", f"{p99:.2f} s", p99 <= 2)]
    if config.rate:
        worst = _median([r.late(100) for r in runs])
        cap = round(config.rate * 1.05)
        burst = _median([r.max_1s for r in runs])
        bad = sum(r.lost + r.duplicates + r.skipped for r in runs)
        early = sum(r.early for r in runs)
        out += [
            ("lateness max <= 5 s", f"{worst:.2f} s", worst <= 5),
            ("0 before not_before", f"{early}", early == 0),
            (
                f"max arrivals in 1 s <= {cap}",
                f"{burst:.0f} (worst run {max(r.max_1s for r in runs)})",
                burst <= cap,
            ),
            ("0 lost / duplicates / skipped", f"{bad}", bad == 0),
        ]
        if config.sink_limit is not None:
            refused = sum(r.refused for r in runs)
            not_once = sum(r.refused_not_once for r in runs)
            out.append(
                (
                    "every 421'd Message-ID arrived exactly once",
                    f"{refused} 421s, {not_once} not exactly once",
                    not_once == 0,
                )
            )
    elif config.workers == 1:
        ratio = _median([r.vs_raw for r in runs])
        out.append((">= 60% of raw smtplib, same sink, same run", f"{ratio:.0%}", ratio >= 0.6))
    return out


def print_table(
    results: dict[Config, list[WorkerRun]], raws: dict[str, list[RawRun]], runs: int
) -> None:
    print(
        f"| configuration (median of {runs} run(s)) | msg/s | vs raw | lateness p50 s | p99 s "
        "| max s | first s before T0 | before not_before | max in 1 s | lost | duplicates "
        "| skipped | unexpected | 421s | 421'd not once |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind, raw_runs in raws.items():
        if raw_runs:
            rate = _median([r.rate for r in raw_runs])
            print(f"| raw smtplib to {kind}, 1 connection | {rate:,.0f} | 100% |" + " |" * 12)
    for config, done in results.items():
        if not done:
            continue

        def med(f: Any, fmt: str = ".2f", done: list[WorkerRun] = done) -> str:
            return _s(_median([f(r) for r in done]), fmt)

        def total(f: Any, done: list[WorkerRun] = done) -> int:
            return sum(f(r) for r in done)

        print(
            f"| {config.label} | {med(lambda r: r.rate, ',.0f')} "
            f"| {med(lambda r: r.vs_raw, '.0%')} | {med(lambda r: r.late(50))} "
            f"| {med(lambda r: r.late(99))} | {med(lambda r: r.late(100))} "
            f"| {med(lambda r: -r.first_after if r.first_after is not None else None, '.1f')} "
            f"| {total(lambda r: r.early)} | {med(lambda r: r.max_1s, '.0f')} "
            f"| {total(lambda r: r.lost)} | {total(lambda r: r.duplicates)} "
            f"| {total(lambda r: r.skipped)} | {total(lambda r: r.unexpected)} "
            f"| {total(lambda r: r.refused)} | {total(lambda r: r.refused_not_once)} |"
        )
    print(
        "(at the sink, arrivals joined to the rows by Message-ID; timings and rates: median "
        "over runs; counts: summed over runs; vs raw: per run, against raw smtplib to the same "
        "sink in that run)"
    )
    print()
    print("goals (issue 16):")
    for config, done in results.items():
        if done:
            print(f"  {config.label}:")
            for goal, measured, met in goals(config, done):
                print(f"    {'met   ' if met else 'MISSED'}  {goal:<46} {measured}")


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
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="runs per configuration (3; 1 with more than 20,000 learners)",
    )
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="COHORT_WORKER_BATCH_SIZE (product default)"
    )
    parser.add_argument(
        "--lead",
        type=float,
        default=25.0,
        help="seconds from setup to T0, for workers to start (with --rate, plus the time the "
        "rate needs to send them all, at most the rule's early)",
    )
    parser.add_argument(
        "--workers", default=None, help="worker counts, comma-separated (1,2; 1 on SQLite)"
    )
    parser.add_argument(
        "--rate", type=float, default=None, help="COHORT_MAIL_RATE_PER_SECOND (unset: no limit)"
    )
    parser.add_argument(
        "--early",
        default=None,
        help="the class-1h rule's early, e.g. 5m or 0 (default: as examples/cohort.toml has it)",
    )
    parser.add_argument(
        "--sink-limit",
        type=float,
        default=None,
        help="the aiosmtpd sink answers 421 above this many messages per 1 s sliding window",
    )
    parser.add_argument("--sink", choices=["aiosmtpd", "smtp-sink"], default="aiosmtpd")
    parser.add_argument(
        "--preset",
        choices=["issue16"],
        default=None,
        help="issue16: run issue 16's table (ignores --workers/--rate/--early/--sink*)",
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
    if args.runs is None:
        args.runs = 1 if args.learners > 20_000 else 3
    if args.early is not None:
        duration_seconds(args.early)  # fail early on a typo
    if args.preset == "issue16":
        configs = list(PRESET_ISSUE16)
    else:
        if args.sink_limit is not None and args.sink != "aiosmtpd":
            parser.error("--sink-limit needs --sink aiosmtpd (smtp-sink cannot 421 above a rate)")
        counts = args.workers or ("1,2" if args.backend == "postgresql" else "1")
        configs = [
            Config(int(n), args.sink, args.rate, args.early, args.sink_limit)
            for n in counts.split(",")
            if n.strip()
        ]
    if args.backend == "sqlite" and any(c.workers > 1 for c in configs):
        parser.error("SQLite: one worker only")
    batch = args.batch_size or Settings.model_fields["worker_batch_size"].default

    code = code_version()
    print(f"code: {code}")
    if not EARLY_SUPPORTED:
        print(
            "note: this code has no notification.not_before: --early has no effect and "
            "'before not_before' compares with due_at"
        )
    if not RATE_SUPPORTED and any(c.rate for c in configs):
        print("note: this code has no mail_rate_per_second setting: --rate has no effect")
    smtp_sink = find_smtp_sink()
    if any(c.sink == "smtp-sink" for c in configs) and smtp_sink is None:
        print(
            "smtp-sink: not found (set SMTP_SINK, or `cd /tmp && apt-get download postfix && "
            "dpkg -x postfix_*.deb /tmp/postfix-root`): its configurations are SKIPPED"
        )
        configs = [c for c in configs if c.sink != "smtp-sink"]
    folder = Path(tempfile.mkdtemp(prefix="bench-delivery-"))
    databases = Databases(args.backend, folder)
    sinks: dict[tuple[str, float | None], Sink] = {}
    raws: dict[str, list[RawRun]] = {c.sink: [] for c in configs}
    ceilings: dict[tuple[str, int], list[CeilingRun]] = {}
    widths = [int(c) for c in args.ceiling.split(",") if c.strip()]
    results: dict[Config, list[WorkerRun]] = {c: [] for c in configs}

    def sink_for(kind: str, limit: float | None) -> Sink:
        if (kind, limit) not in sinks:
            if kind == "smtp-sink":
                assert smtp_sink is not None
                sink: Sink = PostfixSink(folder, smtp_sink)
            else:
                sink = Sink(folder, limit)
            sinks[kind, limit] = sink
            sink.start()
            print(f"sink: {sink.describe()}")
        return sinks[kind, limit]

    try:
        databases.start()
        print(
            f"{args.backend}, {args.learners:,} bulk learners, batch size {batch}, tick 0.2 s, "
            f"{args.runs} run(s), lead {args.lead:g} s"
            f"{', ANALYZE after setup' if args.analyze else ', no ANALYZE after setup'}; "
            f"{os.cpu_count()} CPUs, load average {_load()}"
        )
        print("configurations: " + "; ".join(c.label for c in configs))
        sample: Prepared | None = None
        for run in range(1, args.runs + 1):
            raw_now: dict[str, float] = {}  # sink kind -> raw msg/s in this run
            for config in configs:
                sink = sink_for(config.sink, config.sink_limit)
                if config.sink not in raw_now:  # raw: same sink kind, no limit, this run
                    plain = sink_for(config.sink, None)
                    if sample is None:
                        with databases.fresh() as url:
                            sample = prepare(url, len(PEOPLE), 0, want_sample=True)
                        assert sample.sample is not None
                        print(
                            f"raw baseline message: {len(sample.sample):,} bytes (a class-1h "
                            f"reminder as built by compose), {args.raw_messages:,} copies"
                        )
                    raw = run_raw(plain, sample, args.raw_messages)
                    raws[config.sink].append(raw)
                    raw_now[config.sink] = raw.rate
                    print(
                        f"  run {run} raw smtplib to {config.sink}: {raw.rate:,.0f} msg/s   "
                        f"{raw.messages:,} in {raw.seconds:.2f} s, one connection; sink CPU "
                        f"{raw.sink_cpu / raw.messages * 1e3:.2f} ms per message"
                    )
                    if widths:
                        shown = []
                        for c in widths:
                            ceiling = run_ceiling(plain, sample, args.raw_messages, c)
                            ceilings.setdefault((config.sink, c), []).append(ceiling)
                            shown.append(
                                f"{c}: {ceiling.rate:,.0f} msg/s (sink CPU "
                                f"{ceiling.sink_cpu / ceiling.messages * 1e3:.2f} ms/msg)"
                            )
                        print(
                            f"  run {run} {config.sink} ceiling, raw smtplib client processes "
                            f"in parallel: {';  '.join(shown)}"
                        )
                early = config.early or "5m"
                ahead = 0.0
                if RATE_SUPPORTED and duration_seconds(early) > 0:
                    # The workers must be running before the burst has to start, as they are
                    # in a deployment (reminders are written hours ahead): give them the time
                    # the burst needs at the rate (without one, at an assumed 300 msg/s), at
                    # most the window, plus a margin.
                    speed = config.rate or ASSUMED_RATE
                    ahead = min(args.learners / speed, duration_seconds(early)) + 10
                with databases.fresh() as url:
                    prepared = prepare(
                        url,
                        args.learners,
                        args.lead + ahead,
                        want_sample=False,
                        analyze=args.analyze,
                        early=config.early,
                        rate=config.rate,
                    )
                    parts = ", ".join(
                        f"{c:,} {k}{'s' if c != 1 else ''}"
                        for k, c in sorted(prepared.breakdown.items())
                    )
                    not_before = sorted(prepared.not_before.values())
                    spread = (
                        f"not_before T0{(not_before[0] - prepared.t0).total_seconds():+.1f} .. "
                        f"T0{(not_before[-1] - prepared.t0).total_seconds():+.1f} s"
                        if not_before
                        else "no rows"
                    )
                    stored = (
                        f"early {prepared.rule_early:g} s as stored"
                        if prepared.rule_early is not None
                        else "no early stored"
                    )
                    print(
                        f"  setup: {len(prepared.expected):,} reminders pending, due at "
                        f"{prepared.t0:%H:%M:%S} UTC ({parts}); {stored}, {spread}; "
                        f"{prepared.other_rows:,} other rows marked sent; setup "
                        f"{prepared.setup_seconds:.1f} s (sync_reminders "
                        f"{prepared.sync_seconds:.1f} s), lead {args.lead + ahead:g} s"
                    )
                    if prepared.burst:
                        print(f"  burst check (as publish shows it): {prepared.burst}")
                    if datetime.now(UTC) >= prepared.t0:
                        print("  WARNING: setup took longer than --lead; T0 already passed")
                    result = run_workers(
                        sink,
                        prepared,
                        config,
                        folder,
                        args.batch_size,
                        args.timeout,
                        f"run{run}-{len(results[config])}-{config.workers}w",
                        databases.postmaster(),
                    )
                result.raw_rate = raw_now.get(config.sink)
                results[config].append(result)
                print(_describe(run, result))
    finally:
        for sink in sinks.values():
            sink.stop()
        databases.stop()
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    print()
    print_table(results, raws, args.runs)
    for kind in raws:
        shown = [
            f"{c} connection{'s' if c > 1 else ''} "
            f"{_median([r.rate for r in ceilings[kind, c]]):,.0f} msg/s"
            for c in widths
            if ceilings.get((kind, c))
        ]
        if shown:
            print(
                f"{kind} ceiling (not a goal; pre-built bytes, parallel raw connections, median "
                f"of {args.runs}): " + ", ".join(shown)
            )
    print(f"load average at the end: {_load()}")
    if code_version() != code:
        print(f"WARNING: the code changed during the benchmark: now {code_version()}")
    every = [r for runs in results.values() for r in runs]
    bad_exit = [c for r in every for c in r.exit_codes if c != 0]
    if bad_exit:
        print(f"workers that did not exit 0 on SIGTERM: {bad_exit}")


if __name__ == "__main__":
    main()
