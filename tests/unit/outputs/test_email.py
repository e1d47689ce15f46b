"""Email rendering and MIME building: every kind in two locales, escaping, header injection,
the message structure parsed back, strict templates, and the CSS inlining guard."""

from __future__ import annotations

import copy
import email
import email.policy
import re
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError

from scheduler.outputs.email import KINDS, EmailTemplates, Rendered, build_message
from scheduler.resources import resource_dir

FOLDER = resource_dir("templates") / "email"
START = datetime(2027, 3, 2, 19, 0, tzinfo=UTC)  # Tue 2 March 20:00 in Berlin, 00:30 Wed in Kolkata
DATE = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
SENDER = ("Cohort Scheduler", "noreply@school.example")
RECIPIENT = ("Ann Example", "ann@example.org")
MESSAGE_ID = "<7f3c2a.reminder.42@school.example>"
CALENDAR = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//cohort-scheduler//test//EN\r\n"
    b"METHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:series-1@school.example\r\n"
    b"DTSTAMP:20270301T090000Z\r\nDTSTART:20270302T190000Z\r\nDTEND:20270302T203000Z\r\n"
    b"SUMMARY:W\xc3\xb6chentliche Klasse\r\nSEQUENCE:0\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)

# The time each kind shows for START (or the deadline), in words of each locale.
WORDS = {
    "en_GB": {"weekday": "Tue", "month": "Mar", "deadline_day": "Fri", "week_day": "Mon"},
    "de_DE": {"weekday": "Di.", "month": "März", "deadline_day": "Fr.", "week_day": "Mo."},
}
# Why the learner gets the email, in the learner's language (the shipped catalogs).
REASON = {
    "en_GB": "You receive this",
    "de_DE": "Sie erhalten",
}


@pytest.fixture(scope="module")
def templates() -> EmailTemplates:
    return EmailTemplates(FOLDER)


@pytest.fixture
def make_context() -> Callable[..., dict[str, Any]]:
    """A realistic context for ``kind``; ``learner`` overrides merge into the learner."""

    def build(kind: str, **learner: str) -> dict[str, Any]:
        end = START + timedelta(minutes=90)
        context: dict[str, Any] = {
            "kind": kind,
            "learner": {
                "name": "Ann Example",
                "email": "ann@example.org",
                "locale": "en_GB",
                "zone": "Europe/Berlin",
            }
            | learner,
            "cohort": {"title": "Data Science, Spring 2027", "slug": "ds-2027"},
            "links": {
                "page": "https://school.example/me/tok123",
                "feed": "https://school.example/feeds/tok123.ics",
                "webcal": "webcal://school.example/feeds/tok123.ics",
                "google": "https://calendar.google.com/calendar/render?cid=webcal%3A%2F%2Fx",
                "outlook": "https://outlook.live.com/calendar/0/addfromweb?url=x",
            },
        }
        if kind in ("invite", "update", "cancellation"):
            context["series"] = {
                "title": "Thursday class",
                "kind": "class",
                "first_start": START,
                "end_of_first": end,
                "meetings": 8,
                "join_url": "https://meet.example/abc-defg-hij",
                "agenda": ["Welcome", "Pandas basics"],
                "host": "Bo Facilitator",
            }
        elif kind == "live_reminder":
            context["session"] = {
                "title": "Week 1: Pandas",
                "kind": "class",
                "start": START,
                "end": end,
                "join_url": "https://meet.example/abc-defg-hij",
                "agenda": ["Recap", "Group work"],
                "lead": "in 1 hour",
            }
        elif kind == "deadline_reminder":
            context["deadline"] = {
                "title": "Exercise 1",
                "soft": START + timedelta(days=3),
                "hard": START + timedelta(days=5),
                "effort_minutes": 90,
                "for_session": "Week 2: Plotting",
            }
        elif kind == "digest":
            context["week"] = {
                "starts": date(2027, 3, 1),
                "sessions": [
                    {
                        "title": "Week 1: Pandas",
                        "kind": "class",
                        "start": START,
                        "end": end,
                        "join_url": "https://meet.example/abc-defg-hij",
                    },
                    {
                        "title": "Office hours",
                        "kind": "office_hours",
                        "start": START + timedelta(days=2, hours=3, minutes=30),
                        "end": START + timedelta(days=2, hours=5),
                        "join_url": None,
                    },
                ],
                "coworking": [
                    {
                        "title": "Co-working",
                        "start": START + timedelta(days=4),
                        "end": START + timedelta(days=4, hours=2),
                        "join_url": None,
                    }
                ],
                "deadlines": [{"title": "Exercise 1", "soft": START + timedelta(days=3)}],
            }
        elif kind == "coworking_reminder":  # more in test_email_coworking.py
            context["session"] = {
                "title": "Co-working",
                "kind": "coworking",
                "start": START,
                "end": end,
                "join_url": "https://meet.example/abc-defg-hij",
                "lead": "in 2 hours",
                "phases": [{"label": "focus", "start": START, "end": end}],
            }
            context["pod"] = {"names": ["Bo", "Cy"], "size": 3}
        elif kind == "checkin":
            context["checkin"] = {
                "title": "Co-working",
                "kind": "coworking",
                "start": START,
                "end": end,
                "join_url": None,
                "deadline": {
                    "title": "Exercise 1",
                    "soft": START + timedelta(days=3),
                    "hard": None,
                },
                "next_block": None,
            }
        return context

    return build


def parse(message: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(message, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def build(rendered: Rendered, **overrides: Any) -> bytes:
    arguments: dict[str, Any] = {
        "sender": SENDER,
        "recipient": RECIPIENT,
        "message_id": MESSAGE_ID,
        "date": DATE,
    }
    return build_message(rendered, **(arguments | overrides))


def visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


# --- every kind, two locales ----------------------------------------------------------------


@pytest.mark.parametrize("locale", ["en_GB", "de_DE"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_renders_times_in_learner_zone_and_locale(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], kind: str, locale: str
) -> None:
    rendered = templates.render(kind, make_context(kind, locale=locale))
    words = WORDS[locale]
    for body in (rendered.text, visible_text(rendered.html)):
        assert "Ann Example" in body
        assert "Data Science, Spring 2027" in body
        assert "https://school.example/feeds/tok123.ics" in body
        assert "https://school.example/me/tok123" in body
        assert "Europe/Berlin" in body
        assert REASON[locale] in body
        if kind in ("invite", "update", "cancellation", "live_reminder"):
            # 19:00 UTC is 20:00 in Berlin (CET); the end 20:30 UTC is 21:30.
            assert f"{words['weekday']}" in body and words["month"] in body
            assert "20:00–21:30 (Europe/Berlin)" in body
        if kind == "deadline_reminder":
            assert words["deadline_day"] in body and "20:00 (Europe/Berlin)" in body
        if kind == "digest":
            assert words["week_day"] in body and words["weekday"] in body
    assert f'lang="{locale.replace("_", "-")}"' in rendered.html
    assert rendered.subject and "\n" not in rendered.subject
    if kind in ("invite", "update", "live_reminder"):
        assert "https://meet.example/abc-defg-hij" in rendered.text
        assert 'href="https://meet.example/abc-defg-hij"' in rendered.html


@pytest.mark.parametrize("kind", KINDS)
def test_locales_differ(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], kind: str
) -> None:
    english = templates.render(kind, make_context(kind, locale="en_GB"))
    german = templates.render(kind, make_context(kind, locale="de_DE"))
    assert english.html != german.html
    if kind != "welcome":  # the welcome email shows no time
        assert english.text != german.text


def test_german_words_not_english(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    german = templates.render("live_reminder", make_context("live_reminder", locale="de_DE"))
    assert "Di., 2. März" in german.text
    assert "Tue" not in german.text


@pytest.mark.parametrize(
    ("zone", "shown", "label"),
    [
        pytest.param("Asia/Kolkata", "00:30–02:00", "(Asia/Kolkata)", id="half_hour_next_day"),
        pytest.param("Asia/Calcutta", "00:30–02:00", "(Asia/Kolkata)", id="alias_canonical"),
        pytest.param("America/New_York", "14:00–15:30", "(America/New_York)", id="new_york"),
    ],
)
def test_times_in_learner_zone(
    templates: EmailTemplates,
    make_context: Callable[..., dict[str, Any]],
    zone: str,
    shown: str,
    label: str,
) -> None:
    rendered = templates.render("live_reminder", make_context("live_reminder", zone=zone))
    assert f"{shown} {label}" in rendered.text
    assert label in rendered.subject


def test_span_across_midnight_shows_both_days(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    rendered = templates.render("digest", make_context("digest"))
    # office hours 22:30-00:00 UTC: 23:30 Thursday to 01:00 Friday in Berlin
    assert "Thu 4 Mar, 23:30 – Fri 5 Mar, 01:00 (Europe/Berlin)" in rendered.text


def test_deadline_effort_and_hard_deadline(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    rendered = templates.render("deadline_reminder", make_context("deadline_reminder"))
    assert "1 hour, 30 minutes" in rendered.text
    assert "Sun 7 Mar, 20:00 (Europe/Berlin)" in rendered.text
    assert "Week 2: Plotting" in rendered.text
    context = make_context("deadline_reminder")
    context["deadline"] |= {"hard": None, "for_session": None}
    bare = templates.render("deadline_reminder", context)
    assert "cut-off" not in bare.text and "live session" not in bare.text


def test_update_points_to_invitation_and_cancellation_says_cancelled(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    update = templates.render("update", make_context("update"))
    assert "attached invitation" in update.text and "attached invitation" in update.html
    cancellation = templates.render("cancellation", make_context("cancellation"))
    assert "Thursday class is cancelled" in cancellation.text
    assert "Cancelled" in cancellation.subject


@pytest.mark.parametrize("kind", ["invite", "update", "cancellation"])
def test_series_without_scheduled_meetings(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], kind: str
) -> None:
    # The delivery service counts scheduled meetings only: a cancelled series has none.
    context = make_context(kind)
    context["series"] |= {"first_start": None, "end_of_first": None, "meetings": 0}
    rendered = templates.render(kind, context)
    assert "Thursday class" in rendered.subject
    assert "None" not in rendered.text and "None" not in rendered.html
    assert "The first one" not in rendered.text and "planned to start" not in rendered.text


# --- missing links, unsafe links ------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_missing_links_are_left_out(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], kind: str
) -> None:
    context = make_context(kind)
    context["links"] = dict.fromkeys(context["links"])
    for key in ("series", "session"):
        if key in context:
            context[key]["join_url"] = None
    for item in (
        *context.get("week", {}).get("sessions", ()),
        *context.get("week", {}).get("coworking", ()),
    ):
        item["join_url"] = None
    rendered = templates.render(kind, context)
    for body in (rendered.text, rendered.html):
        assert "None" not in body
        assert "Join the session" not in body
        assert "feed address" not in body
        assert "Your schedule and deadlines" not in body
    assert "href" not in rendered.html


def test_only_web_links_are_shown(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    context = make_context("live_reminder")
    context["session"]["join_url"] = "javascript:alert(1)"
    context["links"]["page"] = "https://school.example/me\r\nx"
    rendered = templates.render("live_reminder", context)
    assert "javascript" not in rendered.html and "javascript" not in rendered.text
    assert "/me" not in rendered.text


# --- escaping and injection ------------------------------------------------------------------


def test_learner_name_escaped_in_html_and_verbatim_in_text(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    context = make_context("live_reminder", name="<b>Ann & Bob</b>")
    context["session"]["agenda"] = ["Intro <script>alert(1)</script>"]
    rendered = templates.render("live_reminder", context)
    assert "&lt;b&gt;Ann &amp; Bob&lt;/b&gt;" in rendered.html
    assert "<b>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<script" not in rendered.html
    assert "Hello <b>Ann & Bob</b>," in rendered.text
    assert "Intro <script>alert(1)</script>" in rendered.text


def test_subject_is_one_line_and_no_header_is_injected(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    context = make_context("welcome")
    context["cohort"]["title"] = "Spring\r\nBcc: evil@x\u2028X-Evil: 1\x00"
    rendered = templates.render("welcome", context)
    assert rendered.subject == "Welcome to Spring Bcc: evil@x X-Evil: 1"
    parsed = parse(build(rendered, recipient=("Ann\r\nBcc: evil@x", "ann@example.org")))
    assert parsed["Bcc"] is None and parsed["X-Evil"] is None
    assert parsed["Subject"] == "Welcome to Spring Bcc: evil@x X-Evil: 1"
    assert parsed["To"].addresses[0].display_name == "Ann Bcc: evil@x"
    assert parsed["To"].addresses[0].addr_spec == "ann@example.org"


def test_subject_is_capped(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    context = make_context("welcome")
    context["cohort"]["title"] = "Long " * 100
    subject = templates.render("welcome", context).subject
    assert len(subject) == 200 and subject.endswith("…")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Note": "a\r\nBcc: evil@x"}, id="crlf_in_value"),
        pytest.param({"X-Note\r\nBcc": "evil@x"}, id="crlf_in_name"),
        pytest.param({"Bcc": "evil@x"}, id="reserved_bcc"),
        pytest.param({"Content-Type": "text/plain"}, id="reserved_content"),
    ],
)
def test_bad_extra_headers_are_refused(
    templates: EmailTemplates,
    make_context: Callable[..., dict[str, Any]],
    headers: dict[str, str],
) -> None:
    rendered = templates.render("welcome", make_context("welcome"))
    with pytest.raises(ValueError, match=r"(?i)header"):
        build(rendered, headers=headers)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"recipient": ("Ann", "ann@example.org\r\nBcc: evil@x")}, id="crlf_address"),
        pytest.param({"recipient": ("Ann", "not an address")}, id="bad_address"),
        pytest.param({"message_id": "<a@b>\r\nBcc: evil@x"}, id="crlf_message_id"),
        pytest.param({"message_id": "no-brackets@b"}, id="bare_message_id"),
        pytest.param({"date": datetime(2027, 3, 1, 9, 0)}, id="naive_date"),  # noqa: DTZ001
    ],
)
def test_bad_envelope_values_are_refused(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], overrides: Any
) -> None:
    rendered = templates.render("welcome", make_context("welcome"))
    with pytest.raises(ValueError, match=r"address|message_id|aware"):
        build(rendered, **overrides)


# --- the built message ------------------------------------------------------------------------


def test_message_parses_back_with_calendar(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    rendered = templates.render("invite", make_context("invite", locale="de_DE"))
    sender = ("Kurs-Büro, Köln", "noreply@school.example")
    recipient = ('Ann "the boss" <x>, Jr.', "ann@example.org")
    raw = build(
        rendered,
        sender=sender,
        recipient=recipient,
        calendar=CALENDAR,
        calendar_method="REQUEST",
        headers={"List-Unsubscribe": "<https://school.example/u/tok>"},
    )
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    raw.decode("ascii")  # 7-bit clean: no relay needs 8BITMIME
    parsed = parse(raw)
    assert parsed["Message-ID"] == MESSAGE_ID
    assert parsed["Date"].datetime == DATE
    assert parsed["Subject"] == rendered.subject
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["List-Unsubscribe"] == "<https://school.example/u/tok>"
    assert (parsed["From"].addresses[0].display_name, parsed["From"].addresses[0].addr_spec) == (
        sender
    )
    assert (parsed["To"].addresses[0].display_name, parsed["To"].addresses[0].addr_spec) == (
        recipient
    )

    assert parsed.get_content_type() == "multipart/mixed"
    alternative, attachment = parsed.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, html, calendar = alternative.iter_parts()
    assert plain.get_content_type() == "text/plain" and plain.get_content_charset() == "utf-8"
    assert plain.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content_type() == "text/html"
    assert html.get_content().replace("\r\n", "\n") == rendered.html + "\n"
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset() == "utf-8"
    assert "Wöchentliche Klasse" in calendar.get_content()
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_content() == CALENDAR


def test_message_without_calendar_is_alternative(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    rendered = templates.render("live_reminder", make_context("live_reminder"))
    parsed = parse(build(rendered))
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["Message-ID"] == MESSAGE_ID


def test_html_has_inlined_styles_and_no_remote_loads(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    html = templates.render("live_reminder", make_context("live_reminder")).html
    assert re.search(r'<p class="when" style="[^"]*font-weight: bold', html)
    assert re.search(r'<body style="[^"]*font-family', html)
    assert "<style" not in html and "<link" not in html


def test_cancel_method_is_taken_from_the_calendar(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    rendered = templates.render("cancellation", make_context("cancellation"))
    cancel = CALENDAR.replace(b"METHOD:REQUEST", b"METHOD:CANCEL")
    parsed = parse(build(rendered, calendar=cancel))
    calendar = next(p for p in parsed.walk() if p.get_content_type() == "text/calendar")
    assert calendar.get_param("method") == "CANCEL"
    with pytest.raises(ValueError, match="disagrees"):
        build(rendered, calendar=cancel, calendar_method="REQUEST")
    with pytest.raises(ValueError, match="no calendar"):
        build(rendered, calendar_method="CANCEL")


def test_same_inputs_build_the_same_bytes(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    rendered = templates.render("invite", make_context("invite"))
    first = build(rendered, calendar=CALENDAR)
    assert build(rendered, calendar=CALENDAR) == first
    assert build(rendered, calendar=CALENDAR, message_id="<other@school.example>") != first


# --- strictness -------------------------------------------------------------------------------


def test_unknown_kind_raises(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    with pytest.raises(ValueError, match="unknown email kind"):
        templates.render("newsletter", make_context("welcome"))


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        pytest.param("live_reminder", ("session", "start"), id="session_start"),
        pytest.param("invite", ("series", "meetings"), id="series_meetings"),
        pytest.param("digest", ("week", "deadlines"), id="week_deadlines"),
        pytest.param("welcome", ("links", "page"), id="links_page"),
        pytest.param("welcome", ("learner", "name"), id="learner_name"),
        pytest.param("deadline_reminder", ("learner", "zone"), id="learner_zone"),
        pytest.param("live_reminder", ("session",), id="whole_session"),
    ],
)
def test_missing_key_raises(
    templates: EmailTemplates,
    make_context: Callable[..., dict[str, Any]],
    kind: str,
    path: tuple[str, ...],
) -> None:
    context = copy.deepcopy(make_context(kind))
    holder = context
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    with pytest.raises(UndefinedError):
        templates.render(kind, context)


def test_naive_datetime_raises(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]]
) -> None:
    context = make_context("live_reminder")
    context["session"]["start"] = datetime(2027, 3, 2, 19, 0)  # noqa: DTZ001
    with pytest.raises(ValueError, match="aware"):
        templates.render("live_reminder", context)


# --- CSS inlining at load time ----------------------------------------------------------------


def test_templates_are_inlined_once_at_load(templates: EmailTemplates) -> None:
    assert templates.inline_at_render is False


def test_template_css_inline_would_break_falls_back_to_render_time(
    tmp_path: Path, make_context: Callable[..., dict[str, Any]]
) -> None:
    folder = tmp_path / "email"
    shutil.copytree(FOLDER, folder)
    welcome = folder / "welcome.html"
    welcome.write_text(
        welcome.read_text(encoding="utf-8").replace(
            "{% endblock %}", '<p class="when">{{ "yes" if 1 < 2 else "no" }}</p>{% endblock %}', 1
        ),
        encoding="utf-8",
    )
    fallback = EmailTemplates(folder)
    assert fallback.inline_at_render is True
    html = fallback.render("welcome", make_context("welcome")).html
    assert re.search(r'<p class="when" style="[^"]*font-weight: bold;?">yes</p>', html)
    assert "<style" not in html
