"""The real `cohort` command with hostile stored text, and the files it creates: names reach the
terminal with control characters escaped and Rich markup shown as written; the SQLite folder and
files it creates are private to the user (0700 / 0600)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_run import cohort
from test_web_hardening import cohort_serve

SLUG = "ml-foundations-2027"
HOSTILE = {  # email: name as stored (the roster import refuses C0 controls, so they are
    # written to the database directly: an older version, another tool or a restore put them there)
    "c1@example.org": "Ann\x9b2JCSI",
    "esc@example.org": "Bo\x1b[31mRed",
    "bidi@example.org": "Cy\u202eevil",
    "markup@example.org": "[red]x[/]",
    "osc@example.org": "Di\x1b]0;pwn\x07",
}
UNSAFE = ("\x1b", "\x9b", "\u202e", "\x07")


def _env(database: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    env["COHORT_DATABASE_URL"] = f"sqlite:///{database}"
    env["COLUMNS"] = "200"
    return env


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """A cohort whose people have hostile names: (environment, working folder)."""
    work = tmp_path_factory.mktemp("hostile")
    env = _env(work / "c.db")
    assert cohort(env, work, "init", "demo", "--learners", "3").returncode == 0
    assert cohort(env, work, "db", "upgrade").returncode == 0
    assert cohort(env, work, "cohort", "load", "demo/cohort.toml").returncode == 0
    rows = "".join(
        f"Person {i},{email},Europe/Berlin,,,learner\n" for i, email in enumerate(HOSTILE)
    )
    roster = work / "hostile.csv"
    roster.write_text("name,email,timezone,availability,locale,role\n" + rows, encoding="utf-8")
    imported = cohort(env, work, "roster", "import", str(roster), "--cohort", SLUG)
    assert imported.returncode == 0, imported.stderr
    with sqlite3.connect(work / "c.db") as db:
        for email, name in HOSTILE.items():
            db.execute("UPDATE person SET name = ? WHERE email = ?", (name, email))
        db.execute(
            "UPDATE person SET zone = ? WHERE email = ?", ("Europe/Berlin\x1b[2J", "c1@example.org")
        )
    return env, work


def test_roster_list_escapes_control_characters_and_markup(
    hostile: tuple[dict[str, Any], Path],
) -> None:
    listed = cohort(*hostile, "roster", "list", "--cohort", SLUG)
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    for char in UNSAFE:
        assert char not in out
    assert "Ann\\x9b2JCSI" in out
    assert "Bo\\x1b[31mRed" in out
    assert "Cy\\u202eevil" in out
    assert "[red]x[/]" in out  # markup printed as written, not applied
    assert "Di\\x1b]0;pwn\\x07" in out
    assert "Europe/Berlin\\x1b[2J" in out


def test_roster_list_json_is_the_stored_text_without_raw_controls(
    hostile: tuple[dict[str, Any], Path],
) -> None:
    listed = cohort(*hostile, "roster", "list", "--cohort", SLUG, "--json")
    assert listed.returncode == 0, listed.stderr
    for char in UNSAFE:
        assert char not in listed.stdout
    names = {p["email"]: p["name"] for p in json.loads(listed.stdout)}
    for email, name in HOSTILE.items():
        assert names[email] == name  # stored as given, and --json gives it back exactly


def test_error_values_are_escaped(hostile: tuple[dict[str, Any], Path]) -> None:
    missing = cohort(*hostile, "roster", "list", "--cohort", "no\x9b[31mpe[bold]x")
    assert missing.returncode == 1
    for char in UNSAFE:
        assert char not in missing.stderr
    assert "no\\x9b[31mpe[bold]x" in missing.stderr  # markup shown as written
    assert "Traceback" not in missing.stderr


# --- file modes ---------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which the product used to leave everything world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_the_sqlite_folder_and_files_it_creates_are_private(
    tmp_path: Path, umask_022: None
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}  # the default URL
    upgrade = cohort(env, tmp_path, "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    var = tmp_path / "var"
    assert _mode(var) == 0o700
    assert _mode(var / "cohort.db") == 0o600
    # The -wal and -shm files exist while the database is open: serve, then look.
    with cohort_serve(tmp_path, database_url=f"sqlite:///{var / 'cohort.db'}") as base:
        assert httpx.get(f"{base}/readyz", timeout=10).json()["status"] == "ready"
        for name in ("cohort.db", "cohort.db-wal", "cohort.db-shm"):
            assert _mode(var / name) == 0o600, name
    assert _mode(var) == 0o700


def test_an_existing_folder_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    (tmp_path / "var").mkdir(mode=0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    assert cohort(env, tmp_path, "db", "upgrade").returncode == 0
    assert _mode(tmp_path / "var") == 0o755  # the user's folder, the user's choice
    assert _mode(tmp_path / "var" / "cohort.db") == 0o600  # the file is the product's
