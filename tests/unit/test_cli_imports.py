"""`cohort --help` answers in a blink: the CLI module imports none of the heavy libraries, and
neither do the commands that need none of them (their cost is measured by bench/cli.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("numpy", "sqlalchemy", "alembic", "fastapi", "uvicorn", "jinja2", "icalendar")
# What a command may load on top: the database layer, never the planner, web stack or templates.
DATABASE = ("sqlalchemy",)

PROBE = """
import json, sys
argv = json.loads(sys.argv[1])
if argv is None:
    import scheduler.cli
else:
    sys.argv = ["cohort", *argv]
    from scheduler.cli import main
    try:
        main()
    except SystemExit:
        pass
loaded = sorted(sys.modules)
sys.stderr.write("\\nLOADED " + json.dumps(loaded) + "\\n")
"""


def loaded_after(argv: list[str] | None, cwd: str | None = None) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
    )
    line = next(x for x in result.stderr.splitlines() if x.startswith("LOADED "))
    return set(json.loads(line.removeprefix("LOADED ")))


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_importing_the_cli_loads_no_heavy_library() -> None:
    loaded = top_level(loaded_after(None))
    assert "typer" in loaded  # the probe really imported the CLI
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize(
    "argv", [["--help"], ["version"], ["roster", "--help"], ["plan", "--help"]]
)
def test_help_and_version_load_no_heavy_library(argv: list[str]) -> None:
    loaded = top_level(loaded_after(argv))
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))
    assert "pydantic_settings" not in loaded  # no settings are read to print help


def test_status_loads_the_database_layer_only(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "db", "upgrade"],
        cwd=tmp_path,
        capture_output=True,
        check=True,
    )
    modules = loaded_after(["status"], cwd=str(tmp_path))
    assert "scheduler.services.outbox" in modules  # status really ran its query
    loaded = top_level(modules)
    assert "sqlalchemy" in loaded
    assert loaded.isdisjoint(set(HEAVY) - set(DATABASE)), sorted(loaded & set(HEAVY))


def test_roster_list_loads_the_database_layer_only(tmp_path: Path) -> None:
    """The people read model is light: listing a roster loads no planner, calendar or mail."""
    cli = [sys.executable, "-m", "scheduler.cli"]
    subprocess.run([*cli, "init", "demo", "--learners", "5"], cwd=tmp_path, check=True)
    for argv in (["db", "upgrade"], ["cohort", "load", "demo/cohort.toml"]):
        subprocess.run([*cli, *argv], cwd=tmp_path, capture_output=True, check=True)
    modules = loaded_after(["roster", "list", "--limit", "3"], cwd=str(tmp_path))
    assert "scheduler.services.people" in modules  # the listing really ran
    loaded = top_level(modules)
    assert loaded.isdisjoint(set(HEAVY) - set(DATABASE)), sorted(loaded & set(HEAVY))
