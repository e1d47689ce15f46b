"""Inputs shared by the tests of a running example cohort: four learners across the world, and
the example cohort file with its ``[orchestration]`` table replaced (tests set their own)."""

from __future__ import annotations

import re
from typing import Any

# A roster of four: Tokyo, Los Angeles, Berlin (the cohort's default availability), Kolkata.
FOUR_LEARNERS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
    ["Ravi", "ravi@example.org", "Asia/Kolkata", "Mon-Fri 19:00-23:00", "en_IN", ""],
]

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
