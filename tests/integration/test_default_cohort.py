"""One cohort, no flag: with exactly one cohort stored `--cohort` may be left out; with several
the error lists their slugs, and the `default_cohort` setting (environment or config file) picks
one. Run through the real `cohort` command on SQLite."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_run import cohort

FIRST = "ml-foundations-2027"
SECOND = "ml-foundations-autumn"


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


@pytest.fixture
def folder(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """(environment, folder) with the example files written and the database migrated, empty."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    env["COLUMNS"] = "200"
    _ok(cohort(env, tmp_path, "init", ".", "--learners", "12"))
    _ok(cohort(env, tmp_path, "db", "upgrade"))
    return env, tmp_path


def _load_second(env: dict[str, Any], where: Path) -> None:
    text = (where / "cohort.toml").read_text(encoding="utf-8")
    second = text.replace(f'slug = "{FIRST}"', f'slug = "{SECOND}"', 1)
    assert second != text
    (where / "second.toml").write_text(second, encoding="utf-8")
    _ok(cohort(env, where, "cohort", "load", "second.toml"))
    _ok(cohort(env, where, "roster", "import", "roster.csv", "--cohort", SECOND))


def test_no_cohort_stored_is_a_clear_error(folder: tuple[dict[str, Any], Path]) -> None:
    env, where = folder
    result = cohort(env, where, "roster", "list")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "no cohort is stored yet" in result.stderr
    assert "cohort cohort load" in result.stderr
    assert str(where / "var" / "cohort.db") in result.stderr  # names the database it looked in


def test_the_only_cohort_needs_no_flag_and_several_need_one(
    folder: tuple[dict[str, Any], Path],
) -> None:
    env, where = folder
    _ok(cohort(env, where, "cohort", "load", "cohort.toml"))
    imported = _ok(cohort(env, where, "roster", "import", "roster.csv"))
    assert f"into {FIRST}" in imported
    listed = _ok(cohort(env, where, "roster", "list", "--limit", "2"))
    assert f"{FIRST}: " in listed
    assert FIRST in _ok(cohort(env, where, "log"))
    email = _ok(cohort(env, where, "roster", "list", "--json")).split('"email": "')[1].split('"')[0]
    assert "Calendar feed for" in _ok(cohort(env, where, "feeds", "url", email))

    _load_second(env, where)
    result = cohort(env, where, "roster", "list")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"2 cohorts are stored ({FIRST}, {SECOND})" in result.stderr
    assert "--cohort SLUG" in result.stderr
    assert "COHORT_DEFAULT_COHORT" in result.stderr
    # --cohort still picks either
    assert f"{SECOND}: " in _ok(cohort(env, where, "roster", "list", "--cohort", SECOND))


def test_default_cohort_setting_picks_one_of_several(folder: tuple[dict[str, Any], Path]) -> None:
    env, where = folder
    _ok(cohort(env, where, "cohort", "load", "cohort.toml"))
    _ok(cohort(env, where, "roster", "import", "roster.csv", "--cohort", FIRST))
    _load_second(env, where)

    by_env = _ok(cohort({**env, "COHORT_DEFAULT_COHORT": SECOND}, where, "roster", "list"))
    assert f"{SECOND}: " in by_env

    (where / "settings.toml").write_text(
        f'[settings]\ndefault_cohort = "{FIRST}"\n', encoding="utf-8"
    )
    by_file = _ok(cohort(env, where, "--config", "settings.toml", "roster", "list"))
    assert f"{FIRST}: " in by_file
    # --cohort wins over the setting
    flagged = cohort(env, where, "--config", "settings.toml", "roster", "list", "-c", SECOND)
    assert f"{SECOND}: " in _ok(flagged)

    # a default naming no stored cohort: the not-found error, with the slugs there are
    missing = cohort({**env, "COHORT_DEFAULT_COHORT": "gone"}, where, "roster", "list")
    assert missing.returncode == 1
    assert "'gone'" in missing.stderr
    assert FIRST in missing.stderr
    assert SECOND in missing.stderr
