"""Co-working blocks end to end, on SQLite and PostgreSQL: a "starting soon" reminder with the
learner's breakout pod and the agenda in their time, then a check-in prompt after the block."""

from __future__ import annotations

import email
from collections.abc import Callable
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select
from test_delivery import drain, move_clock, rows

from scheduler.domain.availability import parse_availability
from scheduler.outputs.i18n import translations
from scheduler.outputs.mailers import MemoryMailer
from scheduler.persistence.models import LiveSeriesRow, OccurrenceRow, PersonRow
from scheduler.runtime import Runtime
from scheduler.services.reminders import CHECKIN, COWORKING_REMINDER, sync_reminders
from scheduler.timeutil import zone

SLUG = "ml-foundations-2027"
WIDE = "Mon-Fri 07:00-23:00; Sat-Sun 08:00-22:00"
ROWS = [
    ["Ada", "ada@example.org", "Europe/Berlin", WIDE, "en_GB", ""],
    ["Ben", "ben@example.org", "Europe/Berlin", WIDE, "de_DE", ""],
    ["Cleo", "cleo@example.org", "Europe/London", WIDE, "en_GB", ""],
    ["Dayo", "dayo@example.org", "Africa/Lagos", WIDE, "en_GB", ""],
    ["Efe", "efe@example.org", "Africa/Lagos", WIDE, "en_GB", ""],
    ["Farah", "farah@example.org", "Asia/Kolkata", WIDE, "en_GB", ""],
    ["Gita", "gita@example.org", "Asia/Kolkata", WIDE, "en_GB", ""],
    ["Hugo", "hugo@example.org", "Europe/Berlin", WIDE, "fr_FR", ""],
    ["Ivo", "ivo@example.org", "America/Los_Angeles", "Sat 05:00-06:00", "en_US", ""],
]


def parsed(mailer: MemoryMailer) -> list[EmailMessage]:
    return [
        email.message_from_bytes(m.data, policy=policy.default)  # type: ignore[misc]
        for m in mailer.sent
    ]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    return str(body).replace("\r\n", "\n")


def fitting(start: datetime, minutes: int) -> set[str]:
    """Who the block fits, worked out from the roster itself."""
    return {
        email_
        for _, email_, zone_name, window, _, _ in ROWS
        if parse_availability(window).covers_at(start, minutes, zone(zone_name))
    }


@pytest.fixture
def block(
    make_published: Callable[[list[list[str]]], Runtime],
) -> tuple[Runtime, OccurrenceRow, int, set[str]]:
    """The published cohort and its first co-working block (in week 2) that fits most people."""
    runtime = make_published(ROWS)
    with runtime.transaction() as db:
        found = [
            (occurrence, series.duration_minutes)
            for series, occurrence in db.execute(
                select(LiveSeriesRow, OccurrenceRow)
                .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
                .where(LiveSeriesRow.kind == "coworking", OccurrenceRow.week == 1)
                .order_by(OccurrenceRow.start)
            )
        ]
        db.expunge_all()
    occurrence, minutes = max(found, key=lambda f: len(fitting(f[0].start, f[1])))
    who = fitting(occurrence.start, minutes)
    assert 6 <= len(who) < len(ROWS)  # most learners, not Ivo
    return runtime, occurrence, minutes, who


def person_emails(runtime: Runtime, person_ids: list[int]) -> list[str]:
    with runtime.transaction() as db:
        found = {p.id: p.email for p in db.scalars(select(PersonRow))}
    return [found[pid] for pid in person_ids]


def test_reminder_pods_agenda_and_checkin(
    block: tuple[Runtime, OccurrenceRow, int, set[str]],
) -> None:
    runtime, occurrence, minutes, who = block
    assert minutes == 120
    move_clock(runtime, occurrence.start - timedelta(hours=3))
    with runtime.transaction() as db:
        sync_reminders(db, SLUG, runtime.clock.now(), timedelta(hours=4))
    reminders = [r for r in rows(runtime, COWORKING_REMINDER) if r.target == occurrence.uid]
    assert sorted(person_emails(runtime, [r.person_id for r in reminders])) == sorted(who)
    assert {r.due_at for r in reminders} == {occurrence.start - timedelta(hours=2)}

    move_clock(runtime, occurrence.start - timedelta(hours=2))
    mailer = MemoryMailer()
    drain(runtime, mailer)
    names = {row[1]: row[0] for row in ROWS}
    locales = {row[1]: row[4] for row in ROWS}  # Ben reads German, Hugo French
    starting = {r.message_id for r in reminders}
    pods: dict[str, frozenset[str]] = {}
    for message in parsed(mailer):
        if message["Message-ID"] not in starting:
            continue
        body = text_of(message)
        to = str(message["To"]).split("<")[-1].rstrip(">")
        heading = translations(locales[to]).gettext("Your pod for the breakouts:")
        section = body.split(heading)[1].split("\n\n")[0]
        mates = {e for e, n in names.items() if f"- {n}\n" in section + "\n"}
        pods[to] = frozenset({to, *mates})
        zone_name = next(row[2] for row in ROWS if row[1] == to)
        local = occurrence.start.astimezone(zone(zone_name))
        assert f"{local:%H:%M}–{local + timedelta(minutes=10):%H:%M} check-in" in body
        end = occurrence.end.astimezone(zone(zone_name))
        assert f"{end - timedelta(minutes=10):%H:%M}–{end:%H:%M} share progress" in body
    assert set(pods) == who  # every fitting learner got theirs, nobody else
    for pod in pods.values():
        assert 3 <= len(pod) <= 5
        assert all(pods[other] == pod for other in pod)  # the pod agrees for all its members
    assert set().union(*pods.values()) == who

    # the check-in goes 15 minutes after the block, to the same people, naming the next deadline
    with runtime.transaction() as db:
        sync_reminders(db, SLUG, runtime.clock.now())
    checkins = [r for r in rows(runtime, CHECKIN) if r.target == occurrence.uid]
    assert sorted(person_emails(runtime, [r.person_id for r in checkins])) == sorted(who)
    move_clock(runtime, occurrence.end + timedelta(minutes=16))
    later = MemoryMailer()
    drain(runtime, later)
    asked = {r.message_id for r in checkins}
    prompts = [m for m in parsed(later) if m["Message-ID"] in asked]
    assert len(prompts) == len(who)
    for message in prompts:
        body = text_of(message)
        words = translations(locales[str(message["To"]).split("<")[-1].rstrip(">")])
        asked_text = words.gettext(
            "You were expected at %(session)s, %(when)s. What did you finish? Take a minute "
            "to note it down, or share it with your pod."
        )
        assert asked_text.split("%(session)s")[0] in body  # in the learner's language
        assert asked_text.rsplit("%(when)s", 1)[1] in body  # what did you finish?
        deadline = words.gettext("Next soft deadline: %(deadline)s, %(when)s.")
        assert deadline.split("%(deadline)s")[0] in body  # naming the next deadline
        block = words.gettext("Next co-working block for you: %(session)s, %(when)s.")
        assert block.split("%(session)s")[0] in body
