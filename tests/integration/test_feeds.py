"""Feed tokens and what each feed holds, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from scheduler.errors import NotFoundError
from scheduler.persistence.models import FeedTokenRow, OccurrenceRow
from scheduler.runtime import Runtime
from scheduler.services import publishing
from scheduler.services.feeds import (
    feed_events,
    hash_token,
    issue_token,
    reset_tokens,
    resolve_token,
)
from scheduler.services.plans import plan_cohort

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def test_tokens_are_hashed_resolvable_and_revocable(published: Runtime) -> None:
    now = published.clock.now()
    with published.transaction() as db:
        first, target = issue_token(db, SLUG, "Yuki@Example.org", now)
        second, _ = issue_token(db, SLUG, "yuki@example.org", now)
        stored = list(db.scalars(select(FeedTokenRow.token_hash)))
    assert len(first) >= 43  # 32 random bytes, base64url
    assert first != second
    assert first not in stored
    assert hash_token(first) in stored
    assert target.kind == "learner"
    with published.transaction() as db:
        assert resolve_token(db, first) is not None
        assert resolve_token(db, second) is not None
        assert resolve_token(db, "not-a-token") is None
        fresh, revoked, _ = reset_tokens(db, SLUG, "yuki@example.org", now)
    assert revoked == 2
    with published.transaction() as db:
        assert resolve_token(db, first) is None
        assert resolve_token(db, second) is None
        assert resolve_token(db, fresh) is not None


def test_tokens_only_for_enrolled_people(published: Runtime) -> None:
    with pytest.raises(NotFoundError), published.transaction() as db:
        issue_token(db, SLUG, "stranger@example.org", published.clock.now())


def test_what_each_feed_holds(published: Runtime) -> None:
    now = published.clock.now()
    with published.transaction() as db:
        learner_token, _ = issue_token(db, SLUG, "yuki@example.org", now)
        cohort_token, _ = issue_token(db, SLUG, None, now)
        host_token, _ = issue_token(db, SLUG, "amara@example.org", now)
        learner = feed_events(db, resolve_token(db, learner_token))  # type: ignore[arg-type]
        whole = feed_events(db, resolve_token(db, cohort_token))  # type: ignore[arg-type]
        host = feed_events(db, resolve_token(db, host_token))  # type: ignore[arg-type]
        occurrences = len(list(db.scalars(select(OccurrenceRow))))
    assert len(whole) == occurrences  # every occurrence, nothing personal
    assert not any(e.transparent for e in whole)
    deadlines = [e for e in learner if e.transparent]
    live = [e for e in learner if not e.transparent]
    assert deadlines
    assert all(e.tzid == "Asia/Tokyo" for e in deadlines)
    assert {e.uid for e in live} <= {e.uid for e in whole}
    assert len(live) < len(whole)  # only their sections and the blocks that fit them
    assert host
    assert {e.uid for e in host} <= {e.uid for e in whole}
    assert len({e.uid for e in learner}) == len(learner)  # UIDs unique within a feed


def test_cancelled_occurrences_stay_in_the_feed(published: Runtime) -> None:
    now = published.clock.now()
    with published.transaction() as db:
        _, _, plan = plan_cohort(db, SLUG)
        empty = plan.__class__(
            **{
                **{f: getattr(plan, f) for f in plan.__dataclass_fields__},
                "occurrences": (),
                "sections": (),
            }
        )
        publishing.publish(db, SLUG, empty, now)
        token, _ = issue_token(db, SLUG, None, now)
        events = feed_events(db, resolve_token(db, token))  # type: ignore[arg-type]
    assert events
    assert {e.status for e in events} == {"CANCELLED"}
    assert {e.sequence for e in events} == {1}
