"""The co-working emails: the "starting soon" reminder with the learner's pod and the agenda
in their time, and the check-in prompt after the block."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduler.outputs.email import KINDS, EmailTemplates
from scheduler.resources import resource_dir

FOLDER = resource_dir("templates") / "email"
START = datetime(2027, 3, 2, 17, 0, tzinfo=UTC)  # 18:00 in Berlin, 22:30 in Kolkata
END = START + timedelta(hours=2)


@pytest.fixture(scope="module")
def templates() -> EmailTemplates:
    return EmailTemplates(FOLDER)


def base(zone: str = "Europe/Berlin", name: str = "Ann Example") -> dict[str, Any]:
    return {
        "learner": {"name": name, "email": "ann@example.org", "locale": "en_GB", "zone": zone},
        "cohort": {"title": "Data Science, Spring 2027", "slug": "ds-2027"},
        "links": {
            "page": None,
            "feed": "https://school.example/feeds/tok.ics",
            "webcal": None,
            "google": None,
            "outlook": None,
        },
    }


def reminder(zone: str = "Europe/Berlin", names: list[str] | None = None) -> dict[str, Any]:
    minute = timedelta(minutes=1)
    phases = [
        ("check-in", 0, 10),
        ("focus", 10, 55),
        ("break", 55, 65),
        ("focus", 65, 110),
        ("share progress", 110, 120),
    ]
    return base(zone) | {
        "kind": "coworking_reminder",
        "session": {
            "title": "Co-working",
            "kind": "coworking",
            "start": START,
            "end": END,
            "join_url": "https://meet.example/cowork",
            "lead": "in 2 hours",
            "phases": [
                {"label": label, "start": START + a * minute, "end": START + b * minute}
                for label, a, b in phases
            ]
            + [{"label": "Open floor", "start": None, "end": None}],
        },
        "pod": {"names": ["Bo Lagos", "Cy Bogotá"] if names is None else names, "size": 3},
    }


def checkin(deadline: bool = True, following: bool = True) -> dict[str, Any]:
    return base() | {
        "kind": "checkin",
        "checkin": {
            "title": "Co-working",
            "kind": "coworking",
            "start": START,
            "end": END,
            "join_url": None,
            "deadline": {
                "title": "Exercise 2",
                "soft": datetime(2027, 3, 5, 19, 0, tzinfo=UTC),
                "hard": datetime(2027, 3, 7, 19, 0, tzinfo=UTC),
            }
            if deadline
            else None,
            "next_block": {
                "title": "Co-working",
                "start": START + timedelta(days=7),
                "end": END + timedelta(days=7),
            }
            if following
            else None,
        },
    }


def visible(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def test_both_kinds_are_known() -> None:
    assert {"coworking_reminder", "checkin"} <= set(KINDS)


@pytest.mark.parametrize(
    ("zone", "first", "last"),
    [
        pytest.param("Europe/Berlin", "18:00–18:10 check-in", "19:50–20:00 share", id="berlin"),
        pytest.param("Asia/Kolkata", "22:30–22:40 check-in", "00:20–00:30 share", id="kolkata"),
    ],
)
def test_reminder_names_the_pod_and_the_agenda_in_the_learners_time(
    templates: EmailTemplates, zone: str, first: str, last: str
) -> None:
    rendered = templates.render("coworking_reminder", reminder(zone))
    for body in (rendered.text, visible(rendered.html)):
        assert "Bo Lagos" in body and "Cy Bogotá" in body
        assert first in body and last in body
        assert "Open floor" in body
        assert zone in body
    assert 'href="https://meet.example/cowork"' in rendered.html
    assert "Co-working starts in 2 hours" in rendered.subject and "\n" not in rendered.subject


def test_reminder_for_a_pod_of_one(templates: EmailTemplates) -> None:
    rendered = templates.render("coworking_reminder", reminder(names=[]))
    assert "Just you this time" in rendered.text
    assert "None" not in rendered.text and "None" not in rendered.html


def test_pod_names_escaped_in_html_and_verbatim_in_text(templates: EmailTemplates) -> None:
    rendered = templates.render("coworking_reminder", reminder(names=["<b>Ann & Bob</b>"]))
    assert "&lt;b&gt;Ann &amp; Bob&lt;/b&gt;" in rendered.html and "<b>" not in rendered.html
    assert "- <b>Ann & Bob</b>" in rendered.text


def test_checkin_names_the_next_deadline_and_block(templates: EmailTemplates) -> None:
    rendered = templates.render("checkin", checkin())
    for body in (rendered.text, visible(rendered.html)):
        assert "What did you finish?" in body
        assert "Exercise 2" in body and "Fri 5 Mar, 20:00 (Europe/Berlin)" in body
        assert "Sun 7 Mar, 20:00" in body  # the hard cut-off
        assert "Tue 9 Mar, 18:00–20:00 (Europe/Berlin)" in body
    assert rendered.subject == "How did Co-working go? · Data Science, Spring 2027"


def test_checkin_without_deadline_or_next_block(templates: EmailTemplates) -> None:
    rendered = templates.render("checkin", checkin(deadline=False, following=False))
    assert "No soft deadlines left" in rendered.text
    assert "Next co-working block" not in rendered.text
    assert "None" not in rendered.text and "None" not in rendered.html
