"""Planning a stored cohort, publishing it, and re-planning with a diff, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from scheduler.persistence.models import (
    LiveSeriesRow,
    OccurrenceRow,
    PlanVersionRow,
    SectionMemberRow,
)
from scheduler.runtime import Runtime
from scheduler.services.cohorts import load_cohort
from scheduler.services.plans import CANCELLED, SCHEDULED, diff_plan, plan_cohort, publish_plan
from scheduler.services.roster import import_roster

SLUG = "small-course"
COHORT = """
[cohort]
slug = "small-course"
title = "Small course"
start_date = 2027-03-01
weeks = 4
home_zone = "Europe/Berlin"

[[facilitators]]
name = "F"
email = "f@example.org"
zone = "Europe/Berlin"
availability = "Mon-Fri 08:00-22:00"
max_sessions_per_week = 6

[[series]]
key = "class"
kind = "class"
per_week = 2
duration = "1h"
min_gap = "24h"
"""
ROWS = [
    ["Ann", "ann@example.org", "Europe/Berlin", "Mon-Fri 18:00-21:00", "", ""],
    ["Bo", "bo@example.org", "Europe/Paris", "Mon-Fri 18:00-21:00", "", ""],
    ["Cy", "cy@example.org", "America/New_York", "Mon-Fri 12:00-16:00", "", ""],
]


@pytest.fixture
def cohort(runtime: Runtime, make_roster: Callable[..., bytes]) -> Runtime:
    with runtime.transaction() as db:
        load_cohort(db, COHORT, "c.toml", runtime.clock.now())
        import_roster(db, SLUG, make_roster(ROWS), "r.csv", runtime.clock.now())
    return runtime


def _count(runtime: Runtime, row_type: type) -> int:
    with runtime.transaction() as db:
        return db.scalar(select(func.count()).select_from(row_type)) or 0


def test_publish_then_replan_is_a_no_op(cohort: Runtime) -> None:
    now = cohort.clock.now()
    with cohort.transaction() as db:
        _, learners, plan = plan_cohort(db, SLUG)
        assert len(learners) == 3
        first = diff_plan(db, SLUG, plan, now)
        assert first.published_version is None
        assert len(first.added) == 2 * 4  # two a week for four weeks
        version, _ = publish_plan(db, SLUG, plan, now)
    assert version == 1
    assert _count(cohort, OccurrenceRow) == 8
    assert _count(cohort, LiveSeriesRow) == 2
    with cohort.transaction() as db:
        _, _, again = plan_cohort(db, SLUG)
        diff = diff_plan(db, SLUG, again, now)
    assert not diff.changed
    assert diff.unchanged == 8


def test_replan_after_roster_change_keeps_uids_and_bumps_sequence(
    cohort: Runtime, make_roster: Callable[..., bytes]
) -> None:
    now = cohort.clock.now()
    with cohort.transaction() as db:
        _, _, plan = plan_cohort(db, SLUG)
        publish_plan(db, SLUG, plan, now)
        before = {
            (o.series_id, o.week): (o.uid, o.start) for o in db.scalars(select(OccurrenceRow))
        }
    # Everyone moves to Tokyo afternoons (Berlin mornings): the evening class fits nobody now.
    moved_rows = [[r[0], r[1], "Asia/Tokyo", "Mon-Fri 16:00-19:00", "", ""] for r in ROWS]
    with cohort.transaction() as db:
        import_roster(db, SLUG, make_roster(moved_rows), "r.csv", now)
        _, _, plan = plan_cohort(db, SLUG)
        diff = diff_plan(db, SLUG, plan, now)
        assert len(diff.moved) == 8
        version, _ = publish_plan(db, SLUG, plan, now)
    assert version == 2
    with cohort.transaction() as db:
        after = {(o.series_id, o.week): o for o in db.scalars(select(OccurrenceRow))}
        assert set(after) == set(before)
        for key, occurrence in after.items():
            assert occurrence.uid == before[key][0]  # identity kept
            assert occurrence.start != before[key][1]
            assert occurrence.sequence == 1
            assert occurrence.status == SCHEDULED
            assert occurrence.changed_in_version == 2
        assert db.scalar(select(func.count()).select_from(PlanVersionRow)) == 2


def test_past_occurrences_are_frozen(cohort: Runtime) -> None:
    now = cohort.clock.now()
    with cohort.transaction() as db:
        _, _, plan = plan_cohort(db, SLUG)
        publish_plan(db, SLUG, plan, now)
        first_start = min(o.start for o in db.scalars(select(OccurrenceRow)))
        later = first_start + timedelta(days=8)  # the first week has been held
        trimmed = plan.__class__(
            **{**{f: getattr(plan, f) for f in plan.__dataclass_fields__}, "occurrences": ()}
        )
        diff = diff_plan(db, SLUG, trimmed, later)
    assert diff.frozen >= 2
    assert len(diff.cancelled) == 8 - diff.frozen
    assert all(c.start >= later for c in diff.cancelled)


def test_cancelled_occurrences_stay_as_cancelled(cohort: Runtime) -> None:
    now = cohort.clock.now()
    with cohort.transaction() as db:
        _, _, plan = plan_cohort(db, SLUG)
        publish_plan(db, SLUG, plan, now)
        empty = plan.__class__(
            **{
                **{f: getattr(plan, f) for f in plan.__dataclass_fields__},
                "occurrences": (),
                "sections": (),
            }
        )
        _, diff = publish_plan(db, SLUG, empty, now)
    assert len(diff.cancelled) == 8
    with cohort.transaction() as db:
        rows = list(db.scalars(select(OccurrenceRow)))
        series = list(db.scalars(select(LiveSeriesRow)))
    assert {r.status for r in rows} == {CANCELLED}
    assert {r.sequence for r in rows} == {1}
    assert {s.status for s in series} == {"cancelled"}


def test_section_members_are_stored(cohort: Runtime) -> None:
    with cohort.transaction() as db:
        _, _, plan = plan_cohort(db, SLUG)
        publish_plan(db, SLUG, plan, cohort.clock.now())
    assert _count(cohort, SectionMemberRow) == 3
