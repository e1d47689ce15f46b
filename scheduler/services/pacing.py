"""Sending on time at the mail server's rate, shared by every worker: the pacer and the send-ahead
horizon.

**The pacer** (one ``send_pacer`` row) hands out sending slots. A worker about to send ``n``
messages reserves ``n`` consecutive slots ``1/rate`` apart starting at the row's ``next_free``
(or now, if that has passed) and moves ``next_free`` past them, in one short transaction (the
row is locked ``FOR UPDATE`` on PostgreSQL, so two workers never get the same slot). Each
message then waits for its slot before it is handed over, so the server sees at most ``rate``
messages in any second whichever worker sends them (slots are spaced for :data:`PACE_SHARE` of
the rate, headroom for the network's jitter; a message that misses its slot by more than
:data:`LATE_GRACE` takes new slots for itself and the rest of its batch instead of catching up
in a rush). A reply saying the sender goes too fast
(:attr:`~scheduler.outputs.mailers.SendResult.throttled`) lowers the rate in force by a quarter
(:data:`DECREASE`; at most once a second: a batch of such replies is one signal) and pauses new
slots for a second; the rate then recovers by :data:`RECOVERY_PER_SECOND` of the configured rate
each second (multiplicative decrease, additive increase). With no ``mail_rate_per_second``
configured there are no slots until the server first says "too fast"; the rate in force then
starts from three quarters of the rate the worker was sending at, recovers, and is lifted once
the server has not said "too fast" for :data:`FORGET_AFTER`.

**The send-ahead horizon**: how far ahead of their due time the pending notifications must start
so that, at the rate in force, each is handed over by its due time — as late as possible,
earliest due first (:func:`scheduler.domain.sending.release_horizon`), and never before a row's
``not_before``, which the claim checks. The rate in force is the lower of the pacer's rate and
the throughput the workers have measured (their ``send_rate``, less :data:`PLANNING_SHARE` for
safety); a worker that has measured nothing yet counts as :data:`UNMEASURED_RATE`, so a first
burst starts early rather than late.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.domain.sending import release_horizon
from scheduler.domain.status import NotificationStatus
from scheduler.persistence.models import NotificationRow, SendPacerRow, WorkerRow

PACER_ID = 1
DECREASE = 0.75  # the rate in force after a "too fast" reply, as a share of what it was
RECOVERY_PER_SECOND = 0.05  # of the configured rate (or of the rate in force without one)
SLOW_DOWN_PAUSE = timedelta(seconds=1)  # no new slot this soon after a "too fast" reply
MIN_RATE = 0.1  # messages per second: the rate never falls below one message per 10 s
FORGET_AFTER = timedelta(minutes=10)  # without a configured rate: quiet this long, no limit
LOOKAHEAD = timedelta(hours=1, minutes=10)  # > the longest `early` (1 h) plus a margin
PLANNING_SHARE = 0.8  # plan with 80 % of the measured throughput
RATE_PLANNING_SHARE = 0.9  # and 90 % of the pacer's rate: slack for ticks and slow-downs
PACE_SHARE = 0.97  # slots are spaced for 97 % of the rate: headroom for network jitter
LATE_GRACE = timedelta(milliseconds=50)  # a message this late for its slot takes new slots
UNMEASURED_RATE = 20.0  # messages per second assumed for a worker that has not measured yet
LIVE_WORKER = timedelta(seconds=60)  # a worker with a heartbeat this recent is counted


@dataclass(frozen=True, slots=True)
class Slots:
    """``count`` sending slots from ``start``, ``spacing`` apart (None: no limit, send now)."""

    start: datetime
    count: int
    spacing: timedelta | None

    def at(self, position: int) -> datetime:
        """When the message at ``position`` (0-based) of the batch may be handed over."""
        if self.spacing is None:
            return self.start
        return self.start + self.spacing * position


def _recovered(row: SendPacerRow, ceiling: float | None, now: datetime) -> float | None:
    """The rate in force at ``now``: the stored one, recovered additively since it was set."""
    if row.rate is None:
        return ceiling
    elapsed = max((now - row.updated_at).total_seconds(), 0.0)
    step = RECOVERY_PER_SECOND * (ceiling if ceiling is not None else row.rate)
    rate = row.rate + step * elapsed
    if ceiling is not None:
        return min(rate, ceiling)
    if row.slowed_at is None or now - row.slowed_at >= FORGET_AFTER:
        return None  # the server has not said "too fast" for a while: no limit again
    return rate


class Pacer:
    """The shared pacer as one worker uses it. ``ceiling``: ``mail_rate_per_second`` (None: no
    configured limit). Each method runs its own short transaction."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        ceiling: float | None,
        now: Callable[[], datetime],
        *,
        lock_rows: bool,
    ) -> None:
        self.sessions = sessions
        self.ceiling = ceiling
        self.now = now
        self.lock_rows = lock_rows  # PostgreSQL: SELECT ... FOR UPDATE

    def _row(self, db: Session, now: datetime) -> SendPacerRow:
        query = select(SendPacerRow).where(SendPacerRow.id == PACER_ID)
        row = db.scalar(query.with_for_update() if self.lock_rows else query)
        if row is None:
            row = SendPacerRow(id=PACER_ID, rate=None, next_free=now, updated_at=now)
            db.add(row)
            db.flush()
        return row

    def ensure(self) -> None:
        """Create the pacer row if it is missing (at worker start: two workers creating it at
        the same moment would otherwise race on the primary key)."""
        from sqlalchemy.exc import IntegrityError

        try:
            with self.sessions.begin() as db:
                self._row(db, self.now())
        except IntegrityError:
            pass  # another worker created it first

    def rate(self) -> float | None:
        """The rate in force now (None: no limit)."""
        with self.sessions.begin() as db:
            now = self.now()
            row = db.get(SendPacerRow, PACER_ID)
            return self.ceiling if row is None else _recovered(row, self.ceiling, now)

    def reserve(self, count: int) -> Slots:
        """Reserve ``count`` consecutive sending slots (none needed: ``spacing`` None)."""
        with self.sessions.begin() as db:
            now = self.now()
            row = self._row(db, now)
            rate = _recovered(row, self.ceiling, now)
            if rate is None:
                if row.rate is not None:  # recovered past any limit: forget the slow-down
                    row.rate, row.updated_at = None, now
                return Slots(now, count, None)
            spacing = timedelta(seconds=1 / (rate * PACE_SHARE))
            start = max(row.next_free, now)
            row.next_free = start + spacing * count
            # the recovered rate is kept; at the configured rate the row says "none lowered"
            row.rate = rate if self.ceiling is None or rate < self.ceiling else None
            row.updated_at = now
            return Slots(start, count, spacing)

    def slow_down(self, sending_at: float) -> float:
        """The server said "too fast": lower the rate in force (at most once a second) and
        pause new slots briefly. ``sending_at``: the rate the caller was sending at (used when
        no rate is configured). Returns the rate now in force."""
        with self.sessions.begin() as db:
            now = self.now()
            row = self._row(db, now)
            current = _recovered(row, self.ceiling, now)
            if row.slowed_at is not None and now - row.slowed_at < SLOW_DOWN_PAUSE:
                return current if current is not None else max(sending_at, MIN_RATE)
            base = current if current is not None else sending_at
            rate = max(base * DECREASE, MIN_RATE)
            row.rate, row.updated_at, row.slowed_at = rate, now, now
            row.next_free = max(row.next_free, now + SLOW_DOWN_PAUSE)
            return rate


def measured_capacity(db: Session, now: datetime) -> tuple[float, bool]:
    """Messages per second the live workers have shown they can hand over, together (each
    worker's ``send_rate``; one that has not measured yet counts as :data:`UNMEASURED_RATE`),
    and whether any of it was measured."""
    rates = list(
        db.scalars(
            select(WorkerRow.send_rate).where(
                WorkerRow.stopped_at.is_(None), WorkerRow.heartbeat_at >= now - LIVE_WORKER
            )
        )
    )
    if not rates:
        return UNMEASURED_RATE, False
    return sum(r if r else UNMEASURED_RATE for r in rates), any(rates)


def planning_rate(db: Session, now: datetime, pacer_rate: float | None) -> float:
    """The rate to plan sending ahead with: the lower of safe shares of the pacer's rate and
    of the measured throughput."""
    capacity = measured_capacity(db, now)[0] * PLANNING_SHARE
    return capacity if pacer_rate is None else min(pacer_rate * RATE_PLANNING_SHARE, capacity)


def send_ahead_horizon(db: Session, now: datetime, rate: float) -> datetime:
    """The latest due time whose notifications must be started now (``now`` when nothing has
    to go early): pending rows grouped by when they are next due, within :data:`LOOKAHEAD`."""
    groups = [
        (at, int(n))
        for at, n in db.execute(
            select(NotificationRow.next_attempt_at, func.count())
            .where(
                NotificationRow.status == NotificationStatus.PENDING,
                NotificationRow.next_attempt_at <= now + LOOKAHEAD,
            )
            .group_by(NotificationRow.next_attempt_at)
            .order_by(NotificationRow.next_attempt_at)
        )
    ]
    return release_horizon(groups, now, rate) if groups else now
