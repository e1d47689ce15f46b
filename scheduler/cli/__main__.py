"""``python -m scheduler.cli``: the ``cohort`` command."""

from scheduler.cli import main

main()
