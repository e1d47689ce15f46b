"""The shipped catalogs are complete and current: every string the code and templates hand to
gettext is in messages.pot (re-extracted here, so a new string without ``make messages`` fails),
and every shipped language translates every one of them — no empty or fuzzy entry, the same
placeholders, every plural form — in its .po and in the compiled .mo the package ships."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from babel.support import Translations

from scheduler.outputs.i18n import DOMAIN, LOCALE_DIR, SHIPPED

REPO = Path(__file__).resolve().parents[2]
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}")


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def _ids(catalog: Catalog) -> set[str]:
    return {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}


@pytest.fixture(scope="module")
def template() -> Catalog:
    return _read(LOCALE_DIR / "messages.pot")


def test_messages_pot_holds_every_string_in_the_code_and_templates(
    template: Catalog, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh.pot"
    extract = ["extract", "-F", "babel.cfg", "--add-comments=TRANSLATORS:", "-o", str(fresh)]
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", *extract, "."],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    missing = _ids(_read(fresh)) - _ids(template)
    assert not missing, f"new strings without `make messages`: {sorted(missing)[:10]}"


@pytest.mark.parametrize("language", SHIPPED)
def test_every_string_is_translated_in_each_shipped_language(
    template: Catalog, language: str
) -> None:
    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    catalog = _read(po, language)
    compiled = Translations.load(str(LOCALE_DIR), [language], DOMAIN)
    assert isinstance(compiled, Translations), f"{language}: no compiled catalog"
    problems = []
    for message in template:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        found = catalog.get(message.id)
        if found is None:
            problems.append(f"missing: {key!r}")
            continue
        if found.fuzzy:
            problems.append(f"fuzzy: {key!r}")
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = found.string if isinstance(found.string, tuple) else (found.string,)
        wanted = set(PLACEHOLDER.findall(ids[-1]))
        for string in strings:
            if not string:
                problems.append(f"untranslated: {key!r}")
            elif isinstance(message.id, str) and set(PLACEHOLDER.findall(string)) != wanted:
                problems.append(f"placeholders differ: {key!r} -> {string!r}")
        if isinstance(message.id, str) and strings[0]:
            assert compiled.gettext(message.id) == strings[0], f"{language}: .mo is stale"
    assert not problems, f"{language}: " + "; ".join(problems[:10])
