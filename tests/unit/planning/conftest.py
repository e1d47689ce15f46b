"""Factories for planning tests: ``make_spec(**overrides)``, ``learner(key, zone, text)``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import CohortSpec, SeriesKind, SeriesRequest
from scheduler.planning import LearnerInput


def series(key: str = "class", **overrides: Any) -> SeriesRequest:
    values: dict[str, Any] = {
        "key": key,
        "title": key.title(),
        "kind": SeriesKind.CLASS,
        "per_week": 1,
        "duration": timedelta(minutes=60),
    }
    values.update(overrides)
    return SeriesRequest(**values)


def learner(key: str, zone: str, text: str | None) -> LearnerInput:
    if text is None:
        return LearnerInput(key, zone, parse_availability("Mon-Fri 18:00-22:00"), False)
    return LearnerInput(key, zone, parse_availability(text))


@pytest.fixture
def make_spec() -> Callable[..., CohortSpec]:
    base = CohortSpec(
        slug="test",
        title="Test",
        start_date=date(2027, 3, 1),
        weeks=2,
        home_zone="Europe/Berlin",
        locale="en_GB",
        default_availability=parse_availability("Mon-Fri 18:00-22:00"),
        series=(series(),),
    )

    def make(**overrides: Any) -> CohortSpec:
        return replace(base, **overrides)

    return make
