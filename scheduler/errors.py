"""The product's exception tree, one root with branches by audience.

::

    SchedulerError
    ├── InputError            bad input from the user; carries every Problem found at once
    │   ├── ConfigError       cohort file or settings
    │   └── RosterError       roster CSV
    ├── PlanningError         no plan can be made from valid input
    ├── NotFoundError         a named cohort, person or token does not exist
    └── DeliveryError         an email could not be handed to the mail server

Edges translate them: the CLI prints one line per problem and exits non-zero, the web
maps them to HTTP statuses in one handler, jobs log them and keep running.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, located precisely enough to fix it.

    ``field`` is a key path in a cohort file (``series[1].duration``) or a column name in a
    roster; ``line`` is the 1-based line in the source file when known.
    """

    message: str
    source: str = ""
    line: int | None = None
    field: str | None = None
    value: str | None = None
    hint: str | None = None

    def describe(self) -> str:
        where = self.source
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        parts = [f"{where}: " if where else ""]
        if self.field:
            parts.append(f"{self.field}: ")
        parts.append(self.message)
        if self.value is not None:
            parts.append(f" (got {_clip(self.value)!r})")
        if self.hint:
            parts.append(f"; {self.hint}")
        return "".join(parts)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "line": self.line,
            "field": self.field,
            "value": self.value,
            "message": self.message,
            "hint": self.hint,
        }


def _clip(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


class SchedulerError(Exception):
    """Root of every error the product raises on purpose."""


class InputError(SchedulerError):
    """The user's input is wrong; ``problems`` lists all that is wrong, not just the first."""

    def __init__(self, problems: Iterable[Problem], summary: str = "") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.summary = summary or f"{len(self.problems)} problem(s) found"
        super().__init__(self.summary)

    def __str__(self) -> str:
        lines = [self.summary, *(f"  {p.describe()}" for p in self.problems)]
        return "\n".join(lines)


class ConfigError(InputError):
    """A cohort file or a setting is invalid."""


class RosterError(InputError):
    """A roster file has bad rows."""


class PlanningError(SchedulerError):
    """Valid input for which no plan can be made."""


class NotFoundError(SchedulerError):
    """A cohort, person or token that was asked for does not exist."""


class DeliveryError(SchedulerError):
    """An email could not be handed over to the mail server."""
