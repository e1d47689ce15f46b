"""The ``[orchestration]`` table of the cohort file: defaults, values, and every problem at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from example_cohort import without_orchestration

from scheduler.domain.cohort import OrchestrationOptions
from scheduler.domain.cohort_file import parse_cohort_file
from scheduler.errors import ConfigError, Problem

EXAMPLE_COHORT = Path(__file__).resolve().parents[2] / "examples" / "cohort.toml"
EXAMPLE = EXAMPLE_COHORT.read_text(encoding="utf-8")
BASE = without_orchestration(EXAMPLE)


def with_orchestration(*lines: str) -> str:
    """The example cohort file with an ``[orchestration]`` table of ``lines`` instead of its own."""
    return BASE + "\n[orchestration]\n" + "\n".join(lines) + "\n"


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        parse_cohort_file(text)
    return list(caught.value.problems)


def by_field(problems: list[Problem]) -> dict[str | None, Problem]:
    return {p.field: p for p in problems}


def test_the_base_has_no_orchestration_table_and_still_parses() -> None:
    assert "[orchestration]" not in BASE
    assert "auto_replan" not in BASE
    assert [s.key for s in parse_cohort_file(BASE).series] == ["class", "cowork", "office-hours"]


def test_the_example_table_spells_out_the_defaults() -> None:
    assert parse_cohort_file(EXAMPLE).orchestration == OrchestrationOptions(
        auto_replan=False,
        freeze=timedelta(days=7),
        replan_margin=0.05,
        max_moves=2,
        pods_before=timedelta(hours=2),
    )


def test_defaults_when_the_table_is_absent() -> None:
    o = parse_cohort_file(BASE).orchestration
    assert o.auto_replan is False
    assert o.freeze == timedelta(days=7)
    assert o.replan_margin == 0.05
    assert o.max_moves == 2
    assert o.pods_before == timedelta(hours=2)


def test_an_empty_table_gives_the_defaults() -> None:
    assert parse_cohort_file(with_orchestration()).orchestration == OrchestrationOptions()


def test_values_are_read() -> None:
    o = parse_cohort_file(
        with_orchestration(
            "auto_replan = true",
            "freeze = '3d'",
            "replan_margin = 0.1",
            "max_moves = 0",
            "pods_before = '90m'",
        )
    ).orchestration
    assert o == OrchestrationOptions(
        auto_replan=True,
        freeze=timedelta(days=3),
        replan_margin=0.1,
        max_moves=0,
        pods_before=timedelta(minutes=90),
    )


def test_one_value_leaves_the_others_at_their_defaults() -> None:
    o = parse_cohort_file(with_orchestration("max_moves = 5")).orchestration
    assert (o.max_moves, o.auto_replan, o.freeze, o.replan_margin, o.pods_before) == (
        5,
        False,
        timedelta(days=7),
        0.05,
        timedelta(hours=2),
    )


@pytest.mark.parametrize(
    ("line", "field", "expected"),
    [
        ("freeze = '1w'", "freeze", timedelta(weeks=1)),
        ("freeze = '36h'", "freeze", timedelta(hours=36)),
        ("freeze = 90", "freeze", timedelta(minutes=90)),  # a bare number is minutes
        ("freeze = '104w'", "freeze", timedelta(weeks=104)),  # the upper bound itself
        ("replan_margin = 0", "replan_margin", 0.0),  # integers are accepted as fractions
        ("replan_margin = 1", "replan_margin", 1.0),
        ("replan_margin = 0.25", "replan_margin", 0.25),
        ("max_moves = 100", "max_moves", 100),
        ("auto_replan = false", "auto_replan", False),
        ("pods_before = '5m'", "pods_before", timedelta(minutes=5)),  # the bounds themselves
        ("pods_before = '2d'", "pods_before", timedelta(days=2)),
        ("pods_before = '1h30m'", "pods_before", timedelta(minutes=90)),
    ],
)
def test_accepted_values(line: str, field: str, expected: object) -> None:
    value = getattr(parse_cohort_file(with_orchestration(line)).orchestration, field)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("auto_replan = 'yes'", "auto_replan", "true or false"),
        ("auto_replan = 1", "auto_replan", "true or false"),
        ("freeze = 'soon'", "freeze", "not a duration"),
        ("freeze = true", "freeze", "duration"),
        ("freeze = '105w'", "freeze", "between"),
        ("replan_margin = '5%'", "replan_margin", "number between 0 and 1"),
        ("replan_margin = true", "replan_margin", "number between 0 and 1"),
        ("replan_margin = 1.5", "replan_margin", "between 0 and 1"),
        ("replan_margin = -0.05", "replan_margin", "between 0 and 1"),
        ("max_moves = -1", "max_moves", "between 0 and 100"),
        ("max_moves = 101", "max_moves", "between 0 and 100"),
        ("max_moves = 2.5", "max_moves", "whole number"),
        ("max_moves = '2'", "max_moves", "whole number"),
        ("max_moves = true", "max_moves", "whole number"),
        ("pods_before = '4m'", "pods_before", "between 5m and 2d"),
        ("pods_before = '3d'", "pods_before", "between 5m and 2d"),
        ("pods_before = 'later'", "pods_before", "not a duration"),
    ],
)
def test_a_bad_value_names_its_field(line: str, field: str, message: str) -> None:
    problems = problems_of(with_orchestration(line))
    assert [p.field for p in problems] == [f"orchestration.{field}"]
    assert message in problems[0].message
    assert problems[0].source == "cohort.toml"


def test_every_bad_value_is_reported_at_once() -> None:
    problems = problems_of(
        with_orchestration(
            "auto_replan = 'yes'",
            "freeze = 'soon'",
            "replan_margin = 1.5",
            "max_moves = -1",
            "pods_before = '1m'",
            "max_move = 3",
        )
    )
    fields = by_field(problems)
    assert set(fields) == {
        "orchestration.auto_replan",
        "orchestration.freeze",
        "orchestration.replan_margin",
        "orchestration.max_moves",
        "orchestration.pods_before",
        "orchestration.max_move",
    }
    assert len(problems) == 6
    assert fields["orchestration.replan_margin"].value == "1.5"
    assert fields["orchestration.max_moves"].value == "-1"
    assert fields["orchestration.pods_before"].value == "1m"


def test_orchestration_problems_come_with_problems_elsewhere() -> None:
    text = with_orchestration("replan_margin = 2").replace("weeks = 8 ", "weeks = 0 ")
    fields = {p.field for p in problems_of(text)}
    assert fields == {"cohort.weeks", "orchestration.replan_margin"}


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [
        ("max_move = 3", "max_moves"),
        ("replan-margin = 0.1", "replan_margin"),
        ("auto_replans = true", "auto_replan"),
        ("freze = '3d'", "freeze"),
        ("pod_before = '1h'", "pods_before"),
    ],
)
def test_an_unknown_key_gets_a_did_you_mean(typo: str, suggestion: str) -> None:
    (problem,) = problems_of(with_orchestration(typo))
    assert problem.field == "orchestration." + typo.split(" ")[0]
    assert problem.message == "is not a known key"
    assert problem.hint == f"did you mean {suggestion!r}?"


def test_an_unknown_key_unlike_any_lists_the_known_ones() -> None:
    (problem,) = problems_of(with_orchestration("colour = 'blue'"))
    assert problem.field == "orchestration.colour"
    assert problem.hint is not None
    for key in ("auto_replan", "freeze", "max_moves", "pods_before", "replan_margin"):
        assert key in problem.hint


def test_a_typo_never_falls_back_to_the_default_silently() -> None:
    """Even next to good values the typo is an error, not an ignored key."""
    problems = problems_of(with_orchestration("max_moves = 1", "replan_margn = 0.2"))
    assert [p.field for p in problems] == ["orchestration.replan_margn"]


def test_orchestration_must_be_a_table() -> None:
    (problem,) = problems_of("orchestration = 3\n" + BASE)
    assert problem.field == "orchestration"
    assert "table" in problem.message


def test_a_near_miss_of_the_table_name_is_reported() -> None:
    text = BASE + "\n[orchestrations]\nmax_moves = 1\n"
    (problem,) = problems_of(text)
    assert problem.field == "orchestrations"
    assert problem.hint == "did you mean 'orchestration'?"


@pytest.mark.parametrize("line", ["freeze = 0", "freeze = '0m'"])
def test_freeze_of_zero_means_no_freeze(line: str) -> None:
    assert parse_cohort_file(with_orchestration(line)).orchestration.freeze == timedelta(0)
