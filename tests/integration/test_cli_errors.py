"""The real `cohort` command never shows a user a Python traceback: unreadable, huge, endless or
deeply nested files, unknown revisions and huge numbers are clear errors; a bug is one line
naming the crash file that holds the traceback; Ctrl+C is one line and exit status 130; long
lists of problems are capped; concurrent `cohort db upgrade` runs all succeed."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_run import cohort

from scheduler.persistence import migrations
from scheduler.persistence.db import make_engine

SLUG = "ml-foundations-2027"
DEEP_ARRAY = "x = " + "[" * 5000 + "]" * 5000 + "\n"
DEEP_TABLE = "x = " + "{a = " * 5000 + "1" + "}" * 5000 + "\n"


def _env(database: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COHORT_")}
    env["COHORT_DATABASE_URL"] = f"sqlite:///{database}"
    env["COLUMNS"] = "200"
    return env


def _clean(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout


@pytest.fixture
def work(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """(environment, working folder): a SQLite database outside the folder, no tables yet."""
    folder = tmp_path / "work"
    folder.mkdir()
    return _env(tmp_path / "db" / "c.db"), folder


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """(environment, working folder) of a published example cohort of 20 learners."""
    folder = tmp_path_factory.mktemp("published")
    env = _env(folder / "var" / "c.db")
    for args in (
        ("init", "demo", "--learners", "20"),
        ("db", "upgrade"),
        ("cohort", "load", "demo/cohort.toml"),
        ("roster", "import", "demo/roster.csv", "--cohort", SLUG),
        ("plan", "--cohort", SLUG, "--publish"),
    ):
        done = cohort(env, folder, *args)
        assert done.returncode == 0, done.stderr
    return env, folder


# --- files the user names ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "load"])
def test_cohort_file_that_is_not_utf8_is_one_clear_problem(
    work: tuple[dict[str, Any], Path], command: str
) -> None:
    env, folder = work
    (folder / "bad.toml").write_bytes(b"\xff\xfe[cohort]")
    result = cohort(env, folder, "cohort", command, "bad.toml")
    assert result.returncode == 1
    _clean(result)
    assert "bad.toml" in result.stderr
    assert "not UTF-8" in result.stderr


@pytest.mark.parametrize("content", [DEEP_ARRAY, DEEP_TABLE], ids=["arrays", "inline-tables"])
@pytest.mark.parametrize("command", ["validate", "load"])
def test_deeply_nested_cohort_file_is_refused(
    work: tuple[dict[str, Any], Path], content: str, command: str
) -> None:
    env, folder = work
    if command == "load":  # a file nested too deeply for the parser is refused only then
        assert cohort(env, folder, "db", "upgrade").returncode == 0
    (folder / "deep.toml").write_text(content, encoding="utf-8")
    result = cohort(env, folder, "cohort", command, "deep.toml")
    assert result.returncode == 1
    _clean(result)
    assert "deep.toml" in result.stderr
    assert "too deeply" in result.stderr


@pytest.mark.parametrize("content", [DEEP_ARRAY, DEEP_TABLE], ids=["arrays", "inline-tables"])
def test_deeply_nested_settings_file_is_refused_by_every_command(
    work: tuple[dict[str, Any], Path], content: str
) -> None:
    env, folder = work
    (folder / "cohort.toml").write_text(content, encoding="utf-8")  # ./cohort.toml is read too
    (folder / "other.toml").write_text("[settings]\n" + content, encoding="utf-8")
    for args in (
        ("status",),
        ("db", "upgrade"),
        ("roster", "list", "--cohort", SLUG),
        ("--config", "other.toml", "cohort", "list"),
    ):
        result = cohort(env, folder, *args)
        assert result.returncode == 1, args
        _clean(result)
        assert "config file is invalid" in result.stderr
        assert "too deeply" in result.stderr


def test_settings_value_nested_a_little_less_deeply_is_refused_too(
    work: tuple[dict[str, Any], Path],
) -> None:
    env, folder = work
    (folder / "cohort.toml").write_text(
        "[settings]\nlog_level = " + "[" * 300 + "]" * 300 + "\n", encoding="utf-8"
    )
    result = cohort(env, folder, "status")
    assert result.returncode == 1
    _clean(result)
    assert "too deeply" in result.stderr


def test_files_that_are_not_regular_files_are_refused_without_reading(
    work: tuple[dict[str, Any], Path],
) -> None:
    env, folder = work
    os.mkfifo(folder / "pipe.toml")  # opening it for reading would wait for a writer forever
    for args in (
        ("cohort", "validate", "/dev/zero"),
        ("cohort", "load", "/dev/zero"),
        ("roster", "validate", "/dev/zero"),
        ("roster", "import", "/dev/zero", "--cohort", SLUG),
        ("cohort", "validate", "pipe.toml"),
        ("cohort", "validate", "."),
    ):
        result = cohort(env, folder, *args)
        assert result.returncode == 1, args
        _clean(result)
        assert "not a regular file" in result.stderr, args
    for config in ("/dev/zero", "pipe.toml", "."):
        result = cohort(env, folder, "--config", config, "status")
        assert result.returncode == 1
        _clean(result)
        assert "not a regular file" in result.stderr


def test_oversized_files_are_refused(work: tuple[dict[str, Any], Path]) -> None:
    env, folder = work
    big = folder / "big.toml"
    big.write_text("# padding\n" * 110_000, encoding="utf-8")  # 1.1 MB of valid TOML
    for command in ("validate", "load"):
        result = cohort(env, folder, "cohort", command, "big.toml")
        assert result.returncode == 1
        _clean(result)
        assert "larger than 1 MiB" in result.stderr
    result = cohort(env, folder, "--config", "big.toml", "status")
    assert result.returncode == 1
    assert "larger than 1 MiB" in result.stderr
    huge = folder / "huge.csv"
    with huge.open("wb") as f:
        f.truncate(65 * 1024 * 1024)  # sparse: costs no disk
    result = cohort(env, folder, "roster", "validate", "huge.csv")
    assert result.returncode == 1
    _clean(result)
    assert "larger than 64 MiB" in result.stderr


def test_a_roster_of_100000_learners_is_still_read(work: tuple[dict[str, Any], Path]) -> None:
    env, folder = work
    assert cohort(env, folder, "init", "big", "--learners", "100000").returncode == 0
    assert (folder / "big" / "roster.csv").stat().st_size > 1024 * 1024
    result = cohort(env, folder, "roster", "validate", "big/roster.csv")
    assert result.returncode == 0, result.stderr
    assert "100000 rows, all valid" in result.stdout


# --- revisions and numbers -----------------------------------------------------------------------


def test_unknown_revision_is_one_line_naming_it_and_the_head(
    work: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    env, folder = work
    head = migrations.head_revision(make_engine(f"sqlite:///{tmp_path / 'scratch.db'}"))
    assert head is not None
    result = cohort(env, folder, "db", "upgrade", "bogusrev")
    assert result.returncode == 1
    _clean(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bogusrev" in lines[0]
    assert head in lines[0]


HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    "args",
    [
        ("log", "--cohort", SLUG, "--limit", HUGE),
        ("reschedule", "--cohort", SLUG, "--series", "class", "--to", "Wed 10:00", "--week", HUGE),
        (
            "reschedule",
            "--cohort",
            SLUG,
            "--series",
            "class",
            "--to",
            "Wed 10:00",
            "--section",
            HUGE,
        ),
        ("reschedule", "--cohort", SLUG, "--series", "class", "--to", "Wed 10:00", "--time", HUGE),
        ("cancel", "--cohort", SLUG, "--series", "class", "--from-week", HUGE),
        ("cancel", "--cohort", SLUG, "--series", "class", "--week", "105"),
        ("roster", "list", "--cohort", SLUG, "--limit", "-1"),
    ],
    ids=["log-limit", "week", "section", "time", "from-week", "week-105", "negative-limit"],
)
def test_huge_numbers_are_usage_errors(
    published: tuple[dict[str, Any], Path], args: tuple[str, ...]
) -> None:
    result = cohort(*published, *args)
    assert result.returncode == 2, result.stderr
    _clean(result)
    assert "Invalid value" in result.stderr


def test_bounds_allow_the_largest_sensible_values(
    published: tuple[dict[str, Any], Path],
) -> None:
    result = cohort(*published, "log", "--cohort", SLUG, "--limit", "100000", "--json")
    assert result.returncode == 0, result.stderr
    result = cohort(*published, "cancel", "--cohort", SLUG, "--series", "class", "--week", "104")
    assert "Invalid value" not in result.stderr
    _clean(result)


# --- the front door: bugs and Ctrl+C -------------------------------------------------------------


def _broken_database(env: dict[str, Any], folder: Path, database: Path) -> None:
    """A migrated database holding a cohort whose start date is not a date: reading it raises
    an exception no command expects (a stand-in for any bug)."""
    for args in (("init", "demo", "--learners", "3"), ("db", "upgrade")):
        assert cohort(env, folder, *args).returncode == 0
    assert cohort(env, folder, "cohort", "load", "demo/cohort.toml").returncode == 0
    with sqlite3.connect(database) as db:
        db.execute("UPDATE cohort SET start_date = 'not a date'")


_CRASH_FILE = re.compile(r"traceback is in (\S+\.log)")


def test_unexpected_exception_is_one_line_and_a_private_crash_file(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    database = tmp_path / "db" / "c.db"
    env = _env(database)
    _broken_database(env, folder, database)
    assert not (folder / "var").exists()

    result = cohort(
        env, folder, "--database-url", f"sqlite:///{database}", "cohort", "list", "--json"
    )
    assert result.returncode == 2
    _clean(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "`cohort cohort list` failed unexpectedly" in lines[0]
    assert "bug" in lines[0]
    found = _CRASH_FILE.search(lines[0])
    assert found, lines[0]
    crash = folder / found.group(1)
    assert crash.parent == folder / "var"
    assert re.fullmatch(r"crash-\d{8}-\d{6}(-\d+)?\.log", crash.name)
    assert stat.S_IMODE(crash.stat().st_mode) == 0o600
    assert stat.S_IMODE(crash.parent.stat().st_mode) == 0o700
    content = crash.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in content
    assert "ValueError" in content
    assert "command: cohort --database-url" in content

    again = cohort(env, folder, "cohort", "list")
    assert again.returncode == 2
    second = _CRASH_FILE.search(again.stderr)
    assert second and second.group(1) != found.group(1)  # never overwritten


def test_debug_log_level_prints_the_traceback_too(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    database = tmp_path / "db" / "c.db"
    env = _env(database)
    _broken_database(env, folder, database)
    result = cohort(env, folder, "--log-level", "DEBUG", "cohort", "list")
    assert result.returncode == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "failed unexpectedly" in result.stderr.strip().splitlines()[-1]


def test_crash_file_falls_back_to_a_temporary_file(tmp_path: Path) -> None:
    folder = tmp_path / "work"
    folder.mkdir()
    database = tmp_path / "db" / "c.db"
    env = _env(database)
    _broken_database(env, folder, database)
    (folder / "var").write_text("not a folder", encoding="utf-8")
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**env, "TMPDIR": str(temp)}
    result = cohort(env, folder, "cohort", "list")
    assert result.returncode == 2
    _clean(result)
    found = _CRASH_FILE.search(result.stderr)
    assert found, result.stderr
    crash = Path(found.group(1))
    assert crash.parent == temp
    assert stat.S_IMODE(crash.stat().st_mode) == 0o600
    assert "Traceback" in crash.read_text(encoding="utf-8")


def test_corrupt_database_file_is_an_error_not_a_bug(work: tuple[dict[str, Any], Path]) -> None:
    env, folder = work
    database = Path(env["COHORT_DATABASE_URL"].removeprefix("sqlite:///"))
    database.parent.mkdir()
    database.write_bytes(os.urandom(64 * 1024))
    result = cohort(env, folder, "status")
    assert result.returncode == 1
    _clean(result)
    assert "cannot be used" in result.stderr
    assert "not a database" in result.stderr


def _wait_until_blocked_on_flock(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        locks = Path("/proc/locks").read_text()
        if any("-> FLOCK" in line and f" {pid} " in line for line in locks.splitlines()):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never waited for the migration lock")


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_ctrl_c_is_one_line_and_exit_status_130(tmp_path: Path) -> None:
    """Interrupted while it waits for another upgrade's lock."""
    database = tmp_path / "c.db"
    env = _env(database)
    exe = Path(sys.executable).parent / "cohort"
    lock = os.open(f"{database}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.Popen(
            [str(exe), "db", "upgrade"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_until_blocked_on_flock(proc.pid)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        os.close(lock)
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == ["interrupted"]


# --- long lists of problems ----------------------------------------------------------------------

HEADER = "name,email,timezone,availability,locale,role"


def test_many_bad_rows_print_at_most_200_problems(work: tuple[dict[str, Any], Path]) -> None:
    env, folder = work
    rows = "".join(f"Person {i},not-an-email-{i},Nowhere/Zone{i},,,learner\n" for i in range(3000))
    (folder / "bad.csv").write_text(HEADER + "\n" + rows, encoding="utf-8")
    result = cohort(env, folder, "roster", "validate", "bad.csv")
    assert result.returncode == 1
    _clean(result)
    shown = [line for line in result.stderr.splitlines() if line.startswith("  line ")]
    assert len(shown) == 200
    assert "… and 5,800 more problems (use --json for all)" in result.stderr
    assert len(result.stderr) < 100_000

    as_json = cohort(env, folder, "roster", "validate", "bad.csv", "--json")
    assert as_json.returncode == 1
    assert as_json.stdout.count('"line":') == 6000  # --json has them all


def test_many_bad_rows_on_import_print_at_most_200_problems(
    published: tuple[dict[str, Any], Path],
) -> None:
    env, folder = published
    rows = "".join(f"Person {i},not-an-email-{i},Europe/Berlin,,,learner\n" for i in range(500))
    (folder / "bad.csv").write_text(HEADER + "\n" + rows, encoding="utf-8")
    result = cohort(env, folder, "roster", "import", "bad.csv", "--cohort", SLUG)
    assert result.returncode == 1
    _clean(result)
    assert "… and 300 more problems (use --json for all)" in result.stderr
    assert result.stderr.count("not-an-email-") <= 200


def test_many_and_repeated_warnings_are_capped_and_collapsed(
    work: tuple[dict[str, Any], Path],
) -> None:
    env, folder = work
    unknown = ",".join(f"extra{i}" for i in range(1000))
    rows = "Ann,ann@example.org,Europe/Berlin,,,learner" + "," * 1004 + "\n"
    (folder / "wide.csv").write_text(
        f"{HEADER},{unknown},dup,dup,dup,dup\n{rows}", encoding="utf-8"
    )
    result = cohort(env, folder, "roster", "validate", "wide.csv")
    _clean(result)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 200
    assert "… and 804 more warnings (use --json for all)" in result.stderr
    assert result.stderr.count("known columns:") == 1  # the shared hint, once

    (folder / "dups.csv").write_text(
        f"{HEADER},dup,dup,dup\nAnn,ann@example.org,Europe/Berlin,,,learner,,,\n",
        encoding="utf-8",
    )
    dups = cohort(env, folder, "roster", "validate", "dups.csv")
    assert dups.returncode == 0, dups.stderr
    assert dups.stderr.count("unknown column 'dup'") == 1
    assert "(3 times)" in dups.stderr


# --- concurrent upgrades -------------------------------------------------------------------------


def _upgrades(env: dict[str, Any], folder: Path, n: int) -> list[subprocess.Popen[str]]:
    exe = Path(sys.executable).parent / "cohort"
    return [
        subprocess.Popen(
            [str(exe), "db", "upgrade"],
            env=env,
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]


def _all_succeed(procs: list[subprocess.Popen[str]], env: dict[str, Any], folder: Path) -> None:
    failures = []
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        if proc.returncode != 0 or "Traceback" in stderr:
            failures.append(stderr.strip().splitlines()[-1:])
    assert not failures, failures
    current = cohort(env, folder, "db", "current")
    assert current.returncode == 0, current.stderr
    found = re.search(r"current: (\S+); head: (\S+)", current.stdout)
    assert found and found.group(1) == found.group(2), current.stdout


def test_concurrent_upgrades_all_succeed(cli_env: dict[str, Any], tmp_path: Path) -> None:
    if not cli_env["COHORT_DATABASE_URL"].startswith("sqlite"):
        _all_succeed(_upgrades(cli_env, tmp_path, 4), cli_env, tmp_path)
        return
    for round_ in range(3):  # fresh folders: the race is on an empty database
        folder = tmp_path / f"round{round_}"
        database = folder / "var" / "c.db"
        database.parent.mkdir(parents=True)
        env = {**cli_env, "COHORT_DATABASE_URL": f"sqlite:///{database}"}
        # Start them together: they all wait for this exclusive lock on the (still empty,
        # rollback-journal) database file, then go at once when it is released.
        holder = sqlite3.connect(database, isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            procs = _upgrades(env, folder, 4)
            time.sleep(4)
            holder.execute("COMMIT")
        finally:
            holder.close()
        _all_succeed(procs, env, folder)
        lock = folder / "var" / "c.db.migrate.lock"
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_a_second_upgrade_finds_nothing_to_do(tmp_path: Path) -> None:
    database = tmp_path / "c.db"
    env = _env(database)
    assert cohort(env, tmp_path, "db", "upgrade").returncode == 0
    again = cohort(env, tmp_path, "db", "upgrade")
    assert again.returncode == 0
    assert "up to date" in again.stdout
