"""The example cohort file with its ``[orchestration]`` table replaced (tests set their own)."""

from __future__ import annotations

import re
from typing import Any

_TABLE = re.compile(r"(?ms)^\[orchestration\][^\n]*\n.*?(?=^\[)")


def without_orchestration(text: str) -> str:
    """``text`` without its ``[orchestration]`` table (up to the next table header)."""
    return _TABLE.sub("", text)


def with_orchestration(text: str, **options: Any) -> str:
    """``text`` with an ``[orchestration]`` table of ``options`` instead of its own."""
    lines = ["", "[orchestration]"]
    for name, value in options.items():
        shown = str(value).lower() if isinstance(value, bool) else repr(value).replace("'", '"')
        lines.append(f"{name} = {shown}")
    return without_orchestration(text) + "\n".join(lines) + "\n"
