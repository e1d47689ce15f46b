"""The roster's optional ``stretch`` column: the availability grammar, ``none``, or blank."""

from __future__ import annotations

from collections.abc import Callable

from scheduler.roster import parse_roster

Build = Callable[..., bytes]
HEADER = ("name", "email", "timezone", "availability", "stretch")


def test_stretch_is_read_and_normalised(make_roster: Build) -> None:
    rows = [
        ["Ann", "ann@example.org", "Europe/Berlin", "Mon-Fri 18:00-22:00", "mon-fri 6:00-8:00"],
        ["Bo", "bo@example.org", "Asia/Tokyo", "", "NONE"],
        ["Cy", "cy@example.org", "America/Bogota", "", ""],
    ]
    report = parse_roster(make_roster(rows, header=HEADER))
    assert report.ok, report.errors
    assert [e.stretch for e in report.entries] == ["Mon-Fri 06:00-08:00", "none", None]
    assert not report.warnings  # a known column


def test_rosters_without_the_column_mean_the_default(make_roster: Build) -> None:
    rows = [["Ann", "ann@example.org", "Europe/Berlin", "", "", ""]]
    (entry,) = parse_roster(make_roster(rows)).entries
    assert entry.stretch is None


def test_a_bad_stretch_names_its_row_and_column(make_roster: Build) -> None:
    rows = [
        ["Ann", "ann@example.org", "Europe/Berlin", "", "Mon-Fri 06:00-08:00"],
        ["Eve", "eve@example.org", "Europe/Paris", "", '=HYPERLINK("http://x")'],
        ["Max", "max@example.org", "Asia/Tokyo", "", "Mon-Fri 25:00-26:00"],
    ]
    report = parse_roster(make_roster(rows, header=HEADER), "people.csv")
    assert not report.ok
    assert [e.email for e in report.entries] == ["ann@example.org"]
    assert [(p.line, p.field) for p in report.errors] == [(3, "stretch"), (4, "stretch")]
    text = report.errors[0].describe()
    assert text.startswith("people.csv:3: stretch: ")
    assert "=HYPERLINK" in text and "'none'" in text  # the value, and how to write one
    assert "25:00" in report.errors[1].describe()
