"""The closed sets of values the stored rows take: an enrolment's, a series' and an occurrence's
status, and a notification's kind and status.

They live apart from :mod:`scheduler.domain.cohort`, which holds what a cohort file declares:
these are lifecycle states the services write and read back. Each is a ``StrEnum`` stored as
its value, so a member compares equal to the string in the database, in JSON and in templates;
the values must never change without a migration.
"""

from __future__ import annotations

from enum import StrEnum


class EnrollmentStatus(StrEnum):
    """Whether a person still belongs to a cohort (``enrollment.status``)."""

    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class SeriesStatus(StrEnum):
    """Whether a published weekly series still runs (``live_series.status``)."""

    ACTIVE = "active"
    CANCELLED = "cancelled"


class OccurrenceStatus(StrEnum):
    """Whether one concrete meeting still takes place (``occurrence.status``)."""

    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"


class NotificationStatus(StrEnum):
    """Where a notification stands in the outbox (``notification.status``)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    """Not sent because it would arrive too late to be useful."""
    CANCELLED = "cancelled"
    """Superseded: no longer wanted (its target changed or is gone, its person left). Never sent."""


class NotificationKind(StrEnum):
    """What a notification is (``notification.kind``); each names its email templates."""

    INVITE = "invite"
    UPDATE = "update"
    CANCELLATION = "cancellation"
    LIVE_REMINDER = "live_reminder"
    DEADLINE_REMINDER = "deadline_reminder"
    DIGEST = "digest"
    WELCOME = "welcome"
    COWORKING_REMINDER = "coworking_reminder"
    CHECKIN = "checkin"


# The kinds a learner may turn off or pause (their page; a one-click unsubscribe, RFC 8058):
# live reminders one rule at a time, the others whole. Invitations, updates and cancellations
# always go (they keep calendars right), and so does the welcome email.
OPTIONAL_KINDS: tuple[NotificationKind, ...] = (
    NotificationKind.LIVE_REMINDER,
    NotificationKind.DEADLINE_REMINDER,
    NotificationKind.DIGEST,
    NotificationKind.COWORKING_REMINDER,
    NotificationKind.CHECKIN,
)
PER_RULE_KINDS: tuple[NotificationKind, ...] = (NotificationKind.LIVE_REMINDER,)
