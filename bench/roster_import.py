"""Benchmark: validate and import a roster of N learners into a fresh SQLite database.

Prints the median of several runs (the machine is shared and noisy) and rows per second.
Usage: python bench/roster_import.py [--rows 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from scheduler.clock import SystemClock
from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine, make_session_factory
from scheduler.resources import resource_dir
from scheduler.roster import parse_roster
from scheduler.runtime import Runtime
from scheduler.sample import roster_csv, sample_learners
from scheduler.services.cohorts import load_cohort
from scheduler.services.roster import import_roster
from scheduler.settings import Settings

SLUG = "ml-foundations-2027"


def one_run(data: bytes, folder: Path, run: int) -> tuple[float, float, int]:
    url = f"sqlite:///{folder / f'bench{run}.db'}"
    engine = make_engine(url)
    migrations.upgrade(engine)
    runtime = Runtime(
        Settings.model_construct(database_url=url),
        engine,
        make_session_factory(engine),
        SystemClock(),
    )
    with runtime.transaction() as db:
        load_cohort(
            db,
            (resource_dir("examples") / "cohort.toml").read_text(),
            "cohort.toml",
            runtime.clock.now(),
        )
    started = time.perf_counter()
    report = parse_roster(data, "bench.csv")
    validated = time.perf_counter()
    with runtime.transaction() as db:
        result = import_roster(db, SLUG, data, "bench.csv", runtime.clock.now())
    finished = time.perf_counter()
    engine.dispose()
    assert report.ok
    assert len(result.added) == len(report.entries)
    return validated - started, finished - started, len(result.added)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data = roster_csv(sample_learners(args.rows, random.Random(7))).encode()
    print(f"roster: {args.rows:,} rows, {len(data) / 1e6:.1f} MB; {args.runs} runs on SQLite")
    print("note: 'import' parses the file again inside the service, so it includes validation")
    validate_times, total_times = [], []
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.runs):
            validate_s, total_s, added = one_run(data, Path(folder), run)
            validate_times.append(validate_s)
            total_times.append(total_s - validate_s)
            print(
                f"  run {run + 1}: validate {validate_s:.2f} s, "
                f"validate+import {total_s - validate_s:.2f} s ({added:,} added)"
            )
    v, t = statistics.median(validate_times), statistics.median(total_times)
    print(f"median validate only:    {v:.2f} s = {args.rows / v:,.0f} rows/s")
    print(
        f"median validate+import:  {t:.2f} s = {args.rows / t:,.0f} rows/s  "
        "(goal: <= 10 s for 100,000 rows)"
    )


if __name__ == "__main__":
    main()
