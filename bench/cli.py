"""CLI start-up benchmark (issue 14): how long `cohort` takes to answer, beside `pip --version`.

    .venv/bin/python bench/cli.py [--runs 9]

Setup (not timed): a temporary folder holding the example cohort (`cohort init`, `db upgrade`,
`cohort load`, `roster import`: 150 learners), the folder every command then runs in.

Measured, interleaved run by run so that the machine's drift hits every command alike: the
wall time of a whole process (start to exit, output thrown away) for `pip --version` (the
baseline: a Python CLI that imports next to nothing), `cohort --help`, `cohort version`,
`cohort status` and `cohort roster list --limit 8`. Printed: min / median / max per command and
the median of the per-run ratios to the baseline, beside the goal (--help and version at most
2x the baseline, status and roster list at most 4x). The figures are printed, not judged: the
machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
COHORT = str(BIN / "cohort")
SLUG = "ml-foundations-2027"
COMMANDS: dict[str, tuple[list[str], float | None]] = {
    "pip --version": ([str(BIN / "pip"), "--version"], None),
    "cohort --help": ([COHORT, "--help"], 2.0),
    "cohort version": ([COHORT, "version"], 2.0),
    "cohort status": ([COHORT, "status"], 4.0),
    "cohort roster list --limit 8": (
        [COHORT, "roster", "list", "--cohort", SLUG, "--limit", "8"],
        4.0,
    ),
}


def run(argv: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def setup(folder: Path) -> None:
    for argv in (
        [COHORT, "init", "."],
        [COHORT, "db", "upgrade"],
        [COHORT, "cohort", "load", "cohort.toml"],
        [COHORT, "roster", "import", "roster.csv", "--cohort", SLUG],
    ):
        subprocess.run(argv, cwd=folder, stdout=subprocess.DEVNULL, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    os.environ.pop("COHORT_DATABASE_URL", None)  # the folder's own var/cohort.db
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        folder = Path(tmp)
        setup(folder)
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for argv, _ in COMMANDS.values():  # one warm-up each: the page cache, .pyc files
            run(argv, folder)
        for _ in range(args.runs):
            for name, (argv, _) in COMMANDS.items():
                times[name].append(run(argv, folder))
    base = times["pip --version"]
    print(f"{args.runs} runs each, interleaved; wall seconds of the whole process")
    print(f"{'command':<30} {'min':>6} {'median':>7} {'max':>6}  {'x pip (median)':>14}  goal")
    for name, (_, goal) in COMMANDS.items():
        t = times[name]
        ratio = statistics.median(a / b for a, b in zip(t, base, strict=True))
        goal_text = "" if goal is None else f"<= {goal:.0f}x"
        print(
            f"{name:<30} {min(t):6.3f} {statistics.median(t):7.3f} {max(t):6.3f}  "
            f"{ratio:14.2f}  {goal_text}"
        )


if __name__ == "__main__":
    main()
