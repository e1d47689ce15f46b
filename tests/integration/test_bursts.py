"""Seeing a burst coming (services/bursts.py), on SQLite and PostgreSQL: the busiest stretch of
the week ahead counts the live reminders a published plan will write before they are written,
never counts one twice once written, and says what to raise when it cannot fit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from scheduler.clock import FixedClock
from scheduler.runtime import Runtime
from scheduler.services.bursts import busiest_stretch
from scheduler.services.reminders import sync_reminders

SLUG = "ml-foundations-2027"
ROWS = [
    [f"L{i}", f"l{i}@example.org", zone, "Mon-Fri 06:00-23:00", "en_GB", ""]
    for i, zone in enumerate(["Europe/Berlin", "Europe/Paris", "Africa/Lagos", "Europe/London"] * 5)
]


@pytest.fixture
def week_before(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    runtime = make_published(ROWS)
    clock = runtime.clock
    assert isinstance(clock, FixedClock)
    clock.advance(timedelta(days=26))  # 2027-02-27: the course starts on Monday 1 March
    return runtime


def test_the_week_ahead_is_counted_before_its_reminders_are_written(week_before: Runtime) -> None:
    now = week_before.clock.now()
    with week_before.transaction() as db:
        check = busiest_stretch(db, now, 300.0, slug=SLUG)
    assert check is not None and check.fits
    assert check.rule in {"class-1h", "class-24h"}
    assert check.burst.end - check.burst.start == timedelta(minutes=5)  # one rule's window
    assert 2 <= check.burst.count <= len(ROWS) + 3  # a section and its host
    assert check.text().endswith(": fine") and "reminders due within 5m" in check.text()
    with week_before.transaction() as db:
        assert busiest_stretch(db, now, 300.0) is None  # nothing written yet: stored rows only
        sync_reminders(db, SLUG, now, timedelta(days=7))
    with week_before.transaction() as db:
        again = busiest_stretch(db, now, 300.0, slug=SLUG)
        stored = busiest_stretch(db, now, 300.0)
    assert again is not None and stored is not None
    # once written, the projection adds nothing (no reminder counted twice); the outbox now
    # also holds the deadline and co-working reminders the projection leaves to their rows
    assert again.burst == stored.burst
    assert again.burst.count >= check.burst.count


def test_a_stretch_that_cannot_fit_says_what_to_raise(week_before: Runtime) -> None:
    now = week_before.clock.now()
    with week_before.transaction() as db:
        slow = busiest_stretch(db, now, 0.01, slug=SLUG)
    assert slow is not None and not slow.fits
    text = slow.text()
    assert "raise `early` for class-" in text and "or the rate to" in text
    assert slow.as_dict()["fits"] is False and slow.as_dict()["text"] == text
    with week_before.transaction() as db:
        crawl = busiest_stretch(db, now, 0.001, slug=SLUG)
    assert crawl is not None
    assert "raise the rate to" in crawl.text() and "at most 1h" in crawl.text()
