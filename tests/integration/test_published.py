"""The read models of scheduler.services.published (what the JSON API shows), on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import SeriesKind
from scheduler.errors import NotFoundError
from scheduler.runtime import Runtime
from scheduler.services import learners as learner_service
from scheduler.services.changes import Change, apply_change
from scheduler.services.cohorts import load_cohort
from scheduler.services.plans import plan_cohort
from scheduler.services.published import (
    cohort_facts,
    list_cohort_facts,
    published_series,
    require_cohort,
    upcoming_occurrences,
)
from scheduler.timeutil import zone

SLUG = "ml-foundations-2027"
DEFAULT = "Mon-Fri 18:00-22:00; Sat 09:00-13:00"  # the example cohort's default_availability
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
    ["Ola", "ola@example.org", "Europe/Oslo", "Sat 09:00-13:00", "", ""],
]
EVERYTHING = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def test_cohort_facts_before_and_after_publishing(
    runtime: Runtime, example_cohort_text: str, make_published: Callable[..., Runtime]
) -> None:
    earlier = example_cohort_text.replace(SLUG, "ml-foundations-early").replace(
        "start_date = 2027-03-01", "start_date = 2027-02-22"
    )
    with runtime.transaction() as db:
        load_cohort(db, earlier, "earlier.toml", runtime.clock.now())
    make_published(ROWS)
    with runtime.transaction() as db:
        spring = cohort_facts(db, SLUG)
        listed = list_cohort_facts(db)
        with pytest.raises(NotFoundError, match="no cohort with slug 'nope'"):
            cohort_facts(db, "nope")
    assert (spring.title, spring.start_date.isoformat(), spring.weeks) == (
        "Machine Learning Foundations, Spring 2027",
        "2027-03-01",
        8,
    )
    assert (spring.home_zone, spring.locale) == ("Europe/Berlin", "en_GB")
    assert (spring.learners, spring.facilitators, spring.published_version) == (4, 3, 1)
    assert [c.slug for c in listed] == ["ml-foundations-early", SLUG]  # by start date
    assert listed[1] == spring
    early = listed[0]
    assert (early.learners, early.facilitators, early.published_version) == (0, 3, None)


def test_require_cohort(published: Runtime) -> None:
    with published.transaction() as db:
        require_cohort(db, SLUG)
        with pytest.raises(NotFoundError, match=f"known: {SLUG}"):
            require_cohort(db, "nope")


def test_published_series_count_active_members(published: Runtime) -> None:
    with published.transaction() as db:
        _, _, plan = plan_cohort(db, SLUG)
        series = published_series(db, SLUG)
    assert [(s.series, s.section, s.slot) for s in series] == sorted(
        (s.series, s.section, s.slot) for s in series
    )
    assert {s.series for s in series} == {"class", "cowork", "office-hours"}
    assert not any(s.cancelled for s in series)
    sizes = {(s.series, s.section): len(s.learners) for s in plan.sections}
    for s in series:
        if s.kind == SeriesKind.COWORKING:
            assert s.members is None  # open to everyone
        else:
            assert s.members == sizes[(s.series, s.section)]
        assert 0 <= s.weekday < 7 and 0 <= s.wall_minute < 24 * 60
        assert s.anchor_zone == "Europe/Berlin"
    classes = [s for s in series if s.series == "class"]
    assert {s.duration_minutes for s in classes} == {90}
    assert {s.slot for s in classes} == {0, 1}  # two a week

    with published.transaction() as db:  # a withdrawn learner is no member any more
        learner_service.remove_learner(
            db, SLUG, "lea@example.org", now=published.clock.now(), horizon=published.horizon
        )
        after = published_series(db, SLUG)
    seated = {(s.series, s.section) for s in plan.sections if "lea@example.org" in s.learners}
    assert seated  # she had a place
    for s in after:
        if s.kind != SeriesKind.COWORKING:
            assert s.members == sizes[(s.series, s.section)] - ((s.series, s.section) in seated)


def test_upcoming_occurrences_in_time_order_with_expected_attendance(published: Runtime) -> None:
    with published.transaction() as db:
        every = upcoming_occurrences(db, SLUG, EVERYTHING, 1000)
        members = {(s.series, s.section): s.members for s in published_series(db, SLUG)}
    assert len(every) > 8 * 3  # eight weeks of classes, office hours and co-working
    assert [o.start for o in every] == sorted(o.start for o in every)
    assert {o.week for o in every} == set(range(8))
    assert all(o.end > o.start and not o.cancelled and o.sequence == 0 for o in every)

    # each learner's own availability (Lea: the cohort's default), checked one by one
    windows = [(zone(z), parse_availability(a or DEFAULT)) for _, _, z, a, _, _ in ROWS]
    blocks = [o for o in every if o.kind == SeriesKind.COWORKING]
    assert blocks
    for o in blocks:
        fits = sum(
            w.covers_at(o.start, int((o.end - o.start).total_seconds() // 60), tz)
            for tz, w in windows
        )
        assert o.expected_attendance == fits
    assert len({o.expected_attendance for o in blocks}) > 1  # the blocks suit different people
    for o in every:
        if o.kind != SeriesKind.COWORKING:
            assert o.expected_attendance == members[(o.series, o.section)]

    since = every[10].start
    with published.transaction() as db:
        page = upcoming_occurrences(db, SLUG, since, 5)
        assert upcoming_occurrences(db, SLUG, every[-1].start + timedelta(seconds=1), 5) == []
        with pytest.raises(NotFoundError):
            upcoming_occurrences(db, "nope", since, 5)
    assert len(page) == 5 and all(o.start >= since for o in page)
    assert {o.uid for o in page} <= {o.uid for o in every[9:20]}


def test_a_cancelled_occurrence_stays_listed(published: Runtime) -> None:
    now = published.clock.now()
    with published.transaction() as db:
        apply_change(db, SLUG, Change("class", week=2), now, published.horizon, actor="test")
        every = upcoming_occurrences(db, SLUG, EVERYTHING, 1000)
    cancelled = [o for o in every if o.cancelled]
    assert [(o.series, o.section, o.slot, o.week) for o in cancelled] == [("class", 0, 0, 2)]
    assert cancelled[0].sequence == 1
