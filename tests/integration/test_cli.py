"""The real `cohort` command, run as a user would, against SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cli_run import cohort

REPO = Path(__file__).resolve().parents[2]
SLUG = "ml-foundations-2027"


def test_quick_start_flow(cli_env: dict[str, Any], tmp_path: Path) -> None:
    init = cohort(cli_env, tmp_path, "init", "demo", "--learners", "150")
    assert init.returncode == 0, init.stderr
    assert "GeoNames" in init.stdout
    not_ready = cohort(cli_env, tmp_path, "roster", "list", "--cohort", SLUG)
    assert not_ready.returncode == 1
    assert "cohort db upgrade" in not_ready.stderr
    assert "Traceback" not in not_ready.stderr

    assert cohort(cli_env, tmp_path, "db", "upgrade").returncode == 0
    again = cohort(cli_env, tmp_path, "db", "upgrade")
    assert "up to date" in again.stdout
    load = cohort(cli_env, tmp_path, "cohort", "load", "demo/cohort.toml", "--json")
    assert load.returncode == 0, load.stderr
    assert json.loads(load.stdout)["created"] is True

    imported = cohort(
        cli_env, tmp_path, "roster", "import", "demo/roster.csv", "--cohort", SLUG, "--json"
    )
    assert imported.returncode == 0, imported.stderr
    counts = json.loads(imported.stdout)
    assert (counts["added"], counts["invalid_rows"]) == (150, 0)

    reimport = cohort(cli_env, tmp_path, "roster", "import", "demo/roster.csv", "--cohort", SLUG)
    assert reimport.returncode == 0
    assert "unchanged          150" in " ".join(reimport.stdout.split("\n")).replace(
        "  ", "  "
    ) or ("150" in reimport.stdout and "unchanged" in reimport.stdout)

    listed = json.loads(
        cohort(cli_env, tmp_path, "roster", "list", "--cohort", SLUG, "--json").stdout
    )
    assert sum(p["role"] == "learner" for p in listed) == 150
    assert sum(p["role"] == "facilitator" for p in listed) == 3
    zones = {p["timezone"] for p in listed}
    assert len(zones) > 20

    table = cohort(cli_env, tmp_path, "roster", "list", "--cohort", SLUG, "--limit", "5")
    assert "153 people" in table.stdout
    assert "and 148 more" in table.stdout

    shown = cohort(cli_env, tmp_path, "plan", "--cohort", SLUG)
    assert shown.returncode == 0, shown.stderr
    assert "Learners available per hour" in shown.stdout
    assert "class #1" in shown.stdout
    assert "Not published yet" in shown.stdout
    # Summaries first: one left-out line per series, one DST line per series and course week;
    # the learners themselves only with --verbose.
    lines = shown.stdout.splitlines()
    left = [x for x in lines if re.match(r"  (class|cowork|office-hours): \d+ left out", x)]
    assert len(left) == len({x.split(":")[0] for x in left}) >= 2
    assert all(" in Asia/*" in x or " in America/*" in x for x in left)
    dst = [x for x in lines if x.startswith("DST ")]
    keys = [(x.split(":")[0], x.split("from week ")[1].split(",")[0]) for x in dst]
    assert dst and len(keys) == len(set(keys))
    assert "@example.org" not in shown.stdout.split("Left out")[1]
    detail = cohort(cli_env, tmp_path, "plan", "--cohort", SLUG, "--verbose")
    assert detail.returncode == 0, detail.stderr
    assert detail.stdout.split("Left out")[1].count("@example.org") >= len(left)
    published = cohort(cli_env, tmp_path, "plan", "--cohort", SLUG, "--publish", "--json")
    assert published.returncode == 0, published.stderr
    report = json.loads(published.stdout)
    assert report["published_version"] == 1
    assert {s["series"] for s in report["sections"]} == {"class", "cowork", "office-hours"}
    assert len(report["diff"]["added"]) > 0
    again = cohort(cli_env, tmp_path, "plan", "--cohort", SLUG)
    assert "Same as published version 1" in again.stdout

    summary = json.loads(cohort(cli_env, tmp_path, "deadlines", "--cohort", SLUG, "--json").stdout)
    assert summary["learners"] == 150
    assert summary["by_kind"]["assignment"] > 0
    sam = cohort(
        cli_env, tmp_path, "deadlines", "--cohort", SLUG, "--learner", "sam.rivera@example.org"
    )
    assert sam.returncode == 0, sam.stderr
    assert "America/Los_Angeles" in sam.stdout
    assert "Read the week's notes" in sam.stdout
    yuki = json.loads(
        cohort(
            cli_env, tmp_path, "deadlines", "-c", SLUG, "-l", "yuki.sato@example.org", "--json"
        ).stdout
    )
    assert yuki["zone"] == "Asia/Tokyo"
    due = [e for e in yuki["entries"] if e["kind"] == "assignment"]
    assert due
    assert all(e["local"].endswith("+09:00") for e in due)


def test_validate_lists_every_mistake_and_writes_nothing(
    cli_env: dict[str, Any], tmp_path: Path
) -> None:
    assert cohort(cli_env, tmp_path, "db", "upgrade").returncode == 0
    assert (
        cohort(
            cli_env, tmp_path, "cohort", "load", str(REPO / "examples" / "cohort.toml")
        ).returncode
        == 0
    )
    bad = REPO / "examples" / "roster-with-mistakes.csv"
    result = cohort(cli_env, tmp_path, "roster", "validate", str(bad), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (3, "email"),
        (4, "timezone"),
        (5, "timezone"),
        (6, "email"),
        (7, "availability"),
        (8, "availability"),
        (9, "locale"),
        (9, "role"),
        (10, "name"),
    ]
    assert report["valid"] == 2

    human = cohort(cli_env, tmp_path, "roster", "import", str(bad), "--cohort", SLUG)
    assert human.returncode == 1
    assert "line 5, timezone 'US'" in human.stderr
    assert "nothing was imported" in human.stderr
    assert "Traceback" not in human.stderr
    listed = json.loads(
        cohort(cli_env, tmp_path, "roster", "list", "--cohort", SLUG, "--json").stdout
    )
    assert [p["role"] for p in listed] == ["facilitator"] * 3  # nothing half-written

    partial = cohort(
        cli_env, tmp_path, "roster", "import", str(bad), "--cohort", SLUG, "--partial", "--json"
    )
    assert partial.returncode == 0
    assert json.loads(partial.stdout)["added"] == 2


def test_bad_cohort_file_and_bad_setting(cli_env: dict[str, Any], tmp_path: Path) -> None:
    text = (
        (REPO / "examples" / "cohort.toml")
        .read_text()
        .replace('duration = "90m"', 'duration = "ninety"')
    )
    (tmp_path / "c.toml").write_text(text)
    assert cohort(cli_env, tmp_path, "db", "upgrade").returncode == 0
    result = cohort(cli_env, tmp_path, "cohort", "load", "c.toml")
    assert result.returncode == 1
    assert "series[1].duration 'ninety'" in result.stderr
    env = {**cli_env, "COHORT_DATABASE_URL": "mysql://nope"}
    bad = cohort(env, tmp_path, "cohort", "list")
    assert bad.returncode == 1
    assert "environment variable COHORT_DATABASE_URL" in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_missing_file_is_a_clear_error(cli_env: dict[str, Any], tmp_path: Path) -> None:
    result = cohort(cli_env, tmp_path, "roster", "validate", "nope.csv")
    assert result.returncode == 1
    assert "No such file" in result.stderr
    assert "Traceback" not in result.stderr
