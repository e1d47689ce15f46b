"""Composing the outbox: turning claimed notification rows into email messages.

Each row is checked against the data as it is *now*: a reminder whose session moved or was
cancelled since it was written is ``cancelled`` (it never announces an old time); one that is
no longer useful (the session started) is ``skipped``; one that cannot be built is ``failed``;
the rest are rendered from the Jinja templates and built into messages with their fixed
Message-ID. The outcome for each row is a ``Decision``, which
:mod:`scheduler.services.delivery` (the queue: claim, send, record) sends or records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from gettext import NullTranslations
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.domain.cohort import Role, SeriesKind
from scheduler.domain.status import (
    OPTIONAL_KINDS,
    NotificationKind,
    NotificationStatus,
    OccurrenceStatus,
)
from scheduler.outputs.email import EmailTemplates, Rendered, build_message
from scheduler.outputs.email.headers import unsubscribe_headers
from scheduler.outputs.i18n import translations
from scheduler.outputs.links import feed_links
from scheduler.outputs.mailers import Outgoing
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
    DeadlineItemRow,
    EnrollmentRow,
    LearnerDeadlinesRow,
    LiveSeriesRow,
    NotificationRow,
    OccurrenceRow,
    PersonRow,
    SeriesRequestRow,
)
from scheduler.planning.agenda import agenda_phases
from scheduler.planning.clock_notes import ClockMove
from scheduler.services.coworking import PodBook, next_block
from scheduler.services.deadlines import learner_items
from scheduler.services.feeds import mail_tokens
from scheduler.services.invites import INVITE_KINDS, invite_message
from scheduler.services.preferences import unsubscribe_url
from scheduler.services.reminders import HeldBack, deadline_version, held_back, still_useful
from scheduler.services.schedule import learner_schedule, series_clock_moves
from scheduler.timeutil import zone

if TYPE_CHECKING:  # delivery imports this module; the config is only named in annotations
    from scheduler.services.delivery import DeliveryConfig


@dataclass(frozen=True, slots=True)
class Decision:
    notification_id: int
    attempts: int
    outgoing: Outgoing | None = None
    status: str | None = None  # skipped / cancelled / failed when nothing is sent
    reason: str = ""


def _held(row: NotificationRow, status: str, reason: str) -> Decision:
    """The decision not to send ``row``: skipped, superseded (cancelled) or failed."""
    return Decision(row.id, row.attempts, status=status, reason=reason)


class Composer:
    """Turns claimed rows into messages, reading the plan as it is now. One per batch: what
    the rows need (people, roles, mail tokens, meetings) is read in a few queries for the
    whole batch, and cohorts and series requests are cached across its rows."""

    def __init__(
        self,
        db: Session,
        templates: EmailTemplates,
        config: DeliveryConfig,
        rows: Sequence[NotificationRow],
        now: datetime,
    ) -> None:
        self.db, self.templates, self.config = db, templates, config
        self._cohorts: dict[int, CohortRow] = {}
        self._requests: dict[tuple[int, str], SeriesRequestRow | None] = {}
        self._moves: dict[tuple[int, str], list[ClockMove]] = {}  # (series id, zone): moves
        person_ids = list({r.person_id for r in rows})
        self.people = {
            p.id: p
            for p in db.scalars(select(PersonRow).where(repo.id_in(db, PersonRow.id, person_ids)))
        }
        # Roles by person id alone, the cohort checked here: the index on person_id answers
        # it whatever PostgreSQL's statistics say (with cohort_id in the query, a table not
        # analysed since a big import reads the whole cohort's enrollments for every batch).
        roles = {
            (cohort_id, pid): role
            for pid, cohort_id, role in db.execute(
                select(EnrollmentRow.person_id, EnrollmentRow.cohort_id, EnrollmentRow.role).where(
                    repo.id_in(db, EnrollmentRow.person_id, person_ids)
                )
            )
        }
        # Learners' choices: who may unsubscribe (learners), what they turned off or paused.
        self.learners = {key for key, role in roles.items() if role == Role.LEARNER.value}
        self.held: dict[int, HeldBack] = {}
        self.pod_book = PodBook(db)  # co-working pods, formed once per occurrence per batch
        uids = list(
            {
                r.target
                for r in rows
                if r.kind
                in (
                    NotificationKind.LIVE_REMINDER,
                    NotificationKind.COWORKING_REMINDER,
                    NotificationKind.CHECKIN,
                )
            }
        )
        self.meetings: dict[str, tuple[OccurrenceRow, LiveSeriesRow]] = {}
        if uids:
            for occurrence, series in db.execute(
                select(OccurrenceRow, LiveSeriesRow)
                .join(LiveSeriesRow, LiveSeriesRow.id == OccurrenceRow.series_id)
                .where(OccurrenceRow.uid.in_(uids))
            ):
                self.meetings[occurrence.uid] = (occurrence, series)
        self.tokens: dict[tuple[int, int], str] = {}
        by_cohort: dict[int, set[int]] = {}
        for r in rows:
            by_cohort.setdefault(r.cohort_id, set()).add(r.person_id)
        for cohort_id, ids in by_cohort.items():
            kinds = {
                pid: roles.get((cohort_id, pid), Role.LEARNER.value)
                for pid in ids
                if pid in self.people
            }
            tokens = mail_tokens(db, cohort_id, kinds, config.secret, now)
            self.tokens.update({(cohort_id, pid): t for pid, t in tokens.items()})
            if any(r.cohort_id == cohort_id and r.kind in OPTIONAL_KINDS for r in rows):
                self.held[cohort_id] = held_back(db, cohort_id, ids)

    def decide(self, row: NotificationRow, now: datetime) -> Decision:
        try:
            return self._decide(row, now)
        except Exception as e:  # a row that cannot be built must not stop the others
            return _held(row, NotificationStatus.FAILED, f"could not build: {e!r}"[:500])

    def _cohort(self, cohort_id: int) -> CohortRow:
        if cohort_id not in self._cohorts:
            cohort = self.db.get(CohortRow, cohort_id)
            assert cohort is not None
            self._cohorts[cohort_id] = cohort
        return self._cohorts[cohort_id]

    def _request(self, cohort_id: int, key: str) -> SeriesRequestRow | None:
        if (cohort_id, key) not in self._requests:
            self._requests[(cohort_id, key)] = self.db.scalar(
                select(SeriesRequestRow).where(
                    SeriesRequestRow.cohort_id == cohort_id, SeriesRequestRow.key == key
                )
            )
        return self._requests[(cohort_id, key)]

    def _decide(self, row: NotificationRow, now: datetime) -> Decision:
        person = self.people.get(row.person_id)
        if person is None:
            return _held(row, NotificationStatus.CANCELLED, "the person was removed")
        held = self.held.get(row.cohort_id)
        reason = held and held.reason(row.kind, row.person_id, row.rule, row.due_at)
        if reason:  # turned off or paused since it was written
            return _held(row, NotificationStatus.CANCELLED, reason)
        cohort = self._cohort(row.cohort_id)
        locale = person.locale or cohort.locale
        # The learner's catalog: every word of the email, the lead text included (titles,
        # agenda lines and names stay as the runner wrote them).
        catalog = translations(locale, cohort.locale)
        context: dict[str, Any] = {
            "kind": row.kind,
            "learner": {
                "name": person.name,
                "email": person.email,
                "locale": locale,
                "zone": person.zone,
            },
            "cohort": {"title": cohort.title, "slug": cohort.slug, "locale": cohort.locale},
        }
        calendar: bytes | None = None
        method: str | None = None
        if row.kind in INVITE_KINDS:
            series = self.db.get(LiveSeriesRow, row.payload["series_id"])
            if series is None:
                return _held(row, NotificationStatus.CANCELLED, "the series was removed")
            context["series"] = self._series(series, person.zone, now)
            calendar = invite_message(self.db, row, self.config.sender)
            method = "CANCEL" if row.kind == NotificationKind.CANCELLATION else "REQUEST"
        elif row.kind == NotificationKind.LIVE_REMINDER:
            found = self._live(row, now, context, catalog)
            if isinstance(found, Decision):
                return found
        elif row.kind in (NotificationKind.COWORKING_REMINDER, NotificationKind.CHECKIN):
            found = self._coworking(row, now, context, catalog)
            if isinstance(found, Decision):
                return found
        elif row.kind == NotificationKind.DEADLINE_REMINDER:
            found = self._deadline(row, now, context)
            if isinstance(found, Decision):
                return found
        elif row.kind == NotificationKind.DIGEST:
            if not still_useful(NotificationKind.DIGEST, row.due_at, None, now):
                return _held(row, NotificationStatus.SKIPPED, "too late for this week's digest")
            context["week"] = self._week(cohort, person, row.due_at)
        token = self.tokens.get((cohort.id, person.id))  # none for someone who has left
        links = None if token is None else feed_links(self.config.base_url, token, cohort.title)
        context["links"] = {
            # their page (meetings, deadlines, reminder choices, catching up): learners only,
            # the one kind of link it opens for
            "page": links.page if links and (cohort.id, person.id) in self.learners else None,
            "feed": links and links.https,
            "webcal": links and links.webcal,
            "google": links and links.google,
            "outlook": links and links.outlook,
        }
        rendered: Rendered = self.templates.render(row.kind, context, catalog)
        # RFC 8058 one-click unsubscribe from exactly this kind (a live reminder: this rule), on
        # the reminders and digests a learner may turn off; never on invitations and updates.
        headers = None
        if (
            token is not None
            and row.kind in OPTIONAL_KINDS
            and (cohort.id, person.id) in self.learners
        ):
            url = unsubscribe_url(self.config.base_url, token, row.kind, row.rule)
            try:
                headers = unsubscribe_headers(url)
            except ValueError:  # a base_url settings refuse (set in code): send without them
                headers = None
        data = build_message(
            rendered,
            sender=self.config.sender,
            recipient=(person.name, person.email),
            message_id=row.message_id,
            date=now,
            calendar=calendar,
            calendar_method=method,
            headers=headers,
        )
        return Decision(
            row.id,
            row.attempts,
            Outgoing(row.message_id, self.config.sender[1], (person.email,), data),
        )

    def _series(self, series: LiveSeriesRow, learner_zone: str, now: datetime) -> dict[str, Any]:
        meetings = list(
            self.db.scalars(
                select(OccurrenceRow)
                .where(
                    OccurrenceRow.series_id == series.id,
                    OccurrenceRow.status == OccurrenceStatus.SCHEDULED,
                )
                .order_by(OccurrenceRow.start)
            )
        )
        request = self._request(series.cohort_id, series.series_key)
        first = meetings[0] if meetings else None
        return {
            "title": series.title,
            "kind": series.kind,
            "first_start": first.start if first else None,
            "end_of_first": first.end if first else None,
            "meetings": len(meetings),
            "join_url": request.join_url if request else None,
            "agenda": list(request.agenda) if request else [],
            "host": self._host_name(series.facilitator_email),
            # the meetings from which it moves on the learner's clock (clock changes), ahead
            "clock_moves": [
                m for m in series_clock_moves(series, meetings, learner_zone) if m.start > now
            ],
        }

    def _host_name(self, email: str | None) -> str | None:
        if email is None:
            return None
        name = self.db.scalar(select(PersonRow.name).where(PersonRow.email == email))
        return name or email

    def _meeting(self, row: NotificationRow) -> tuple[OccurrenceRow, LiveSeriesRow] | Decision:
        """The meeting a reminder is about, as it is now; superseded when it was cancelled or
        changed (another SEQUENCE) since the reminder was written."""
        found = self.meetings.get(row.target)
        if found is None:
            return _held(row, NotificationStatus.CANCELLED, "the meeting is gone")
        occurrence = found[0]
        if (
            occurrence.status == OccurrenceStatus.CANCELLED
            or occurrence.sequence != row.target_version
        ):
            return _held(row, NotificationStatus.CANCELLED, "the meeting changed since")
        return found

    def _live(
        self,
        row: NotificationRow,
        now: datetime,
        context: dict[str, Any],
        catalog: NullTranslations,
    ) -> Decision | None:
        found = self._meeting(row)
        if isinstance(found, Decision):
            return found
        occurrence, series = found
        if not still_useful(NotificationKind.LIVE_REMINDER, row.due_at, occurrence.start, now):
            return _held(row, NotificationStatus.SKIPPED, "too late: the session started")
        request = self._request(series.cohort_id, series.series_key)
        context["session"] = _block(occurrence, series, request) | {
            "agenda": list(request.agenda) if request else [],
            "lead": lead_text(occurrence.start - now, catalog),
            "clock_move": self._clock_move(occurrence, series, context["learner"]["zone"]),
        }
        return None

    def _clock_move(
        self, occurrence: OccurrenceRow, series: LiveSeriesRow, learner_zone: str
    ) -> ClockMove | None:
        """The clock move of ``series`` for the learner when ``occurrence`` is the first meeting
        at its new time on their clock, else None."""
        key = (series.id, learner_zone)
        if key not in self._moves:
            meetings = self.db.scalars(
                select(OccurrenceRow).where(OccurrenceRow.series_id == series.id)
            )
            self._moves[key] = series_clock_moves(series, meetings, learner_zone)
        return next((m for m in self._moves[key] if m.start == occurrence.start), None)

    def _coworking(
        self,
        row: NotificationRow,
        now: datetime,
        context: dict[str, Any],
        catalog: NullTranslations,
    ) -> Decision | None:
        """A co-working reminder (pod and agenda) or the check-in after the block."""
        found = self._meeting(row)
        if isinstance(found, Decision):
            return found
        occurrence, series = found
        event_at = occurrence.start if row.kind == NotificationKind.COWORKING_REMINDER else None
        if not still_useful(row.kind, row.due_at, event_at, now):
            return _held(row, NotificationStatus.SKIPPED, "too late for this block")
        me = self.pod_book.learner(row.cohort_id, row.person_id)
        if me is None or not me.fits(occurrence.start, series.duration_minutes):
            return _held(row, NotificationStatus.CANCELLED, "the block no longer fits them")
        request = self._request(series.cohort_id, series.series_key)
        block = _block(occurrence, series, request)
        if row.kind == NotificationKind.COWORKING_REMINDER:
            names = self.pod_book.names(row.cohort_id)
            pod = self.pod_book.pods(occurrence, series).pod_of(me.email) or (me.email,)
            agenda = list(request.agenda) if request else []
            context["session"] = block | {
                "lead": lead_text(occurrence.start - now, catalog),
                "phases": [
                    {"label": p.label, "start": p.start, "end": p.end}
                    for p in agenda_phases(agenda, occurrence.start, occurrence.end)
                ],
            }
            context["pod"] = {
                "names": [names.get(key, key) for key in pod if key != me.email],
                "size": len(pod),
            }
            return None
        item = next(
            (i for i in learner_items(self.db, row.cohort_id, row.person_id) if i.soft > now),
            None,
        )
        following = next_block(self.db, me, row.cohort_id, now)
        context["checkin"] = block | {
            "deadline": {"title": item.title, "soft": item.soft, "hard": item.hard}
            if item
            else None,
            "next_block": {
                "title": following[1].title,
                "start": following[0].start,
                "end": following[0].end,
            }
            if following
            else None,
        }
        return None

    def _deadline(
        self, row: NotificationRow, now: datetime, context: dict[str, Any]
    ) -> Decision | None:
        item = self.db.scalar(
            select(DeadlineItemRow)
            .join(LearnerDeadlinesRow, LearnerDeadlinesRow.group_id == DeadlineItemRow.group_id)
            .where(
                LearnerDeadlinesRow.cohort_id == row.cohort_id,
                LearnerDeadlinesRow.person_id == row.person_id,
                DeadlineItemRow.key == row.payload.get("item_key"),
            )
        )
        if item is None or deadline_version(item.soft) != row.target_version:
            return _held(row, NotificationStatus.CANCELLED, "the deadline changed since")
        if not still_useful(NotificationKind.DEADLINE_REMINDER, row.due_at, item.soft, now):
            return _held(row, NotificationStatus.SKIPPED, "too late: the deadline passed")
        request = self._request(row.cohort_id, item.series_key)
        context["deadline"] = {
            "title": item.title,
            "soft": item.soft,
            "hard": item.hard,
            "effort_minutes": item.effort_minutes,
            "for_session": request.title if request else None,
        }
        return None

    def _week(self, cohort: CohortRow, person: PersonRow, due: datetime) -> dict[str, Any]:
        schedule = learner_schedule(self.db, cohort.slug, person.email)
        end = due + timedelta(days=7)
        entries = [e for e in schedule.entries if due <= e.at < end]
        live = (SeriesKind.CLASS.value, SeriesKind.OFFICE_HOURS.value)
        return {
            "starts": due.astimezone(zone(person.zone)).date(),
            "sessions": [
                {
                    "title": e.title,
                    "kind": e.kind,
                    "start": e.at,
                    "end": e.end,
                    "join_url": None,
                    "clock_move": e.clock_move,
                    "rotation": e.rotation,  # a fairly rotated series: stretch hours, next time
                }
                for e in entries
                if e.kind in live
            ],
            "coworking": [
                {"title": e.title, "start": e.at, "end": e.end, "join_url": None}
                for e in entries
                if e.kind == SeriesKind.COWORKING.value
            ],
            "deadlines": [
                {"title": e.title, "soft": e.at}
                for e in entries
                if e.kind not in live and e.kind != SeriesKind.COWORKING.value
            ],
        }


def _block(
    occurrence: OccurrenceRow, series: LiveSeriesRow, request: SeriesRequestRow | None
) -> dict[str, Any]:
    """What every email about one meeting says of it: title, kind, when, where to join."""
    return {
        "title": series.title,
        "kind": series.kind,
        "start": occurrence.start,
        "end": occurrence.end,
        "join_url": request.join_url if request else None,
    }


def lead_text(delta: timedelta, catalog: NullTranslations | None = None) -> str:
    """'in about 23 hours', 'in about an hour', 'in 45 minutes': how soon, from the moment the
    message is composed (just before it is sent), rounded for people, in the language of
    ``catalog`` (the learner's; English without one). A reminder may go up to its rule's
    ``early`` before its due time, so hours are "about"; the templates give the time itself
    beside it ("at 18:00")."""
    t = catalog or _ENGLISH
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes >= 90:
        hours = round(minutes / 60)
        # TRANSLATORS: how soon a session starts, as in "Week 1 starts in about 23 hours".
        text = t.ngettext("in about %(num)d hour", "in about %(num)d hours", hours)
        return text % {"num": hours}
    if minutes >= 55:
        # TRANSLATORS: how soon a session starts, as in "Week 1 starts in about an hour".
        return t.gettext("in about an hour")
    minutes = max(minutes, 1)
    # TRANSLATORS: how soon a session starts, as in "Week 1 starts in 45 minutes".
    text = t.ngettext("in %(num)d minute", "in %(num)d minutes", minutes)
    return text % {"num": minutes}


_ENGLISH = NullTranslations()


def compose(
    db: Session,
    ids: Sequence[int],
    now: datetime,
    templates: EmailTemplates,
    config: DeliveryConfig,
) -> list[Decision]:
    rows = list(
        db.scalars(
            select(NotificationRow).where(NotificationRow.id.in_(ids)).order_by(NotificationRow.id)
        )
    )
    composer = Composer(db, templates, config, rows, now)
    return [composer.decide(row, now) for row in rows]
