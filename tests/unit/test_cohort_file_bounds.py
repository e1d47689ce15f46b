"""The cohort file check bounds its numbers: agenda lines no longer than their series, durations
at most ten years, and digits too many to read reported as problems rather than tracebacks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler.domain import cohort_file
from scheduler.domain.cohort_file import parse_cohort_file
from scheduler.errors import ConfigError, Problem

COWORK_AGENDA = (
    'agenda = ["10m check-in: say what you will work on", "2x50m focus with 10m break", '
    '"10m share progress"]'
)
CLASS_AGENDA = 'agenda = ["10m welcome and questions", "60m guided practice", "20m discussion"]'


def _problems(text: str) -> dict[str, Problem]:
    with pytest.raises(ConfigError) as info:
        parse_cohort_file(text, "c.toml")
    return {p.field or "": p for p in info.value.problems}


def _cowork_agenda(example: str, *lines: str) -> str:
    assert COWORK_AGENDA in example
    quoted = ", ".join(f'"{line}"' for line in lines)
    return example.replace(COWORK_AGENDA, f"agenda = [{quoted}]")


def test_the_example_agendas_stay_valid(example_cohort_text: str) -> None:
    spec = parse_cohort_file(example_cohort_text)
    assert spec.series[1].agenda[1] == "2x50m focus with 10m break"  # 110m of a 2h block


def test_a_phase_longer_than_the_series_is_a_problem_naming_its_line(
    example_cohort_text: str,
) -> None:
    text = _cowork_agenda(example_cohort_text, "100000000m check-in", "2x50m focus with 10m break")
    problems = _problems(text)
    assert list(problems) == ["series[2].agenda[1]"]
    problem = problems["series[2].agenda[1]"]
    assert problem.message == "is longer than the series' duration (2h)"
    assert problem.value == "100000000m check-in"
    assert problem.hint == "one phase may take at most 2h; this one takes 100000000 minutes"
    described = problem.describe()
    assert described.startswith("c.toml: series[2].agenda[1]: is longer than the series'")


def test_rounds_and_breaks_count_together(example_cohort_text: str) -> None:
    # 2x50m + 10m break = 110 minutes, more than the 90-minute class
    text = example_cohort_text.replace(CLASS_AGENDA, 'agenda = ["2x50m focus with 10m break"]')
    problems = _problems(text)
    assert list(problems) == ["series[1].agenda[1]"]
    problem = problems["series[1].agenda[1]"]
    assert problem.message == "is longer than the series' duration (1h30m)"
    assert problem.hint == (
        "its rounds and breaks together may take at most 1h30m; these take 1h50m"
    )


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("3h reading", id="hours"),
        pytest.param("2h1m reading", id="one_minute_over"),
        pytest.param("3x41m sprint", id="rounds_without_break"),
        pytest.param("2x10m focus with 1000000m break", id="long_break"),
        pytest.param(f"{10**40}m check-in", id="40_digits"),
        pytest.param("24x99999999999999999999m focus", id="huge_rounds"),
    ],
)
def test_every_form_of_too_long_a_line_is_reported(example_cohort_text: str, line: str) -> None:
    problems = _problems(_cowork_agenda(example_cohort_text, "10m check-in", line))
    assert list(problems) == ["series[2].agenda[2]"]
    assert problems["series[2].agenda[2]"].value == line


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(["2h deep work"], id="exactly_the_series"),
        pytest.param(["120m deep work"], id="exactly_in_minutes"),
        pytest.param(["60m a", "60m b", "60m c"], id="only_the_sum_is_longer"),
        pytest.param(["2x55m focus with 10m break"], id="rounds_exactly"),
        pytest.param(["30x10m sprint", "Open floor"], id="too_many_rounds_is_untimed_text"),
        pytest.param(["0m check-in", "Welcome"], id="zero_is_untimed_text"),
    ],
)
def test_lines_that_fit_the_series_stay_valid(example_cohort_text: str, lines: list[str]) -> None:
    spec = parse_cohort_file(_cowork_agenda(example_cohort_text, *lines))
    assert spec.series[1].agenda == tuple(lines)


def test_a_5000_digit_agenda_number_is_a_problem(example_cohort_text: str) -> None:
    problems = _problems(_cowork_agenda(example_cohort_text, "9" * 5000 + "m check-in"))
    assert "longer than 200 characters" in problems["series[2].agenda"].message


@pytest.mark.parametrize(
    ("replace", "field"),
    [
        pytest.param(('duration = "2h"', 'duration = "' + "9" * 5000 + 'm"'), "series[2].duration"),
        pytest.param(
            ('duration = "2h"', 'duration = "99999999999999999999w"'), "series[2].duration"
        ),
        pytest.param(('duration = "2h"', "duration = 99999999999999999999"), "series[2].duration"),
        pytest.param(('min_gap = "48h"', 'min_gap = "99999999999999999999w"'), "series[1].min_gap"),
        pytest.param(('min_gap = "48h"', 'min_gap = "521w"'), "series[1].min_gap"),
        pytest.param(
            ('soft_deadline = "24h before"', 'soft_deadline = "99999999999999999999h before"'),
            "assignments[1].soft_deadline",
        ),
        pytest.param(
            ('hard_deadline = "soft + 72h"', 'hard_deadline = "soft + 9999999999999999d"'),
            "assignments[1].hard_deadline",
        ),
        pytest.param(
            ('release = "after previous"', 'release = "drip 99999999999999999999w"'),
            "assignments[1].release",
        ),
        pytest.param(('effort = "2h"', 'effort = "' + "9" * 5000 + '"'), "assignments[1].effort"),
    ],
)
def test_absurd_durations_are_problems_not_tracebacks(
    example_cohort_text: str, replace: tuple[str, str], field: str
) -> None:
    assert replace[0] in example_cohort_text
    problems = _problems(example_cohort_text.replace(replace[0], replace[1], 1))
    assert field in problems, problems
    assert len(problems) == 1


def test_the_longest_duration_is_allowed(example_cohort_text: str) -> None:
    spec = parse_cohort_file(example_cohort_text.replace('min_gap = "48h"', 'min_gap = "520w"'))
    assert spec.series[0].min_gap == cohort_file.MAX_DURATION == timedelta(weeks=520)


def test_a_toml_number_too_long_for_python_is_a_problem_with_its_line(
    example_cohort_text: str,
) -> None:
    text = example_cohort_text.replace("per_week = 2", "per_week = " + "9" * 5000)
    with pytest.raises(ConfigError) as info:
        parse_cohort_file(text, "c.toml")
    (problem,) = info.value.problems
    assert problem.message == "contains a number too long to read"
    assert problem.line == example_cohort_text.splitlines().index("per_week = 2") + 1


def test_agenda_line_phases_reads_the_documented_forms() -> None:
    agenda_line_phases = cohort_file.agenda_line_phases
    assert agenda_line_phases("10m check-in: say hi") == [("check-in: say hi", 10)]
    assert agenda_line_phases("1h30m project work") == [("project work", 90)]
    assert agenda_line_phases("2x50m focus with 10m break") == [
        ("focus", 50),
        ("break", 10),
        ("focus", 50),
    ]
    assert agenda_line_phases("Questions") == [("Questions", None)]
