"""Seeing a burst coming: the busiest stretch of the outbox in the days ahead, and whether it
can be handed to the mail server on time at the rate in force.

Each reminder may go up to its rule's ``early`` before it is due (its ``not_before``), so a
burst fits when the notifications whose whole window lies inside some stretch of time can be
sent inside it at the rate (:func:`scheduler.domain.sending.worst_burst`). The rows counted
are the pending ones in the outbox (reminders are written :data:`~scheduler.services.
reminders.DEFAULT_HORIZON` ahead) plus, for a published cohort, the live-session reminders
its ``before`` rules will write for the meetings of the next :data:`LOOK_AHEAD` (one per
member of the section and its host), so publishing a plan or moving a class warns a week
ahead, not two days. The rate in force is ``mail_rate_per_second``, else the throughput the
workers have measured (:func:`scheduler.services.pacing.planning_rate`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from scheduler.domain.cohort import MAX_EARLY, ReminderAbout, SeriesKind
from scheduler.domain.sending import Burst, suggest_early, suggest_rate, worst_burst
from scheduler.domain.status import NotificationKind, NotificationStatus, OccurrenceStatus
from scheduler.persistence import repo
from scheduler.persistence.models import (
    LiveSeriesRow,
    NotificationRow,
    OccurrenceRow,
    SectionMemberRow,
)
from scheduler.services.pacing import PLANNING_SHARE, measured_capacity
from scheduler.timeutil import format_duration

LOOK_AHEAD = timedelta(days=7)
# What a burst is made of: reminders due at a set time. Invitations, updates, cancellations and
# welcome emails are due the moment they are written and go as soon as they can.
TIMED_KINDS = (
    NotificationKind.LIVE_REMINDER,
    NotificationKind.DEADLINE_REMINDER,
    NotificationKind.DIGEST,
    NotificationKind.COWORKING_REMINDER,
    NotificationKind.CHECKIN,
)
Window = tuple[datetime, datetime, str]  # not_before, due, rule


@dataclass(frozen=True, slots=True)
class BurstCheck:
    """The busiest stretch ahead and what to do if it does not fit."""

    burst: Burst
    rate_source: str  # "mail_rate_per_second", "measured" or "assumed" (nothing measured yet)
    rule: str  # the rule with the most notifications in the stretch
    early: timedelta  # that rule's early (the stretch's length when unknown)

    @property
    def fits(self) -> bool:
        return self.burst.fits

    def as_dict(self) -> dict[str, object]:
        """For ``--json`` and the API: the stretch, its count, the rate and the verdict."""
        b = self.burst
        return {
            "start": b.start.isoformat(),
            "end": b.end.isoformat(),
            "count": b.count,
            "rate": b.rate,
            "rate_source": self.rate_source,
            "need_seconds": round(b.need, 3),
            "fits": b.fits,
            "rule": self.rule,
            "text": self.text(),
        }

    def text(self) -> str:
        """``Tue 2 Mar 18:00 UTC: 20,003 reminders due within 5 min need 67 s at 300 msg/s:
        fine`` — or the same with what to raise."""
        b = self.burst
        window = b.end - b.start
        if window >= timedelta(minutes=1):
            within = f"within {format_duration(window)}"
        elif window > timedelta(0):
            within = f"within {window.total_seconds():.0f} s"
        else:
            within = "at one instant"
        rate = (
            (f"{b.rate:,.0f}" if b.rate >= 10 else f"{b.rate:.2g}")
            + " msg/s"
            + _SOURCES[self.rate_source]
        )
        head = (
            f"{b.end:%a %-d %b %H:%M} UTC: {b.count:,} reminders due {within} "
            f"need {b.need:,.0f} s at {rate}"
        )
        if b.fits:
            return f"{head}: fine"
        early = suggest_early(b)
        needed = None if b.room <= 0 else suggest_rate(b)  # one instant: no rate can do it
        if early > MAX_EARLY and needed is not None:
            return f"{head}: raise the rate to {needed:,}/s (`early` is at most 1h)"
        fix = f"{head}: raise `early` for {self.rule} to {format_duration(early)}"
        return fix if needed is None else f"{fix} or the rate to {needed:,}/s"


_SOURCES = {
    "mail_rate_per_second": "",
    "measured": " (the workers' measured rate)",
    "assumed": " (assumed: no worker has measured its rate yet)",
}


def _stored(db: Session, now: datetime, until: datetime, skip_rules: set[str]) -> Counter[Window]:
    windows: Counter[Window] = Counter()
    for not_before, due, rule, kind, n in db.execute(
        select(
            NotificationRow.not_before,
            NotificationRow.next_attempt_at,
            NotificationRow.rule,
            NotificationRow.kind,
            func.count(),
        )
        .where(
            NotificationRow.status == NotificationStatus.PENDING,
            NotificationRow.next_attempt_at <= until,
            NotificationRow.kind.in_(TIMED_KINDS),
        )
        .group_by(
            NotificationRow.not_before,
            NotificationRow.next_attempt_at,
            NotificationRow.rule,
            NotificationRow.kind,
        )
    ):
        if kind == NotificationKind.LIVE_REMINDER and rule in skip_rules:
            continue  # counted by the projection instead
        due = max(due, now)
        windows[(min(not_before, due), due, rule)] += int(n)
    return windows


def _projected(
    db: Session, slug: str, now: datetime, until: datetime
) -> tuple[Counter[Window], set[str]]:
    """The live reminders of ``before`` rules for the meetings until ``until`` (and the rules
    projected, whose stored rows are then not counted twice)."""
    cohort = repo.get_cohort(db, slug)
    spec = repo.cohort_spec(db, cohort)
    rules = [r for r in spec.reminders if r.about is ReminderAbout.LIVE and r.before is not None]
    windows: Counter[Window] = Counter()
    if not rules:
        return windows, set()
    longest = max(r.before or timedelta(0) for r in rules)
    sizes = {
        (key, section): int(n)
        for key, section, n in db.execute(
            select(SectionMemberRow.series_key, SectionMemberRow.section, func.count())
            .where(SectionMemberRow.cohort_id == cohort.id)
            .group_by(SectionMemberRow.series_key, SectionMemberRow.section)
        )
    }
    meetings = db.execute(
        select(
            OccurrenceRow.start,
            LiveSeriesRow.series_key,
            LiveSeriesRow.section,
            LiveSeriesRow.facilitator_email,
        )
        .join(LiveSeriesRow, OccurrenceRow.series_id == LiveSeriesRow.id)
        .where(
            LiveSeriesRow.cohort_id == cohort.id,
            LiveSeriesRow.kind != SeriesKind.COWORKING.value,
            OccurrenceRow.status == OccurrenceStatus.SCHEDULED,
            OccurrenceRow.start > now,
            OccurrenceRow.start <= until + longest,
        )
    )
    for start, key, section, host in meetings:
        people = sizes.get((key, section), 0) + (1 if host else 0)
        for rule in rules:
            due = start - (rule.before or timedelta(0))
            if people and now <= due <= until:
                windows[(max(due - rule.early, now), due, rule.key)] += people
    return windows, {r.key for r in rules}


def busiest_stretch(
    db: Session,
    now: datetime,
    configured_rate: float | None,
    *,
    slug: str | None = None,
    look_ahead: timedelta = LOOK_AHEAD,
) -> BurstCheck | None:
    """The tightest stretch of the next ``look_ahead`` for the whole outbox (``slug``: with
    that published cohort's live reminders projected), or None when nothing is pending."""
    until = now + look_ahead
    projected: Counter[Window] = Counter()
    skip: set[str] = set()
    if slug is not None:
        projected, skip = _projected(db, slug, now, until)
    windows = _stored(db, now, until, skip) + projected
    if not windows:
        return None
    if configured_rate is not None:
        rate, source = configured_rate, "mail_rate_per_second"
    else:
        capacity, known = measured_capacity(db, now)
        rate, source = capacity * PLANNING_SHARE, ("measured" if known else "assumed")
    groups: Counter[tuple[datetime, datetime]] = Counter()
    for (not_before, due, _), n in windows.items():
        groups[(not_before, due)] += n
    burst = worst_burst([(a, b, n) for (a, b), n in sorted(groups.items())], rate)
    if burst is None:
        return None
    inside: Counter[str] = Counter()
    early: dict[str, timedelta] = {}
    for (not_before, due, rule), n in windows.items():
        if burst.start <= not_before and due <= burst.end:
            inside[rule] += n
            early[rule] = due - not_before
    rule = inside.most_common(1)[0][0] if inside else "the reminders"
    return BurstCheck(burst, source, rule, early.get(rule, burst.end - burst.start))
