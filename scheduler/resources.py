"""Find the files that ship with the product: templates, migrations, examples.

In a built wheel they live inside the package (``scheduler/_bundled/...``); in a source checkout
(editable install, tests) they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """The folder ``templates``, ``alembic`` or ``examples``, wherever this install keeps it."""
    for candidate in (_PACKAGE / "_bundled" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the product's {name!r} folder is missing from this installation")
