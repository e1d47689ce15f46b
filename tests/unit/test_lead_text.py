"""How soon a session starts, as a reminder says it: true whenever inside its send window."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler.services.compose import lead_text


@pytest.mark.parametrize(
    ("before", "text"),
    [
        (timedelta(hours=1), "in about an hour"),
        (timedelta(hours=1, minutes=5), "in about an hour"),  # a 1 h reminder sent 5 min early
        (timedelta(minutes=55), "in about an hour"),
        (timedelta(hours=24, minutes=5), "in about 24 hours"),
        (timedelta(minutes=45), "in 45 minutes"),
        (timedelta(seconds=20), "in 1 minute"),
    ],
)
def test_lead_text_rounds_for_people(before: timedelta, text: str) -> None:
    assert lead_text(before) == text
