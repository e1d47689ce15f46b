"""The ``[catch_up]`` table of the cohort file: off by default, on in the example, clear problems."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from scheduler.domain.cohort import CatchUpOptions
from scheduler.domain.cohort_file import parse_cohort_file
from scheduler.errors import ConfigError, Problem

EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "cohort.toml").read_text("utf-8")
BASE = re.sub(r"(?ms)^\[catch_up\][^\n]*\n.*?(?=^\[)", "", EXAMPLE)


def with_catch_up(*lines: str) -> str:
    return BASE + "\n[catch_up]\n" + "\n".join(lines) + "\n"


def problems_of(text: str) -> dict[str | None, Problem]:
    with pytest.raises(ConfigError) as caught:
        parse_cohort_file(text)
    return {p.field: p for p in caught.value.problems}


def test_off_when_the_table_is_absent() -> None:
    assert "[catch_up]" not in BASE
    assert parse_cohort_file(BASE).catch_up == CatchUpOptions()
    assert parse_cohort_file(BASE).catch_up.enabled is False


def test_the_example_cohort_turns_it_on() -> None:
    assert parse_cohort_file(EXAMPLE).catch_up == CatchUpOptions(
        enabled=True, max_shift=timedelta(days=7), max_shifts=2
    )


def test_an_empty_table_turns_it_on_with_the_defaults() -> None:
    options = parse_cohort_file(with_catch_up()).catch_up
    assert options == CatchUpOptions(enabled=True)
    assert options.max_days == 7


def test_values_are_read() -> None:
    options = parse_cohort_file(
        with_catch_up('max_shift = "1w"', "max_shifts = 3", "enabled = true")
    ).catch_up
    assert (options.enabled, options.max_days, options.max_shifts) == (True, 7, 3)
    assert parse_cohort_file(with_catch_up('max_shift = "3d"')).catch_up.max_days == 3


def test_enabled_false_keeps_it_off() -> None:
    assert parse_cohort_file(with_catch_up("enabled = false")).catch_up.enabled is False


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ('max_shift = "36h"', "catch_up.max_shift", "must be whole days"),
        ('max_shift = "5w"', "catch_up.max_shift", "at most 28d"),
        ('max_shift = "0d"', "catch_up.max_shift", "longer than zero"),
        ('max_shift = "soon"', "catch_up.max_shift", "not a duration"),
        ("max_shifts = 0", "catch_up.max_shifts", "between 1 and 10"),
        ("max_shifts = 11", "catch_up.max_shifts", "between 1 and 10"),
        ('max_shifts = "2"', "catch_up.max_shifts", "whole number"),
        ("max_shifts = true", "catch_up.max_shifts", "whole number"),
        ('enabled = "yes"', "catch_up.enabled", "true or false"),
        ('max_shfit = "3d"', "catch_up.max_shfit", "not a known key"),
    ],
    ids=[
        "part_of_a_day",
        "more_than_four_weeks",
        "zero",
        "not_a_duration",
        "no_shifts",
        "too_many_shifts",
        "shifts_as_text",
        "shifts_as_bool",
        "enabled_as_text",
        "typo",
    ],
)
def test_bad_values_are_named_with_their_key(line: str, field: str, words: str) -> None:
    problems = problems_of(with_catch_up(line))
    assert field in problems, problems
    assert words in problems[field].message


def test_a_typo_gets_a_suggestion() -> None:
    problem = problems_of(with_catch_up('max_shfit = "3d"'))["catch_up.max_shfit"]
    assert problem.hint == "did you mean 'max_shift'?"


def test_whole_days_hint() -> None:
    problem = problems_of(with_catch_up('max_shift = "36h"'))["catch_up.max_shift"]
    assert problem.hint is not None and "whole days" in problem.hint


def test_every_problem_at_once() -> None:
    problems = problems_of(with_catch_up('max_shift = "36h"', "max_shifts = 0"))
    assert {"catch_up.max_shift", "catch_up.max_shifts"} <= set(problems)


def test_not_a_table() -> None:
    problems = problems_of("catch_up = true\n" + BASE)  # a top-level key, before any table
    assert problems["catch_up"].message == "must be a table"


def test_the_value_refuses_what_the_file_refuses() -> None:
    with pytest.raises(ValueError, match="whole days"):
        CatchUpOptions(max_shift=timedelta(hours=30))
    with pytest.raises(ValueError, match="max_shifts"):
        CatchUpOptions(max_shifts=0)
