"""A fairly rotated class end to end, on both backends: cohort file and roster (with stretch
hours) in, plan, publish; the class meets at its rotation's times, week by week, at the right
UTC instants across the European clock change of 28 March 2027."""

from __future__ import annotations

import email
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from email import policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from cli_run import cohort
from draining import drain
from served_app import serve
from sqlalchemy import select

from scheduler.clock import FixedClock
from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import Fairness
from scheduler.domain.status import NotificationKind
from scheduler.outputs.mailers import MemoryMailer
from scheduler.persistence import repo
from scheduler.persistence.models import (
    LiveSeriesRow,
    NotificationRow,
    OccurrenceRow,
    PersonRow,
    PlanVersionRow,
)
from scheduler.runtime import Runtime
from scheduler.services import publishing
from scheduler.services.admin import rotate_admin_token
from scheduler.services.changes import Change, preview_change
from scheduler.services.cohorts import load_cohort
from scheduler.services.feeds import issue_token
from scheduler.services.plans import plan_cohort, plan_summary
from scheduler.services.reminders import sync_reminders
from scheduler.services.roster import import_roster
from scheduler.services.schedule import learner_schedule

SLUG = "fair-course"
BERLIN = ZoneInfo("Europe/Berlin")
COHORT = """
[cohort]
slug = "fair-course"
title = "Fair course"
start_date = 2027-03-15           # weeks 0-1 before Europe's clock change, 2-3 after
weeks = 4
home_zone = "Europe/Berlin"
default_stretch = "Mon-Fri 06:00-09:00; Mon-Fri 12:00-15:00; Mon-Fri 22:00-23:30"

[[facilitators]]
name = "F"
email = "f@example.org"
zone = "Europe/Berlin"
availability = "Mon-Fri 00:00-24:00"
max_sessions_per_week = 6

[[series]]
key = "class"
kind = "class"
per_week = 1
duration = "90m"
fairness = "rotate"
rotate_times = 2
max_coverage_loss = "10%"

[[series]]
key = "office-hours"
kind = "office_hours"
per_week = 1
duration = "1h"

[[reminders]]
key = "weekly-digest"
about = "digest"
weekday = "Mon"
at = "08:00"
"""
HEADER = ("name", "email", "timezone", "availability", "stretch")
ROWS = [
    ["Aiko", "aiko@example.org", "Asia/Tokyo", "Mon-Fri 19:00-23:00", ""],
    ["Ken", "ken@example.org", "Asia/Tokyo", "Mon-Fri 19:00-23:00", "Mon-Fri 05:30-08:00"],
    ["Ravi", "ravi@example.org", "Asia/Kolkata", "Mon-Fri 17:00-22:00", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "Mon-Fri 18:00-22:00", ""],
    ["Jan", "jan@example.org", "Europe/Amsterdam", "Mon-Fri 18:00-22:00", ""],
    ["Ola", "ola@example.org", "Europe/Oslo", "Mon-Fri 18:00-22:00", "none"],
    ["Sam", "sam@example.org", "America/New_York", "Mon-Fri 18:00-22:00", ""],
    ["Ana", "ana@example.org", "America/Chicago", "Mon-Fri 17:00-21:00", ""],
]


@pytest.fixture
def published(runtime: Runtime, make_roster: Callable[..., bytes]) -> Runtime:
    now = runtime.clock.now()
    with runtime.transaction() as db:
        load_cohort(db, COHORT, "c.toml", now)
        import_roster(db, SLUG, make_roster(ROWS, header=HEADER), "r.csv", now)
        _, _, plan = plan_cohort(db, SLUG)
        publishing.publish(db, SLUG, plan, now)
    return runtime


def wall_instant(week: int, weekday: int, minute: int) -> datetime:
    """Where Berlin's wall clock puts (weekday, minute) in course week ``week``, as UTC."""
    day = date(2027, 3, 15) + timedelta(days=7 * week + weekday)
    return datetime.combine(day, time(minute // 60, minute % 60), BERLIN).astimezone(UTC)


def test_stored_options_and_stretch_round_trip(published: Runtime) -> None:
    with published.transaction() as db:
        spec = repo.cohort_spec(db, repo.get_cohort(db, SLUG))
        stretch = {e: s for e, s in db.execute(select(PersonRow.email, PersonRow.stretch))}
    klass = spec.series[0]
    assert (klass.fairness, klass.rotate_times, klass.max_coverage_loss) == (
        Fairness.ROTATE,
        2,
        0.10,
    )
    assert spec.series[1].fairness == Fairness.NONE
    assert spec.default_stretch is not None and not spec.default_stretch.is_empty
    assert stretch["ken@example.org"] == "Mon-Fri 05:30-08:00"
    assert stretch["ola@example.org"] == "none"
    assert stretch["aiko@example.org"] is None


def test_the_class_rotates_at_the_right_instants(published: Runtime) -> None:
    with published.transaction() as db:
        (series,) = db.scalars(select(LiveSeriesRow).where(LiveSeriesRow.series_key == "class"))
        meetings = sorted(
            db.scalars(select(OccurrenceRow).where(OccurrenceRow.series_id == series.id)),
            key=lambda o: o.week,
        )
        _, _, plan = plan_cohort(db, SLUG)
        summary = db.scalars(select(PlanVersionRow.summary)).one()
    fair = plan.fairness_of("class")
    assert fair is not None
    assert series.rotation is not None and series.rotation_weeks is not None
    times = [(int(day), int(minute)) for day, minute in series.rotation]
    assert len(times) == 2 and len(set(times)) == 2  # two different weekly times
    assert series.rotation_weeks == list(fair.week_times)
    assert set(series.rotation_weeks) == {0, 1}  # both are used
    assert (series.weekday, series.wall_minute) == times[0]
    assert [o.week for o in meetings] == [0, 1, 2, 3]
    for o in meetings:
        day, minute = times[series.rotation_weeks[o.week]]
        assert o.start == wall_instant(o.week, day, minute)
        assert o.end - o.start == timedelta(minutes=90)
    # Berlin's clock moves on 28 March: the same wall time is an hour earlier in UTC after it.
    offsets = [o.start.astimezone(BERLIN).utcoffset() for o in meetings]
    assert offsets == [timedelta(hours=1)] * 2 + [timedelta(hours=2)] * 2
    # The published plan keeps the burden ledger.
    (report,) = summary["fairness"]
    assert report["series"] == "class"
    assert {r["region"] for r in report["regions"]} == {"Asia", "Europe", "America"}
    assert summary == plan_summary(plan) | {"learners": summary["learners"]}


def test_a_replan_of_the_same_roster_changes_nothing(published: Runtime) -> None:
    now = published.clock.now()
    with published.transaction() as db:
        _, _, plan = plan_cohort(db, SLUG)
        version, diff, _ = publishing.publish(db, SLUG, plan, now)
    assert version is None and not diff.changed


def test_cli_prints_the_burden_ledger(
    cli_env: dict[str, Any], tmp_path: Path, make_roster: Callable[..., bytes]
) -> None:
    (tmp_path / "c.toml").write_text(COHORT, encoding="utf-8")
    (tmp_path / "r.csv").write_bytes(make_roster(ROWS, header=HEADER))
    assert cohort(cli_env, tmp_path, "db", "upgrade").returncode == 0
    assert cohort(cli_env, tmp_path, "cohort", "load", "c.toml").returncode == 0
    assert cohort(cli_env, tmp_path, "roster", "import", "r.csv", "--cohort", SLUG).returncode == 0

    shown = cohort(cli_env, tmp_path, "plan", "--cohort", SLUG)
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "(rotating)" in text
    assert "Fairness class: rotates between " in text
    assert "the worst-off region" in text and "proven the fairest" in text
    assert "week by week: 1 " in text
    for region in ("Asia", "Europe", "America"):
        assert f"  {region}: " in text
    assert "worst off: " in text

    data = json.loads(cohort(cli_env, tmp_path, "plan", "--cohort", SLUG, "--json").stdout)
    (report,) = data["fairness"]
    assert report["series"] == "class" and len(report["times"]) == 2
    assert sorted(set(report["week_times"])) == [0, 1]
    rows = {r["region"]: r for r in report["regions"]}
    assert set(rows) == {"Asia", "Europe", "America"}
    assert sum(r["learners"] for r in rows.values()) == len(ROWS)
    for r in rows.values():
        assert r["preferred"] + r["stretch"] + r["missed"] + r["skipped"] == r["learners"] * 4
        assert r["share"] == round((r["stretch"] + r["missed"]) / (r["learners"] * 4), 4)
    assert report["worst_share"] == max(r["share"] for r in rows.values())
    assert report["coverage"] >= report["single_coverage"] - 0.10
    assert report["gap"] == 0 and report["exact"] is True
    (section,) = [s for s in data["sections"] if s["series"] == "class"]
    assert section["rotation"] == report["times"]
    assert section["week_times"] == report["week_times"]
    assert data["fairness_before"] == [] and data["fairness_changes"] == []

    # Published, then three more learners in Asia: the preview shows the burden before -> after.
    assert cohort(cli_env, tmp_path, "plan", "--cohort", SLUG, "--publish").returncode == 0
    more = [
        [f"Kai{i}", f"kai{i}@example.org", "Asia/Tokyo", "Mon-Fri 19:00-23:00", ""]
        for i in range(3)
    ]
    (tmp_path / "r.csv").write_bytes(make_roster(ROWS + more, header=HEADER))
    assert cohort(cli_env, tmp_path, "roster", "import", "r.csv", "--cohort", SLUG).returncode == 0
    preview = json.loads(cohort(cli_env, tmp_path, "plan", "--cohort", SLUG, "--json").stdout)
    (before,) = preview["fairness_before"]
    assert before == report  # as published
    (after,) = preview["fairness"]
    assert after != before
    (line,) = preview["fairness_changes"]
    assert line.startswith(
        f"class: worst region {before['worst_share']:.0%} -> {after['worst_share']:.0%} "
    )
    shown = cohort(cli_env, tmp_path, "plan", "--cohort", SLUG)
    assert f"Burden (published -> this plan): {line}" in " ".join(shown.stdout.split())


def test_dashboard_shows_the_burden_card(published: Runtime) -> None:
    with published.transaction() as db:
        admin, _ = rotate_admin_token(db, published.clock.now())
        _, _, plan = plan_cohort(db, SLUG)
    fair = plan.fairness_of("class")
    assert fair is not None
    with serve(published) as base, httpx.Client(base_url=base) as client:
        assert client.post("/login", data={"token": admin}).status_code == 303
        page = client.get(f"/cohorts/{SLUG}")
    assert page.status_code == 200
    html = page.text
    card = html[html.index('data-fairness="class"') : html.index('id="coverage-title"')]
    assert "Fairness: class" in card
    assert "Rotates between " + ", ".join(t.label() for t in fair.times) in card
    assert "proven the fairest" in card
    assert f"worst region <strong>{fair.worst_region}</strong>" in card
    for row in fair.ledger.regions:
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", card.split(f">{row.name}</td>", 1)[1])[:5]
        assert cells == [
            str(row.learners),
            str(row.preferred),
            str(row.stretch),
            str(row.missed),
            f"{row.share * 100:.0f}%",
        ]
    assert "Worst off: " in card
    # The card sits beside the heatmap: after it, before the coverage card.
    assert html.index('id="heat-title"') < html.index('data-fairness="class"')


def test_learner_page_says_when_a_meeting_is_in_their_stretch_hours(published: Runtime) -> None:
    with published.transaction() as db:
        _, _, plan = plan_cohort(db, SLUG)
        fair = plan.fairness_of("class")
        assert fair is not None
        stretched = [k for k in fair.ledger.learners if fair.ledger.of(k).stretch]
        assert stretched
        email = stretched[0]
        token = issue_token(db, SLUG, email, published.clock.now())[0]
        entries = [e for e in learner_schedule(db, SLUG, email).entries if e.name == "Class"]
    notes = [e for e in entries if e.rotation is not None]
    assert len(notes) == 4  # every meeting of the rotating class carries a note
    first = next(e for e in notes if e.rotation is not None and e.rotation.stretch)
    assert first.rotation is not None
    with serve(published) as base:
        page = httpx.get(f"{base}/me/{token}")
    assert page.status_code == 200
    html = page.text
    (note,) = re.findall(r"<li data-rotation>(.*?)</li>", html, re.S)
    assert "outside your usual hours: its time rotates" in note
    local = first.at.astimezone(ZoneInfo(zone_of(email)))
    assert f"<bdi>{local:%H:%M}</bdi>" in note  # the time on the learner's clock
    if first.rotation.next_start is not None:
        assert "The next one is on " in note
    assert "data-stretch" in html


def zone_of(email: str) -> str:
    return next(row[2] for row in ROWS if row[1] == email)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_invitation_and_the_digest(published: Runtime) -> None:
    invited = MemoryMailer()
    drain(published, invited)  # welcome and invitations
    # The class's invitation is one weekly event from its first time, and every week held at
    # the other time is an override of that week (RECURRENCE-ID), so calendars show each one.
    with published.transaction() as db:
        (series,) = db.scalars(select(LiveSeriesRow).where(LiveSeriesRow.series_key == "class"))
        turns = list(series.rotation_weeks or [])
    messages = [email.message_from_bytes(m.data, policy=policy.default) for m in invited.sent]
    (invitation,) = [
        m
        for m in messages
        if str(m["Subject"]).startswith("Invitation: Class") and "sam@example.org" in str(m["To"])
    ]
    ics = next(
        part.get_content()
        for part in invitation.walk()  # type: ignore[attr-defined]
        if part.get_content_type() == "text/calendar"
    )
    ics = ics if isinstance(ics, str) else ics.decode()
    assert "RRULE:FREQ=WEEKLY;COUNT=4" in ics
    assert ics.count("RECURRENCE-ID") == sum(1 for t in turns if t != 0)  # not at times[0]
    clock = published.clock
    assert isinstance(clock, FixedClock)
    clock.advance(datetime(2027, 3, 21, 12, 0, tzinfo=UTC) - clock.now())
    with published.transaction() as db:
        sync_reminders(db, SLUG, clock.now(), timedelta(days=7))
        sam = db.scalar(select(PersonRow.id).where(PersonRow.email == "sam@example.org"))
        (row,) = db.scalars(
            select(NotificationRow).where(
                NotificationRow.kind == NotificationKind.DIGEST, NotificationRow.person_id == sam
            )
        )
        entries = learner_schedule(db, SLUG, "sam@example.org").entries
        db.expunge_all()
    week = [e for e in entries if row.due_at <= e.at < row.due_at + timedelta(days=7)]
    stretched = [e for e in week if e.rotation is not None and e.rotation.stretch]
    assert stretched  # Sam's class that week is in his stretch hours
    clock.advance(row.due_at - clock.now())
    mailer = MemoryMailer()
    drain(published, mailer)
    (sent,) = [m for m in mailer.sent if row.message_id.encode() in m.data]
    message = email.message_from_bytes(sent.data, policy=policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    line = "This class is outside your usual hours: its time rotates so that no region always"
    assert line in " ".join(text.split())
    assert ">This class is outside your usual hours: its time rotates" in html
    assert "The next one is on <bdi>" in html


def test_a_change_preview_shows_the_burden_before_and_after(published: Runtime) -> None:
    """Cancelling the class's last week makes it a replay for everyone: each region's share of
    inconvenient meetings grows by the learners whose meeting that week was in their hours, as
    the preview says (as published -> after); a move back to the same time changes nothing."""
    with published.transaction() as db:
        (series,) = db.scalars(select(LiveSeriesRow).where(LiveSeriesRow.series_key == "class"))
        (meeting,) = db.scalars(
            select(OccurrenceRow).where(
                OccurrenceRow.series_id == series.id, OccurrenceRow.week == 3
            )
        )
        (report,) = db.scalars(select(PlanVersionRow.summary)).one()["fairness"]
        assert series.rotation_weeks is not None
        cancel = preview_change(db, SLUG, Change("class", week=3), published.clock.now())
        same = preview_change(
            db,
            SLUG,
            Change("class", week=3, to=times_of(series)[series.rotation_weeks[3]]),
            published.clock.now(),
        )
    fitting: dict[str, int] = {}
    for _name, _email, zone_name, availability, _stretch in ROWS:
        windows = parse_availability(availability)
        if windows.covers_at(meeting.start, 90, ZoneInfo(zone_name)):
            region = zone_name.split("/")[0]
            fitting[region] = fitting.get(region, 0) + 1
    assert fitting, "somebody's week-4 class is in their hours"
    expected = []
    for row in report["regions"]:
        if row["region"] in fitting:
            total = row["learners"] * 4
            before = (row["stretch"] + row["missed"]) / total
            after = before + fitting[row["region"]] / total
            expected.append(f"{row['region']} {before:.0%} \u2192 {after:.0%}")
    assert cancel.burden == expected
    assert same.burden == []


def times_of(series: LiveSeriesRow) -> list[tuple[int, int]]:
    assert series.rotation is not None
    return [(int(day), int(minute)) for day, minute in series.rotation]


def test_the_runners_regions_name_the_burden(
    runtime: Runtime, make_roster: Callable[..., bytes]
) -> None:
    """[regions] in the cohort file groups zones by name or prefix: the ledger, stored with the
    plan, counts South Asia apart from the rest of Asia and the Americas as one."""
    text = COHORT + '\n[regions]\n"Asia/Kolkata" = "South Asia"\n"America" = "Americas"\n'
    now = runtime.clock.now()
    with runtime.transaction() as db:
        load_cohort(db, text, "c.toml", now)
        import_roster(db, SLUG, make_roster(ROWS, header=HEADER), "r.csv", now)
        _, _, plan = plan_cohort(db, SLUG)
        publishing.publish(db, SLUG, plan, now)
        (report,) = db.scalars(select(PlanVersionRow.summary)).one()["fairness"]
    regions = {r["region"]: r["learners"] for r in report["regions"]}
    assert regions == {"Asia": 2, "South Asia": 1, "Europe": 3, "Americas": 2}
