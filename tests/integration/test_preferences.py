"""Reminders on the learner's terms, over real HTTP, on SQLite and PostgreSQL: the preferences
form of the learner's page, one-click unsubscribe (RFC 8058) from the link every reminder and
digest carries, a pause, and what the course runner sees."""

from __future__ import annotations

import email
import io
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from email import policy
from email.message import EmailMessage
from gettext import NullTranslations
from urllib.parse import urlsplit

import httpx
import pytest
from draining import drain
from served_app import serve, serving
from smtp_sink import SmtpSink
from sqlalchemy import func, select

from scheduler.clock import FixedClock
from scheduler.outputs.mailers import MemoryMailer, SmtpMailer
from scheduler.persistence import repo
from scheduler.persistence.models import (
    NotificationRow,
    PersonRow,
    ReminderOptOutRow,
    ReminderPauseRow,
)
from scheduler.runtime import Runtime
from scheduler.services.admin import rotate_admin_token
from scheduler.services.audit import audit_log, describe
from scheduler.services.feeds import mail_tokens, reset_tokens
from scheduler.services.preferences import (
    REMINDER_PREFERENCES,
    Choice,
    learner_preferences,
    opt_out_counts,
    set_preferences,
)
from scheduler.services.reminders import OFF_REASON, PAUSE_REASON, pause_end, sync_reminders
from scheduler.web.app import create_app
from scheduler.web.logs import AccessLog, RedactFeedTokens

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]
SAM = "sam@example.org"
COURSE_MONDAY = datetime(2027, 3, 1, 6, 0, tzinfo=UTC)
OPTIONAL = ("live_reminder", "deadline_reminder", "digest", "coworking_reminder", "checkin")
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
NO_WORDS = NullTranslations()


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    """The example cohort, its first mail sent, the clock on the course's first Monday and a
    week of reminders in the outbox."""
    runtime = make_published(ROWS)
    drain(runtime, MemoryMailer())
    _move_clock(runtime, COURSE_MONDAY)
    _sync(runtime)
    return runtime


@pytest.fixture
def base(published: Runtime) -> Iterator[str]:
    with serve(published) as url:
        yield url


def _move_clock(runtime: Runtime, to: datetime) -> None:
    assert isinstance(runtime.clock, FixedClock)
    runtime.clock.advance(to - runtime.clock.now())


def _sync(runtime: Runtime) -> None:
    with runtime.transaction() as db:
        sync_reminders(db, SLUG, runtime.clock.now(), timedelta(days=7))


def _ids(runtime: Runtime, email_address: str = SAM) -> tuple[int, int]:
    with runtime.transaction() as db:
        person = db.scalar(select(PersonRow.id).where(PersonRow.email == email_address))
        assert person is not None
        return repo.get_cohort(db, SLUG).id, person


def _token(runtime: Runtime, email_address: str = SAM) -> str:
    """The learner's mail token: the one the links in their emails carry."""
    cohort_id, person = _ids(runtime, email_address)
    with runtime.transaction() as db:
        return mail_tokens(
            db, cohort_id, {person: "learner"}, runtime.secret_key(), runtime.clock.now()
        )[person]


def _rows(runtime: Runtime, email_address: str = SAM) -> list[NotificationRow]:
    _, person = _ids(runtime, email_address)
    with runtime.transaction() as db:
        found = list(
            db.scalars(
                select(NotificationRow)
                .where(NotificationRow.person_id == person)
                .order_by(NotificationRow.id)
            )
        )
        db.expunge_all()
        return found


def _pending(runtime: Runtime, email_address: str = SAM) -> dict[tuple[str, str], int]:
    """Pending notifications by (kind, rule)."""
    counts: dict[tuple[str, str], int] = {}
    for r in _rows(runtime, email_address):
        if r.status == "pending":
            counts[(r.kind, r.rule)] = counts.get((r.kind, r.rule), 0) + 1
    return counts


def _form_csrf(html: str) -> str:
    found = re.search(
        r'id="preferences".*?name="preferences_csrf" value="([^"]+)"', html, re.DOTALL
    )
    assert found is not None, "no preferences form on the page"
    return found.group(1)


def _checkboxes(html: str) -> dict[str, bool]:
    """The preferences form's checkboxes: value -> checked."""
    section = html.split('id="preferences"', 1)[1].split("</section>", 1)[0]
    return {
        m.group(1): m.group(2) is not None
        for m in re.finditer(r'name="on" value="([^"]+)"[^>]*?( checked)?>', section)
    }


def _save(base: str, token: str, on: list[str], paused_until: str = "") -> httpx.Response:
    page = httpx.get(f"{base}/me/{token}", timeout=20)
    assert page.status_code == 200
    return httpx.post(
        f"{base}/me/{token}/preferences",
        data={"preferences_csrf": _form_csrf(page.text), "on": on, "paused_until": paused_until},
        timeout=20,
        follow_redirects=True,
    )


def test_the_week_ahead_holds_every_optional_kind(published: Runtime) -> None:
    # the ground the other tests stand on: Sam has pending reminders of every optional kind
    kinds = {kind for kind, _ in _pending(published)}
    assert set(OPTIONAL) <= kinds
    assert {rule for kind, rule in _pending(published) if kind == "live_reminder"} == {
        "class-24h",
        "class-1h",
    }


def test_one_click_post_turns_off_exactly_that_kind_and_the_page_turns_it_back_on(
    published: Runtime, base: str
) -> None:
    token = _token(published)
    before, yuki_before = _pending(published), _pending(published, "yuki@example.org")
    answer = httpx.post(
        f"{base}/me/{token}/unsubscribe/live_reminder/class-1h", data=ONE_CLICK, timeout=20
    )
    assert answer.status_code == 200
    assert 'id="turned-off"' in answer.text
    assert f'href="/me/{token}#preferences"' in answer.text  # how to turn it back on
    assert answer.headers["cache-control"].startswith("no-store")

    after = _pending(published)
    assert ("live_reminder", "class-1h") not in after  # every pending one of that rule: gone
    assert after == {k: n for k, n in before.items() if k != ("live_reminder", "class-1h")}
    assert _pending(published, "yuki@example.org") == yuki_before  # nobody else's
    cancelled = [r for r in _rows(published) if r.rule == "class-1h" and r.status == "cancelled"]
    assert len(cancelled) == before[("live_reminder", "class-1h")]
    assert {r.last_error for r in cancelled} == {OFF_REASON}

    with published.transaction() as db:
        entries = audit_log(db, SLUG, action=REMINDER_PREFERENCES)
    assert len(entries) == 1
    detail = entries[0].detail
    assert entries[0].actor == "learner"
    assert detail["email"] == SAM and detail["via"] == "one-click"
    assert detail["turned_off"] == ["live_reminder/class-1h"] and detail["turned_on"] == []
    assert detail["cancelled"] == len(cancelled)
    assert token not in repr(detail)

    # the worker's next pass writes none of them again; a second click changes nothing
    _sync(published)
    assert ("live_reminder", "class-1h") not in _pending(published)
    again = httpx.post(
        f"{base}/me/{token}/unsubscribe/live_reminder/class-1h", data=ONE_CLICK, timeout=20
    )
    assert again.status_code == 200
    with published.transaction() as db:
        assert len(audit_log(db, SLUG, action=REMINDER_PREFERENCES)) == 1

    # the page shows it off, the others on; ticking it again restores the pending ones
    page = httpx.get(f"{base}/me/{token}", timeout=20)
    boxes = _checkboxes(page.text)
    assert boxes["live_reminder/class-1h"] is False
    assert all(on for path, on in boxes.items() if path != "live_reminder/class-1h")
    assert 'data-off="live_reminder/class-1h"' in page.text
    saved = _save(base, token, list(boxes))
    assert saved.status_code == 200 and saved.history[0].status_code == 303
    assert _pending(published) == before
    assert _checkboxes(saved.text)["live_reminder/class-1h"] is True
    with published.transaction() as db:
        latest = audit_log(db, SLUG, action=REMINDER_PREFERENCES)[0].detail
    assert latest["turned_on"] == ["live_reminder/class-1h"] and latest["via"] == "page"
    assert latest["restored"] == len(cancelled)


def test_a_get_only_asks(published: Runtime, base: str) -> None:
    token = _token(published)
    before = _pending(published)
    for path in ("digest", "live_reminder/class-24h", "deadline_reminder", "checkin"):
        page = httpx.get(f"{base}/me/{token}/unsubscribe/{path}", timeout=20)
        assert page.status_code == 200
        assert 'id="confirm-unsubscribe"' in page.text  # a button, posting to the same URL
        assert f'action="/me/{token}/unsubscribe/{path}"' in page.text
    assert _pending(published) == before
    with published.transaction() as db:
        assert db.scalar(select(func.count()).select_from(ReminderOptOutRow)) == 0
        assert audit_log(db, SLUG, action=REMINDER_PREFERENCES) == []


def test_unknown_links_and_kinds_are_404_and_change_nothing(published: Runtime, base: str) -> None:
    token = _token(published)
    before = _pending(published)
    for url in (
        f"{base}/me/not-a-token/unsubscribe/digest",
        f"{base}/me/{token}x/unsubscribe/digest",
        f"{base}/me/{token}/unsubscribe/invite",  # invitations always go
        f"{base}/me/{token}/unsubscribe/welcome",
        f"{base}/me/{token}/unsubscribe/live_reminder",  # a live rule is named
        f"{base}/me/{token}/unsubscribe/live_reminder/class-2h",  # not one of the cohort's
        f"{base}/me/{token}/unsubscribe/digest/weekly-digest",  # a digest has no rule here
    ):
        assert httpx.get(url, timeout=20).status_code == 404, url
        assert httpx.post(url, data=ONE_CLICK, timeout=20).status_code == 404, url
    assert _pending(published) == before
    # a pause that is not a date: 422, nothing changes
    for day in ("tomorrow", "9999-12-31", "2027-02-30"):
        assert _save(base, token, [], day).status_code == 422, day
    # the form without its CSRF token: 403
    answer = httpx.post(
        f"{base}/me/{token}/preferences", data={"preferences_csrf": "x"}, timeout=20
    )
    assert answer.status_code == 403
    assert _pending(published) == before


def test_a_reset_revokes_the_unsubscribe_links_in_earlier_emails(
    published: Runtime, base: str
) -> None:
    token = _token(published)
    url = f"{base}/me/{token}/unsubscribe/digest"
    assert httpx.get(url, timeout=20).status_code == 200
    with published.transaction() as db:
        reset_tokens(db, SLUG, SAM, published.clock.now())
    assert httpx.get(url, timeout=20).status_code == 404
    assert httpx.post(url, data=ONE_CLICK, timeout=20).status_code == 404
    assert ("digest", "weekly-digest") in _pending(published)
    fresh = _token(published)  # the next email carries a new link, which works
    assert fresh != token
    answer = httpx.post(f"{base}/me/{fresh}/unsubscribe/digest", data=ONE_CLICK, timeout=20)
    assert answer.status_code == 200
    assert ("digest", "weekly-digest") not in _pending(published)


def test_a_pause_holds_back_only_the_reminders_inside_it_and_lifting_it_restores_them(
    published: Runtime, base: str
) -> None:
    token = _token(published)
    page = httpx.get(f"{base}/me/{token}", timeout=20)
    every = list(_checkboxes(page.text))
    last_day = date(2027, 3, 3)  # Wednesday, on Sam's clock (Los Angeles)
    end = pause_end(last_day, "America/Los_Angeles")
    before = [r for r in _rows(published) if r.status == "pending"]
    inside = [r for r in before if r.kind in OPTIONAL and r.due_at < end]
    outside = [r for r in before if r not in inside]
    assert inside and outside
    saved = _save(base, token, every, last_day.isoformat())
    assert saved.status_code == 200 and 'id="paused"' in saved.text
    assert 'value="2027-03-03"' in saved.text
    rows = {r.id: r for r in _rows(published)}
    assert all(rows[r.id].status == "cancelled" for r in inside)
    assert {rows[r.id].last_error for r in inside} == {PAUSE_REASON}
    assert all(rows[r.id].status == "pending" for r in outside)
    # the worker writes nothing inside the pause, and what comes after it as usual
    _sync(published)
    pending = [r for r in _rows(published) if r.status == "pending"]
    assert all(r.due_at >= end for r in pending if r.kind in OPTIONAL)
    with published.transaction() as db:
        assert opt_out_counts(db, SLUG, published.clock.now()).paused == 1
        assert audit_log(db, SLUG, action=REMINDER_PREFERENCES)[0].detail["paused_until"] == (
            "2027-03-03"
        )
    # lifting the pause brings back the ones still to come
    _save(base, token, every, "")
    rows = {r.id: r for r in _rows(published)}
    assert all(rows[r.id].status == "pending" for r in inside if r.due_at >= COURSE_MONDAY)
    with published.transaction() as db:
        assert db.scalar(select(func.count()).select_from(ReminderPauseRow)) == 0


def test_invitations_updates_and_welcomes_go_whatever_the_learner_turned_off(
    make_published: Callable[[list[list[str]]], Runtime],
) -> None:
    runtime = make_published(ROWS)  # nothing sent yet: welcome emails and invitations pending
    cohort_id, sam = _ids(runtime)
    with runtime.transaction() as db:
        set_preferences(db, cohort_id, sam, [], date(2027, 12, 31), runtime.clock.now())
    kinds = {r.kind for r in _rows(runtime) if r.status == "pending"}
    assert {"welcome", "invite"} <= kinds
    mailer = MemoryMailer()
    drain(runtime, mailer)
    sent_to_sam = [
        email.message_from_bytes(m.data, policy=policy.default)
        for m in mailer.sent
        if SAM in m.recipients
    ]
    assert sent_to_sam and all(m["List-Unsubscribe"] is None for m in sent_to_sam)
    assert {r.kind for r in _rows(runtime) if r.status == "sent"} >= {"welcome", "invite"}
    # and nothing optional is written for Sam over the course's first week
    _move_clock(runtime, COURSE_MONDAY)
    _sync(runtime)
    assert not [r for r in _rows(runtime) if r.kind in OPTIONAL]
    assert any(r.kind in OPTIONAL for r in _rows(runtime, "yuki@example.org"))


def test_a_reminder_sent_through_smtp_carries_a_one_click_link_that_works(
    published: Runtime,
) -> None:
    with serve(published) as base, SmtpSink() as sink:
        # the emails link to the server they are read against: its URL as the base URL
        settings = published.settings.model_copy(update={"base_url": base})
        runtime = Runtime(settings, published.engine, published.sessions, published.clock)
        digest = next(r for r in _rows(published) if r.kind == "digest")
        _move_clock(published, digest.due_at)
        mailer = SmtpMailer("127.0.0.1", sink.port, timeout=5)
        drain(runtime, mailer)
        mailer.close()
        messages = {str(m["Message-ID"]): m for m in sink.messages}
        message: EmailMessage = messages[digest.message_id]
        link = str(message["List-Unsubscribe"])
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert re.fullmatch(
            r"<http://127\.0\.0\.1:\d+/me/[A-Za-z0-9_-]{43}/unsubscribe/digest>", link
        )
        raw = next(r for r in sink.raw if digest.message_id.encode() in r)
        assert b"List-Unsubscribe: <http://127.0.0.1:" in raw  # as written: one line, no encoding
        # every reminder and digest sent to a learner carries one; nothing else does (the
        # facilitators' reminders neither: they have no learner page to choose on)
        learners = {row[1] for row in ROWS}
        kinds = {r.message_id: r.kind for r in _all_rows(published)}
        for m in messages.values():
            kind = kinds[str(m["Message-ID"])]
            to_learner = m["To"].addresses[0].addr_spec in learners
            assert (m["List-Unsubscribe"] is not None) == (kind in OPTIONAL and to_learner), kind
        assert any(kinds[i] == "live_reminder" for i in messages)
        url = link[1:-1]
        assert urlsplit(url).path.startswith("/me/")
        answer = httpx.post(url, data=ONE_CLICK, timeout=20)  # what a mail provider does
        assert answer.status_code == 200
        assert ("digest", "weekly-digest") not in _pending(published)
        assert _pending(published, "yuki@example.org").get(("digest", "weekly-digest"))


def _all_rows(runtime: Runtime) -> list[NotificationRow]:
    with runtime.transaction() as db:
        found = list(db.scalars(select(NotificationRow)))
        db.expunge_all()
        return found


def test_the_dashboard_counts_opt_outs_per_kind(published: Runtime, base: str) -> None:
    for who, path in (
        (SAM, "digest"),
        ("yuki@example.org", "digest"),
        (SAM, "live_reminder/class-24h"),
    ):
        token = _token(published, who)
        answer = httpx.post(f"{base}/me/{token}/unsubscribe/{path}", data=ONE_CLICK, timeout=20)
        assert answer.status_code == 200
    with published.transaction() as db:
        counts = opt_out_counts(db, SLUG, published.clock.now())
    by_path = {c.choice.path: c.learners for c in counts.counts}
    assert by_path["digest"] == 2 and by_path["live_reminder/class-24h"] == 1
    assert by_path["live_reminder/class-1h"] == 0 and by_path["deadline_reminder"] == 0
    assert counts.learners == len(ROWS)
    assert Choice("checkin") in {c.choice for c in counts.counts}
    # the course runner's cohort page shows the same
    with published.transaction() as db:
        admin_token, _ = rotate_admin_token(db, published.clock.now())
    with httpx.Client(base_url=base, timeout=20) as client:
        login = client.post("/login", data={"token": admin_token, "next": "/"})
        assert login.status_code == 303
        page = client.get(f"/cohorts/{SLUG}").text
    card = page.split('id="opt-outs"', 1)[1].split("</table>", 1)[0]
    assert re.search(r'data-kind="digest">.*?<strong>2</strong> of 3 learners', card)
    assert re.search(r'data-kind="live_reminder/class-24h">.*?<strong>1</strong> of 3', card)
    assert re.search(r'data-kind="live_reminder/class-1h">.*?<strong>0</strong> of 3', card)


def test_access_logs_never_hold_the_token(published: Runtime) -> None:
    token = _token(published)
    stream = io.StringIO()
    log = AccessLog(create_app(published), stream=stream, every=3600)
    with serving(log) as base:
        httpx.get(f"{base}/me/{token}/unsubscribe/digest", timeout=20)
        httpx.post(f"{base}/me/{token}/unsubscribe/live_reminder/class-1h", data=ONE_CLICK)
        httpx.post(f"{base}/me/{token}/preferences", data={"csrf": "x"}, timeout=20)
    log.close()
    text = stream.getvalue()
    assert len(text.splitlines()) == 3
    assert token not in text and text.count("/me/[redacted]") == 3
    # uvicorn's own access log line (its filter): the same
    import logging

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "POST", f"/me/{token}/unsubscribe/digest", "1.1", 200),
        None,
    )
    RedactFeedTokens().filter(record)
    assert token not in record.getMessage() and "/me/[redacted]" in record.getMessage()


def _shown(html: str) -> list[str]:
    """The form's record of each choice as it was loaded (``path=on|off``)."""
    section = html.split('id="preferences"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'name="shown" value="([^"]+)"', section)


def test_clicking_twice_at_once_turns_it_off_once(published: Runtime, base: str) -> None:
    """A double click, or a mail provider retrying its one-click POST while the first is still
    being answered: every answer is the confirmation, one opt-out is stored, one entry logged."""
    token = _token(published)
    url = f"{base}/me/{token}/unsubscribe/digest"
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(lambda _: httpx.post(url, data=ONE_CLICK, timeout=30).status_code, range(6))
        )
    assert answers == [200] * 6
    cohort_id, person_id = _ids(published)
    with published.transaction() as db:
        prefs = learner_preferences(db, cohort_id, person_id, published.clock.now(), NO_WORDS)
        assert {s.choice for s in prefs.choices if not s.on} == {Choice("digest")}
        assert len(audit_log(db, SLUG, action=REMINDER_PREFERENCES)) == 1


def test_a_form_loaded_before_a_one_click_does_not_turn_it_back_on(
    published: Runtime, base: str
) -> None:
    """Sam loads their page (everything on), turns the digest off from an email, then saves the
    page they had open with only a pause: the digest stays off, the pause is stored."""
    token = _token(published)
    page = httpx.get(f"{base}/me/{token}", timeout=20)
    boxes, shown = _checkboxes(page.text), _shown(page.text)
    assert all(boxes.values()) and "digest=on" in shown
    assert httpx.post(f"{base}/me/{token}/unsubscribe/digest", data=ONE_CLICK).status_code == 200
    pause = (COURSE_MONDAY + timedelta(days=10)).date().isoformat()
    saved = httpx.post(
        f"{base}/me/{token}/preferences",
        data={
            "preferences_csrf": _form_csrf(page.text),
            "on": list(boxes),
            "shown": shown,
            "paused_until": pause,
        },
        timeout=20,
        follow_redirects=True,
    )
    assert saved.status_code == 200
    assert _checkboxes(saved.text)["digest"] is False
    assert 'id="paused"' in saved.text
    # ... while a box they did untick there is turned off
    page = httpx.get(f"{base}/me/{token}", timeout=20)
    on = [p for p in _checkboxes(page.text) if p != "deadline_reminder" and p != "digest"]
    httpx.post(
        f"{base}/me/{token}/preferences",
        data={"preferences_csrf": _form_csrf(page.text), "on": on, "shown": _shown(page.text)},
        timeout=20,
    )
    after = _checkboxes(httpx.get(f"{base}/me/{token}", timeout=20).text)
    assert after["deadline_reminder"] is False and after["digest"] is False
    assert after["live_reminder/class-1h"] is True


def test_a_learner_changing_their_mind_again_and_again_is_one_line_of_activity(
    published: Runtime,
) -> None:
    """Toggling a kind twenty times in a minute updates one audit entry (the runner's own
    activity stays in view); a change ten minutes later is a new entry."""
    cohort_id, person_id = _ids(published)
    digest = Choice("digest")
    with published.transaction() as db:
        everything = [
            s.choice
            for s in learner_preferences(
                db, cohort_id, person_id, published.clock.now(), NO_WORDS
            ).choices
        ]
    for i in range(20):
        on = everything if i % 2 else [c for c in everything if c != digest]
        with published.transaction() as db:
            set_preferences(db, cohort_id, person_id, on, None, published.clock.now())
        _move_clock(published, published.clock.now() + timedelta(seconds=3))
    with published.transaction() as db:
        entries = audit_log(db, SLUG, action=REMINDER_PREFERENCES)
    assert len(entries) == 1 and entries[0].detail["changes"] == 20
    assert "the latest of 20 changes in a row" in describe(entries[0])
    _move_clock(published, published.clock.now() + timedelta(minutes=11))
    with published.transaction() as db:
        set_preferences(db, cohort_id, person_id, [], None, published.clock.now())
        assert len(audit_log(db, SLUG, action=REMINDER_PREFERENCES)) == 2


def test_the_pause_reads_as_a_date_in_the_learners_language(published: Runtime, base: str) -> None:
    """Yuki reads Japanese: the pause's last day is written as Japanese dates are."""
    token = _token(published, "yuki@example.org")
    page = httpx.get(f"{base}/me/{token}", timeout=20)
    every = list(_checkboxes(page.text))
    saved = _save(base, token, every, "2027-03-10")
    assert saved.status_code == 200
    shown = saved.text.split('id="paused"', 1)[1].split("</p>", 1)[0]
    assert "<bdi>2027年3月10日(水)</bdi>" in shown
    assert "2027-03-10" not in shown
