"""Fairness keys of the cohort file: a series' ``fairness``, ``rotate_times`` and
``max_coverage_loss``; the cohort's ``default_stretch``. Off by default, clear problems."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scheduler.domain.availability import Availability, parse_availability
from scheduler.domain.cohort import Fairness
from scheduler.domain.cohort_file import parse_cohort_file
from scheduler.errors import ConfigError, Problem

EXAMPLE = (Path(__file__).resolve().parents[2] / "examples" / "cohort.toml").read_text("utf-8")
CLASS = re.compile(r'(?ms)^\[\[series\]\]\nkey = "class".*?(?=^\[\[series\]\])')


def with_class(*lines: str, per_week: int = 1) -> str:
    """The example cohort with its class replaced by a weekly whole-cohort class + ``lines``."""
    block = "\n".join(
        [
            "[[series]]",
            'key = "class"',
            'kind = "class"',
            f"per_week = {per_week}",
            'duration = "90m"',
            *lines,
        ]
    )
    return CLASS.sub(block + "\n\n", EXAMPLE)


def with_cohort_key(line: str) -> str:
    return EXAMPLE.replace("[cohort]\n", f"[cohort]\n{line}\n", 1)


def problems_of(text: str) -> dict[str | None, Problem]:
    with pytest.raises(ConfigError) as caught:
        parse_cohort_file(text)
    return {p.field: p for p in caught.value.problems}


def test_off_by_default_and_in_the_example() -> None:
    spec = parse_cohort_file(EXAMPLE)
    assert all(s.fairness == Fairness.NONE for s in spec.series)
    assert spec.default_stretch is None
    assert '# fairness = "rotate"' in EXAMPLE  # the keys are shown, commented out


def test_rotate_with_defaults() -> None:
    series = parse_cohort_file(with_class('fairness = "rotate"')).series[0]
    assert (series.fairness, series.rotate_times, series.max_coverage_loss) == (
        Fairness.ROTATE,
        2,
        0.05,
    )


@pytest.mark.parametrize(
    ("text", "share"),
    [('"5%"', 0.05), ('"12.5 %"', 0.125), ("0.05", 0.05), ("0", 0.0), ('"100%"', 1.0), ("1", 1.0)],
    ids=["percent", "decimal_percent", "share", "zero", "all_percent", "all_share"],
)
def test_max_coverage_loss_forms(text: str, share: float) -> None:
    series = parse_cohort_file(
        with_class('fairness = "rotate"', "rotate_times = 3", f"max_coverage_loss = {text}")
    ).series[0]
    assert series.rotate_times == 3
    assert series.max_coverage_loss == pytest.approx(share)


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ('fairness = "fair"', "series[1].fairness", "must be one of none, rotate"),
        ("rotate_times = 1", "series[1].rotate_times", "between 2 and 4"),
        ("rotate_times = 5", "series[1].rotate_times", "between 2 and 4"),
        ('rotate_times = "2"', "series[1].rotate_times", "whole number"),
        ("max_coverage_loss = 5", "series[1].max_coverage_loss", 'like "5%"'),
        ('max_coverage_loss = "5"', "series[1].max_coverage_loss", "percentage"),
        ('max_coverage_loss = "150%"', "series[1].max_coverage_loss", "between 0% and 100%"),
        ('max_coverage_loss = "-1%"', "series[1].max_coverage_loss", "between 0% and 100%"),
        ('max_coverage_loss = "nan%"', "series[1].max_coverage_loss", "between 0% and 100%"),
        ("max_coverage_loss = true", "series[1].max_coverage_loss", "share or a percentage"),
    ],
    ids=[
        "unknown_mode",
        "one_time",
        "five_times",
        "times_as_text",
        "five_as_number",
        "percent_without_sign",
        "over_100_percent",
        "negative",
        "not_a_number",
        "boolean",
    ],
)
def test_bad_values_are_named(line: str, field: str, words: str) -> None:
    extra = [] if line.startswith("fairness") else ['fairness = "rotate"']
    found = problems_of(with_class(*extra, line))
    assert field in found, found
    assert words in found[field].describe()


def test_options_without_rotation_are_problems() -> None:
    found = problems_of(with_class("rotate_times = 3", 'max_coverage_loss = "5%"'))
    assert 'only applies with fairness = "rotate"' in found["series[1].rotate_times"].message
    assert "series[1].max_coverage_loss" in found


def test_rotation_needs_one_weekly_meeting_of_everyone() -> None:
    found = problems_of(with_class('fairness = "rotate"', per_week=2))
    assert "must be 1" in found["series[1].per_week"].message
    found = problems_of(with_class('fairness = "rotate"', 'sections = "auto"', "rotate = true"))
    assert "whole cohort meets together" in found["series[1].sections"].message
    assert "cannot be combined" in found["series[1].rotate"].message
    cowork = EXAMPLE.replace('duration = "2h"\n', 'duration = "2h"\nfairness = "rotate"\n', 1)
    found = problems_of(cowork)
    assert "co-working" in found["series[2].fairness"].message


def test_default_stretch() -> None:
    spec = parse_cohort_file(with_cohort_key('default_stretch = "mon-fri 6:00-8:00"'))
    assert spec.default_stretch == parse_availability("Mon-Fri 06:00-08:00")
    none = parse_cohort_file(with_cohort_key('default_stretch = "none"'))
    assert none.default_stretch == Availability(())
    found = problems_of(with_cohort_key('default_stretch = "early mornings"'))
    assert "cohort.default_stretch" in found
    assert "'none'" in found["cohort.default_stretch"].describe()
    found = problems_of(with_cohort_key('default_stretch = ""'))
    assert "cohort.default_stretch" in found


def test_regions_group_zones_by_name_or_prefix() -> None:
    spec = parse_cohort_file(
        EXAMPLE + '\n[regions]\n"asia/calcutta" = "South Asia"\n"america" = "Americas"\n'
    )
    assert spec.regions == (("Asia/Kolkata", "South Asia"), ("America", "Americas"))
    assert parse_cohort_file(EXAMPLE).regions == ()


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ('"Mars/Olympus" = "X"', "regions.Mars/Olympus", "is not a time zone or the start of one"),
        ('"Europe" = ""', "regions.Europe", "must not be empty"),
        ('"Asia" = 3', "regions.Asia", "must be text in quotes"),
        ('"Asia/Tokyo" = "a\\u001b[31mb"', "regions.Asia/Tokyo", "control characters"),
        ('"Asia" = "' + "x" * 41 + '"', "regions.Asia", "longer than 40"),
    ],
)
def test_a_bad_region_is_a_problem_naming_it(entry: str, field: str, message: str) -> None:
    found = problems_of(EXAMPLE + f"\n[regions]\n{entry}\n")
    assert message in found[field].message
    assert found[field].hint is not None and "South Asia" in found[field].hint
