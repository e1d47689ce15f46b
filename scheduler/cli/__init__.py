"""The ``cohort`` command: a thin layer over services; Rich tables, ``--json`` for scripts.

One module a job: :mod:`.app` holds the Typer apps and an invocation's state (the Typer
context object), :mod:`.console` is the output layer (the only place that prints), and each
command module registers its group's commands when imported, in the order ``cohort --help``
lists them: so the imports below are in that order, not sorted. :mod:`.front_door` has
:func:`main` (and ``cohort version``, listed last).
"""

from __future__ import annotations

# isort: off
from scheduler.cli import setup, cohorts, roster, plan, feeds, history  # noqa: F401  (register)
from scheduler.cli.app import app
from scheduler.cli.front_door import main

# isort: on

__all__ = ["app", "main"]
