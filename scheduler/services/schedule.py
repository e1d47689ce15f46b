"""One learner's whole schedule: live sessions of their sections, co-working blocks that fit
them, async work and replays, in time order (the CLI's `deadlines --learner`, the learner
page, the digest), and the rule for which meetings belong to a learner that their calendar
feed shares (:func:`learner_occurrences`). Publishing a plan is
:mod:`scheduler.services.publishing`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.domain.availability import Availability, parse_availability, read_stretch
from scheduler.domain.cohort import SeriesKind
from scheduler.domain.labels import meeting_title
from scheduler.domain.status import OccurrenceStatus
from scheduler.errors import NotFoundError
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
    LiveSeriesRow,
    OccurrenceRow,
    PersonRow,
    SectionMemberRow,
)
from scheduler.planning.clock_notes import ClockMove, clock_moves
from scheduler.planning.pain import in_stretch
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
    # the parts ``title`` and ``detail`` are made of, for pages that say them in the learner's
    # language: the runner's own title, the section (0-based) when the series has several, the
    # course week (0-based), and whether a co-working block comes before the work
    name: str = ""
    section: int | None = None
    week: int | None = None
    coworking_before: bool = False
    # live sessions: set on the first meeting at a new time on the learner's clock after a
    # clock change (theirs, the anchor zone's or both): from what to what, and why
    clock_move: ClockMove | None = None
    # live sessions of a fairly rotated series (its time takes turns between weekly times)
    rotation: RotationNote | None = None


@dataclass(frozen=True, slots=True)
class RotationNote:
    """A meeting of a series whose time rotates (``fairness = "rotate"``): whether it falls in
    the learner's stretch hours, and when the series meets next if that is at another time of
    day on their clock."""

    stretch: bool
    day: date  # of this meeting, on the learner's clock
    next_start: datetime | None = None
    next_day: date | None = None  # of the next meeting, on the learner's clock


@dataclass(slots=True)
class LearnerSchedule:
    email: str
    name: str
    zone: str
    locale: str
    entries: list[ScheduleEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LearnerOccurrences:
    """The rule for which of a cohort's meetings belong to one learner — the meetings of their
    own section of each class and office-hours series, and the co-working blocks inside their
    availability — shared by their calendar feed and their schedule (page, digest, CLI)."""

    availability: Availability
    tz: ZoneInfo
    sections: dict[str, int]  # series key -> the learner's section

    def fits(self, series: LiveSeriesRow, occurrence: OccurrenceRow) -> bool:
        """The meeting lies inside the learner's availability."""
        return self.availability.covers_at(occurrence.start, series.duration_minutes, self.tz)

    def belongs(self, series: LiveSeriesRow, occurrence: OccurrenceRow) -> bool:
        if series.kind == SeriesKind.COWORKING.value:
            return self.fits(series, occurrence)  # only the blocks inside their window
        return self.sections.get(series.series_key) == series.section  # not another section's


def learner_occurrences(db: Session, cohort: CohortRow, person: PersonRow) -> LearnerOccurrences:
    sections = {
        key: section
        for key, section in db.execute(
            select(SectionMemberRow.series_key, SectionMemberRow.section).where(
                SectionMemberRow.cohort_id == cohort.id, SectionMemberRow.person_id == person.id
            )
        )
    }
    availability = parse_availability(repo.availability_text(person.availability, cohort))
    return LearnerOccurrences(availability, zone(person.zone), sections)


def learner_schedule(db: Session, slug: str, email: str) -> LearnerSchedule:
    """A learner's live sessions (their sections), co-working blocks that fit them, async
    items and replays, in time order."""
    cohort = repo.get_cohort(db, slug)
    person = db.scalar(select(PersonRow).where(PersonRow.email == email.strip().lower()))
    if person is None or repo.enrollment_of(db, cohort.id, person.id) is None:
        raise NotFoundError(f"{email} is not enrolled in {slug}")
    mine = learner_occurrences(db, cohort, person)
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
    seen = {series.id for series, occurrence in rows if mine.belongs(series, occurrence)}
    moves = _moves_by_start([(s, o) for s, o in rows if s.id in seen], person.zone)
    rotations = _rotation_notes(
        [(s, o) for s, o in rows if s.id in seen and _rotates(s)], mine, person, cohort
    )
    for series, occurrence in rows:
        if not mine.belongs(series, occurrence):
            continue
        schedule.entries.append(
            ScheduleEntry(
                occurrence.start,
                occurrence.end,
                series.kind,
                meeting_title(
                    series.title, series.kind, series.section, section_count[series.series_key]
                ),
                f"week {occurrence.week + 1}",
                mine.fits(series, occurrence),
                name=series.title,
                section=(
                    series.section
                    if series.kind != SeriesKind.COWORKING.value
                    and section_count[series.series_key] > 1
                    else None
                ),
                week=occurrence.week,
                clock_move=moves.get((series.id, occurrence.start)),
                rotation=rotations.get(occurrence.id),
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
                name=item.title,
                week=item.week,
                coworking_before=item.coworking_start is not None,
            )
        )
    schedule.entries.sort(key=lambda e: (e.at, e.kind))
    return schedule


def series_clock_moves(
    series: LiveSeriesRow, occurrences: Iterable[OccurrenceRow], learner_zone: str
) -> list[ClockMove]:
    """Where ``series`` moves on the clock of someone in ``learner_zone``, from its scheduled
    ``occurrences`` (see :func:`scheduler.planning.clock_notes.clock_moves`). With rotation
    (odd weeks at the ``alt_`` time) odd weeks are compared with odd weeks only."""
    meetings = [o for o in occurrences if o.status == OccurrenceStatus.SCHEDULED]
    rotating = series.alt_weekday is not None or series.alt_wall_minute is not None
    turns = series.rotation_weeks or []  # a fair rotation: compare weeks at the same time
    return clock_moves(
        [o.start for o in meetings],
        series.anchor_zone,
        learner_zone,
        [turns[o.week] if o.week < len(turns) else o.week % 2 if rotating else 0 for o in meetings],
    )


def _rotates(series: LiveSeriesRow) -> bool:
    """A fairly rotated series that uses more than one weekly time."""
    return len(set(series.rotation_weeks or [])) > 1


def _rotation_notes(
    rows: list[tuple[LiveSeriesRow, OccurrenceRow]],
    mine: LearnerOccurrences,
    person: PersonRow,
    cohort: CohortRow,
) -> dict[int, RotationNote]:
    """For each meeting (by occurrence id) of a rotating series: in the learner's stretch hours
    or not, and the next meeting when it is at another time of day on their clock."""
    own = read_stretch(person.stretch)
    stretch = own if own is not None else read_stretch(cohort.default_stretch)
    by_series: dict[int, list[tuple[LiveSeriesRow, OccurrenceRow]]] = {}
    for series, occurrence in rows:
        by_series.setdefault(series.id, []).append((series, occurrence))
    notes: dict[int, RotationNote] = {}
    for meetings in by_series.values():
        meetings.sort(key=lambda pair: pair[1].start)
        for i, (series, o) in enumerate(meetings):
            after = meetings[i + 1][1].start if i + 1 < len(meetings) else None
            clock = o.start.astimezone(mine.tz).time()
            moves = after is not None and after.astimezone(mine.tz).time() != clock
            notes[o.id] = RotationNote(
                in_stretch(mine.availability, stretch, o.start, series.duration_minutes, mine.tz),
                o.start.astimezone(mine.tz).date(),
                after if moves else None,
                after.astimezone(mine.tz).date() if after is not None and moves else None,
            )
    return notes


def _moves_by_start(
    rows: list[tuple[LiveSeriesRow, OccurrenceRow]], learner_zone: str
) -> dict[tuple[int, datetime], ClockMove]:
    """Each series' clock moves for the learner, by (series id, first meeting at the new time)."""
    by_series: dict[int, tuple[LiveSeriesRow, list[OccurrenceRow]]] = {}
    for series, occurrence in rows:
        by_series.setdefault(series.id, (series, []))[1].append(occurrence)
    return {
        (series.id, move.start): move
        for series, occurrences in by_series.values()
        for move in series_clock_moves(series, occurrences, learner_zone)
    }


def duration_text(start: datetime, end: datetime | None) -> str:
    if end is None:
        return ""
    minutes = int((end - start) / timedelta(minutes=1))
    return (
        f"{minutes // 60}h{minutes % 60:02d}".replace("h00", "h")
        if minutes >= 60
        else f"{minutes}m"
    )
