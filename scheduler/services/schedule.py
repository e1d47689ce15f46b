"""One learner's whole schedule: live sessions of their sections, co-working blocks that fit
them, async work and replays, in time order (the CLI's `deadlines --learner`, the learner
page, the digest). Publishing a plan is :mod:`scheduler.services.publishing`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import SeriesKind
from scheduler.domain.status import OccurrenceStatus
from scheduler.errors import NotFoundError
from scheduler.persistence import repo
from scheduler.persistence.models import LiveSeriesRow, OccurrenceRow, PersonRow, SectionMemberRow
from scheduler.services.deadlines import learner_items
from scheduler.timeutil import zone


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    at: datetime  # aware UTC: when it starts, or when it is due
    end: datetime | None
    kind: str  # class, coworking, office_hours, assignment, catch_up, replay
    title: str
    detail: str = ""
    fits: bool = True  # live sessions: inside the learner's availability
    hard: datetime | None = None
    release: datetime | None = None
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class LearnerSchedule:
    email: str
    name: str
    zone: str
    locale: str
    entries: list[ScheduleEntry] = field(default_factory=list)


def learner_schedule(db: Session, slug: str, email: str) -> LearnerSchedule:
    """A learner's live sessions (their sections), co-working blocks that fit them, async
    items and replays, in time order."""
    cohort = repo.get_cohort(db, slug)
    person = db.scalar(select(PersonRow).where(PersonRow.email == email.strip().lower()))
    if person is None or repo.enrollment_of(db, cohort.id, person.id) is None:
        raise NotFoundError(f"{email} is not enrolled in {slug}")
    tz = zone(person.zone)
    availability = parse_availability(repo.availability_text(person.availability, cohort))
    sections = {
        key: section
        for key, section in db.execute(
            select(SectionMemberRow.series_key, SectionMemberRow.section).where(
                SectionMemberRow.cohort_id == cohort.id, SectionMemberRow.person_id == person.id
            )
        )
    }
    schedule = LearnerSchedule(
        person.email, person.name, person.zone, person.locale or cohort.locale
    )
    query = (
        select(LiveSeriesRow, OccurrenceRow)
        .join(OccurrenceRow, OccurrenceRow.series_id == LiveSeriesRow.id)
        .where(
            LiveSeriesRow.cohort_id == cohort.id, OccurrenceRow.status == OccurrenceStatus.SCHEDULED
        )
    )
    rows = [(series, occurrence) for series, occurrence in db.execute(query)]
    section_count: dict[str, int] = {}
    for series, _ in rows:
        section_count[series.series_key] = max(
            section_count.get(series.series_key, 0), series.section + 1
        )
    for series, occurrence in rows:
        fits = availability.covers_at(occurrence.start, series.duration_minutes, tz)
        if series.kind == SeriesKind.COWORKING.value:
            if not fits:
                continue  # only the blocks inside their window
            label = series.title
        elif sections.get(series.series_key) != series.section:
            continue  # another section's meeting
        else:
            many = section_count[series.series_key] > 1
            label = series.title + (f" (section {series.section + 1})" if many else "")
        schedule.entries.append(
            ScheduleEntry(
                occurrence.start,
                occurrence.end,
                series.kind,
                label,
                f"week {occurrence.week + 1}",
                fits,
            )
        )
    for item in learner_items(db, cohort.id, person.id):
        detail = f"week {item.week + 1}"
        if item.coworking_start is not None:
            detail += "; co-working block before it"
        schedule.entries.append(
            ScheduleEntry(
                item.soft,
                None,
                item.kind,
                item.title,
                detail,
                True,
                item.hard,
                item.release,
                tuple(item.warnings),
            )
        )
    schedule.entries.sort(key=lambda e: (e.at, e.kind))
    return schedule


def duration_text(start: datetime, end: datetime | None) -> str:
    if end is None:
        return ""
    minutes = int((end - start) / timedelta(minutes=1))
    return (
        f"{minutes // 60}h{minutes % 60:02d}".replace("h00", "h")
        if minutes >= 60
        else f"{minutes}m"
    )
