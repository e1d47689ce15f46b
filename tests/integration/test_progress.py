"""Long work shows progress bars on a terminal's stderr, never in a pipe and never with --json:
the real `cohort` command, its stderr a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_run import cohort

ROWS = 3000


def _run_on_terminal(env: dict[str, Any], cwd: Path, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, what the terminal got on stderr) of `cohort ARGS` whose stderr is
    a pseudo-terminal (stdout stays a pipe)."""
    exe = shutil.which("cohort", path=str(Path(sys.executable).parent)) or "cohort"
    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [exe, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=slave, text=True
        )
        os.close(slave)
        seen = bytearray()
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        stdout = process.stdout.read() if process.stdout else ""
        status = process.wait(timeout=120)
    finally:
        os.close(master)
    return status, stdout, seen.decode("utf-8", "replace")


@pytest.fixture
def folder(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    env.update(COLUMNS="120", TERM="xterm")
    env.pop("NO_COLOR", None)
    result = cohort(env, tmp_path, "init", ".", "--learners", str(ROWS))
    assert result.returncode == 0, result.stderr
    return env, tmp_path


def test_a_terminal_sees_each_step_with_its_counts(folder: tuple[dict[str, Any], Path]) -> None:
    env, where = folder
    status, stdout, terminal = _run_on_terminal(env, where, "roster", "validate", "roster.csv")
    assert status == 0, terminal
    assert "reading roster.csv" in terminal
    assert f"{ROWS}/{ROWS}" in terminal  # the bar's count, the whole file read
    assert "reading" not in stdout  # the bars go to stderr only

    assert cohort(env, where, "db", "upgrade").returncode == 0
    assert cohort(env, where, "cohort", "load", "cohort.toml").returncode == 0
    status, stdout, terminal = _run_on_terminal(env, where, "roster", "import", "roster.csv")
    assert status == 0, terminal
    assert "storing" in terminal
    assert f"Imported {ROWS} row(s)" in stdout
    status, stdout, terminal = _run_on_terminal(env, where, "plan", "--publish")
    assert status == 0, terminal
    for step in ("planning 3 series", "storing the plan", "recomputing deadlines", "invitations"):
        assert step in terminal, step
    assert "Published" in stdout


def test_no_bars_in_a_pipe_or_with_json(folder: tuple[dict[str, Any], Path]) -> None:
    env, where = folder
    piped = cohort(env, where, "roster", "validate", "roster.csv")
    assert piped.returncode == 0
    assert "reading" not in piped.stderr
    status, stdout, terminal = _run_on_terminal(
        env, where, "roster", "validate", "roster.csv", "--json"
    )
    assert status == 0
    assert "reading" not in terminal
    assert stdout.lstrip().startswith("{")
