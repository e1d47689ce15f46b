"""Run the installed `cohort` command as a user would (the tests' one way to do it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def cohort(env: dict[str, Any], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("cohort", path=str(Path(sys.executable).parent)) or "cohort"
    return subprocess.run(
        [exe, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
