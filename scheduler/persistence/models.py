"""The tables. ORM rows are their own types: domain values are mapped to and from them in
:mod:`scheduler.persistence.repo` only."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from scheduler.domain.status import EnrollmentStatus
from scheduler.persistence.types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CohortRow(Base):
    __tablename__ = "cohort"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    start_date: Mapped[date] = mapped_column(Date)
    weeks: Mapped[int] = mapped_column(Integer)
    home_zone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(20))
    default_availability: Mapped[str] = mapped_column(String(500))
    anchor: Mapped[str] = mapped_column(String(10))
    target_coverage: Mapped[float] = mapped_column(Float)
    max_sections: Mapped[int] = mapped_column(Integer)
    grid_minutes: Mapped[int] = mapped_column(Integer)
    quiet_start: Mapped[int] = mapped_column(Integer)
    quiet_end: Mapped[int] = mapped_column(Integer)
    # [orchestration]: what the worker may change on its own (see OrchestrationOptions)
    auto_replan: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    freeze_minutes: Mapped[int] = mapped_column(
        Integer, default=7 * 24 * 60, server_default="10080"
    )
    replan_margin: Mapped[float] = mapped_column(Float, default=0.05, server_default="0.05")
    max_moves: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    pods_before_minutes: Mapped[int] = mapped_column(Integer, default=120, server_default="120")
    # stretch hours of learners who gave none: None (the pain curve's hours), "none", or windows
    default_stretch: Mapped[str | None] = mapped_column(String(500))
    # the runner's regions for fairness: [[zone or prefix, group name], ...]; None: continents
    regions: Mapped[list[list[str]] | None] = mapped_column(JSON)
    source_text: Mapped[str] = mapped_column(Text)
    # Bumped by every change that can alter a calendar feed; the web keys its feed cache on it.
    feeds_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    series: Mapped[list[SeriesRequestRow]] = relationship(
        back_populates="cohort", cascade="all, delete-orphan", order_by="SeriesRequestRow.position"
    )
    assignments: Mapped[list[AssignmentRuleRow]] = relationship(
        cascade="all, delete-orphan", order_by="AssignmentRuleRow.position"
    )
    reminders: Mapped[list[ReminderRuleRow]] = relationship(
        cascade="all, delete-orphan", order_by="ReminderRuleRow.position"
    )
    blackouts: Mapped[list[BlackoutRow]] = relationship(
        cascade="all, delete-orphan", order_by="BlackoutRow.start"
    )


class SeriesRequestRow(Base):
    __tablename__ = "series_request"
    __table_args__ = (UniqueConstraint("cohort_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    per_week: Mapped[int] = mapped_column(Integer)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    min_gap_minutes: Mapped[int] = mapped_column(Integer)
    max_section_size: Mapped[int | None] = mapped_column(Integer)
    sections: Mapped[int | None] = mapped_column(Integer)
    auto_sections: Mapped[bool] = mapped_column(Boolean)
    max_blocks: Mapped[int] = mapped_column(Integer)
    rotate: Mapped[bool] = mapped_column(Boolean)
    agenda: Mapped[list[str]] = mapped_column(JSON)
    facilitator_emails: Mapped[list[str]] = mapped_column(JSON)
    join_url: Mapped[str | None] = mapped_column(String(500))
    fairness: Mapped[str] = mapped_column(String(10), default="none", server_default="none")
    rotate_times: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    max_coverage_loss: Mapped[float] = mapped_column(Float, default=0.05, server_default="0.05")

    cohort: Mapped[CohortRow] = relationship(back_populates="series")


class AssignmentRuleRow(Base):
    __tablename__ = "assignment_rule"
    __table_args__ = (UniqueConstraint("cohort_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    series_key: Mapped[str] = mapped_column(String(40))
    prepares: Mapped[bool] = mapped_column(Boolean)
    soft_offset_minutes: Mapped[int] = mapped_column(Integer)
    effort_minutes: Mapped[int] = mapped_column(Integer)
    release_kind: Mapped[str] = mapped_column(String(20))
    release_on: Mapped[date | None] = mapped_column(Date)
    release_every_minutes: Mapped[int | None] = mapped_column(Integer)
    snap_to: Mapped[int | None] = mapped_column(Integer)
    hard_kind: Mapped[str] = mapped_column(String(20))
    hard_after_minutes: Mapped[int | None] = mapped_column(Integer)


class ReminderRuleRow(Base):
    __tablename__ = "reminder_rule"
    __table_args__ = (UniqueConstraint("cohort_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(40))
    about: Mapped[str] = mapped_column(String(20))
    before_minutes: Mapped[int | None] = mapped_column(Integer)
    early_seconds: Mapped[int] = mapped_column(Integer, default=300, server_default="300")
    at_minute: Mapped[int | None] = mapped_column(Integer)
    weekday: Mapped[int | None] = mapped_column(Integer)
    template: Mapped[str] = mapped_column(String(40))


class BlackoutRow(Base):
    __tablename__ = "blackout"

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    label: Mapped[str] = mapped_column(String(120))


class PersonRow(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    zone: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(20))
    availability: Mapped[str | None] = mapped_column(String(500))  # None: the cohort's default
    stretch: Mapped[str | None] = mapped_column(String(500))  # None: the cohort's; "none": none
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EnrollmentRow(Base):
    __tablename__ = "enrollment"
    __table_args__ = (
        UniqueConstraint("cohort_id", "person_id"),
        Index("ix_enrollment_person_id", "person_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=EnrollmentStatus.ACTIVE)
    max_sessions_per_week: Mapped[int | None] = mapped_column(Integer)
    enrolled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    person: Mapped[PersonRow] = relationship()


class PlanVersionRow(Base):
    """One published plan of a cohort; ``summary`` keeps the planner's report (coverage,
    left-out learners, DST warnings) as JSON for display."""

    __tablename__ = "plan_version"
    __table_args__ = (UniqueConstraint("cohort_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class LiveSeriesRow(Base):
    """A published weekly series: one weekly time (``slot``) of one section of a series
    request, stored as intent: weekday and wall time in the anchor zone. With rotation, odd
    weeks use the ``alt_`` time. A fair rotation (``fairness = "rotate"``) keeps its weekly
    times in ``rotation`` (``[weekday, wall minute]`` pairs; ``weekday``/``wall_minute`` hold
    the first) and in ``rotation_weeks`` the index of the time each course week uses."""

    __tablename__ = "live_series"
    __table_args__ = (UniqueConstraint("cohort_id", "series_key", "section", "slot"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    series_key: Mapped[str] = mapped_column(String(40))
    section: Mapped[int] = mapped_column(Integer)
    slot: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    weekday: Mapped[int] = mapped_column(Integer)
    wall_minute: Mapped[int] = mapped_column(Integer)
    alt_weekday: Mapped[int | None] = mapped_column(Integer)
    alt_wall_minute: Mapped[int | None] = mapped_column(Integer)
    rotation: Mapped[list[list[int]] | None] = mapped_column(JSON)
    rotation_weeks: Mapped[list[int] | None] = mapped_column(JSON)
    anchor_zone: Mapped[str] = mapped_column(String(64))
    duration_minutes: Mapped[int] = mapped_column(Integer)
    facilitator_email: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20))
    changed_in_version: Mapped[int] = mapped_column(Integer)


class OccurrenceRow(Base):
    """One concrete meeting. Its ``uid`` never changes; ``sequence`` grows with every change."""

    __tablename__ = "occurrence"
    __table_args__ = (
        UniqueConstraint("series_id", "week"),
        Index("ix_occurrence_start", "start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("live_series.id", ondelete="CASCADE"))
    week: Mapped[int] = mapped_column(Integer)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))
    sequence: Mapped[int] = mapped_column(Integer)
    uid: Mapped[str] = mapped_column(String(120), unique=True)
    changed_in_version: Mapped[int] = mapped_column(Integer)


class SectionMemberRow(Base):
    """Which section of a series a learner belongs to."""

    __tablename__ = "section_member"
    __table_args__ = (UniqueConstraint("cohort_id", "series_key", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    series_key: Mapped[str] = mapped_column(String(40))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    section: Mapped[int] = mapped_column(Integer)


class DeadlineGroupRow(Base):
    """A list of deadline items shared by every learner whose items are identical (same zone,
    section and rules give the same instants and local times). 100k learners need ~1k groups."""

    __tablename__ = "deadline_group"
    __table_args__ = (UniqueConstraint("cohort_id", "signature"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    signature: Mapped[str] = mapped_column(String(64))  # sha256 of the items' content
    zone: Mapped[str] = mapped_column(String(64))
    items: Mapped[list[DeadlineItemRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="DeadlineItemRow.soft"
    )


class DeadlineItemRow(Base):
    """One async item (assignment, catch-up or replay) with its soft and hard deadlines."""

    __tablename__ = "deadline_item"
    __table_args__ = (UniqueConstraint("group_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("deadline_group.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    assignment_key: Mapped[str | None] = mapped_column(String(40))
    series_key: Mapped[str] = mapped_column(String(40))
    section: Mapped[int] = mapped_column(Integer)
    slot: Mapped[int] = mapped_column(Integer)
    week: Mapped[int] = mapped_column(Integer)
    release: Mapped[datetime] = mapped_column(UTCDateTime)
    soft: Mapped[datetime] = mapped_column(UTCDateTime)
    soft_local: Mapped[str] = mapped_column(String(32))  # wall time on the learner's clock
    hard: Mapped[datetime | None] = mapped_column(UTCDateTime)
    effort_minutes: Mapped[int] = mapped_column(Integer)
    coworking_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    coworking_ref: Mapped[str | None] = mapped_column(String(120))  # series/section/slot/week
    warnings: Mapped[list[str]] = mapped_column(JSON)


class LearnerDeadlinesRow(Base):
    """Which deadline group a learner of a cohort follows."""

    __tablename__ = "learner_deadlines"
    __table_args__ = (
        UniqueConstraint("cohort_id", "person_id"),
        Index("ix_learner_deadlines_group", "group_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    group_id: Mapped[int] = mapped_column(ForeignKey("deadline_group.id", ondelete="CASCADE"))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class FeedTokenRow(Base):
    """A capability for one calendar feed. Only the SHA-256 of the token is stored; a person may
    hold several; revoking sets ``revoked_at``. ``person_id`` is None for the cohort's feed."""

    __tablename__ = "feed_token"
    __table_args__ = (Index("ix_feed_token_person", "person_id", "cohort_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))  # learner, facilitator, cohort
    purpose: Mapped[str] = mapped_column(String(10), server_default="url")  # url, mail
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NotificationRow(Base):
    """One email to one person: the transactional outbox. Written in the same transaction as
    the change that causes it; ``key`` (person, target, rule, target version) makes it unique;
    ``message_id`` is fixed at creation so a resend is recognisable."""

    __tablename__ = "notification"
    __table_args__ = (
        # claim order: the LIMIT stops after one batch instead of sorting the whole backlog
        Index("ix_notification_due", "status", "next_attempt_at", "id"),
        Index("ix_notification_cohort_kind", "cohort_id", "status", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))  # invite, update, cancellation, reminders...
    key: Mapped[str] = mapped_column(String(300), unique=True)
    target: Mapped[str] = mapped_column(String(160))  # e.g. an occurrence UID
    rule: Mapped[str] = mapped_column(String(40))
    target_version: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # never handed to the mailer before this: due_at - the rule's `early` (reminders sent ahead
    # in a burst), due_at for invitations, updates, cancellations and welcome emails
    not_before: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))  # pending, sent, failed, skipped, cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    leased_by: Mapped[str | None] = mapped_column(String(120))
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refused: Mapped[dict[str, str] | None] = mapped_column(JSON)  # partial recipient refusals


class WorkerRow(Base):
    """A running (or stopped) ``cohort worker``: its heartbeat and what it has done."""

    __tablename__ = "worker"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)  # host:pid:random
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_tick_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent: Mapped[int] = mapped_column(Integer, default=0)
    # messages per second this worker hands over while it has work (a moving average)
    send_rate: Mapped[float | None] = mapped_column(Float)


class SendPacerRow(Base):
    """The one row (id 1) through which all workers share the mail server's rate: the next free
    sending slot, and the rate in force (lowered when the server says "too fast", then
    recovering towards ``mail_rate_per_second``)."""

    __tablename__ = "send_pacer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rate: Mapped[float | None] = mapped_column(Float)  # None: no limit in force
    next_free: Mapped[datetime] = mapped_column(UTCDateTime)
    slowed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AdminTokenRow(Base):
    """The course runner's login token for the dashboard and the API. Only its SHA-256 is
    stored; `cohort admin token` issues a new one and revokes the others."""

    __tablename__ = "admin_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AdminSessionRow(Base):
    """A dashboard session, made by logging in with an admin token. Only the SHA-256 of the
    session id (which the signed cookie carries) is stored. Live until ``expires_at``, unless
    logged out (``revoked_at``) or its admin token is rotated."""

    __tablename__ = "admin_session"

    session_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("admin_token.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditLogRow(Base):
    """Something the product did to a cohort on its own or on request, for `cohort log`: who
    (``actor``: ``worker:<id>``, ``cli``, ``dashboard``), what (``action``) and the details."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_cohort_at", "cohort_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class ReminderOptOutRow(Base):
    """A kind of reminder a learner turned off in a cohort (their page, or a one-click
    unsubscribe): ``kind`` a notification kind, ``rule`` the live reminder rule's key for
    ``live_reminder`` ('' for the other kinds, which are turned off whole)."""

    __tablename__ = "reminder_opt_out"
    __table_args__ = (UniqueConstraint("cohort_id", "person_id", "kind", "rule"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(30))
    rule: Mapped[str] = mapped_column(String(40), server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReminderPauseRow(Base):
    """A learner's pause of every reminder they may turn off, through ``paused_until`` (a day on
    their own clock, included)."""

    __tablename__ = "reminder_pause"

    cohort_id: Mapped[int] = mapped_column(
        ForeignKey("cohort.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    paused_until: Mapped[date] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CatchUpRuleRow(Base):
    """A cohort's ``[catch_up]`` options (see ``CatchUpOptions``); no row: catching up is off."""

    __tablename__ = "catch_up_rule"

    cohort_id: Mapped[int] = mapped_column(
        ForeignKey("cohort.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean)
    max_shift_days: Mapped[int] = mapped_column(Integer)
    max_shifts: Mapped[int] = mapped_column(Integer)


class CatchUpShiftRow(Base):
    """One shift a learner made of their remaining soft deadlines (``days`` later, at ``at``);
    applied again, in order, whenever their deadlines are computed."""

    __tablename__ = "catch_up_shift"
    __table_args__ = (Index("ix_catch_up_shift_cohort_id", "cohort_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cohort_id: Mapped[int] = mapped_column(ForeignKey("cohort.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    days: Mapped[int] = mapped_column(Integer)
