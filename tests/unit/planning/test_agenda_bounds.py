"""Agenda layout stays cheap for absurd durations and unchanged for normal ones.

``_fit`` used to take one minute per loop pass, so a ``"100000000m check-in"`` line kept the
feed, the learner page and the worker busy for seconds per occurrence. The reference below is
that loop, kept to check the one-step version against it.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from unittest import mock

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scheduler.domain import cohort_file
from scheduler.planning import agenda
from scheduler.planning.agenda import Phase, _fit, agenda_phases, parse_minutes

START = datetime(2027, 3, 2, 18, 0, tzinfo=UTC)
TWO_HOURS = START + timedelta(hours=2)
# Lines the agenda code may run per call, far above what a normal layout needs (a few hundred)
# and far below what the minute-by-minute loop needed for the durations below.
LINE_BUDGET = 20_000


def reference_fit(lengths: list[int], available: int) -> list[int]:
    """The original ``_fit``: shrink the longest lengths a minute at a time."""
    lengths = list(lengths)
    excess = sum(lengths) - available
    while excess > 0:
        longest = max(lengths)
        if longest <= 1:
            break
        for i, length in enumerate(lengths):
            if length == longest and excess > 0:
                lengths[i] -= 1
                excess -= 1
    return lengths


class TooManySteps(Exception):
    pass


@contextmanager
def line_budget(limit: int = LINE_BUDGET) -> Iterator[list[int]]:
    """Count the lines run in the agenda modules; raise TooManySteps past ``limit``.

    Deterministic where a stopwatch is not, and it stops a runaway loop instead of waiting it
    out, so on the old code these tests fail quickly rather than hang.
    """
    watched = {str(Path(agenda.__file__).resolve()), str(Path(cohort_file.__file__).resolve())}
    seen = [0]

    def local(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if event == "line":
            seen[0] += 1
            if seen[0] > limit:
                raise TooManySteps(f"more than {limit} lines in {frame.f_code.co_name}")
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if event == "call" and str(Path(frame.f_code.co_filename).resolve()) in watched:
            return local
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        yield seen
    finally:
        sys.settrace(previous)


def spans(phases: list[Phase]) -> list[tuple[str, int | None]]:
    return [
        (
            p.label,
            None if p.start is None or p.end is None else (p.end - p.start) // timedelta(minutes=1),
        )
        for p in phases
    ]


def assert_inside(phases: list[Phase], start: datetime, end: datetime) -> None:
    timed = [(p.start, p.end) for p in phases if p.start is not None and p.end is not None]
    assert all(start <= first and last <= end for first, last in timed)
    for (_, before), (after, _) in itertools.pairwise(timed):
        assert before == after


# --- the one-step _fit gives the minute-by-minute result ------------------------------------


@settings(max_examples=500, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=90), max_size=12),
    available=st.integers(min_value=0, max_value=400),
)
def test_fit_matches_the_minute_by_minute_reference(lengths: list[int], available: int) -> None:
    assert _fit(lengths, available) == reference_fit(lengths, available)


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=0, max_value=6), max_size=8),
    available=st.integers(min_value=-5, max_value=30),
)
def test_fit_matches_the_reference_on_edge_values(lengths: list[int], available: int) -> None:
    # zero lengths and a negative budget never come from agenda_phases, but agree all the same
    assume(lengths or available >= 0)  # the reference fails on max() of nothing
    assert _fit(lengths, available) == reference_fit(lengths, available)


_labels = st.sampled_from(["check-in", "focus", "review", "share"])
_timed = st.builds(lambda m, label: f"{m}m {label}", st.integers(1, 90), _labels)
_hours = st.builds(
    lambda h, m, label: f"{h}h{m}m {label}", st.integers(1, 2), st.integers(0, 59), _labels
)
_repeat = st.builds(
    lambda n, m, p, label: f"{n}x{m}m {label} with {p}m break",
    st.integers(1, 4),
    st.integers(1, 60),
    st.integers(0, 15),
    _labels,
)
_untimed = st.sampled_from(["Welcome", "Open floor", "Questions", ""])


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.one_of(_timed, _hours, _repeat, _untimed), max_size=6),
    minutes=st.integers(min_value=1, max_value=300),
)
def test_layout_matches_the_layout_with_the_reference_fit(lines: list[str], minutes: int) -> None:
    end = START + timedelta(minutes=minutes)
    phases = agenda_phases(lines, START, end)
    with mock.patch.object(agenda, "_fit", reference_fit):
        expected = agenda_phases(lines, START, end)
    assert phases == expected
    assert_inside(phases, START, end)


def test_the_example_coworking_layout_is_unchanged() -> None:
    lines = ["10m check-in: say what you will work on", "2x50m focus with 10m break", "10m share"]
    assert spans(agenda_phases(lines, START, TWO_HOURS)) == [
        ("check-in: say what you will work on", 10),
        ("focus", 45),
        ("break", 10),
        ("focus", 45),
        ("share", 10),
    ]


# --- absurd numbers cost a few steps, not one per minute ------------------------------------


@pytest.mark.parametrize(
    "first",
    [
        pytest.param("100000000m check-in", id="1e8_minutes"),
        pytest.param("1000000000000m check-in", id="1e12_minutes"),
        pytest.param("100000000h check-in", id="1e8_hours"),
        pytest.param(f"{10**30}m check-in", id="1e30_minutes"),
        pytest.param("9" * 5000 + "m check-in", id="5000_digits"),
    ],
)
def test_an_absurd_phase_fits_the_block_in_a_few_steps(first: str) -> None:
    lines = [first, "2x50m focus with 10m break"]
    with line_budget() as seen:
        phases = agenda_phases(lines, START, TWO_HOURS)
    assert seen[0] < LINE_BUDGET
    # 120 minutes for (huge, 50, 10, 50): the check-in shrinks to the focus length, then all
    # of the longest give up minutes together, the earlier first.
    assert spans(phases) == [("check-in", 36), ("focus", 37), ("break", 10), ("focus", 37)]
    assert phases[0].start == START and phases[-1].end == TWO_HOURS
    assert_inside(phases, START, TWO_HOURS)


def test_absurd_rounds_and_breaks_fit_the_block_in_a_few_steps() -> None:
    lines = ["24x99999999m focus with 99999999m break", "10m share"]
    with line_budget() as seen:
        phases = agenda_phases(lines, START, TWO_HOURS)
    assert seen[0] < LINE_BUDGET
    timed = [p for p in phases if p.start is not None]
    assert len(phases) == 48 and len(timed) == 48  # 47 phases of 2 minutes, and 1 minute
    assert phases[-1].end == TWO_HOURS
    assert_inside(phases, START, TWO_HOURS)


@pytest.mark.parametrize("huge", [10**8, 10**12, 10**15])
def test_fit_takes_one_step_for_huge_lengths(huge: int) -> None:
    with line_budget(limit=200) as seen:
        fitted = _fit([10, huge, 50, 10, huge], 120)
    assert seen[0] <= 200
    assert fitted == reference_fit([10, 50, 50, 10, 50], 120) == [10, 33, 33, 10, 34]
    assert sum(fitted) == 120


def test_numbers_past_fifteen_digits_are_not_read() -> None:
    assert parse_minutes(None, None, "9" * 5000) == cohort_file.AGENDA_HUGE_MINUTES
    assert parse_minutes("9" * 5000, "30", None) == cohort_file.AGENDA_HUGE_MINUTES * 60 + 30
    assert parse_minutes(None, None, "0" * 5000 + "7") == 7
    assert parse_minutes("1", "30", None) == 90
    # 5000 rounds is no repeat (at most 24): the line is an untimed one, given the free time
    line = "9" * 5000 + "x10m sprint"
    assert spans(agenda_phases([line], START, TWO_HOURS)) == [(line, 120)]
