"""The freeze horizon of a scoped publish (a rolling re-plan), as a property: whatever the
published occurrences and the fresh plan, nothing that starts before ``frozen_until`` is moved,
added or cancelled, and series outside the scope are not touched at all.

``_diff`` is the one place that decides what a publish changes; it is exercised here on
transient rows (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.persistence.models import LiveSeriesRow, OccurrenceRow
from scheduler.planning import Occurrence, Plan
from scheduler.services.plans import CANCELLED, SCHEDULED, PublishScope, _diff

NOW = datetime(2027, 3, 3, 9, 0, tzinfo=UTC)
SERIES = ("class", "cowork", "office-hours")
HOUR = timedelta(hours=1)

keys = st.tuples(st.sampled_from(SERIES), st.integers(0, 1), st.integers(0, 1), st.integers(0, 5))
offsets = st.integers(-48, 24 * 21)  # hours from NOW: some past, some inside, most beyond


def plan_of(occurrences: dict[tuple[str, int, int, int], int]) -> Plan:
    return Plan(
        cohort="c",
        anchor_zone="UTC",
        weeks=6,
        sections=(),
        occurrences=tuple(
            Occurrence(s, sec, slot, week, NOW + h * HOUR, NOW + (h + 1) * HOUR)
            for (s, sec, slot, week), h in occurrences.items()
        ),
        coverage=(),
        left_out=(),
        warnings=(),
        auto_sections=(),
    )


def stored_of(
    occurrences: dict[tuple[str, int, int, int], tuple[int, bool]],
) -> dict[tuple[str, int, int, int], tuple[LiveSeriesRow, OccurrenceRow]]:
    return {
        key: (
            LiveSeriesRow(series_key=key[0], section=key[1], slot=key[2]),
            OccurrenceRow(
                week=key[3],
                start=NOW + h * HOUR,
                end=NOW + (h + 1) * HOUR,
                status=CANCELLED if cancelled else SCHEDULED,
            ),
        )
        for key, (h, cancelled) in occurrences.items()
    }


@settings(max_examples=200, deadline=None)
@given(
    stored=st.dictionaries(keys, st.tuples(offsets, st.booleans()), max_size=20),
    wanted=st.dictionaries(keys, offsets, max_size=20),
    freeze_hours=st.integers(0, 24 * 14),
    scope_series=st.sets(st.sampled_from(SERIES)),
)
def test_nothing_inside_the_freeze_horizon_or_outside_the_scope_changes(
    stored: dict[tuple[str, int, int, int], tuple[int, bool]],
    wanted: dict[tuple[str, int, int, int], int],
    freeze_hours: int,
    scope_series: set[str],
) -> None:
    frozen_until = NOW + freeze_hours * HOUR
    scope = PublishScope(frozenset(scope_series), frozen_until)
    rows = stored_of(stored)
    diff = _diff(plan_of(wanted), rows, 1, NOW, scope)

    for change in diff.moved:
        assert change.series in scope_series
        assert change.old_start is not None and change.old_start >= frozen_until  # was beyond
        assert change.start >= frozen_until  # and lands beyond
    for change in diff.cancelled:
        assert change.series in scope_series
        assert change.start >= frozen_until
    for change in diff.added:
        assert change.series in scope_series
        assert change.start >= frozen_until
    # and what the scope allows does happen: a wanted occurrence beyond the horizon, in scope,
    # not published yet, is added; a scheduled one beyond the horizon that is not wanted goes
    added = {(c.series, c.section, c.slot, c.week) for c in diff.added}
    cancelled = {(c.series, c.section, c.slot, c.week) for c in diff.cancelled}
    for key, h in wanted.items():
        if key[0] in scope_series and key not in stored and NOW + h * HOUR >= frozen_until:
            assert key in added
    for key, (h, was_cancelled) in stored.items():
        beyond = NOW + h * HOUR >= frozen_until
        if key[0] in scope_series and key not in wanted and not was_cancelled and beyond:
            assert key in cancelled


@settings(max_examples=100, deadline=None)
@given(
    stored=st.dictionaries(keys, st.tuples(offsets, st.booleans()), max_size=20),
    wanted=st.dictionaries(keys, offsets, max_size=20),
)
def test_without_a_scope_only_what_has_started_is_held(
    stored: dict[tuple[str, int, int, int], tuple[int, bool]],
    wanted: dict[tuple[str, int, int, int], int],
) -> None:
    """The whole-plan publish (`cohort plan --publish`) keeps its rule: only occurrences that
    have already started are left alone."""
    diff = _diff(plan_of(wanted), stored_of(stored), 1, NOW)
    for change in diff.moved + diff.cancelled:
        assert change.old_start is not None and change.old_start >= NOW
    moved_or_cancelled = {
        (c.series, c.section, c.slot, c.week) for c in diff.moved + diff.cancelled
    }
    for key, (h, was_cancelled) in stored.items():
        target = wanted.get(key)
        future = NOW + h * HOUR >= NOW
        if future and not was_cancelled and (target is None or target != h):
            assert key in moved_or_cancelled
