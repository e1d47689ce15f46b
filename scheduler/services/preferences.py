"""Reminders on the learner's terms: which kinds of reminder each learner receives, and a pause.

A learner may turn off each live reminder rule of the cohort (``class-1h``, ...), deadline
reminders, the weekly digest, the co-working "starting soon" emails and the check-ins after a
block (:data:`~scheduler.domain.status.OPTIONAL_KINDS`), and pause all of those through a day on
their own clock. Invitations, updates, cancellations and the welcome email always go: they keep
calendars right.

Where a choice is made:

* the learner's page (:func:`set_preferences`: the whole form at once);
* a one-click unsubscribe (RFC 8058, :func:`turn_off`): every reminder and digest carries
  ``List-Unsubscribe: <{base_url}/me/{mail token}/unsubscribe/{kind}[/{rule}]>``, a capability
  URL like the learner's page (the token is their mail token: revoked by a reset or by leaving).

Each change, in the caller's transaction: the stored choice, the pending notifications it
holds back cancelled (``turned off by the learner`` / ``paused by the learner``), the ones it
lets through again put back to pending while still useful, and one audit entry
(:data:`REMINDER_PREFERENCES`). :func:`scheduler.services.reminders.sync_reminders` writes no
row a learner's choices hold back, and the composer checks again just before sending.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from babel.support import NullTranslations
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from scheduler.domain.cohort import ReminderAbout, Role, SeriesKind
from scheduler.domain.status import (
    OPTIONAL_KINDS,
    PER_RULE_KINDS,
    EnrollmentStatus,
    NotificationKind,
    NotificationStatus,
)
from scheduler.persistence import repo
from scheduler.persistence.models import (
    EnrollmentRow,
    LiveSeriesRow,
    NotificationRow,
    PersonRow,
    ReminderOptOutRow,
    ReminderPauseRow,
    ReminderRuleRow,
)
from scheduler.services.audit import REMINDER_PREFERENCES, record_or_merge
from scheduler.services.reminders import (
    OFF_REASON,
    PAUSE_REASON,
    cancel_pending,
    held_back,
    pause_end,
    still_useful,
)
from scheduler.timeutil import zone

ONE_CLICK = "one-click"  # how a change was made (the audit entry's "via")
PAGE = "page"
# one learner's choices changed again within this time: one audit entry, updated
MERGE_WITHIN = timedelta(minutes=10)
LEARNER_ACTOR = "learner"


def N_(message: str) -> str:
    """Marks ``message`` for extraction (a ``babel.cfg`` keyword); it is translated where used."""
    return message


@dataclass(frozen=True, slots=True, order=True)
class Choice:
    """One thing a learner may turn off: a kind, with the rule's key for a live reminder rule
    ('' for the kinds turned off whole)."""

    kind: str
    rule: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", str(self.kind))  # a NotificationKind or its value
        if self.kind not in OPTIONAL_KINDS:
            raise ValueError(f"not a kind a learner may turn off: {self.kind!r}")
        if (self.kind in PER_RULE_KINDS) != bool(self.rule):
            raise ValueError(f"{self.kind} is turned off {'by rule' if self.rule else 'whole'}")

    @property
    def path(self) -> str:
        """The choice in a URL or a form: ``digest``, ``live_reminder/class-1h``."""
        return f"{self.kind}/{quote(self.rule, safe='')}" if self.rule else self.kind


def unsubscribe_url(base_url: str, token: str, kind: str, rule: str = "") -> str:
    """The one-click link that turns off exactly ``kind`` (a live reminder: its ``rule``) for
    the holder of ``token`` (their mail token): ``{base_url}/me/{token}/unsubscribe/{kind}``."""
    choice = Choice(kind, rule if kind in PER_RULE_KINDS else "")
    return f"{base_url.rstrip('/')}/me/{quote(token, safe='')}/unsubscribe/{choice.path}"


@dataclass(frozen=True, slots=True)
class ChoiceState:
    choice: Choice
    on: bool
    label: str  # in the learner's language


@dataclass(frozen=True, slots=True)
class Preferences:
    """A learner's choices as the page shows them: each kind the cohort sends, on or off, and
    the last day of their pause (None: not paused; a pause that ended reads as none)."""

    choices: tuple[ChoiceState, ...]
    paused_until: date | None

    def is_on(self, choice: Choice) -> bool:
        return all(s.on for s in self.choices if s.choice == choice)


@dataclass(frozen=True, slots=True)
class PreferenceChange:
    turned_off: tuple[Choice, ...]
    turned_on: tuple[Choice, ...]
    paused_until: date | None
    cancelled: int  # pending notifications now held back
    restored: int  # held-back notifications put back to pending


@dataclass(frozen=True, slots=True)
class _Offered:
    choice: Choice
    before_minutes: int | None = None
    at_minute: int | None = None


def _offered(db: Session, cohort_id: int) -> list[_Offered]:
    """The choices the cohort's emails call for, in the page's order: each live reminder rule,
    then deadline reminders and the digest (when a rule sends them), then the co-working
    emails (when the cohort has co-working blocks)."""
    rules = list(
        db.execute(
            select(
                ReminderRuleRow.key,
                ReminderRuleRow.about,
                ReminderRuleRow.before_minutes,
                ReminderRuleRow.at_minute,
            )
            .where(ReminderRuleRow.cohort_id == cohort_id)
            .order_by(ReminderRuleRow.position)
        )
    )
    offered = [
        _Offered(Choice(NotificationKind.LIVE_REMINDER, key), before, at)
        for key, about, before, at in rules
        if about == ReminderAbout.LIVE
    ]
    abouts = {about for _, about, _, _ in rules}
    if ReminderAbout.DEADLINE in abouts:
        offered.append(_Offered(Choice(NotificationKind.DEADLINE_REMINDER)))
    if ReminderAbout.DIGEST in abouts:
        offered.append(_Offered(Choice(NotificationKind.DIGEST)))
    coworking = db.scalar(
        select(LiveSeriesRow.id)
        .where(
            LiveSeriesRow.cohort_id == cohort_id,
            LiveSeriesRow.kind == SeriesKind.COWORKING.value,
        )
        .limit(1)
    )
    if coworking is not None:
        offered.append(_Offered(Choice(NotificationKind.COWORKING_REMINDER)))
        offered.append(_Offered(Choice(NotificationKind.CHECKIN)))
    return offered


def offered_choice(db: Session, cohort_id: int, kind: str, rule: str = "") -> Choice | None:
    """The choice ``kind`` (and ``rule``) names when this cohort offers it, else None (an unknown
    kind, a rule the cohort does not have, a rule where none belongs)."""
    try:
        wanted = Choice(kind, rule)
    except ValueError:
        return None
    return next((o.choice for o in _offered(db, cohort_id) if o.choice == wanted), None)


def choice_label(tr: NullTranslations, offered: _Offered) -> str:
    """What the page calls a choice, in ``tr``'s language."""
    kind = offered.choice.kind
    try:
        if kind == NotificationKind.LIVE_REMINDER:
            minutes = offered.before_minutes
            if minutes is not None and minutes % 60 == 0:
                hours = minutes // 60
                return tr.ngettext(
                    "Reminder %(num)d hour before each live session",
                    "Reminder %(num)d hours before each live session",
                    hours,
                ) % {"num": hours}
            if minutes is not None:
                return tr.ngettext(
                    "Reminder %(num)d minute before each live session",
                    "Reminder %(num)d minutes before each live session",
                    minutes,
                ) % {"num": minutes}
            if offered.at_minute is not None:
                at = f"{offered.at_minute // 60:02d}:{offered.at_minute % 60:02d}"
                # TRANSLATORS: %(time)s is a time of day on the learner's clock, like 08:00.
                return tr.gettext("Reminder at %(time)s on the day of each live session") % {
                    "time": at
                }
        words = {
            NotificationKind.DEADLINE_REMINDER: N_("Deadline reminders"),
            NotificationKind.DIGEST: N_("The weekly digest"),
            NotificationKind.COWORKING_REMINDER: N_("Co-working blocks: “starting soon” emails"),
            NotificationKind.CHECKIN: N_("Co-working blocks: check-in after each block"),
        }
        if kind in words:
            return tr.gettext(words[NotificationKind(kind)])
        return tr.gettext("Live session reminder (%(rule)s)") % {"rule": offered.choice.rule}
    except (KeyError, TypeError, ValueError):  # a catalog mistake never breaks the page
        return offered.choice.path


def _local_today(db: Session, person_id: int, now: datetime) -> date:
    zone_name = db.scalar(select(PersonRow.zone).where(PersonRow.id == person_id)) or "UTC"
    return now.astimezone(zone(zone_name)).date()


def learner_preferences(
    db: Session, cohort_id: int, person_id: int, now: datetime, tr: NullTranslations
) -> Preferences:
    """The learner's choices in the cohort, labelled in ``tr``'s language."""
    off = _opted_out(db, cohort_id, person_id)
    until = db.scalar(
        select(ReminderPauseRow.paused_until).where(
            ReminderPauseRow.cohort_id == cohort_id, ReminderPauseRow.person_id == person_id
        )
    )
    if until is not None and until < _local_today(db, person_id, now):
        until = None
    states = tuple(
        ChoiceState(o.choice, o.choice not in off, choice_label(tr, o))
        for o in _offered(db, cohort_id)
    )
    return Preferences(states, until)


def _opted_out(db: Session, cohort_id: int, person_id: int) -> set[Choice]:
    found = set()
    for kind, rule in db.execute(
        select(ReminderOptOutRow.kind, ReminderOptOutRow.rule).where(
            ReminderOptOutRow.cohort_id == cohort_id, ReminderOptOutRow.person_id == person_id
        )
    ):
        try:
            found.add(Choice(kind, rule))
        except ValueError:
            continue  # a kind of another version: not shown, not counted
    return found


def _hold_learner(db: Session, cohort_id: int, person_id: int) -> None:
    """Take the learner's enrolment row for the transaction before reading their choices: a
    second request (a double click, a mail provider retrying its one-click POST) waits, then
    reads what the first stored, instead of both inserting the same opt-out."""
    db.execute(
        update(EnrollmentRow)
        .where(EnrollmentRow.cohort_id == cohort_id, EnrollmentRow.person_id == person_id)
        .values(role=EnrollmentRow.role)
    )


def turn_off(
    db: Session, cohort_id: int, person_id: int, choice: Choice, now: datetime, via: str = ONE_CLICK
) -> PreferenceChange:
    """Turn off exactly ``choice`` for the learner (already off: nothing changes, nothing
    logged); its pending notifications are cancelled."""
    _hold_learner(db, cohort_id, person_id)
    if choice in _opted_out(db, cohort_id, person_id):
        return PreferenceChange((), (), None, 0, 0)
    _add_opt_outs(db, cohort_id, person_id, [choice], now)
    cancelled, restored = _reconcile(db, cohort_id, person_id, now)
    change = PreferenceChange(
        (choice,), (), _pause_of(db, cohort_id, person_id), cancelled, restored
    )
    _audit(db, cohort_id, person_id, now, via, change, pause_changed=False)
    return change


def set_preferences(
    db: Session,
    cohort_id: int,
    person_id: int,
    on: Iterable[Choice],
    paused_until: date | None,
    now: datetime,
    via: str = PAGE,
    shown: dict[Choice, bool] | None = None,
) -> PreferenceChange:
    """Store the learner's whole form: every offered choice not in ``on`` is off, and the pause
    runs through ``paused_until`` (None, or a day already past: no pause). Notifications held
    back are cancelled, ones let through again restored; one audit entry when anything changed.

    ``shown``: each choice as the form showed it (on or off) when the learner loaded it. Only
    choices the learner changed there change: a choice the cohort added since, or one they
    turned off by one click after loading the page, keeps its stored state.
    """
    _hold_learner(db, cohort_id, person_id)
    offered = [o.choice for o in _offered(db, cohort_id)]
    before = _opted_out(db, cohort_id, person_id)
    wanted_on = set(on)
    if shown is not None:
        offered = [c for c in offered if c in shown and shown[c] != (c in wanted_on)]
    turned_off = tuple(c for c in offered if c not in wanted_on and c not in before)
    turned_on = tuple(c for c in offered if c in wanted_on and c in before)
    if paused_until is not None and paused_until < _local_today(db, person_id, now):
        paused_until = None
    old_pause = _pause_of(db, cohort_id, person_id)
    if old_pause is not None and old_pause < _local_today(db, person_id, now):
        old_pause = None
    pause_changed = old_pause != paused_until
    if not (turned_off or turned_on or pause_changed):
        return PreferenceChange((), (), paused_until, 0, 0)
    _add_opt_outs(db, cohort_id, person_id, turned_off, now)
    for c in turned_on:
        db.execute(
            delete(ReminderOptOutRow).where(
                ReminderOptOutRow.cohort_id == cohort_id,
                ReminderOptOutRow.person_id == person_id,
                ReminderOptOutRow.kind == c.kind,
                ReminderOptOutRow.rule == c.rule,
            )
        )
    if pause_changed:
        db.execute(
            delete(ReminderPauseRow).where(
                ReminderPauseRow.cohort_id == cohort_id, ReminderPauseRow.person_id == person_id
            )
        )
        if paused_until is not None:
            db.add(
                ReminderPauseRow(
                    cohort_id=cohort_id,
                    person_id=person_id,
                    paused_until=paused_until,
                    updated_at=now,
                )
            )
        db.flush()
    cancelled, restored = _reconcile(db, cohort_id, person_id, now)
    change = PreferenceChange(turned_off, turned_on, paused_until, cancelled, restored)
    _audit(db, cohort_id, person_id, now, via, change, pause_changed=pause_changed)
    return change


def _pause_of(db: Session, cohort_id: int, person_id: int) -> date | None:
    return db.scalar(
        select(ReminderPauseRow.paused_until).where(
            ReminderPauseRow.cohort_id == cohort_id, ReminderPauseRow.person_id == person_id
        )
    )


def _add_opt_outs(
    db: Session, cohort_id: int, person_id: int, choices: Iterable[Choice], now: datetime
) -> None:
    for c in choices:
        db.add(
            ReminderOptOutRow(
                cohort_id=cohort_id, person_id=person_id, kind=c.kind, rule=c.rule, created_at=now
            )
        )
    db.flush()


def _reconcile(db: Session, cohort_id: int, person_id: int, now: datetime) -> tuple[int, int]:
    """Make the learner's notifications agree with their choices: pending ones held back are
    cancelled, ones held back before and let through now go back to pending (while still worth
    sending). Returns (cancelled, restored)."""
    held = held_back(db, cohort_id, [person_id])
    mine = (
        NotificationRow.cohort_id == cohort_id,
        NotificationRow.person_id == person_id,
        NotificationRow.kind.in_(OPTIONAL_KINDS),
    )
    restore: list[int] = []
    cancel: dict[str, list[int]] = {}
    for row_id, kind, rule, due, status, error, payload in db.execute(
        select(
            NotificationRow.id,
            NotificationRow.kind,
            NotificationRow.rule,
            NotificationRow.due_at,
            NotificationRow.status,
            NotificationRow.last_error,
            NotificationRow.payload,
        ).where(
            *mine,
            (NotificationRow.status == NotificationStatus.PENDING)
            | (
                (NotificationRow.status == NotificationStatus.CANCELLED)
                & NotificationRow.last_error.in_([OFF_REASON, PAUSE_REASON])
            ),
        )
    ):
        reason = held.reason(kind, person_id, rule, due)
        if status == NotificationStatus.PENDING and reason is not None:
            cancel.setdefault(reason, []).append(row_id)
        elif status == NotificationStatus.CANCELLED and reason is None:
            at = payload.get("at") if isinstance(payload, dict) else None
            event_at = datetime.fromisoformat(at) if isinstance(at, str) else None
            if due >= now or still_useful(kind, due, event_at, now):
                restore.append(row_id)
        elif status == NotificationStatus.CANCELLED and reason != error and reason is not None:
            # held back for the other reason now (turned off during a pause): say so
            db.execute(
                update(NotificationRow)
                .where(NotificationRow.id == row_id)
                .values(last_error=reason)
            )
    for reason, ids in cancel.items():
        cancel_pending(db, ids, reason)
    for i in range(0, len(restore), 500):
        db.execute(
            update(NotificationRow)
            .where(NotificationRow.id.in_(restore[i : i + 500]))
            .values(status=NotificationStatus.PENDING, last_error=None, lease_until=None)
        )
    return sum(len(ids) for ids in cancel.values()), len(restore)


def _audit(
    db: Session,
    cohort_id: int,
    person_id: int,
    now: datetime,
    via: str,
    change: PreferenceChange,
    *,
    pause_changed: bool,
) -> None:
    email = db.scalar(select(PersonRow.email).where(PersonRow.id == person_id))
    detail: dict[str, Any] = {
        "email": email,
        "via": via,
        "turned_off": [c.path for c in change.turned_off],
        "turned_on": [c.path for c in change.turned_on],
        "cancelled": change.cancelled,
        "restored": change.restored,
    }
    if pause_changed:
        detail["paused_until"] = change.paused_until.isoformat() if change.paused_until else None
    record_or_merge(
        db,
        cohort_id,
        now,
        LEARNER_ACTOR,
        REMINDER_PREFERENCES,
        detail,
        same="email",
        within=MERGE_WITHIN,
    )


# --- the course runner's view ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptOutCount:
    choice: Choice
    learners: int  # active learners who turned it off


@dataclass(frozen=True, slots=True)
class OptOuts:
    """Per choice the cohort offers, how many active learners turned it off; how many are
    paused today; how many active learners there are."""

    counts: tuple[OptOutCount, ...]
    paused: int
    learners: int


def opt_out_counts(db: Session, slug: str, now: datetime) -> OptOuts:
    cohort = repo.get_cohort(db, slug)
    active = (
        EnrollmentRow.cohort_id == cohort.id,
        EnrollmentRow.status == EnrollmentStatus.ACTIVE,
        EnrollmentRow.role == Role.LEARNER.value,
    )
    by_choice = {
        (kind, rule): n
        for kind, rule, n in db.execute(
            select(ReminderOptOutRow.kind, ReminderOptOutRow.rule, func.count())
            .join(
                EnrollmentRow,
                (EnrollmentRow.person_id == ReminderOptOutRow.person_id)
                & (EnrollmentRow.cohort_id == ReminderOptOutRow.cohort_id),
            )
            .where(ReminderOptOutRow.cohort_id == cohort.id, *active)
            .group_by(ReminderOptOutRow.kind, ReminderOptOutRow.rule)
        )
    }
    counts = tuple(
        OptOutCount(o.choice, by_choice.get((o.choice.kind, o.choice.rule), 0))
        for o in _offered(db, cohort.id)
    )
    paused = 0
    for until, zone_name in db.execute(
        select(ReminderPauseRow.paused_until, PersonRow.zone)
        .join(PersonRow, PersonRow.id == ReminderPauseRow.person_id)
        .join(
            EnrollmentRow,
            (EnrollmentRow.person_id == ReminderPauseRow.person_id)
            & (EnrollmentRow.cohort_id == ReminderPauseRow.cohort_id),
        )
        .where(ReminderPauseRow.cohort_id == cohort.id, *active)
    ):
        if pause_end(until, zone_name) > now:
            paused += 1
    learners = db.scalar(select(func.count()).select_from(EnrollmentRow).where(*active)) or 0
    return OptOuts(counts, paused, learners)
