from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.domain.cohort import Role
from scheduler.errors import Problem
from scheduler.roster import parse_roster

Build = Callable[..., bytes]
GOOD = ["Ann Lee", "Ann@Example.org", "Europe/Berlin", "Mon-Fri 18:00-22:00", "de_DE", "learner"]


def fields(report: object) -> list[tuple[int | None, str | None]]:
    return [(p.line, p.field) for p in report.errors]  # type: ignore[attr-defined]


def test_valid_row_is_normalised(make_roster: Build) -> None:
    report = parse_roster(make_roster([GOOD]))
    assert report.ok
    (entry,) = report.entries
    assert entry.email == "ann@example.org"
    assert entry.zone == "Europe/Berlin"
    assert entry.availability == "Mon-Fri 18:00-22:00"
    assert entry.locale == "de_DE"
    assert entry.role is Role.LEARNER
    assert entry.line == 2


@pytest.mark.parametrize(
    ("bom", "delimiter"), [(False, ","), (True, ","), (False, ";"), (True, ";")]
)
def test_bom_and_delimiter(make_roster: Build, bom: bool, delimiter: str) -> None:
    # The availability cell holds a comma: quoted with ",", bare with ";".
    availability = "Mon 09:00-10:00, 12:00-13:00"
    cell = f'"{availability}"' if delimiter == "," else availability
    row = ["Bo", "bo@example.org", "Asia/Tokyo", cell, "", ""]
    report = parse_roster(make_roster([row], delimiter=delimiter, bom=bom))
    assert report.ok, report.errors
    assert report.entries[0].availability == "Mon 09:00-10:00; Mon 12:00-13:00"


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        pytest.param("US/Eastern", "America/New_York", id="legacy_alias"),
        pytest.param("Asia/Calcutta", "Asia/Kolkata", id="old_name"),
        pytest.param("JP", "Asia/Tokyo", id="country_with_one_zone"),
        pytest.param("in", "Asia/Kolkata", id="lowercase_country"),
    ],
)
def test_zone_forms(make_roster: Build, zone: str, expected: str) -> None:
    report = parse_roster(make_roster([["A", "a@example.org", zone, "", "", ""]]))
    assert report.entries[0].zone == expected


def test_empty_optional_cells_mean_defaults(make_roster: Build) -> None:
    report = parse_roster(make_roster([["A", "a@example.org", "UTC", "", "", ""]]))
    entry = report.entries[0]
    assert (entry.availability, entry.locale, entry.role) == (None, None, Role.LEARNER)


def test_many_mistakes_all_reported_with_line_and_column(make_roster: Build) -> None:
    rows = [
        GOOD,  # line 2
        ["Bad Zone", "bz@example.org", "Mars/Olympus", "", "", ""],  # 3
        ["Ambiguous", "am@example.org", "US", "", "", ""],  # 4
        ["Bad Mail", "not-an-email", "UTC", "", "", ""],  # 5
        ["Dup", "ANN@example.org", "UTC", "", "", ""],  # 6
        ["Bad Avail", "ba@example.org", "UTC", "Mon 18 to 22", "", ""],  # 7
        ["Backwards", "bw@example.org", "UTC", "Mon 18:00-09:00", "", ""],  # 8
        ["Bad Locale", "bl@example.org", "UTC", "", "zz_ZZ", ""],  # 9
        ["Bad Role", "br@example.org", "UTC", "", "", "boss"],  # 10
        ["", "noname@example.org", "UTC", "", "", ""],  # 11
        ['=HYPERLINK("http://evil")', "formula@example.org", "UTC", "", "", ""],  # 12: kept as text
    ]
    report = parse_roster(make_roster(rows))
    assert fields(report) == [
        (3, "timezone"),
        (4, "timezone"),
        (5, "email"),
        (6, "email"),
        (7, "availability"),
        (8, "availability"),
        (9, "locale"),
        (10, "role"),
        (11, "name"),
    ]
    by_line = {p.line: p for p in report.errors}
    assert "America/New_York" in (by_line[4].hint or "")
    assert "first seen on line 2" in by_line[6].message
    assert by_line[3].value == "Mars/Olympus"
    assert "ends before it starts" in by_line[8].message
    assert [e.line for e in report.entries] == [2, 12]
    assert report.entries[1].name == '=HYPERLINK("http://evil")'
    assert report.bad_lines == 9


def test_empty_file() -> None:
    report = parse_roster(b"")
    assert "empty" in report.errors[0].message


def test_header_only(make_roster: Build) -> None:
    report = parse_roster(make_roster([]))
    assert "no rows" in report.errors[0].message


def test_missing_required_column(make_roster: Build) -> None:
    report = parse_roster(make_roster([["A", "a@example.org"]], header=("name", "email")))
    (problem,) = report.errors
    assert problem.line == 1
    assert "timezone" in problem.message
    assert report.entries == []


def test_unknown_column_is_a_warning(make_roster: Build) -> None:
    report = parse_roster(
        make_roster([["A", "a@example.org", "UTC", "x"]], header=("name", "email", "tz", "shoe"))
    )
    assert report.ok
    assert "shoe" in report.warnings[0].message
    assert report.entries[0].zone == "UTC"


def test_huge_field(make_roster: Build) -> None:
    report = parse_roster(
        make_roster([["A" * 1_000_000, "a@example.org", "UTC", "", "", ""], GOOD])
    )
    assert fields(report) == [(2, "column 1")]
    assert [e.line for e in report.entries] == [3]


def test_non_utf8_file() -> None:
    data = "name,email,timezone\nJosé,j@example.org,UTC\n".encode("latin-1")
    report = parse_roster(data)
    (problem,) = report.errors
    assert problem.line == 2
    assert "UTF-8" in problem.message


def test_line_numbers_follow_multiline_cells(make_roster: Build) -> None:
    data = b'name,email,timezone\n"Ann\nLee",a@example.org,UTC\nBob,bad,UTC\n'
    report = parse_roster(data)
    assert fields(report) == [(2, "name"), (4, "email")]


def test_wrong_cell_count(make_roster: Build) -> None:
    report = parse_roster(b"name,email,timezone\nA,a@example.org\n")
    assert fields(report) == [(2, "row")]


def test_facilitator_role(make_roster: Build) -> None:
    report = parse_roster(make_roster([["F", "f@example.org", "UTC", "", "", "Facilitator"]]))
    assert report.entries[0].role is Role.FACILITATOR


def _full(value: str) -> str | None:
    from email_validator import EmailNotValidError, validate_email

    try:  # the import rule: deliverable without SMTPUTF8, the domain in its IDNA form
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    address = str(result.ascii_email).lower()
    return None if "=?" in address else address


@given(
    st.one_of(
        st.emails(),
        st.text(max_size=40),
        st.from_regex(r"[a-zA-Z0-9._%+=-]{0,70}@[a-zA-Z0-9.-]{0,20}"),
    )
)
@settings(max_examples=300)
def test_email_fast_path_agrees_with_email_validator(value: str) -> None:
    from scheduler.roster.parser import _email

    ours = _email(value.strip())
    assert (None if isinstance(ours, Problem) else ours) == _full(value.strip())
