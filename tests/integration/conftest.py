"""Integration fixtures: a published example cohort with a chosen roster."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from scheduler.runtime import Runtime
from scheduler.services import publishing
from scheduler.services.cohorts import load_cohort
from scheduler.services.plans import plan_cohort
from scheduler.services.roster import import_roster

EXAMPLE_SLUG = "ml-foundations-2027"


@pytest.fixture
def make_published(
    runtime: Runtime, example_cohort_text: str, make_roster: Callable[..., bytes]
) -> Callable[[list[list[str]]], Runtime]:
    """Load examples/cohort.toml, import ``rows``, plan and publish (plan and deadlines)."""

    def publish(rows: list[list[str]]) -> Runtime:
        now = runtime.clock.now()
        with runtime.transaction() as db:
            load_cohort(db, example_cohort_text, "cohort.toml", now)
            import_roster(db, EXAMPLE_SLUG, make_roster(rows), "r.csv", now)
            _, _, plan = plan_cohort(db, EXAMPLE_SLUG)
            publishing.publish(db, EXAMPLE_SLUG, plan, now)
        return runtime

    return publish
