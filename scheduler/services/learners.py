"""One learner at a time: add, update or withdraw a learner of a cohort, and read them back
(the dashboard and the JSON API call these).

Input is checked by the roster import's rules (the same zone canonicalisation in
``scheduler.roster.zones``, availability grammar, email normalisation with email-validator,
locale and length limits); every bad field is reported at once as a :class:`RosterError` and
nothing is written. An unknown cohort or learner is a :class:`NotFoundError`.

A change keeps a published plan consistent in the caller's transaction, as a roster import
does: deadlines recomputed, the cohort's feeds bumped, the reminders within the horizon re-timed
(a moved learner's replaced, a withdrawn learner's pending ones cancelled). A withdrawn learner
also leaves their sections and is sent a cancellation of each series invitation they had.
A new learner is placed in the best-fitting section with room by the worker within seconds
(:mod:`scheduler.services.orchestration`, nobody else moves), or by the next
``cohort plan --publish``.

A person's zone, availability and locale belong to the person, not to one enrollment, so a
change to them also refreshes every other published cohort the person is active in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from babel import Locale, UnknownLocaleError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from scheduler.domain.availability import AVAILABILITY_HINT, parse_availability
from scheduler.domain.cohort import Role
from scheduler.domain.status import EnrollmentStatus
from scheduler.errors import NotFoundError, Problem, RosterError
from scheduler.persistence import repo
from scheduler.persistence.models import CohortRow, EnrollmentRow, PersonRow, SectionMemberRow
from scheduler.persistence.repo import PersonValues, StoredEnrollment, StoredPerson
from scheduler.roster.addresses import email_address
from scheduler.roster.parser import MAX_FIELD
from scheduler.roster.zones import resolve_zone
from scheduler.services.cascade import bring_up_to_date
from scheduler.services.feeds import revoke_tokens
from scheduler.services.people import Learner, _view
from scheduler.services.reminders import DEFAULT_HORIZON

_EMAIL_HINT = "write an address like ann@example.org"
# The API and dashboard call the roster's "timezone" column "zone"; limits are the roster's.
_LIMITS = {
    "name": MAX_FIELD["name"],
    "email": MAX_FIELD["email"],
    "zone": MAX_FIELD["timezone"],
    "availability": MAX_FIELD["availability"],
    "locale": MAX_FIELD["locale"],
}


def add_learner(
    db: Session,
    slug: str,
    *,
    name: str,
    email: str,
    zone: str,
    availability: str | None = None,
    locale: str | None = None,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
) -> None:
    """Enroll a learner in the cohort (``availability``/``locale`` None or empty: the cohort's).

    A person already known by this email (from another cohort) gets these details, as a roster
    import would give them; a learner who withdrew earlier is enrolled again. An active learner
    or a facilitator of this cohort with this email is a :class:`RosterError`.

    With a published plan the newcomer's deadlines are computed at once and the welcome email
    queued; the worker places them in a section within seconds (see the module docstring): until
    then their async work follows section 1's sessions (each item says so), they get replays of
    classes outside their window, and no live-session reminders.
    """
    cohort = repo.get_cohort(db, slug)
    problems: list[Problem] = []
    checked_name = _name(name, problems)
    checked_email = _email(email, problems)
    checked_zone = _zone(zone, problems)
    checked_availability = _availability(availability, problems)
    checked_locale = _locale(locale, problems)
    person = None
    if checked_email is not None:
        person = repo.people_by_email(db, [checked_email]).get(checked_email)
    enrollment = None if person is None else repo.enrollment_of(db, cohort.id, person.id)
    if enrollment is not None and enrollment.role != Role.LEARNER.value:
        problems.append(
            Problem(
                f"is a {enrollment.role} of {slug}",
                field="email",
                value=email,
                hint="a person is either a learner or a facilitator of a cohort",
            )
        )
    elif enrollment is not None and enrollment.status == EnrollmentStatus.ACTIVE:
        problems.append(
            Problem(
                f"is already a learner of {slug}",
                field="email",
                value=email,
                hint="change their zone or availability instead of adding them again",
            )
        )
    if problems:
        raise _invalid(problems)
    assert checked_email is not None
    assert checked_zone is not None
    values = PersonValues(
        checked_email, checked_name, checked_zone, checked_locale, checked_availability
    )
    changed = person is not None and values.differs(person)
    if person is None:
        person_id = repo.insert_people(db, [values], now)[checked_email]
    else:
        person_id = person.id
        if changed:
            repo.update_people(db, [(person_id, values)], now)
    if enrollment is None:
        repo.insert_enrollments(
            db,
            [
                {
                    "cohort_id": cohort.id,
                    "person_id": person_id,
                    "role": Role.LEARNER.value,
                    "status": EnrollmentStatus.ACTIVE,
                    "enrolled_at": now,
                }
            ],
        )
    else:
        repo.update_enrollments(
            db, [{"id": enrollment.id, "status": EnrollmentStatus.ACTIVE, "left_at": None}]
        )
    others = _other_cohorts(db, person_id, cohort.id) if changed else []
    _refresh(db, [cohort, *others], now, horizon)


def remove_learner(
    db: Session,
    slug: str,
    email: str,
    *,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
) -> None:
    """Withdraw a learner: the enrollment stays (status ``withdrawn``, ``left_at`` = now), so
    history and sent mail keep their person. Every link they hold to this cohort (feed, page,
    the links in their emails) is revoked for good: if they come back they get new ones. With a
    published plan their deadlines go, their pending reminders are cancelled, they leave their
    sections (so later changes to the plan do not mail them) and get a cancellation of each
    series invitation they were sent. Withdrawing a learner who already left changes nothing."""
    cohort = repo.get_cohort(db, slug)
    person, enrollment = _learner(db, cohort, email)
    if enrollment.status == EnrollmentStatus.WITHDRAWN:
        return
    repo.update_enrollments(
        db, [{"id": enrollment.id, "status": EnrollmentStatus.WITHDRAWN, "left_at": now}]
    )
    revoke_tokens(db, cohort.id, person.id, now)
    db.execute(
        delete(SectionMemberRow).where(
            SectionMemberRow.cohort_id == cohort.id, SectionMemberRow.person_id == person.id
        )
    )
    _refresh(db, [cohort], now, horizon, invites=True)


def update_learner(
    db: Session,
    slug: str,
    email: str,
    *,
    zone: str | None = None,
    availability: str | None = None,
    now: datetime,
    horizon: timedelta = DEFAULT_HORIZON,
) -> None:
    """Change a learner's zone and/or availability (None: leave as is; an empty availability
    means the cohort's default).

    The learner keeps their sections until the next ``cohort plan --publish``; their deadlines
    and reminders are re-timed for the new clock now, in this cohort and in every other
    published cohort they are active in (the zone is the person's).
    """
    cohort = repo.get_cohort(db, slug)
    person, _ = _learner(db, cohort, email)
    problems: list[Problem] = []
    new_zone = person.zone if zone is None else _zone(zone, problems)
    new_availability = (
        person.availability if availability is None else _availability(availability, problems)
    )
    if problems:
        raise _invalid(problems)
    assert new_zone is not None
    values = PersonValues(person.email, person.name, new_zone, person.locale, new_availability)
    if not values.differs(person):
        return
    repo.update_people(db, [(person.id, values)], now)
    _refresh(db, [cohort, *_other_cohorts(db, person.id, cohort.id)], now, horizon)


# --- reading ------------------------------------------------------------------------------------


def get_learner(db: Session, slug: str, email: str) -> Learner:
    """One learner by email (as typed: it is normalised like the roster's), else NotFoundError."""
    cohort = repo.get_cohort(db, slug)
    person, _ = _learner(db, cohort, email)
    row = db.execute(
        select(EnrollmentRow, PersonRow)
        .join(PersonRow, PersonRow.id == EnrollmentRow.person_id)
        .where(EnrollmentRow.cohort_id == cohort.id, EnrollmentRow.person_id == person.id)
    ).one()
    return _view(cohort, row[0], row[1])


# --- the published plan follows ----------------------------------------------------------------


def _refresh(
    db: Session,
    cohorts: list[CohortRow],
    now: datetime,
    horizon: timedelta,
    *,
    invites: bool = False,
) -> None:
    """Bring each cohort up to date (:func:`~scheduler.services.cascade.bring_up_to_date`): feeds
    bumped; with a published plan, deadlines recomputed and reminders re-timed (newcomers
    welcomed, leavers' pending ones cancelled); with ``invites``, series invitations diffed too
    (a leaver's become cancellations)."""
    for cohort in cohorts:
        bring_up_to_date(db, cohort.slug, now, horizon=horizon, invites=invites)


def _other_cohorts(db: Session, person_id: int, cohort_id: int) -> list[CohortRow]:
    """The other cohorts the person is active in (their details matter there too)."""
    query = (
        select(CohortRow)
        .join(EnrollmentRow, EnrollmentRow.cohort_id == CohortRow.id)
        .where(
            EnrollmentRow.person_id == person_id,
            EnrollmentRow.status == EnrollmentStatus.ACTIVE,
            CohortRow.id != cohort_id,
        )
        .order_by(CohortRow.slug)
    )
    return list(db.scalars(query))


def _learner(db: Session, cohort: CohortRow, email: str) -> tuple[StoredPerson, StoredEnrollment]:
    """The learner of ``cohort`` with this email (any status), else NotFoundError."""
    found = _email(email, [])
    person = None if found is None else repo.people_by_email(db, [found]).get(found)
    enrollment = None if person is None else repo.enrollment_of(db, cohort.id, person.id)
    if person is None or enrollment is None or enrollment.role != Role.LEARNER.value:
        raise NotFoundError(f"no learner {_printable(email)!r} in cohort {cohort.slug}")
    return person, enrollment


# --- checks: the roster's rules, one field at a time -------------------------------------------


def _invalid(problems: list[Problem]) -> RosterError:
    return RosterError(problems, f"{len(problems)} problem(s) with the learner; nothing changed")


def _printable(text: str) -> str:
    """``text`` safe to store and show: no unpaired surrogates (they cannot be encoded)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _cell(field: str, text: str, problems: list[Problem]) -> str | None:
    """The stripped value, or None after recording why it cannot be used at all."""
    value = text.strip()
    if value != _printable(value):
        problems.append(
            Problem("contains characters that are not text", field=field, value=_printable(value))
        )
        return None
    if len(value) > _LIMITS[field]:
        problems.append(
            Problem(
                f"is {len(value):,} characters long (at most {_LIMITS[field]})",
                field=field,
                value=value,
            )
        )
        return None
    return value


def _name(text: str, problems: list[Problem]) -> str:
    value = _cell("name", text, problems)
    if value is None:
        return ""
    if not value:
        problems.append(Problem("is empty", field="name", hint="write the person's name"))
    elif any(ord(ch) < 32 for ch in value):
        problems.append(
            Problem("contains control characters or line breaks", field="name", value=value)
        )
    return value


def _email(text: str, problems: list[Problem]) -> str | None:
    """The normalised (lowercased) address, as the roster import stores it."""
    value = _cell("email", text, problems)
    if value is None:
        return None
    if not value:
        problems.append(Problem("is empty", field="email", hint=_EMAIL_HINT))
        return None
    checked = email_address(value)  # the roster import's rule (scheduler.roster.addresses)
    if isinstance(checked, Problem):
        problems.append(Problem(checked.message, field="email", value=value, hint=checked.hint))
        return None
    return checked


def _zone(text: str, problems: list[Problem]) -> str | None:
    value = _cell("zone", text, problems)
    if value is None:
        return None
    answer = resolve_zone(value)
    if answer.error:
        problems.append(Problem(answer.error, field="zone", value=value, hint=answer.hint))
    return answer.zone


def _availability(text: str | None, problems: list[Problem]) -> str | None:
    """Canonical availability text; None (the cohort's default) when empty or bad."""
    value = None if text is None else _cell("availability", text, problems)
    if not value:
        return None
    try:
        return parse_availability(value).to_text()
    except ValueError as e:
        problems.append(Problem(str(e), field="availability", value=value, hint=AVAILABILITY_HINT))
        return None


def _locale(text: str | None, problems: list[Problem]) -> str | None:
    value = None if text is None else _cell("locale", text, problems)
    if not value:
        return None
    try:
        return str(Locale.parse(value.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        problems.append(
            Problem(
                "is not a known locale",
                field="locale",
                value=value,
                hint="write one like 'en', 'en_GB', 'de_DE' or 'pt_BR'",
            )
        )
        return None


def is_active_member(db: Session, cohort_id: int, person_id: int) -> bool:
    """Whether the person is enrolled in the cohort and has not withdrawn."""
    enrollment = repo.enrollment_of(db, cohort_id, person_id)
    return enrollment is not None and enrollment.status == EnrollmentStatus.ACTIVE
