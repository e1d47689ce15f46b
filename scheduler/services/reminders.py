"""Reminders, the weekly digest and the welcome email, written to the outbox ahead of time.

The cohort file's ``[[reminders]]`` rules say when (``before = "24h"`` a live session or a soft
deadline, ``at = "08:00"`` learner-local on the target's day, a digest on a weekday). This
module turns them into notification rows for everything due within a horizon (48 h by default),
in the caller's transaction:

* every publish, change and roster import calls :func:`sync_reminders`, so a moved session or
  deadline replaces its reminders in the same commit as the change: a row's key holds the
  target's version (an occurrence's SEQUENCE, a deadline's due minute), so the old row is
  cancelled and a new one written;
* the worker calls it every few minutes to move the horizon forward as time passes.

Learners' preferences (:mod:`scheduler.services.preferences`) are honoured here: no row is
written for a kind (or live reminder rule) a learner turned off, nor for one due inside their
pause (:func:`held_back`); the composer asks the same question again just before sending.

Rows already sent are never written again (the key is unique); rows that stopped being wanted
(a cancelled session, a learner who left) are marked ``cancelled`` while still pending. A
reminder's usefulness ends when it is too late: :func:`still_useful` is the one rule the
worker also applies when it sends (a 24 h reminder may go out up to 12 h late, never after the
session started).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from scheduler.domain.cohort import DEFAULT_EARLY, ReminderAbout, ReminderRule, Role, SeriesKind
from scheduler.domain.status import (
    OPTIONAL_KINDS,
    PER_RULE_KINDS,
    EnrollmentStatus,
    NotificationKind,
    NotificationStatus,
    OccurrenceStatus,
)
from scheduler.persistence import repo
from scheduler.persistence.models import (
    DeadlineItemRow,
    EnrollmentRow,
    LearnerDeadlinesRow,
    LiveSeriesRow,
    NotificationRow,
    OccurrenceRow,
    PersonRow,
    ReminderOptOutRow,
    ReminderPauseRow,
    SectionMemberRow,
)
from scheduler.services.coworking import audience, coworking_learners
from scheduler.services.plans import UID_NAMESPACE, published_version
from scheduler.timeutil import wall_to_utc, zone

REMINDER_KINDS = (
    NotificationKind.LIVE_REMINDER,
    NotificationKind.DEADLINE_REMINDER,
    NotificationKind.DIGEST,
    NotificationKind.WELCOME,
    NotificationKind.COWORKING_REMINDER,
    NotificationKind.CHECKIN,
)
# The old names of some kinds, still imported by tests.
LIVE_REMINDER, DEADLINE_REMINDER = (
    NotificationKind.LIVE_REMINDER,
    NotificationKind.DEADLINE_REMINDER,
)
WELCOME, CHECKIN = NotificationKind.WELCOME, NotificationKind.CHECKIN
COWORKING_REMINDER = NotificationKind.COWORKING_REMINDER
DEFAULT_HORIZON = timedelta(hours=48)
DIGEST_GRACE = timedelta(hours=12)  # a Monday digest is still worth sending on Monday evening
# Co-working blocks need no [[reminders]] rule: every learner a block fits gets a "starting
# soon" email with their breakout pod ``[orchestration] pods_before`` (default 2 h) before it,
# and a check-in prompt CHECKIN_AFTER its end (worth sending up to CHECKIN_GRACE late, like a
# digest).
CHECKIN_AFTER = timedelta(minutes=15)
CHECKIN_GRACE = timedelta(hours=12)
CHECKIN_RULE = "after15m"


def coworking_rule(lead: timedelta) -> str:
    """The rule key of the "starting soon" email: ``lead2h`` for the default two hours (the key
    rows were written with before the lead became a setting), ``lead<N>m`` otherwise."""
    minutes = int(lead / timedelta(minutes=1))
    return "lead2h" if minutes == 120 else f"lead{minutes}m"


def still_useful(kind: str, due: datetime, event_at: datetime | None, now: datetime) -> bool:
    """Whether a reminder due at ``due`` about something at ``event_at`` is worth sending now.

    Live, co-working and deadline reminders: only before the event, and at most half their lead
    late (a 24 h reminder up to 12 h late, a 1 h reminder up to 30 min). Digests and co-working
    check-ins: up to 12 h late.
    Welcome emails, invites, updates and cancellations are always sent.
    """
    if kind in (
        NotificationKind.LIVE_REMINDER,
        NotificationKind.DEADLINE_REMINDER,
        NotificationKind.COWORKING_REMINDER,
    ):
        if event_at is None or now >= event_at:
            return False
        return now - due <= max((event_at - due) / 2, timedelta(0))
    if kind == NotificationKind.DIGEST:
        return now - due <= DIGEST_GRACE
    if kind == NotificationKind.CHECKIN:
        return now - due <= CHECKIN_GRACE
    return True


def notification_key(kind: str, person_id: int, target: str, rule: str, version: int) -> str:
    return f"{kind}/{person_id}/{target}/{rule}/{version}"


def message_id_for(key: str) -> str:
    """A Message-ID fixed when the row is created, so a resend is recognisable."""
    return f"<{uuid.uuid5(UID_NAMESPACE, key)}@cohort-scheduler>"


OFF_REASON = "turned off by the learner"
PAUSE_REASON = "paused by the learner"


@dataclass(frozen=True, slots=True)
class HeldBack:
    """What learners of one cohort asked not to be sent: the (person, kind, rule) turned off
    (rule '' for the kinds turned off whole) and, per person, the instant their pause ends
    (the start of the day after ``paused_until`` on their clock)."""

    off: frozenset[tuple[int, str, str]]
    pause_ends: dict[int, datetime]

    def reason(self, kind: str, person_id: int, rule: str, due: datetime) -> str | None:
        """Why a ``kind`` notification due at ``due`` is not to go (None: it goes)."""
        if kind not in OPTIONAL_KINDS:
            return None  # invitations, updates, cancellations and welcome emails always go
        if (person_id, kind, rule if kind in PER_RULE_KINDS else "") in self.off:
            return OFF_REASON
        end = self.pause_ends.get(person_id)
        if end is not None and due < end:
            return PAUSE_REASON
        return None


def held_back(db: Session, cohort_id: int, person_ids: Iterable[int] | None = None) -> HeldBack:
    """The cohort's learners' opt-outs and pauses (only ``person_ids``' when given): two
    indexed queries."""
    off_query = select(
        ReminderOptOutRow.person_id, ReminderOptOutRow.kind, ReminderOptOutRow.rule
    ).where(ReminderOptOutRow.cohort_id == cohort_id)
    pause_query = (
        select(ReminderPauseRow.person_id, ReminderPauseRow.paused_until, PersonRow.zone)
        .join(PersonRow, PersonRow.id == ReminderPauseRow.person_id)
        .where(ReminderPauseRow.cohort_id == cohort_id)
    )
    if person_ids is not None:
        ids = list(person_ids)
        off_query = off_query.where(repo.id_in(db, ReminderOptOutRow.person_id, ids))
        pause_query = pause_query.where(repo.id_in(db, ReminderPauseRow.person_id, ids))
    off = frozenset((pid, kind, rule) for pid, kind, rule in db.execute(off_query))
    ends = {pid: pause_end(until, zone_name) for pid, until, zone_name in db.execute(pause_query)}
    return HeldBack(off, ends)


def pause_end(paused_until: date, zone_name: str) -> datetime:
    """When a pause through ``paused_until`` ends: the next midnight on the learner's clock."""
    return wall_to_utc(paused_until + timedelta(days=1), time(0, 0), zone(zone_name))


@dataclass(frozen=True, slots=True)
class ReminderCounts:
    queued: int
    cancelled: int


@dataclass(frozen=True, slots=True)
class _Member:
    person_id: int
    email: str
    zone: str
    role: str


class _Wanted:
    def __init__(
        self, cohort_id: int, now: datetime, until: datetime, held: HeldBack | None = None
    ) -> None:
        self.cohort_id, self.now, self.until = cohort_id, now, until
        self.held = held or HeldBack(frozenset(), {})
        self.rows: dict[str, dict[str, object]] = {}

    def add(
        self,
        kind: str,
        person_id: int,
        target: str,
        rule: str,
        version: int,
        due: datetime,
        event_at: datetime | None,
        payload: dict[str, object],
        early: timedelta = timedelta(0),
    ) -> None:
        """Queue one notification due at ``due``, which may go up to ``early`` sooner when many
        fall due together (``not_before``), never before it is written."""
        if due >= self.until or not (
            due >= self.now or still_useful(kind, due, event_at, self.now)
        ):
            return
        if self.held.reason(kind, person_id, rule, due) is not None:
            return  # the learner turned it off, or paused reminders over its due time
        key = notification_key(kind, person_id, target, rule, version)
        self.rows[key] = {
            "cohort_id": self.cohort_id,
            "person_id": person_id,
            "kind": kind,
            "key": key,
            "target": target,
            "rule": rule,
            "target_version": version,
            "due_at": due,
            "not_before": max(due - early, min(due, self.now)),
            "status": NotificationStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": due,
            "message_id": message_id_for(key),
            "payload": {**payload, "at": event_at.isoformat() if event_at else None},
            "created_at": self.now,
        }


def sync_reminders(
    db: Session, slug: str, now: datetime, horizon: timedelta = DEFAULT_HORIZON
) -> ReminderCounts:
    """Write the reminders due before ``now + horizon``; cancel pending ones no longer wanted."""
    cohort = repo.get_cohort(db, slug)
    if published_version(db, cohort.id) is None:
        return ReminderCounts(0, 0)
    spec = repo.cohort_spec(db, cohort)
    rules: dict[ReminderAbout, list[ReminderRule]] = {}
    for rule in spec.reminders:
        rules.setdefault(rule.about, []).append(rule)
    wanted = _Wanted(cohort.id, now, now + horizon, held_back(db, cohort.id))
    members = {
        m.person_id: m
        for m in (
            _Member(*row)
            for row in db.execute(
                select(PersonRow.id, PersonRow.email, PersonRow.zone, EnrollmentRow.role)
                .join(EnrollmentRow, EnrollmentRow.person_id == PersonRow.id)
                .where(
                    EnrollmentRow.cohort_id == cohort.id,
                    EnrollmentRow.status == EnrollmentStatus.ACTIVE,
                )
            )
        )
    }
    learners = [m for m in members.values() if m.role == Role.LEARNER.value]
    lead = max((r.before or timedelta(0) for r in spec.reminders), default=timedelta(0))
    reach = wanted.until + lead + timedelta(days=1)

    for rule in rules.get(ReminderAbout.WELCOME, []):
        for m in learners:
            wanted.add(
                NotificationKind.WELCOME, m.person_id, f"{slug}/welcome", rule.key, 0, now, None, {}
            )
    if ReminderAbout.LIVE in rules:
        _live(db, cohort.id, members, rules[ReminderAbout.LIVE], wanted, reach)
    if ReminderAbout.DEADLINE in rules:
        _deadlines(db, cohort.id, slug, members, rules[ReminderAbout.DEADLINE], wanted, reach)
    _coworking(db, cohort.id, timedelta(minutes=cohort.pods_before_minutes), wanted)
    end_of_course = spec.start_date + timedelta(weeks=spec.weeks)
    for rule in rules.get(ReminderAbout.DIGEST, []):
        for m in learners:
            for day in _digest_days(rule, m.zone, now, wanted.until, spec.start_date):
                if day < end_of_course:
                    due = wall_to_utc(day, _clock(rule.at or 8 * 60), zone(m.zone))
                    target = f"{slug}/digest/{day.isoformat()}"
                    wanted.add(
                        NotificationKind.DIGEST,
                        m.person_id,
                        target,
                        rule.key,
                        0,
                        due,
                        None,
                        {},
                        rule.early,
                    )
    return _store(db, cohort.id, wanted)


def _clock(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


def _digest_days(
    rule: ReminderRule, zone_name: str, now: datetime, until: datetime, first: date
) -> Iterable[date]:
    tz = zone(zone_name)
    day = max(now.astimezone(tz).date() - timedelta(days=1), first)
    last = until.astimezone(tz).date()
    weekday = rule.weekday if rule.weekday is not None else 0
    while day <= last:
        if day.weekday() == weekday:
            yield day
        day += timedelta(days=1)


def _due(rule: ReminderRule, event_at: datetime, zone_name: str) -> datetime | None:
    """When ``rule`` fires for something at ``event_at``; None when its time is not before it."""
    if rule.before is not None:
        return event_at - rule.before
    if rule.at is None:
        return None
    tz = zone(zone_name)
    due = wall_to_utc(event_at.astimezone(tz).date(), _clock(rule.at), tz)
    return due if due < event_at else None


def _live(
    db: Session,
    cohort_id: int,
    members: dict[int, _Member],
    rules: list[ReminderRule],
    wanted: _Wanted,
    reach: datetime,
) -> None:
    sections: dict[tuple[str, int], list[int]] = {}
    for key, section, person_id in db.execute(
        select(
            SectionMemberRow.series_key, SectionMemberRow.section, SectionMemberRow.person_id
        ).where(SectionMemberRow.cohort_id == cohort_id)
    ):
        if person_id in members:
            sections.setdefault((key, section), []).append(person_id)
    hosts = {m.email: m.person_id for m in members.values() if m.role != Role.LEARNER.value}
    query = (
        select(LiveSeriesRow, OccurrenceRow)
        .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
        .where(
            LiveSeriesRow.cohort_id == cohort_id,
            LiveSeriesRow.kind != SeriesKind.COWORKING.value,
            OccurrenceRow.status == OccurrenceStatus.SCHEDULED,
            OccurrenceRow.start > wanted.now,
            OccurrenceRow.start < reach,
        )
    )
    for series, occurrence in db.execute(query):
        people = list(sections.get((series.series_key, series.section), []))
        if series.facilitator_email in hosts:
            people.append(hosts[series.facilitator_email])
        for person_id in people:
            for rule, due in _timely(rules, occurrence.start, members[person_id].zone, wanted):
                wanted.add(
                    NotificationKind.LIVE_REMINDER,
                    person_id,
                    occurrence.uid,
                    rule.key,
                    occurrence.sequence,
                    due,
                    occurrence.start,
                    {"occurrence_id": occurrence.id},
                    rule.early,
                )


def _coworking(db: Session, cohort_id: int, lead: timedelta, wanted: _Wanted) -> None:
    """A reminder before each co-working block and a check-in after it, for its audience."""
    query = (
        select(LiveSeriesRow, OccurrenceRow)
        .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
        .where(
            LiveSeriesRow.cohort_id == cohort_id,
            LiveSeriesRow.kind == SeriesKind.COWORKING.value,
            OccurrenceRow.status == OccurrenceStatus.SCHEDULED,
            OccurrenceRow.start < wanted.until + lead,
            OccurrenceRow.end > wanted.now - CHECKIN_AFTER - CHECKIN_GRACE,
        )
    )
    found = list(db.execute(query))
    if not found:
        return
    learners = coworking_learners(db, cohort_id)
    rule = coworking_rule(lead)
    for series, occurrence in found:
        for m in audience(learners, occurrence, series):
            wanted.add(
                NotificationKind.COWORKING_REMINDER,
                m.person_id,
                occurrence.uid,
                rule,
                occurrence.sequence,
                occurrence.start - lead,
                occurrence.start,
                {"occurrence_id": occurrence.id},
                DEFAULT_EARLY,
            )
            wanted.add(
                NotificationKind.CHECKIN,
                m.person_id,
                occurrence.uid,
                CHECKIN_RULE,
                occurrence.sequence,
                occurrence.end + CHECKIN_AFTER,
                None,
                {"occurrence_id": occurrence.id},
                min(DEFAULT_EARLY, CHECKIN_AFTER),
            )


def deadline_version(soft: datetime) -> int:
    """A deadline reminder's version: its due minute, so a moved deadline gets a new row."""
    return int(soft.timestamp() // 60)


def _deadlines(
    db: Session,
    cohort_id: int,
    slug: str,
    members: dict[int, _Member],
    rules: list[ReminderRule],
    wanted: _Wanted,
    reach: datetime,
) -> None:
    query = (
        select(LearnerDeadlinesRow.person_id, DeadlineItemRow.key, DeadlineItemRow.soft)
        .join(DeadlineItemRow, DeadlineItemRow.group_id == LearnerDeadlinesRow.group_id)
        .where(
            LearnerDeadlinesRow.cohort_id == cohort_id,
            DeadlineItemRow.soft > wanted.now,
            DeadlineItemRow.soft < reach,
        )
    )
    for person_id, item_key, soft in db.execute(query):
        member = members.get(person_id)
        if member is None:
            continue
        for rule, due in _timely(rules, soft, member.zone, wanted):
            wanted.add(
                NotificationKind.DEADLINE_REMINDER,
                person_id,
                f"{slug}/deadline/{item_key}",
                rule.key,
                deadline_version(soft),
                due,
                soft,
                {"item_key": item_key},
                rule.early,
            )


def _timely(
    rules: list[ReminderRule], event_at: datetime, zone_name: str, wanted: _Wanted
) -> list[tuple[ReminderRule, datetime]]:
    """The (rule, due time) reminders about one event worth queueing for one person: every
    one still to come, and of those already due only the latest. Someone who joins an hour
    before a class gets the 1-hour reminder, not the 24-hour one as well (two emails at once
    saying the same); someone who joins on the morning of a deadline gets the morning one only.
    """
    dues = [(rule, due) for rule in rules if (due := _due(rule, event_at, zone_name))]
    late = [d for d in dues if d[1] < wanted.now]
    timely = [d for d in dues if d[1] >= wanted.now]
    if late:
        timely.append(max(late, key=lambda d: (d[1], d[0].key)))
    return timely


def _store(db: Session, cohort_id: int, wanted: _Wanted) -> ReminderCounts:
    keys = list(wanted.rows)
    existing: set[str] = set()
    for i in range(0, len(keys), 500):
        existing.update(
            db.scalars(
                select(NotificationRow.key).where(NotificationRow.key.in_(keys[i : i + 500]))
            )
        )
    new = [row for key, row in wanted.rows.items() if key not in existing]
    new = _not_sent_already(db, cohort_id, new, wanted.now)
    if new:
        db.execute(repo.table_of(NotificationRow).insert(), new)
    stale = [
        row_id
        for row_id, key, kind, due, payload in db.execute(
            select(
                NotificationRow.id,
                NotificationRow.key,
                NotificationRow.kind,
                NotificationRow.due_at,
                NotificationRow.payload,
            ).where(
                NotificationRow.cohort_id == cohort_id,
                NotificationRow.status == NotificationStatus.PENDING,
                NotificationRow.kind.in_(REMINDER_KINDS),
            )
        )
        if key not in wanted.rows
        and still_useful(kind, due, _instant(payload.get("at")), wanted.now)
        and due < wanted.until
    ]
    cancel_pending(db, stale, "superseded: its target changed or is gone")
    return ReminderCounts(len(new), len(stale))


def cancel_pending(db: Session, ids: list[int], reason: str) -> None:
    """Mark the rows ``ids`` that are still pending cancelled, saying why (``last_error``); in
    chunks of 500 ids. A row sent or claimed meanwhile is left as it is."""
    for i in range(0, len(ids), 500):
        db.execute(
            update(NotificationRow)
            .where(
                NotificationRow.id.in_(ids[i : i + 500]),
                NotificationRow.status == NotificationStatus.PENDING,
            )
            .values(status=NotificationStatus.CANCELLED, last_error=reason)
        )


def _same_deadline(target: str) -> str:
    """A deadline reminder's target without the learner's section: ``…/reading/class/2/0/1``
    and ``…/reading/class/0/0/1`` are the same piece of work (week 1's reading) for a learner
    who changed section; with the same rule and the same due time it is the same reminder."""
    parts = target.split("/")
    return "/".join(parts[:-3] + parts[-2:]) if len(parts) >= 5 else target


def _not_sent_already(
    db: Session, cohort_id: int, rows: list[dict[str, object]], now: datetime
) -> list[dict[str, object]]:
    """Drop new deadline reminders already sent to the person under another section's key
    (a late joiner's deadlines are computed on import, then again once the worker places them
    in a section: the same reminder must not go out twice). Such a twin has the same due
    time as the one sent, so it is already due: only those are looked up."""
    late = [
        r
        for r in rows
        if r["kind"] == NotificationKind.DEADLINE_REMINDER and _is_before(r["due_at"], now)
    ]
    people = sorted({int(str(r["person_id"])) for r in late})
    if not people:
        return rows
    sent: set[tuple[int, str, str, int]] = set()
    for i in range(0, len(people), 500):
        for person_id, rule, target, version in db.execute(
            select(
                NotificationRow.person_id,
                NotificationRow.rule,
                NotificationRow.target,
                NotificationRow.target_version,
            ).where(
                NotificationRow.cohort_id == cohort_id,
                NotificationRow.kind == NotificationKind.DEADLINE_REMINDER,
                NotificationRow.status == NotificationStatus.SENT,
                NotificationRow.person_id.in_(people[i : i + 500]),
            )
        ):
            sent.add((person_id, rule, _same_deadline(target), version))
    if not sent:
        return rows
    return [
        r
        for r in rows
        if r["kind"] != NotificationKind.DEADLINE_REMINDER
        or (
            int(str(r["person_id"])),
            str(r["rule"]),
            _same_deadline(str(r["target"])),
            int(str(r["target_version"])),
        )
        not in sent
    ]


def _is_before(value: object, now: datetime) -> bool:
    return isinstance(value, datetime) and value <= now


def _instant(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
