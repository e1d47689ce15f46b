"""How long work says it is alive: a :class:`Progress` the caller passes in, told of each step
and of the items done in it. The services call it; only the CLI shows it (a Rich progress bar on
a terminal's stderr); everyone else passes nothing and :data:`SILENT` ignores it all."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def step(self, description: str, total: int | None = None) -> None:
        """A new step begins (the previous one is done): what it does, and how many items it
        works through if that is known."""

    def advance(self, amount: int = 1) -> None:
        """``amount`` more items of the current step are done."""


class _Silent:
    def step(self, description: str, total: int | None = None) -> None:
        pass

    def advance(self, amount: int = 1) -> None:
        pass


SILENT: Progress = _Silent()
