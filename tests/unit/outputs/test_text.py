"""printable(): user text made safe for a log line or a terminal, and nothing else changed."""

from __future__ import annotations

import pytest

from scheduler.outputs.text import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Ann \x1b[31mRed", "Ann \\x1b[31mRed"),
        ("csi\x9b2J", "csi\\x9b2J"),
        ("line\nforged", "line\\nforged"),
        ("cr\rtab\t", "cr\\rtab\\t"),
        ("nul\x00del\x7f", "nul\\x00del\\x7f"),
        ("nel\x85", "nel\\x85"),
        ("txt.exe\u202egpj", "txt.exe\\u202egpj"),
        ("\u202a\u202b\u202c\u202d", "\\u202a\\u202b\\u202c\\u202d"),
        ("\u2066iso\u2069\u2067\u2068", "\\u2066iso\\u2069\\u2067\\u2068"),
        ("sep\u2028par\u2029", "sep\\u2028par\\u2029"),
    ],
    ids=[
        "esc",
        "c1_csi",
        "newline",
        "cr_and_tab",
        "nul_and_del",
        "c1_nel",
        "bidi_override",
        "bidi_embeddings",
        "bidi_isolates",
        "unicode_line_breaks",
    ],
)
def test_control_characters_are_escaped(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@pytest.mark.parametrize(
    "text",
    ["Zoë Ångström", "李小龍", 'O\'Brien "Bob"', "C:\\path", "[red]x[/]", "🙂", "", "\u00a0nbsp"],
    ids=["accents", "cjk", "quotes", "backslash", "markup", "emoji", "empty", "nbsp"],
)
def test_other_text_is_left_as_it_is(text: str) -> None:
    assert printable(text) is text


def test_newlines_can_be_kept_for_program_layout() -> None:
    assert printable("a\nb\x1b", keep_newlines=True) == "a\nb\\x1b"
