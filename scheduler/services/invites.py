"""Emailed calendar invitations, queued in the outbox by diff.

One invitation per person and weekly series they attend (their section's classes and office
hours; facilitators for what they host): see :func:`scheduler.outputs.ics.series_invite` for why
a series, not each meeting. After any publish or change, :func:`queue_invites` compares what
people should have with what they were last sent and queues, in the same transaction:

* ``invite`` for a series someone newly attends,
* ``update`` when a series they were invited to changed since (its version is the highest
  plan version that touched the series or one of its meetings),
* ``cancellation`` when the series is cancelled or they no longer attend it (moved section).

Co-working blocks are open to all and are in the feeds; they are not sent as invitations.
Rows are unique by (kind, person, series UID, version), so running it twice queues nothing new.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.domain.cohort import SeriesKind
from scheduler.domain.status import (
    NotificationKind,
    NotificationStatus,
    OccurrenceStatus,
    SeriesStatus,
)
from scheduler.errors import NotFoundError
from scheduler.outputs.ics import CalendarEvent, WeekOccurrence, series_invite
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
    LiveSeriesRow,
    NotificationRow,
    OccurrenceRow,
    PersonRow,
    SectionMemberRow,
    SeriesRequestRow,
)
from scheduler.planning.fit import slot_instant, week_slot
from scheduler.services.plans import UID_NAMESPACE
from scheduler.timeutil import zone

INVITE_KINDS = (NotificationKind.INVITE, NotificationKind.UPDATE, NotificationKind.CANCELLATION)


def series_uid(slug: str, series: LiveSeriesRow) -> str:
    name = f"{slug}/series/{series.series_key}/{series.section}/{series.slot}"
    return f"{uuid.uuid5(UID_NAMESPACE, name)}@cohort-scheduler"


@dataclass(frozen=True, slots=True)
class InviteCounts:
    invites: int
    updates: int
    cancellations: int


def queue_invites(db: Session, slug: str, now: datetime) -> InviteCounts:
    cohort = repo.get_cohort(db, slug)
    rows = [
        s
        for s in db.scalars(select(LiveSeriesRow).where(LiveSeriesRow.cohort_id == cohort.id))
        if s.kind != SeriesKind.COWORKING.value
    ]
    touched = (
        dict(
            db.execute(
                select(OccurrenceRow.series_id, func.max(OccurrenceRow.changed_in_version))
                .where(OccurrenceRow.series_id.in_([s.id for s in rows]))
                .group_by(OccurrenceRow.series_id)
            ).all()
        )
        if rows
        else {}
    )
    members: dict[tuple[str, int], list[int]] = {}
    for key, section, person_id in db.execute(
        select(
            SectionMemberRow.series_key, SectionMemberRow.section, SectionMemberRow.person_id
        ).where(SectionMemberRow.cohort_id == cohort.id)
    ):
        members.setdefault((key, section), []).append(person_id)
    host_emails = {s.facilitator_email for s in rows if s.facilitator_email}
    hosts = dict(
        db.execute(
            select(PersonRow.email, PersonRow.id).where(PersonRow.email.in_(host_emails))
        ).all()
    )

    by_uid: dict[str, tuple[LiveSeriesRow, int]] = {}
    wanted: set[tuple[int, str]] = set()
    for s in rows:
        uid = series_uid(slug, s)
        by_uid[uid] = (s, max(s.changed_in_version, touched.get(s.id, 0)))
        if s.status == SeriesStatus.CANCELLED:
            continue
        people = list(members.get((s.series_key, s.section), []))
        if s.facilitator_email and s.facilitator_email in hosts:
            people.append(hosts[s.facilitator_email])
        wanted.update((p, uid) for p in people)

    last: dict[tuple[int, str], tuple[str, int]] = {}
    query = (
        select(
            NotificationRow.person_id,
            NotificationRow.target,
            NotificationRow.kind,
            NotificationRow.target_version,
        )
        .where(NotificationRow.cohort_id == cohort.id, NotificationRow.kind.in_(INVITE_KINDS))
        .order_by(NotificationRow.target_version, NotificationRow.id)
    )
    for person_id, target, kind, version in db.execute(query):
        last[(person_id, target)] = (kind, version)

    values: list[dict[str, object]] = []

    def add(kind: str, person_id: int, uid: str, version: int) -> None:
        series, _ = by_uid[uid]
        key = f"{kind}/{person_id}/{uid}/{version}"
        values.append(
            {
                "cohort_id": cohort.id,
                "person_id": person_id,
                "kind": kind,
                "key": key,
                "target": uid,
                "rule": kind,
                "target_version": version,
                "due_at": now,
                "not_before": now,
                "status": NotificationStatus.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "message_id": f"<{uuid.uuid5(UID_NAMESPACE, key)}@cohort-scheduler>",
                "payload": {
                    "series_id": series.id,
                    "uid": uid,
                    "method": "CANCEL" if kind == NotificationKind.CANCELLATION else "REQUEST",
                },
                "created_at": now,
            }
        )

    counts: dict[str, int] = dict.fromkeys(INVITE_KINDS, 0)
    for person_id, uid in sorted(wanted):
        version = by_uid[uid][1]
        previous = last.get((person_id, uid))
        if previous is None or previous[0] == NotificationKind.CANCELLATION:
            kind = NotificationKind.INVITE
        elif previous[1] < version:
            kind = NotificationKind.UPDATE
        else:
            continue
        add(kind, person_id, uid, max(version, previous[1] + 1 if previous else version))
        counts[kind] += 1
    for (person_id, uid), (kind, version) in sorted(last.items()):
        if (
            kind != NotificationKind.CANCELLATION
            and (person_id, uid) not in wanted
            and uid in by_uid
        ):
            add(NotificationKind.CANCELLATION, person_id, uid, max(by_uid[uid][1], version + 1))
            counts[NotificationKind.CANCELLATION] += 1
    if values:
        db.execute(repo.table_of(NotificationRow).insert(), values)
    return InviteCounts(
        counts[NotificationKind.INVITE],
        counts[NotificationKind.UPDATE],
        counts[NotificationKind.CANCELLATION],
    )


def invite_message(db: Session, notification: NotificationRow, organizer: tuple[str, str]) -> bytes:
    """The text/calendar body for an invite, update or cancellation row, from the stored series
    and its meetings as they are now (the delivery step calls this when it sends)."""
    series = db.get(LiveSeriesRow, notification.payload["series_id"])
    person = db.get(PersonRow, notification.person_id)
    if series is None or person is None:
        raise NotFoundError(f"notification {notification.key}: its series or person is gone")
    cohort = db.get(CohortRow, series.cohort_id)
    assert cohort is not None
    spec = repo.cohort_spec(db, cohort)
    tz = zone(series.anchor_zone)
    held = {
        o.week: o
        for o in db.scalars(select(OccurrenceRow).where(OccurrenceRow.series_id == series.id))
    }
    length = timedelta(minutes=series.duration_minutes)
    weeks: list[WeekOccurrence | None] = []
    rotating = series.alt_weekday is not None and series.alt_wall_minute is not None
    alternate = (
        (int(series.alt_weekday or 0), int(series.alt_wall_minute or 0)) if rotating else None
    )
    for week in range(spec.weeks):
        weekday, minute = week_slot(week, (series.weekday, series.wall_minute), alternate)
        rule = slot_instant(spec, week, weekday, minute, tz)
        o = held.get(week)
        weeks.append(
            None
            if o is None
            else WeekOccurrence(rule, o.start, o.end, o.status == OccurrenceStatus.CANCELLED)
        )
    first = next((w for w in weeks if w is not None), None)
    if first is None:
        raise NotFoundError(f"series {series.series_key} has no meetings")
    agenda, join_url = _request(db, series)
    event = CalendarEvent(
        uid=notification.target,
        sequence=notification.target_version,
        start=first.rule_start,
        end=first.rule_start + length,
        tzid=series.anchor_zone,
        summary=f"{series.title} ({cohort.title})",
        description="\n".join(
            [
                f"Weekly {series.kind.replace('_', ' ')} of {cohort.title}.",
                *([f"Join: {join_url}"] if join_url else []),
                *agenda,
            ]
        ),
        location=join_url or "",
        url=join_url or "",
    )
    method = "CANCEL" if notification.kind == NotificationKind.CANCELLATION else "REQUEST"
    return series_invite(
        event,
        weeks,
        method=method,
        organizer=organizer,
        attendee=(person.name, person.email),
        stamp=notification.created_at,
    )


def _request(db: Session, series: LiveSeriesRow) -> tuple[list[str], str | None]:
    """The series request's agenda lines and join link."""
    found = db.execute(
        select(SeriesRequestRow.agenda, SeriesRequestRow.join_url).where(
            SeriesRequestRow.cohort_id == series.cohort_id,
            SeriesRequestRow.key == series.series_key,
        )
    ).first()
    return (list(found[0] or []), found[1]) if found else ([], None)
