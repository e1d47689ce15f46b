"""The CSV exports' cell rule (:func:`scheduler.web.dashboard.safe_cell`) and writer
(:func:`scheduler.web.dashboard.csv_bytes`): no cell a spreadsheet would run as a formula, read
with "," ";" or TAB as the separator, quote-aware or not."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.web.dashboard import csv_bytes, safe_cell

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
HOSTILE = ["Evil;=1+2", '=HYPERLINK("http://x")', "a\t=1", "-2+3", "@SUM(1)", "x;+1", "x,@1"]


def _starts_a_formula(cell: str) -> bool:
    return cell.lstrip(' "').startswith(FORMULA_START)


def _naive_cells(line: str) -> list[str]:
    """The cells a reader sees that splits on every separator and ignores quoting."""
    return re.split(r"[,;\t\r\n]", line)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Evil;=1+2", "'Evil;'=1+2"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("a\t=1", "'a\t'=1"),
        ("-2+3", "'-2+3"),
        ("@SUM(1)", "'@SUM(1)"),
        ("x;+1", "'x;'+1"),
        ("x,@1", "'x,'@1"),
        ('x;"=1', "'x;'\"=1"),
        ('"=1"', '\'"=1"'),
        ("Mon-Fri 18:00-22:00; Sat 09:00-12:00", "Mon-Fri 18:00-22:00; Sat 09:00-12:00"),
        ("a=b", "a=b"),
        (3, "3"),
        (None, ""),
    ],
    ids=[
        "semicolon_then_equals",
        "hyperlink",
        "tab_then_equals",
        "minus",
        "at",
        "semicolon_then_plus",
        "comma_then_at",
        "semicolon_then_quoted_equals",
        "quoted_equals",
        "availability_untouched",
        "inner_equals_untouched",
        "number",
        "none",
    ],
)
def test_safe_cell(value: object, expected: str) -> None:
    assert safe_cell(value) == expected


@pytest.mark.parametrize("delimiter", [",", ";", "\t"], ids=["comma", "semicolon", "tab"])
def test_hostile_names_make_no_formula_cell_in_any_column(delimiter: str) -> None:
    rows = [["first", name, "last"] for name in HOSTILE] + [[name, "x"] for name in HOSTILE]
    text = csv_bytes(("name", "email", "zone"), rows).decode("utf-8-sig")
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        for cell in row:
            assert not cell.strip('"').startswith(FORMULA_START), (delimiter, cell, row)


def test_every_field_is_quoted_and_reads_back_as_written() -> None:
    body = csv_bytes(("name", "n"), [("Ann", 3), ("Evil;=1+2", None)])
    assert body.startswith("\ufeff".encode())
    assert body.decode("utf-8-sig") == '"name","n"\r\n"Ann","3"\r\n"\'Evil;\'=1+2",""\r\n'


# any text, and text made of the characters that matter (separators, quotes, formula starts)
CELL_TEXT = st.one_of(st.text(), st.text(alphabet=",;\t\r\n \"'=+-@ab", max_size=30))


@given(CELL_TEXT)
def test_safe_cell_only_adds_apostrophes_and_leaves_no_formula_cell(text: str) -> None:
    safe = safe_cell(text)
    assert safe.replace("'", "") == text.replace("'", "")
    assert safe_cell(safe) == safe  # so csv_bytes below writes ``safe`` as it is
    # a quote-aware reader with the right separator gets the field back exactly
    encoded = csv_bytes(("a", "b", "c"), [("first", safe, "last")]).decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(encoded, newline="")))[1] == ["first", safe, "last"]
    # whole, or split on any separator ignoring quotes: no cell starts a formula
    assert not _starts_a_formula(safe)
    for line in encoded.split("\r\n"):
        for cell in _naive_cells(line):
            assert not _starts_a_formula(cell), (text, cell)
    # and a quote-aware reader with the wrong separator neither (it fails on a bare line break)
    if not re.search(r"[\r\n]", text):
        for delimiter in (";", "\t"):
            for row in csv.reader(io.StringIO(encoded), delimiter=delimiter):
                assert not any(_starts_a_formula(cell) for cell in row), (text, row)


@given(st.text().filter(lambda t: not re.search(r"[,;\t\r\n]", t) and not _starts_a_formula(t)))
def test_safe_cell_leaves_harmless_text_alone(text: str) -> None:
    assert safe_cell(text) == text
