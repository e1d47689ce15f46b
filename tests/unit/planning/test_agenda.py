"""Agenda phases: durations parsed from agenda lines, laid out inside one occurrence."""

from __future__ import annotations

import itertools
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.planning.agenda import Phase, agenda_phases

START = datetime(2027, 3, 2, 18, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "cohort.toml"


def spans(phases: list[Phase]) -> list[tuple[str, int | None]]:
    return [
        (
            p.label,
            None if p.start is None or p.end is None else int((p.end - p.start).seconds // 60),
        )
        for p in phases
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("10m check-in", [("check-in", 10)], id="minutes"),
        pytest.param("1h reading", [("reading", 60)], id="hours"),
        pytest.param("1h30m project work", [("project work", 90)], id="hours_and_minutes"),
        pytest.param("45min: review", [("review", 45)], id="min_and_colon"),
        pytest.param(
            "2x50m focus with 10m break",
            [("focus", 50), ("break", 10), ("focus", 50)],
            id="rounds_with_break",
        ),
        pytest.param("3x20m sprint", [("sprint", 20)] * 3, id="rounds_without_break"),
    ],
)
def test_durations_are_parsed(line: str, expected: list[tuple[str, int]]) -> None:
    phases = agenda_phases([line], START, START + timedelta(hours=4))
    assert spans(phases) == expected
    assert phases[0].start == START
    for before, after in itertools.pairwise(phases):
        assert before.end == after.start


def test_the_example_coworking_agenda_fills_its_two_hours_exactly() -> None:
    cohort = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    coworking = next(s for s in cohort["series"] if s["kind"] == "coworking")
    assert coworking["duration"] == "2h"
    end = START + timedelta(hours=2)
    phases = agenda_phases(coworking["agenda"], START, end)
    # 10 + 2x50 + 10 + 10 = 130 minutes: the two focus phases give up five minutes each
    assert spans(phases) == [
        ("check-in: say what you will work on", 10),
        ("focus", 45),
        ("break", 10),
        ("focus", 45),
        ("share progress", 10),
    ]
    assert phases[0].start == START and phases[-1].end == end
    assert sum(((p.end - p.start) for p in phases if p.end and p.start), timedelta()) == end - START


def test_untimed_lines_share_the_free_time_evenly() -> None:
    phases = agenda_phases(["Welcome", "20m demo", "Questions"], START, START + timedelta(hours=1))
    assert spans(phases) == [("Welcome", 20), ("demo", 20), ("Questions", 20)]
    odd = agenda_phases(["A", "B", "C"], START, START + timedelta(minutes=100))
    assert spans(odd) == [("A", 34), ("B", 33), ("C", 33)]
    assert odd[-1].end == START + timedelta(minutes=100)


def test_untimed_lines_are_listed_untimed_when_no_time_is_left() -> None:
    phases = agenda_phases(["60m talk", "Wrap-up"], START, START + timedelta(hours=1))
    assert spans(phases) == [("talk", 60), ("Wrap-up", None)]
    assert phases[1].start is None and phases[1].end is None


@pytest.mark.parametrize("minutes", [1, 7, 30, 119])
def test_phases_never_run_beyond_the_end(minutes: int) -> None:
    end = START + timedelta(minutes=minutes)
    phases = agenda_phases(
        ["10m check-in", "2x50m focus with 10m break", "10m share", "Open floor"], START, end
    )
    assert all(p.end <= end for p in phases if p.end is not None)
    assert all(p.start >= START for p in phases if p.start is not None)


def test_a_shorter_agenda_leaves_the_rest_free_and_blank_lines_are_ignored() -> None:
    phases = agenda_phases(["", "15m intro", "  "], START, START + timedelta(hours=1))
    assert spans(phases) == [("intro", 15)]


def test_naive_or_empty_spans_are_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        agenda_phases(["10m x"], START.replace(tzinfo=None), START + timedelta(hours=1))
    with pytest.raises(ValueError, match="after"):
        agenda_phases(["10m x"], START, START)
