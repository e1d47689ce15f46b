from __future__ import annotations

from datetime import date, timedelta

import pytest

from scheduler.domain.cohort import DEFAULT_EARLY, HardKind, ReleaseKind, ReminderAbout, SeriesKind
from scheduler.domain.cohort_file import parse_cohort_file
from scheduler.errors import ConfigError


def test_example_file_parses(example_cohort_text: str) -> None:
    spec = parse_cohort_file(example_cohort_text)
    assert spec.slug == "ml-foundations-2027"
    assert spec.start_date == date(2027, 3, 1)
    assert spec.end_date == date(2027, 4, 25)
    assert spec.home_zone == "Europe/Berlin"
    assert [s.key for s in spec.series] == ["class", "cowork", "office-hours"]
    live = spec.series[0]
    assert live.kind is SeriesKind.CLASS
    assert live.per_week == 2
    assert live.duration == timedelta(minutes=90)
    assert live.min_gap == timedelta(hours=48)
    assert live.auto_sections
    assert live.max_section_size == 60
    assert spec.series[1].max_blocks == 6
    assert [f.zone for f in spec.facilitators] == ["Africa/Lagos", "America/Bogota", "Asia/Tokyo"]
    reading = spec.assignments[0]
    assert (reading.series, reading.prepares, reading.soft_offset) == (
        "class",
        True,
        timedelta(hours=24),
    )
    assert reading.snap_to == 20 * 60
    assert (reading.hard, reading.hard_after) == (HardKind.AFTER_SOFT, timedelta(hours=72))
    assert reading.release.kind is ReleaseKind.AFTER_PREVIOUS
    assert spec.assignments[1].hard is HardKind.END_OF_COURSE
    digest = next(r for r in spec.reminders if r.about is ReminderAbout.DIGEST)
    assert (digest.weekday, digest.at) == (0, 8 * 60)
    assert spec.is_blacked_out(date(2027, 3, 29))
    assert not spec.is_blacked_out(date(2027, 3, 30))


def _problems(text: str) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_cohort_file(text, "c.toml")
    return {p.field or "": p.describe() for p in info.value.problems}


def test_every_mistake_is_reported_with_its_key_path(example_cohort_text: str) -> None:
    text = (
        example_cohort_text.replace('duration = "90m"', 'duration = "90 minutes"')
        .replace('home_zone = "Europe/Berlin"', 'home_zone = "Europe/Berln"')
        .replace("per_week = 2", "per_wek = 2")
        .replace('locale = "en_GB"', 'locale = "xx_QQ"')
        .replace('prepares_for = "class"', 'prepares_for = "klass"')
        .replace("weeks = 8 ", "weeks = 0 ")
        .replace('kind = "coworking"', 'kind = "party"')
        .replace('availability = "Mon-Fri 08:00-21:00"', 'availability = "Mon-Fri 14:00-08:00"')
    )
    problems = _problems(text)
    assert "Europe/Berlin" in problems["cohort.home_zone"]  # did-you-mean hint
    assert "known locale" in problems["cohort.locale"]
    assert "between 1 and 104" in problems["cohort.weeks"]
    assert "90m" in problems["series[1].duration"]
    assert "did you mean 'per_week'" in problems["series[1].per_wek"]
    assert "must be one of class, coworking, office_hours" in problems["series[2].kind"]
    assert "ends before it starts" in problems["facilitators[1].availability"]
    assert "klass" in problems["assignments[1].prepares_for/follows"]
    # A broken series still counts as defined: the follow-up assignment is not blamed.
    assert "assignments[2].prepares_for/follows" not in problems
    assert len(problems) == 8


def test_toml_syntax_error_names_the_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_cohort_file('[cohort]\nslug = "x\n', "bad.toml")
    (problem,) = info.value.problems
    assert problem.line == 2
    assert "not valid TOML" in problem.message


def test_missing_cohort_table() -> None:
    problems = _problems("[planning]\nanchor = 'utc'\n")
    assert "cohort" in problems


def test_series_needs_facilitators() -> None:
    text = """
[cohort]
slug = "x1"
title = "X"
start_date = 2027-01-04
weeks = 2
home_zone = "UTC"

[[series]]
key = "class"
kind = "class"
duration = "1h"
"""
    problems = _problems(text)
    assert "at least one [[facilitators]]" in problems["facilitators"]


def test_minimal_file_gets_defaults() -> None:
    spec = parse_cohort_file(
        '[cohort]\nslug = "tiny"\ntitle = "Tiny"\nstart_date = 2027-01-04\nweeks = 1\nhome_zone = "Asia/Calcutta"\n'
    )
    assert spec.home_zone == "Asia/Kolkata"
    assert spec.locale == "en"
    assert spec.default_availability.to_text() == "Mon-Fri 18:00-21:00"
    assert spec.series == ()


def test_blackout_outside_course_is_reported(example_cohort_text: str) -> None:
    problems = _problems(example_cohort_text.replace("date = 2027-03-29", "date = 2028-01-01"))
    assert "outside the course dates" in problems["blackouts[1]"]


def test_assignment_direction_must_match(example_cohort_text: str) -> None:
    problems = _problems(
        example_cohort_text.replace('soft_deadline = "24h before"', 'soft_deadline = "24h after"')
    )
    assert "due before it" in problems["assignments[1].soft_deadline"]


def test_duplicate_series_key(example_cohort_text: str) -> None:
    problems = _problems(example_cohort_text.replace('key = "cowork"', 'key = "class"'))
    assert "repeats a key" in problems["series[2].key"]


def test_a_reminder_may_go_early_up_to_an_hour_and_a_welcome_never(
    example_cohort_text: str,
) -> None:
    spec = parse_cohort_file(example_cohort_text)
    early = {r.key: r.early for r in spec.reminders}
    assert early["class-1h"] == timedelta(minutes=5) == DEFAULT_EARLY == early["class-24h"]
    welcome = [r for r in spec.reminders if r.about is ReminderAbout.WELCOME]
    assert all(r.early == timedelta(0) for r in welcome)

    zero = parse_cohort_file(example_cohort_text.replace('early = "5m" ', "early = 0 "))
    assert next(r for r in zero.reminders if r.key == "class-1h").early == timedelta(0)
    ten = parse_cohort_file(example_cohort_text.replace('early = "5m" ', 'early = "10m" '))
    assert next(r for r in ten.reminders if r.key == "class-1h").early == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("value", "message"),
    [('"2h"', "is more than 1h"), ('"soon"', "is not a duration"), ("-5", "longer than zero")],
)
def test_an_early_beyond_an_hour_or_not_a_duration_is_refused(
    example_cohort_text: str, value: str, message: str
) -> None:
    problems = _problems(example_cohort_text.replace('early = "5m" ', f"early = {value} "))
    (field,) = [f for f in problems if f.endswith(".early")]
    assert message in problems[field]


def test_early_on_a_welcome_email_is_refused(example_cohort_text: str) -> None:
    text = example_cohort_text.replace('about = "welcome"', 'about = "welcome"\nearly = "5m"')
    assert 'about = "welcome"\nearly' in text
    problems = _problems(text)
    (field,) = [f for f in problems if f.endswith(".early")]
    assert "does not apply" in problems[field]
