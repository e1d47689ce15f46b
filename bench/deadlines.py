"""Benchmark: every learner's deadlines computed and stored, 100k learners, on SQLite.

Setup (not timed): the example cohort (2 classes a week in sections, co-working, 2 assignments
due around every class, reminders) with N sampled learners, planned and published. Timed: the
deadline step that publishing runs, compute + store (``publish_deadlines``), from empty tables,
several runs; prints the median. Usage: python bench/deadlines.py [--learners 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import delete

from scheduler.clock import SystemClock
from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine, make_session_factory
from scheduler.persistence.models import DeadlineGroupRow, LearnerDeadlinesRow
from scheduler.resources import resource_dir
from scheduler.runtime import Runtime
from scheduler.sample import roster_csv, sample_learners
from scheduler.services.cohorts import load_cohort
from scheduler.services.deadlines import deadline_summary, publish_deadlines
from scheduler.services.plans import plan_cohort, publish_plan
from scheduler.services.roster import import_roster
from scheduler.settings import Settings

SLUG = "ml-foundations-2027"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        engine = make_engine(url)
        migrations.upgrade(engine)
        rt = Runtime(
            Settings.model_construct(database_url=url),
            engine,
            make_session_factory(engine),
            SystemClock(),
        )
        started = time.perf_counter()
        with rt.transaction() as db:
            load_cohort(
                db,
                (resource_dir("examples") / "cohort.toml").read_text(),
                "cohort.toml",
                rt.clock.now(),
            )
            data = roster_csv(sample_learners(args.learners, random.Random(11))).encode()
            import_roster(db, SLUG, data, "bench.csv", rt.clock.now())
            _, _, plan = plan_cohort(db, SLUG)
            publish_plan(db, SLUG, plan, rt.clock.now())
        setup = time.perf_counter() - started
        print(f"setup: {args.learners:,} learners imported, planned, published in {setup:.1f} s")
        times = []
        for run in range(args.runs):
            with rt.transaction() as db:
                db.execute(delete(LearnerDeadlinesRow))
                db.execute(delete(DeadlineGroupRow))
            started = time.perf_counter()
            with rt.transaction() as db:
                summary = publish_deadlines(db, SLUG, rt.clock.now())
            times.append(time.perf_counter() - started)
            print(
                f"  run {run + 1}: {times[-1]:.2f} s "
                f"({summary.items:,} learner-items, {summary.groups:,} lists)"
            )
        with rt.transaction() as db:
            counts = deadline_summary(db, SLUG)
        started = time.perf_counter()
        with rt.transaction() as db:
            again = publish_deadlines(db, SLUG, rt.clock.now())
        unchanged = time.perf_counter() - started
        engine.dispose()
    per_learner = counts.items / max(counts.learners, 1)
    print(f"learner-items by kind: {counts.by_kind} ({per_learner:.1f} per learner)")
    median = statistics.median(times)
    print(
        f"median compute + store: {median:.2f} s for {counts.learners:,} learners "
        "(goal: <= 15 s for 100k learners x 16 assignments)"
    )
    print(f"recompute, nothing changed: {unchanged:.2f} s ({again.changed_learners} changed)")


if __name__ == "__main__":
    main()
