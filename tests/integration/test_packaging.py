"""A plain (non-editable) install carries its templates, migrations and examples."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_ships_package_data_and_runs(tmp_path: Path) -> None:
    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("cohort_scheduler-*.whl")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # Run from an unrelated folder with the installed copy first on the path: the checkout is
    # not importable from there, so every file must come from the wheel.
    env = {**os.environ, "PYTHONPATH": str(target), "COHORT_DATABASE_URL": f"sqlite:///{work}/x.db"}
    script = (
        "import scheduler, scheduler.resources as r, sys\n"
        f"assert scheduler.__file__.startswith({str(target)!r}), scheduler.__file__\n"
        "for name in ('templates', 'alembic', 'examples'):\n"
        f"    assert str(r.resource_dir(name)).startswith({str(target)!r}), name\n"
        "from scheduler.cli import main\n"
        "sys.argv = ['cohort', 'init', 'demo']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "sys.argv = ['cohort', 'db', 'upgrade']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "upgraded from empty to " in result.stdout
    assert (work / "demo" / "cohort.toml").read_text().startswith("# cohort.toml")
    assert (work / "x.db").exists()
