"""What the web serves for a feed URL (scheduler.services.feeds: feed_contents, FeedCache): the
token check and how long it is trusted, the bodies kept per feed version, on SQLite and
PostgreSQL. The HTTP side (ETag, 304, 404, headers) is in test_web.py."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from scheduler.outputs.ics import FeedBuilder
from scheduler.persistence import repo
from scheduler.persistence.models import CohortRow, FeedTokenRow
from scheduler.runtime import Runtime
from scheduler.services.cohorts import load_cohort
from scheduler.services.feeds import (
    FeedCache,
    FeedKey,
    feed_contents,
    feed_events,
    feed_name,
    feed_stamp,
    hash_token,
    issue_token,
    resolve_token,
    revoke_tokens,
)

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def issue(runtime: Runtime, email: str | None) -> tuple[str, int]:
    with runtime.transaction() as db:
        token, target = issue_token(db, SLUG, email, runtime.clock.now())
    return token, target.cohort_id


def feeds_version(runtime: Runtime, cohort_id: int) -> int:
    with runtime.transaction() as db:
        cohort = db.get(CohortRow, cohort_id)
        assert cohort is not None
        return cohort.feeds_version


def revoke(runtime: Runtime, cohort_id: int) -> None:
    """Revoke the cohort's own feed tokens."""
    with runtime.transaction() as db:
        revoke_tokens(db, cohort_id, None, runtime.clock.now())


def test_a_token_check_is_trusted_for_lookup_seconds(published: Runtime) -> None:
    ticks = Ticks()
    feeds = FeedCache(published.engine, published.sessions, lookup_seconds=1.0, monotonic=ticks)
    token, cohort_id = issue(published, None)
    assert feeds.lookup("not-a-token") is None
    key = feeds.lookup(token)
    assert key == FeedKey(hash_token(token), cohort_id, feeds_version(published, cohort_id))

    revoke(published, cohort_id)
    ticks.now += 1.0
    assert feeds.lookup(token) == key  # still trusted: revocation takes up to a second
    ticks.now += 0.01
    assert feeds.lookup(token) is None  # checked again: revoked
    ticks.now += 5
    assert feeds.lookup(token) is None


def test_an_unknown_answer_is_trusted_as_long(published: Runtime) -> None:
    ticks = Ticks()
    feeds = FeedCache(published.engine, published.sessions, lookup_seconds=1.0, monotonic=ticks)
    _, cohort_id = issue(published, None)
    assert feeds.lookup("chosen-token") is None
    with published.transaction() as db:  # a token with a known value, stored only now
        db.add(
            FeedTokenRow(
                cohort_id=cohort_id,
                kind="cohort",
                token_hash=hash_token("chosen-token"),
                created_at=published.clock.now(),
            )
        )
    assert feeds.lookup("chosen-token") is None
    ticks.now += 1.5
    assert feeds.lookup("chosen-token") is not None


def test_too_many_remembered_checks_are_forgotten_at_once(published: Runtime) -> None:
    ticks = Ticks()
    feeds = FeedCache(
        published.engine, published.sessions, lookup_seconds=60.0, max_lookups=1, monotonic=ticks
    )
    token, cohort_id = issue(published, None)
    assert feeds.lookup(token) is not None
    revoke(published, cohort_id)
    assert feeds.lookup(token) is not None  # remembered (for a minute here)
    assert feeds.lookup("another") is None  # a second remembered check: all are forgotten
    assert feeds.lookup(token) is None  # so the revocation shows at once


def test_bodies_are_kept_per_feed_version(published: Runtime) -> None:
    feeds = FeedCache(published.engine, published.sessions, lookup_seconds=0.0)
    token, cohort_id = issue(published, "yuki@example.org")
    key = feeds.lookup(token)
    assert key is not None
    assert feeds.cached(key) is None
    rendered = feeds.render(token, key)
    assert rendered is not None
    assert rendered.body.startswith(b"BEGIN:VCALENDAR\r\n")
    assert rendered.etag == f'"{hashlib.sha256(rendered.body).hexdigest()[:32]}"'
    assert feeds.cached(key) is rendered

    with published.transaction() as db:  # what the web assembled itself before
        target = resolve_token(db, token)
        assert target is not None
        stamp = feed_stamp(db, cohort_id)
        assert stamp is not None
        expected = FeedBuilder(stamp=stamp).feed(feed_name(target), feed_events(db, target))
    assert rendered.body == expected
    again = FeedCache(published.engine, published.sessions, lookup_seconds=0.0)
    fresh = again.render(token, key)
    assert fresh is not None and fresh.body == rendered.body  # same plan, same bytes

    with published.transaction() as db:
        repo.touch_feeds(db, cohort_id)  # a change to the cohort
    bumped = feeds.lookup(token)
    assert bumped == FeedKey(key.token_hash, cohort_id, key.feeds_version + 1)
    assert feeds.cached(bumped) is None  # rendered again, never served stale
    assert feeds.cached(key) is rendered


def test_a_token_revoked_before_rendering_renders_nothing(published: Runtime) -> None:
    feeds = FeedCache(published.engine, published.sessions, lookup_seconds=1.0)
    token, cohort_id = issue(published, None)
    key = feeds.lookup(token)
    assert key is not None
    revoke(published, cohort_id)
    assert feeds.render(token, key) is None
    assert feeds.cached(key) is None


def test_feed_contents_of_a_published_cohort(published: Runtime) -> None:
    token, cohort_id = issue(published, "lea@example.org")
    with published.transaction() as db:
        contents = feed_contents(db, token)
        assert feed_contents(db, "not-a-token") is None
        assert contents is not None
        assert contents.stamp == feed_stamp(db, cohort_id)  # the published plan's time
    assert (contents.target.kind, contents.target.email) == ("learner", "lea@example.org")
    assert contents.events


def test_an_unpublished_cohort_feed_is_stamped_with_its_last_change(
    runtime: Runtime, example_cohort_text: str
) -> None:
    with runtime.transaction() as db:
        load_cohort(db, example_cohort_text, "cohort.toml", runtime.clock.now())
        token, target = issue_token(db, SLUG, None, runtime.clock.now())
    with runtime.transaction() as db:
        contents = feed_contents(db, token)
        cohort = db.get(CohortRow, target.cohort_id)
    assert contents is not None and cohort is not None
    assert contents.stamp == cohort.updated_at == runtime.clock.now()
    assert contents.events == []
