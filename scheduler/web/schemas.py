"""The JSON API's request and response models (pydantic), and the mapping from the services'
read models (dataclasses) to the response models, in one place.

The models are the API's contract: their names and fields are the OpenAPI document's schemas.
Numbers the services count from 0 (sections, slots, weeks) are numbered from 1 here, as in the
CLI's flags; statuses become the enumerations the document lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from scheduler.domain.cohort import SeriesKind
from scheduler.domain.cohort_file import KEY_RE
from scheduler.domain.status import EnrollmentStatus, OccurrenceStatus, SeriesStatus
from scheduler.planning.model import LeftOutReason, Plan
from scheduler.services.changes import ChangePreview, ChangeResult
from scheduler.services.outbox import OutboxStatus, WorkerState
from scheduler.services.people import Learner
from scheduler.services.plans import PlanDiff
from scheduler.services.published import (
    CohortFacts,
    PublishedOccurrence,
    PublishedSeries,
    SeriesFields,
)
from scheduler.services.views.common import wall_label

# --- models ------------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is reported, not ignored


class ProblemOut(_Out):
    """One thing wrong with the request (``source``: body, query, path, or empty)."""

    message: str
    source: str = ""
    line: int | None = None
    field: str | None = None
    value: str | None = None
    hint: str | None = None


class ProblemsOut(_Out):
    detail: list[ProblemOut]


class MessageOut(_Out):
    detail: str


class CohortOut(_Out):
    slug: str
    title: str
    start_date: date
    weeks: int
    home_zone: str
    locale: str
    learners: int = Field(description="active learners")
    facilitators: int = Field(description="active facilitators")
    published_version: int | None = Field(description="latest plan version; null: unpublished")


class SectionOut(_Out):
    series: str
    kind: SeriesKind
    section: int = Field(ge=1)
    times: list[str] = Field(description="weekly times in the anchor zone, e.g. 'Wed 18:30'")
    alternate: list[str] = Field(description="odd weeks' times of a rotating series, else []")
    anchor_zone: str
    duration_minutes: int
    facilitator: str | None
    size: int = Field(description="learners in this section")
    fitted: int = Field(description="learners whose every occurrence fits their availability")
    coverage_by_week: list[float | None] = Field(
        description="per week, the share of the section's learners it fits (null: no session)"
    )


class LeftOutOut(_Out):
    learner: str
    series: str
    reason: LeftOutReason
    week: int | None = Field(description="the first week that no longer fits (DST), if any")
    detail: str


class PlanDiffOut(_Out):
    """What publishing the fresh plan would change, in occurrences."""

    published_version: int | None
    added: int
    moved: int
    cancelled: int
    unchanged: int
    frozen: int = Field(description="already started: never changed")


class PublishedSeriesOut(_Out):
    series: str
    title: str
    kind: SeriesKind
    section: int = Field(ge=1)
    slot: int = Field(ge=1, description="which weekly time of the section")
    weekly_time: str = Field(description="weekday and time in anchor_zone, e.g. 'Wed 18:30'")
    anchor_zone: str
    duration_minutes: int
    facilitator: str | None
    status: Literal[SeriesStatus.ACTIVE, SeriesStatus.CANCELLED]
    members: int | None = Field(
        description="active learners in the section; null for co-working (open to everyone)"
    )


class PlanOut(_Out):
    anchor_zone: str
    learners: int
    sections: list[SectionOut]
    left_out: list[LeftOutOut]
    warnings: list[str] = Field(description="DST warnings in words")
    notes: list[str]
    diff: PlanDiffOut


class CohortSummaryOut(_Out):
    """``plan``: planning the current roster now (what `cohort plan` shows); ``published``: the
    series stored and in calendars; ``plan.diff``: what publishing would change."""

    cohort: CohortOut
    plan: PlanOut
    published: list[PublishedSeriesOut]


class OccurrenceOut(_Out):
    uid: str = Field(description="the calendar UID")
    series: str
    title: str
    kind: SeriesKind
    section: int = Field(ge=1)
    slot: int = Field(ge=1)
    week: int = Field(ge=1)
    start: datetime
    end: datetime
    status: Literal[OccurrenceStatus.SCHEDULED, OccurrenceStatus.CANCELLED]
    sequence: int = Field(description="the iCalendar SEQUENCE: bumped on every change")
    facilitator: str | None
    expected_attendance: int = Field(
        description="the section's active learners; co-working: active learners whose "
        "availability covers the block"
    )


class LearnerOut(_Out):
    email: str
    name: str
    zone: str
    availability: str = Field(description="weekly windows on the learner's own clock")
    availability_is_default: bool
    locale: str
    locale_is_default: bool
    status: Literal[EnrollmentStatus.ACTIVE, EnrollmentStatus.WITHDRAWN]
    enrolled_at: datetime
    left_at: datetime | None


class LearnerIn(_In):
    name: str
    email: str
    zone: str = Field(description="an IANA zone ('Europe/Berlin') or a one-zone country ('JP')")
    availability: str | None = Field(
        None, description="e.g. 'Mon-Fri 18:00-22:00; Sat 09:00-12:00'; null: the cohort's"
    )
    locale: str | None = Field(None, description="e.g. 'en_GB'; null: the cohort's")


class LearnerPatch(_In):
    zone: str | None = Field(None, description="null: unchanged")
    availability: str | None = Field(
        None, description="null: unchanged; empty: the cohort's default"
    )


class ChangeIn(_In):
    """Move or cancel: ``week`` alone changes that week's occurrence, ``from_week`` the series
    from that week on, neither every future occurrence. ``to`` is the new weekday and time in
    the series' zone ("Wed 18:30"); null cancels."""

    series: str = Field(pattern=KEY_RE.pattern, description="the series key, e.g. 'class'")
    section: int = Field(1, ge=1, le=1000)
    slot: int = Field(1, ge=1, le=100, description="which weekly time of the section")
    week: int | None = Field(None, ge=1, le=1000)
    from_week: int | None = Field(None, ge=1, le=1000)
    to: str | None = Field(None, max_length=40, description="e.g. 'Wed 18:30'; null: cancel")


class MovedOut(_Out):
    week: int = Field(ge=1)
    uid: str
    old_start: datetime
    new_start: datetime | None = Field(description="null: cancelled")


class ChangePreviewOut(_Out):
    description: str
    occurrences: list[MovedOut]
    people: int = Field(description="learners and the facilitator who get an email")
    emails: int
    learner_occurrences: int
    fits_before: int = Field(description="learner-occurrences inside availability, before")
    fits_after: int
    sample: list[str] = Field(description="a few of the affected people's emails")
    burden: list[str] = Field(
        default_factory=list,
        description="a fairly rotated series: each region's share of inconvenient meetings, "
        "as published -> after, for the regions the change moves",
    )


class DeadlinesOut(_Out):
    learners: int
    groups: int
    new_groups: int
    items: int
    changed_learners: int


class InvitesOut(_Out):
    invites: int
    updates: int
    cancellations: int


class ChangeResultOut(_Out):
    version: int = Field(description="the plan version this change recorded")
    preview: ChangePreviewOut
    deadlines: DeadlinesOut
    invites: InvitesOut


class OutboxCountsOut(_Out):
    pending: int
    sent: int
    failed: int
    skipped: int
    cancelled: int


class WorkerOut(_Out):
    id: str
    started_at: datetime
    last_tick_age_s: float | None
    heartbeat_age_s: float
    stopped: bool
    sent: int


class FailureOut(_Out):
    kind: str
    to: str
    error: str


class StatusOut(_Out):
    notifications: OutboxCountsOut
    due: int = Field(description="pending and due now")
    workers: list[WorkerOut]
    recent_failures: list[FailureOut]


# --- mapping: service values -> API schemas ----------------------------------------------------


def cohort_out(cohort: CohortFacts) -> CohortOut:
    return CohortOut(**asdict(cohort))  # the same fields


def plan_out(plan: Plan, learners: int, diff: PlanDiff) -> PlanOut:
    return PlanOut(
        anchor_zone=plan.anchor_zone,
        learners=learners,
        sections=[
            SectionOut(
                series=s.series,
                kind=s.kind,
                section=s.section + 1,
                times=[t.label() for t in s.times],
                alternate=[t.label() for t in s.alternate],
                anchor_zone=s.anchor_zone,
                duration_minutes=int(s.duration.total_seconds() // 60),
                facilitator=s.facilitator,
                size=len(s.learners),
                fitted=s.fitted,
                coverage_by_week=list(s.coverage_by_week),
            )
            for s in plan.sections
        ],
        left_out=[
            LeftOutOut(
                learner=x.learner,
                series=x.series,
                reason=x.reason,
                week=None if x.week is None else x.week + 1,
                detail=x.detail,
            )
            for x in plan.left_out
        ],
        warnings=[w.text for w in plan.warnings],
        notes=list(plan.notes),
        diff=PlanDiffOut(
            published_version=diff.published_version,
            added=len(diff.added),
            moved=len(diff.moved),
            cancelled=len(diff.cancelled),
            unchanged=diff.unchanged,
            frozen=diff.frozen,
        ),
    )


def published_out(s: PublishedSeries) -> PublishedSeriesOut:
    return PublishedSeriesOut(
        **_series_fields(s),
        weekly_time=wall_label(s.weekday, s.wall_minute),
        anchor_zone=s.anchor_zone,
        duration_minutes=s.duration_minutes,
        status=SeriesStatus.CANCELLED if s.cancelled else SeriesStatus.ACTIVE,
        members=s.members,
    )


def occurrence_out(o: PublishedOccurrence) -> OccurrenceOut:
    return OccurrenceOut(
        **_series_fields(o),
        uid=o.uid,
        week=o.week + 1,
        start=o.start,
        end=o.end,
        status=OccurrenceStatus.CANCELLED if o.cancelled else OccurrenceStatus.SCHEDULED,
        sequence=o.sequence,
        expected_attendance=o.expected_attendance,
    )


def _series_fields(x: PublishedSeries | PublishedOccurrence) -> SeriesFields:
    """What a published series and an occurrence say alike of the series (numbered from 1)."""
    return SeriesFields(
        series=x.series,
        title=x.title,
        kind=x.kind,
        section=x.section + 1,
        slot=x.slot + 1,
        facilitator=x.facilitator,
    )


def learner_out(learner: Learner) -> LearnerOut:
    return LearnerOut(
        email=learner.email,
        name=learner.name,
        zone=learner.zone,
        availability=learner.availability,
        availability_is_default=learner.availability_is_default,
        locale=learner.locale,
        locale_is_default=learner.locale_is_default,
        status=(
            EnrollmentStatus.WITHDRAWN
            if learner.status == EnrollmentStatus.WITHDRAWN
            else EnrollmentStatus.ACTIVE
        ),
        enrolled_at=learner.enrolled_at,
        left_at=learner.left_at,
    )


def preview_out(preview: ChangePreview) -> ChangePreviewOut:
    return ChangePreviewOut(
        description=preview.description,
        occurrences=[
            MovedOut(week=m.week + 1, uid=m.uid, old_start=m.old_start, new_start=m.new_start)
            for m in preview.occurrences
        ],
        people=preview.people,
        emails=preview.emails,
        learner_occurrences=preview.learner_occurrences,
        fits_before=preview.fits_before,
        fits_after=preview.fits_after,
        sample=list(preview.sample),
        burden=list(preview.burden),
    )


def change_result_out(result: ChangeResult) -> ChangeResultOut:
    return ChangeResultOut(
        version=result.version,
        preview=preview_out(result.preview),
        deadlines=DeadlinesOut(
            learners=result.deadlines.learners,
            groups=result.deadlines.groups,
            new_groups=result.deadlines.new_groups,
            items=result.deadlines.items,
            changed_learners=result.deadlines.changed_learners,
        ),
        invites=InvitesOut(
            invites=result.invites.invites,
            updates=result.invites.updates,
            cancellations=result.invites.cancellations,
        ),
    )


def status_out(box: OutboxStatus, workers: Iterable[WorkerState]) -> StatusOut:
    return StatusOut(
        notifications=OutboxCountsOut(**{k: box.counts.get(k, 0) for k in _OUTBOX_FIELDS}),
        due=box.due,
        workers=[
            WorkerOut(
                id=w.id,
                started_at=w.started_at,
                last_tick_age_s=w.last_tick_age,
                heartbeat_age_s=w.heartbeat_age,
                stopped=w.stopped,
                sent=w.sent,
            )
            for w in workers
        ],
        recent_failures=[
            FailureOut(kind=kind, to=to, error=error) for kind, to, error in box.failed_recent
        ],
    )


_OUTBOX_FIELDS: Sequence[str] = tuple(OutboxCountsOut.model_fields)
