"""Catching up from the learner's page, over real HTTP (uvicorn on 127.0.0.1), on SQLite and
PostgreSQL: a learner who missed two soft deadlines moves the rest later; their feed, reminders
and the audit log follow; the limits hold; a disabled cohort offers nothing; a re-publish keeps
the shift."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_run import cohort
from example_cohort import FOUR_LEARNERS
from icalendar import Calendar
from served_app import serve
from sqlalchemy import select

from scheduler.domain.status import NotificationKind, NotificationStatus
from scheduler.outputs.i18n import translations
from scheduler.persistence.models import NotificationRow, PersonRow
from scheduler.runtime import Runtime
from scheduler.services import publishing
from scheduler.services.admin import mac, rotate_admin_token
from scheduler.services.audit import audit_log, describe
from scheduler.services.catch_up import CATCH_UP_SHIFTED
from scheduler.services.cohorts import load_cohort
from scheduler.services.deadlines import learner_items
from scheduler.services.feeds import hash_token, issue_token
from scheduler.services.plans import plan_cohort
from scheduler.services.reminders import deadline_version, sync_reminders
from scheduler.services.roster import import_roster
from scheduler.timeutil import zone
from scheduler.web.app import LOOKUP_SECONDS

SLUG = "ml-foundations-2027"
LEA = "lea@example.org"  # Europe/Berlin, the cohort's default availability
REPO = Path(__file__).resolve().parents[2]


def _softs(runtime: Runtime, email: str) -> dict[str, datetime]:
    with runtime.transaction() as db:
        cohort_id = _cohort_id(db)
        return {i.key: i.soft for i in learner_items(db, cohort_id, _pid(db, email))}


def _cohort_id(db: Any) -> int:
    from scheduler.persistence.models import CohortRow

    return int(db.scalar(select(CohortRow.id).where(CohortRow.slug == SLUG)))


def _pid(db: Any, email: str) -> int:
    return int(db.scalar(select(PersonRow.id).where(PersonRow.email == email)))


def _catch_up_csrf(html: str) -> str:
    section = html.split('id="catch-up"', 1)[1].split("</section>", 1)[0]
    match = re.search(r'name="catch_up_csrf" value="([0-9a-f]+)"', section)
    assert match, "no CSRF field in the catch-up form"
    return match.group(1)


GERMAN = translations("de_DE")  # Lea reads her page in German, the catalog the product ships


def _de(message: str, **values: object) -> str:
    """``message`` as Lea's page shows it: in German, HTML-escaped."""
    return html.escape(GERMAN.gettext(message) % values if values else GERMAN.gettext(message))


def _de_n(singular: str, plural: str, n: int) -> str:
    return html.escape(GERMAN.ngettext(singular, plural, n) % {"num": n, "days": n})


MOVED = (
    "Your remaining soft deadlines moved %(days)d day later. Your calendar and reminders follow.",
    "Your remaining soft deadlines moved %(days)d days later. Your calendar and reminders follow.",
)
PASSED = (
    "%(num)s of your soft deadlines has passed.",
    "%(num)s of your soft deadlines have passed.",
)
TIMES_LEFT = ("You can do this %(num)s more time.", "You can do this %(num)s more times.")
TOO_MANY_DAYS = html.escape(
    GERMAN.gettext("Choose a number of days from 1 to {days}.").format(days=7)
)


def _flash(client: httpx.Client, answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    page = client.get(answer.headers["location"].split("#")[0])
    match = re.search(r'<p class="flash[^"]*" role="status">(.*?)</p>', page.text, re.S)
    assert match, "no flash message"
    return match.group(1)


def _feed_due_times(client: httpx.Client, token: str) -> set[datetime]:
    """When each deadline in the learner's feed is due (its event ends then)."""
    answer = client.get(f"/feeds/{token}.ics")
    assert answer.status_code == 200
    due = set()
    for event in Calendar.from_ical(answer.content).walk("VEVENT"):
        found = event.get("categories")
        kinds = found if isinstance(found, list) else [found]
        words = " ".join(k.to_ical().decode().lower() for k in kinds if k is not None)
        if any(kind in words for kind in ("assignment", "catch_up", "replay")):
            due.add(event.decoded("dtend").astimezone(UTC))
    return due


def _pending_deadline_reminders(runtime: Runtime, email: str) -> list[NotificationRow]:
    with runtime.transaction() as db:
        rows = list(
            db.scalars(
                select(NotificationRow).where(
                    NotificationRow.person_id == _pid(db, email),
                    NotificationRow.kind == NotificationKind.DEADLINE_REMINDER,
                    NotificationRow.status == NotificationStatus.PENDING,
                )
            )
        )
        db.expunge_all()
    return rows


@pytest.fixture
def lea_behind(
    make_published: Callable[[list[list[str]]], Runtime],
) -> tuple[Runtime, str]:
    """The example cohort (catching up on) with four learners; the clock just after Lea's second
    soft deadline; reminders brought up to that time; a learner link for Lea."""
    runtime = make_published(FOUR_LEARNERS)
    softs = sorted(_softs(runtime, LEA).values())
    assert len(softs) > 4
    runtime.clock.advance(softs[1] + timedelta(hours=1) - runtime.clock.now())  # type: ignore[attr-defined]
    now = runtime.clock.now()
    with runtime.transaction() as db:
        sync_reminders(db, SLUG, now)
        token, _ = issue_token(db, SLUG, LEA, now)
    return runtime, token


def test_a_learner_who_missed_two_deadlines_moves_the_rest_and_everything_follows(
    lea_behind: tuple[Runtime, str], cli_env: dict[str, Any], tmp_path: Path
) -> None:
    runtime, token = lea_behind
    now = runtime.clock.now()
    before = _softs(runtime, LEA)
    reminders_before = _pending_deadline_reminders(runtime, LEA)
    assert reminders_before, "a deadline reminder is pending for the next deadline"
    with serve(runtime) as base, httpx.Client(base_url=base, timeout=30) as client:
        feed_before = _feed_due_times(client, token)
        assert feed_before == set(before.values())
        page = client.get(f"/me/{token}")
        assert page.status_code == 200
        assert 'id="catch-up"' in page.text
        assert '<label for="catch-up-days">' in page.text
        assert 'max="7"' in page.text
        assert _de_n(*PASSED, 2) in page.text
        assert _de_n(*TIMES_LEFT, 2) in page.text

        answer = client.post(
            f"/me/{token}/catch-up", data={"catch_up_csrf": _catch_up_csrf(page.text), "days": "3"}
        )
        assert _flash(client, answer) == _de_n(*MOVED, 3)

        after = _softs(runtime, LEA)
        assert after.keys() == before.keys()
        for key, soft in before.items():
            if soft <= now:
                assert after[key] == soft  # missed ones stay where they were
            else:
                assert after[key] >= soft
        moved = [k for k in before if after[k] != before[k]]
        assert moved
        berlin = zone("Europe/Berlin")
        first = min((k for k in moved), key=lambda k: before[k])
        assert after[first].astimezone(berlin).date() == (
            before[first].astimezone(berlin).date() + timedelta(days=3)
        )

        # The feed (GET the feed URL) shows the new due times (once the server's trust in its
        # last token check, which carries the feeds version, runs out).
        time.sleep(LOOKUP_SECONDS + 0.1)
        feed_after = _feed_due_times(client, token)
        assert feed_after == set(after.values())
        assert feed_after != feed_before

        # Reminders moved with their deadlines: the old ones are cancelled, the pending ones
        # are for the new due times.
        versions = {deadline_version(s) for s in after.values()}
        pending = _pending_deadline_reminders(runtime, LEA)
        assert all(r.target_version in versions for r in pending)
        old_moved = {deadline_version(before[k]) for k in moved}
        assert not [r for r in pending if r.target_version in old_moved - versions]
        with runtime.transaction() as db:
            cancelled = [
                db.get(NotificationRow, r.id).status  # type: ignore[union-attr]
                for r in reminders_before
                if r.target_version in old_moved - versions
            ]
        assert cancelled and set(cancelled) == {NotificationStatus.CANCELLED}

        # The runner sees who shifted: the audit log, `cohort log` and the dashboard.
        with runtime.transaction() as db:
            entries = audit_log(db, SLUG, action=CATCH_UP_SHIFTED)
            admin_token, _ = rotate_admin_token(db, now)
        assert len(entries) == 1
        assert entries[0].detail["days"] == 3
        assert describe(entries[0]) == (
            f"learner {LEA} shifted their remaining soft deadlines by 3 days "
            f"(shift 1 of 2; {len(moved)} moved)"
        )
        log = cohort(cli_env, tmp_path, "log", "--cohort", SLUG)
        assert log.returncode == 0, log.stderr
        assert f"learner {LEA} shifted their remaining soft deadlines by 3 days" in log.stdout
        client.post("/login", data={"token": admin_token, "next": "/"})
        dashboard = client.get(f"/cohorts/{SLUG}")
        assert dashboard.status_code == 200
        shifted = dashboard.text.split('id="catch-up-learners"', 1)[1].split("</table>", 1)[0]
        assert LEA in shifted
        assert re.search(r"<td>1</td><td>3</td>", shifted)


def test_limits_hold_and_the_third_shift_is_refused(lea_behind: tuple[Runtime, str]) -> None:
    runtime, token = lea_behind
    with serve(runtime) as base, httpx.Client(base_url=base, timeout=30) as client:
        page = client.get(f"/me/{token}")
        csrf = _catch_up_csrf(page.text)
        url = f"/me/{token}/catch-up"
        too_many = client.post(url, data={"catch_up_csrf": csrf, "days": "8"})
        assert _flash(client, too_many) == TOO_MANY_DAYS
        not_a_number = client.post(url, data={"catch_up_csrf": csrf, "days": "soon"})
        assert _flash(client, not_a_number) == TOO_MANY_DAYS
        stale = client.post(url, data={"catch_up_csrf": "0" * 64, "days": "2"})
        assert stale.status_code == 403
        assert _de_n(*MOVED, 1) == _flash(
            client, client.post(url, data={"catch_up_csrf": csrf, "days": "1"})
        )
        page = client.get(f"/me/{token}")
        assert _de_n(*TIMES_LEFT, 1) in page.text
        assert _de_n(*MOVED, 2) == _flash(
            client, client.post(url, data={"catch_up_csrf": csrf, "days": "2"})
        )
        page = client.get(f"/me/{token}")
        assert 'id="catch-up"' not in page.text  # no shifts left: no section
        before = _softs(runtime, LEA)
        third = client.post(url, data={"catch_up_csrf": csrf, "days": "1"})
        assert _flash(client, third) == _de(
            "You have already moved your deadlines as many times as this course allows."
        )
        assert _softs(runtime, LEA) == before
    with runtime.transaction() as db:
        entries = audit_log(db, SLUG, action=CATCH_UP_SHIFTED)
    assert [e.detail["days"] for e in entries] == [2, 1]  # newest first; refusals log nothing


def test_a_shift_survives_a_re_publish(lea_behind: tuple[Runtime, str]) -> None:
    runtime, token = lea_behind
    with serve(runtime) as base, httpx.Client(base_url=base, timeout=30) as client:
        page = client.get(f"/me/{token}")
        answer = client.post(
            f"/me/{token}/catch-up", data={"catch_up_csrf": _catch_up_csrf(page.text), "days": "4"}
        )
        assert answer.status_code == 303
    shifted = _softs(runtime, LEA)
    others = _softs(runtime, "ravi@example.org")
    now = runtime.clock.now()
    with runtime.transaction() as db:
        _, _, plan = plan_cohort(db, SLUG)
        publishing.publish(db, SLUG, plan, now)
    assert _softs(runtime, LEA) == shifted
    assert _softs(runtime, "ravi@example.org") == others


def test_nothing_to_catch_up_before_any_deadline_passed(
    make_published: Callable[[list[list[str]]], Runtime],
) -> None:
    runtime = make_published(FOUR_LEARNERS)  # the clock is a month before the course starts
    with runtime.transaction() as db:
        token, _ = issue_token(db, SLUG, LEA, runtime.clock.now())
    with serve(runtime) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert 'id="catch-up"' not in client.get(f"/me/{token}").text
        csrf = mac(runtime.secret_key(), "csrf", f"me-catch-up:{hash_token(token)}")
        answer = client.post(f"/me/{token}/catch-up", data={"catch_up_csrf": csrf, "days": "2"})
        assert _flash(client, answer) == _de(
            "None of your soft deadlines has passed yet: there is nothing to catch up on."
        )


def test_a_cohort_without_catch_up_shows_no_section_and_refuses(
    runtime: Runtime, example_cohort_text: str, make_roster: Callable[..., bytes]
) -> None:
    text = re.sub(r"(?ms)^\[catch_up\][^\n]*\n.*?(?=^\[)", "", example_cohort_text)
    assert "[catch_up]" not in text
    now = runtime.clock.now()
    with runtime.transaction() as db:
        load_cohort(db, text, "cohort.toml", now)
        import_roster(db, SLUG, make_roster(FOUR_LEARNERS), "r.csv", now)
        _, _, plan = plan_cohort(db, SLUG)
        publishing.publish(db, SLUG, plan, now)
    softs = sorted(_softs(runtime, LEA).values())
    runtime.clock.advance(softs[1] + timedelta(hours=1) - now)  # type: ignore[attr-defined]
    with runtime.transaction() as db:
        token, _ = issue_token(db, SLUG, LEA, runtime.clock.now())
    before = _softs(runtime, LEA)
    with serve(runtime) as base, httpx.Client(base_url=base, timeout=30) as client:
        page = client.get(f"/me/{token}")
        assert page.status_code == 200
        assert 'id="catch-up"' not in page.text
        csrf = mac(runtime.secret_key(), "csrf", f"me-catch-up:{hash_token(token)}")
        answer = client.post(f"/me/{token}/catch-up", data={"catch_up_csrf": csrf, "days": "2"})
        assert _flash(client, answer) == _de("Moving your deadlines is not offered in this course.")
        assert client.post("/me/not-a-token/catch-up", data={"csrf": csrf}).status_code == 404
    assert _softs(runtime, LEA) == before
    with runtime.transaction() as db:
        assert audit_log(db, SLUG, action=CATCH_UP_SHIFTED) == []
