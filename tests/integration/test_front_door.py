"""The README's by-hand commands, run exactly as written, from the clone's root and from inside
the folder `cohort init` made (where `./cohort.toml` is the cohort file, with no [settings])."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from cli_run import cohort

REPO = Path(__file__).resolve().parents[2]
LONG_RUNNING = {("serve",), ("worker",)}  # run until Ctrl+C: not part of a scripted check


def readme_by_hand() -> list[list[str]]:
    """The `cohort ...` lines of the README's "By hand" block, as argument lists."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"By hand[^\n]*\n\n```sh\n(.*?)```", text, re.S)
    assert block is not None, "the README has no 'By hand' block"
    commands = []
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        if words and words[0] == "cohort" and tuple(words[1:]) not in LONG_RUNNING:
            commands.append(words[1:])
    assert len(commands) >= 10
    return commands


@pytest.mark.parametrize("where", ["clone_root", "inside_init_folder"])
def test_readme_by_hand_block_runs_without_a_traceback(
    tmp_path: Path, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite in the folder the commands run in, as a new user gets it (no COHORT_* variables).
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    env["COLUMNS"] = "200"
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "roster-with-mistakes.csv").write_bytes(
        (REPO / "examples" / "roster-with-mistakes.csv").read_bytes()
    )
    cwd = tmp_path
    for args in readme_by_hand():
        if where == "inside_init_folder" and args[0] != "init":
            args = [a.removeprefix("demo/") for a in args]
            if args[:2] == ["roster", "validate"]:
                args[2] = str(tmp_path / args[2])
        result = cohort(env, cwd, *args)
        shown = f"cohort {' '.join(args)} (in {where}):\n{result.stdout}\n{result.stderr}"
        assert "Traceback" not in result.stdout + result.stderr, shown
        expected = 1 if args[:2] == ["roster", "validate"] else 0  # that one finds mistakes
        assert result.returncode == expected, shown
        if args[0] == "init" and where == "inside_init_folder":
            cwd = tmp_path / "demo"
    assert (cwd / "var" / "cohort.db").exists()


def test_status_and_not_found_errors_name_the_database_in_use(tmp_path: Path) -> None:
    """`cd demo` silently starts another database: say which one is in use."""
    env: dict[str, Any] = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    env["COLUMNS"] = "300"
    assert cohort(env, tmp_path, "db", "upgrade").returncode == 0
    database = f"sqlite:///{(tmp_path / 'var' / 'cohort.db').resolve()}"
    status = cohort(env, tmp_path, "status")
    assert status.returncode == 0, status.stderr
    assert f"database: {database}" in status.stdout
    assert f'"database": "{database}"' in cohort(env, tmp_path, "status", "--json").stdout
    missing = cohort(env, tmp_path, "roster", "list", "--cohort", "nope")
    assert missing.returncode == 1
    assert "no cohort with slug 'nope'" in missing.stderr
    assert database in missing.stderr.replace("\n", "")
