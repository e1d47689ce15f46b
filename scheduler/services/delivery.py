"""Delivering the outbox: claim due notifications, render them, send them, record what happened.

One batch goes through three short steps, each its own transaction, so no database
transaction is held open while talking to the mail server:

1. **claim** — due rows (``pending``, ``next_attempt_at <= now``, no live lease) get a lease
   (``lease_until``, ``leased_by``). On PostgreSQL the select uses ``FOR UPDATE SKIP LOCKED``,
   so any number of workers share the queue without waiting on each other; on SQLite one
   worker runs (the worker holds a file lock).
2. **compose** — each row is checked against the data as it is *now*: a reminder whose session
   moved or was cancelled since it was written is ``cancelled`` (it never announces an old
   time); one that is no longer useful (the session started) is ``skipped``; the rest are
   rendered from the Jinja templates and built into messages with their fixed Message-ID.
3. **send, then record** — the mailer sends the batch over one connection; each result is
   written back: ``sent``; a temporary failure (4xx, timeout, dropped connection) back to
   ``pending`` with exponential backoff and jitter, same Message-ID; a permanent one (5xx to
   MAIL, RCPT or DATA, or too many attempts) ``failed`` with the reply kept in ``last_error``.
   A message not tried because no connection could be made (connect, greeting, EHLO,
   STARTTLS, AUTH) goes back to ``pending`` without counting an attempt: an outage or a
   wrong password delays mail, with backoff growing with the outage, but never fails it.

A worker that dies between sending and recording leaves its rows leased; when the lease
expires they are claimed again and resent. Delivery is therefore at-least-once, and the
duplicates are bounded by one batch in flight per crashed worker and recognisable by their
Message-ID.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.domain.cohort import Role, SeriesKind
from scheduler.domain.status import NotificationKind, NotificationStatus, OccurrenceStatus
from scheduler.outputs.email import EmailTemplates, Rendered, build_message
from scheduler.outputs.links import feed_links
from scheduler.outputs.mailers import Mailer, Outcome, Outgoing, SendResult
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
from scheduler.services.coworking import PodBook, next_block
from scheduler.services.deadlines import learner_items
from scheduler.services.feeds import mail_tokens
from scheduler.services.invites import INVITE_KINDS, invite_message
from scheduler.services.reminders import deadline_version, still_useful
from scheduler.services.schedule import learner_schedule
from scheduler.timeutil import zone


@dataclass(frozen=True, slots=True)
class DeliveryConfig:
    sender: tuple[str, str]  # (name, address): From, and ORGANIZER of invitations
    base_url: str
    secret: bytes  # signs the feed links put in emails
    batch_size: int = 50
    lease: timedelta = timedelta(minutes=2)
    max_attempts: int = 10
    retry_base: timedelta = timedelta(seconds=30)
    retry_cap: timedelta = timedelta(hours=1)


@dataclass(slots=True)
class BatchCounts:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0

    def add(self, other: BatchCounts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True, slots=True)
class _Decision:
    notification_id: int
    attempts: int
    outgoing: Outgoing | None = None
    status: str | None = None  # skipped / cancelled / failed when nothing is sent
    reason: str = ""


def _held(row: NotificationRow, status: str, reason: str) -> _Decision:
    """The decision not to send ``row``: skipped, superseded (cancelled) or failed."""
    return _Decision(row.id, row.attempts, status=status, reason=reason)


def retry_delay(attempts: int, config: DeliveryConfig, rng: random.Random) -> timedelta:
    """Exponential backoff with jitter: base * 2^(attempts-1), capped, times 0.5-1.5."""
    delay = min(config.retry_base * (2 ** max(attempts - 1, 0)), config.retry_cap)
    return timedelta(seconds=delay.total_seconds() * rng.uniform(0.5, 1.5))


def _due(now: datetime, config: DeliveryConfig, *, skip_locked: bool) -> Select[int]:
    """The ids of up to ``batch_size`` due notifications with no live lease, oldest first."""
    query = (
        select(NotificationRow.id)
        .where(
            NotificationRow.status == NotificationStatus.PENDING,
            NotificationRow.next_attempt_at <= now,
            or_(NotificationRow.lease_until.is_(None), NotificationRow.lease_until < now),
        )
        .order_by(NotificationRow.next_attempt_at, NotificationRow.id)
        .limit(config.batch_size)
    )
    return query.with_for_update(skip_locked=True) if skip_locked else query


def _by_id(ids: Sequence[int]) -> ColumnElement[bool]:
    """``id IN ids``, for rows that must also still be pending, found by primary key.

    ``status`` is compared as an expression (``status || ''``), which no index answers, so the
    ids are the only way in: on a table whose statistics predate a burst of new rows (a fresh
    database, a large publish, before autovacuum's next ANALYZE) PostgreSQL otherwise reads
    every pending row through ``ix_notification_due`` to find a batch of 50, twice per batch
    (measured: ~6 ms per statement with 20,000 rows pending, against ~0.1 ms by id).
    """
    return and_(
        NotificationRow.id.in_(ids), (NotificationRow.status + "") == NotificationStatus.PENDING
    )


def claim_rows(
    db: Session, worker_id: str, now: datetime, config: DeliveryConfig, *, skip_locked: bool
) -> list[NotificationRow]:
    """Lease up to ``batch_size`` due notifications to ``worker_id`` and return them, oldest
    first: the ids are selected (and locked), then one ``UPDATE ... RETURNING`` leases the
    rows and reads them, instead of an update and a second select.

    The ids are selected first, in their own statement, on purpose: with the select as a
    subquery of the UPDATE (``WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)``)
    PostgreSQL is free to run the subquery again while it scans, and a worker can lease far
    more than ``n`` rows (the SIGKILL test caught it: with batches of 20, the killed worker had
    sent 73 messages without recording one, and its replacement resent all 300)."""
    ids = list(db.scalars(_due(now, config, skip_locked=skip_locked)))
    if not ids:
        return []
    rows = db.scalars(
        update(NotificationRow)
        .where(_by_id(ids))
        .values(lease_until=now + config.lease, leased_by=worker_id)
        .returning(NotificationRow),
        execution_options={"synchronize_session": False},
    ).all()
    return sorted(rows, key=lambda r: (r.next_attempt_at, r.id))


def claim(
    db: Session, worker_id: str, now: datetime, config: DeliveryConfig, *, skip_locked: bool
) -> list[int]:
    """Lease up to ``batch_size`` due notifications to ``worker_id``; returns their ids."""
    return [row.id for row in claim_rows(db, worker_id, now, config, skip_locked=skip_locked)]


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
        person_ids = list({r.person_id for r in rows})
        self.people = {
            p.id: p for p in db.scalars(select(PersonRow).where(PersonRow.id.in_(person_ids)))
        }
        # Roles by person id alone, the cohort checked here: the index on person_id answers
        # it whatever PostgreSQL's statistics say (with cohort_id in the query, a table not
        # analysed since a big import reads the whole cohort's enrollments for every batch).
        roles = {
            (cohort_id, pid): role
            for pid, cohort_id, role in db.execute(
                select(EnrollmentRow.person_id, EnrollmentRow.cohort_id, EnrollmentRow.role).where(
                    EnrollmentRow.person_id.in_(person_ids)
                )
            )
        }
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

    def decide(self, row: NotificationRow, now: datetime) -> _Decision:
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

    def _decide(self, row: NotificationRow, now: datetime) -> _Decision:
        person = self.people.get(row.person_id)
        if person is None:
            return _held(row, NotificationStatus.CANCELLED, "the person was removed")
        cohort = self._cohort(row.cohort_id)
        context: dict[str, Any] = {
            "kind": row.kind,
            "learner": {
                "name": person.name,
                "email": person.email,
                "locale": person.locale or cohort.locale,
                "zone": person.zone,
            },
            "cohort": {"title": cohort.title, "slug": cohort.slug},
        }
        calendar: bytes | None = None
        method: str | None = None
        if row.kind in INVITE_KINDS:
            series = self.db.get(LiveSeriesRow, row.payload["series_id"])
            if series is None:
                return _held(row, NotificationStatus.CANCELLED, "the series was removed")
            context["series"] = self._series(series)
            calendar = invite_message(self.db, row, self.config.sender)
            method = "CANCEL" if row.kind == NotificationKind.CANCELLATION else "REQUEST"
        elif row.kind == NotificationKind.LIVE_REMINDER:
            found = self._live(row, now, context)
            if isinstance(found, _Decision):
                return found
        elif row.kind in (NotificationKind.COWORKING_REMINDER, NotificationKind.CHECKIN):
            found = self._coworking(row, now, context)
            if isinstance(found, _Decision):
                return found
        elif row.kind == NotificationKind.DEADLINE_REMINDER:
            found = self._deadline(row, now, context)
            if isinstance(found, _Decision):
                return found
        elif row.kind == NotificationKind.DIGEST:
            if not still_useful(NotificationKind.DIGEST, row.due_at, None, now):
                return _held(row, NotificationStatus.SKIPPED, "too late for this week's digest")
            context["week"] = self._week(cohort, person, row.due_at)
        token = self.tokens.get((cohort.id, person.id))  # none for someone who has left
        links = None if token is None else feed_links(self.config.base_url, token, cohort.title)
        context["links"] = {
            "page": None,
            "feed": links and links.https,
            "webcal": links and links.webcal,
            "google": links and links.google,
            "outlook": links and links.outlook,
        }
        rendered: Rendered = self.templates.render(row.kind, context)
        data = build_message(
            rendered,
            sender=self.config.sender,
            recipient=(person.name, person.email),
            message_id=row.message_id,
            date=now,
            calendar=calendar,
            calendar_method=method,
        )
        return _Decision(
            row.id,
            row.attempts,
            Outgoing(row.message_id, self.config.sender[1], (person.email,), data),
        )

    def _series(self, series: LiveSeriesRow) -> dict[str, Any]:
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
        }

    def _host_name(self, email: str | None) -> str | None:
        if email is None:
            return None
        name = self.db.scalar(select(PersonRow.name).where(PersonRow.email == email))
        return name or email

    def _meeting(self, row: NotificationRow) -> tuple[OccurrenceRow, LiveSeriesRow] | _Decision:
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
        self, row: NotificationRow, now: datetime, context: dict[str, Any]
    ) -> _Decision | None:
        found = self._meeting(row)
        if isinstance(found, _Decision):
            return found
        occurrence, series = found
        if not still_useful(NotificationKind.LIVE_REMINDER, row.due_at, occurrence.start, now):
            return _held(row, NotificationStatus.SKIPPED, "too late: the session started")
        request = self._request(series.cohort_id, series.series_key)
        context["session"] = {
            "title": series.title,
            "kind": series.kind,
            "start": occurrence.start,
            "end": occurrence.end,
            "join_url": request.join_url if request else None,
            "agenda": list(request.agenda) if request else [],
            "lead": lead_text(occurrence.start - now),
        }
        return None

    def _coworking(
        self, row: NotificationRow, now: datetime, context: dict[str, Any]
    ) -> _Decision | None:
        """A co-working reminder (pod and agenda) or the check-in after the block."""
        found = self._meeting(row)
        if isinstance(found, _Decision):
            return found
        occurrence, series = found
        event_at = occurrence.start if row.kind == NotificationKind.COWORKING_REMINDER else None
        if not still_useful(row.kind, row.due_at, event_at, now):
            return _held(row, NotificationStatus.SKIPPED, "too late for this block")
        me = self.pod_book.learner(row.cohort_id, row.person_id)
        if me is None or not me.fits(occurrence.start, series.duration_minutes):
            return _held(row, NotificationStatus.CANCELLED, "the block no longer fits them")
        request = self._request(series.cohort_id, series.series_key)
        block = {
            "title": series.title,
            "kind": series.kind,
            "start": occurrence.start,
            "end": occurrence.end,
            "join_url": request.join_url if request else None,
        }
        if row.kind == NotificationKind.COWORKING_REMINDER:
            names = self.pod_book.names(row.cohort_id)
            pod = self.pod_book.pods(occurrence, series).pod_of(me.email) or (me.email,)
            agenda = list(request.agenda) if request else []
            context["session"] = block | {
                "lead": lead_text(occurrence.start - now),
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
    ) -> _Decision | None:
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
                {"title": e.title, "kind": e.kind, "start": e.at, "end": e.end, "join_url": None}
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


def lead_text(delta: timedelta) -> str:
    """'in 23 hours', 'in 45 minutes': how soon, rounded for people."""
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes >= 90:
        hours = round(minutes / 60)
        return f"in {hours} hours"
    if minutes >= 55:
        return "in 1 hour"
    return f"in {max(minutes, 1)} minutes"


def compose(
    db: Session,
    ids: Sequence[int],
    now: datetime,
    templates: EmailTemplates,
    config: DeliveryConfig,
) -> list[_Decision]:
    rows = list(
        db.scalars(
            select(NotificationRow).where(NotificationRow.id.in_(ids)).order_by(NotificationRow.id)
        )
    )
    composer = Composer(db, templates, config, rows, now)
    return [composer.decide(row, now) for row in rows]


def record(
    db: Session,
    worker_id: str,
    decisions: Sequence[_Decision],
    results: dict[int, SendResult],
    now: datetime,
    config: DeliveryConfig,
    rng: random.Random,
) -> BatchCounts:
    """Write back each row's outcome; only rows this worker still holds are touched."""
    counts = BatchCounts(claimed=len(decisions))
    mine = NotificationRow.leased_by == worker_id
    done = {"lease_until": None, "leased_by": None}
    plain = [  # sent, every recipient accepted: one statement for all of them
        d.notification_id
        for d in decisions
        if (r := results.get(d.notification_id)) is not None
        and r.outcome is Outcome.SENT
        and not r.refused
    ]
    if plain:
        db.execute(
            update(NotificationRow)
            .where(_by_id(plain), mine)
            .values(
                status=NotificationStatus.SENT,
                sent_at=now,
                attempts=NotificationRow.attempts + 1,
                last_error=None,
                **done,
            )
        )
        counts.sent += len(plain)
    already = set(plain)
    for decision in decisions:
        if decision.notification_id in already:
            continue
        where = and_(_by_id([decision.notification_id]), mine)
        result = results.get(decision.notification_id)
        if result is None:
            status = decision.status or NotificationStatus.FAILED
            db.execute(
                update(NotificationRow)
                .where(where)
                .values(status=status, last_error=decision.reason, **done)
            )
            if status == NotificationStatus.SKIPPED:
                counts.skipped += 1
            elif status == NotificationStatus.CANCELLED:
                counts.cancelled += 1
            else:
                counts.failed += 1
            continue
        attempts = NotificationRow.attempts + 1
        if result.outcome is Outcome.SENT:
            db.execute(
                update(NotificationRow)
                .where(where)
                .values(
                    status=NotificationStatus.SENT,
                    sent_at=now,
                    attempts=attempts,
                    refused=dict(result.refused) or None,
                    last_error=None,
                    **done,
                )
            )
            counts.sent += 1
            continue
        if result.outcome is Outcome.RETRY and result.connection_failures:
            # Not tried: the connection failed (refused, 5xx greeting, STARTTLS stripped, wrong
            # password, too slow). Not held against the message (``attempts`` unchanged, so an
            # outage never uses up max_attempts), but backed off further the longer it lasts.
            step = max(result.connection_failures, decision.attempts + 1)
            db.execute(
                update(NotificationRow)
                .where(where)
                .values(
                    last_error=result.detail[:1000],
                    next_attempt_at=now + retry_delay(step, config, rng),
                    **done,
                )
            )
            counts.retried += 1
            continue
        permanent = result.outcome is Outcome.FAILED or decision.attempts + 1 >= config.max_attempts
        values: dict[str, object] = {
            "attempts": attempts,
            "last_error": result.detail[:1000],
            **done,
        }
        if permanent:
            values["status"] = NotificationStatus.FAILED
            counts.failed += 1
        else:
            values["next_attempt_at"] = now + retry_delay(decision.attempts + 1, config, rng)
            counts.retried += 1
        db.execute(update(NotificationRow).where(where).values(**values))
    return counts


def prepare_batch(
    sessions: sessionmaker[Session],
    templates: EmailTemplates,
    config: DeliveryConfig,
    worker_id: str,
    now: Callable[[], datetime],
    *,
    skip_locked: bool,
) -> list[_Decision]:
    """Claim a batch and compose its messages, in one transaction (empty: nothing is due)."""
    with sessions.begin() as db:
        rows = claim_rows(db, worker_id, now(), config, skip_locked=skip_locked)
        if not rows:
            return []
        at = now()
        composer = Composer(db, templates, config, rows, at)
        return [composer.decide(row, at) for row in rows]


def finish_batch(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    config: DeliveryConfig,
    worker_id: str,
    now: Callable[[], datetime],
    decisions: Sequence[_Decision],
    rng: random.Random | None = None,
) -> BatchCounts:
    """Send a prepared batch over the mailer's connection, then record every outcome.

    The lease is confirmed (and renewed) just before sending: a row whose lease ran out while
    the batch waited (a slow machine, a long previous batch) may have been claimed by another
    worker, and is left to it rather than sent twice."""
    mine = _renew_leases(sessions, worker_id, decisions, now(), config)
    decisions = [d for d in decisions if d.notification_id in mine]
    outgoing = [d for d in decisions if d.outgoing is not None]
    results: dict[int, SendResult] = {}
    if outgoing:
        sent = mailer.send_batch([d.outgoing for d in outgoing if d.outgoing is not None])
        results = {d.notification_id: r for d, r in zip(outgoing, sent, strict=True)}
    with sessions.begin() as db:
        return record(db, worker_id, decisions, results, now(), config, rng or random.Random())


def _renew_leases(
    sessions: sessionmaker[Session],
    worker_id: str,
    decisions: Sequence[_Decision],
    now: datetime,
    config: DeliveryConfig,
) -> set[int]:
    """Extend the lease of the rows this worker still holds; returns their ids."""
    ids = [d.notification_id for d in decisions]
    if not ids:
        return set()
    with sessions.begin() as db:
        renewed = db.execute(
            update(NotificationRow)
            .where(_by_id(ids), NotificationRow.leased_by == worker_id)
            .values(lease_until=now + config.lease)
            .returning(NotificationRow.id)
        )
        return set(renewed.scalars())


def release(
    sessions: sessionmaker[Session], worker_id: str, decisions: Sequence[_Decision]
) -> None:
    """Give a prepared batch back unsent (the worker is stopping): its rows are due again now."""
    ids = [d.notification_id for d in decisions]
    with sessions.begin() as db:
        db.execute(
            update(NotificationRow)
            .where(NotificationRow.id.in_(ids), NotificationRow.leased_by == worker_id)
            .values(lease_until=None, leased_by=None)
        )


def deliver_batch(
    sessions: sessionmaker[Session],
    mailer: Mailer,
    templates: EmailTemplates,
    config: DeliveryConfig,
    worker_id: str,
    now: Callable[[], datetime],
    *,
    skip_locked: bool,
    rng: random.Random | None = None,
) -> BatchCounts:
    """Claim, compose, send and record one batch. Returns what happened (claimed 0: idle)."""
    decisions = prepare_batch(sessions, templates, config, worker_id, now, skip_locked=skip_locked)
    if not decisions:
        return BatchCounts()
    return finish_batch(sessions, mailer, config, worker_id, now, decisions, rng)
