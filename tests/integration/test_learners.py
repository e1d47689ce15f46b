"""Adding, moving and withdrawing one learner of a published cohort, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from scheduler.errors import InputError, NotFoundError
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
    EnrollmentRow,
    LearnerDeadlinesRow,
    NotificationRow,
    PersonRow,
    SectionMemberRow,
)
from scheduler.runtime import Runtime
from scheduler.services import publishing
from scheduler.services.cohorts import load_cohort
from scheduler.services.deadlines import learner_items
from scheduler.services.learners import add_learner, remove_learner, update_learner
from scheduler.services.plans import plan_cohort
from scheduler.services.reminders import DEADLINE_REMINDER, LIVE_REMINDER, WELCOME, sync_reminders
from scheduler.services.roster import import_roster

SLUG = "ml-foundations-2027"
ROWS = [
    ["Yuki", "yuki@example.org", "Asia/Tokyo", "Mon-Fri 18:00-23:00", "ja_JP", ""],
    ["Sam", "sam@example.org", "America/Los_Angeles", "Mon-Fri 07:00-12:00", "en_US", ""],
    ["Lea", "lea@example.org", "Europe/Berlin", "", "de_DE", ""],
]
HORIZON = timedelta(days=7)
IN_COURSE = datetime.fromisoformat("2027-03-03T06:00:00+00:00")  # Wednesday of week 1


@pytest.fixture
def published(make_published: Callable[[list[list[str]]], Runtime]) -> Runtime:
    return make_published(ROWS)


def person_id(runtime: Runtime, email: str) -> int:
    with runtime.transaction() as db:
        found = db.scalar(select(PersonRow.id).where(PersonRow.email == email))
        assert found is not None
        return found


def enrollment(runtime: Runtime, email: str) -> EnrollmentRow:
    with runtime.transaction() as db:
        row = db.scalar(
            select(EnrollmentRow)
            .join(PersonRow, PersonRow.id == EnrollmentRow.person_id)
            .where(PersonRow.email == email)
        )
        assert row is not None
        db.expunge(row)
        return row


def notifications(runtime: Runtime, email: str, *kinds: str) -> list[NotificationRow]:
    with runtime.transaction() as db:
        rows = list(
            db.scalars(
                select(NotificationRow)
                .where(
                    NotificationRow.person_id == person_id(runtime, email),
                    NotificationRow.kind.in_(kinds),
                )
                .order_by(NotificationRow.id)
            )
        )
        db.expunge_all()
        return rows


def deadlines(runtime: Runtime, email: str) -> dict[str, datetime]:
    """The learner's async items: key -> soft deadline."""
    with runtime.transaction() as db:
        cohort = repo.get_cohort(db, SLUG)
        return {i.key: i.soft for i in learner_items(db, cohort.id, person_id(runtime, email))}


def feeds_version(runtime: Runtime) -> int:
    with runtime.transaction() as db:
        version = db.scalar(select(CohortRow.feeds_version).where(CohortRow.slug == SLUG))
        assert version is not None
        return version


def reminders_in_course(runtime: Runtime) -> None:
    """Week 1 of the course: the reminders of the next week are in the outbox."""
    with runtime.transaction() as db:
        sync_reminders(db, SLUG, IN_COURSE, HORIZON)


def test_add_enrolls_welcomes_and_computes_deadlines(published: Runtime) -> None:
    now = published.clock.now()
    before = feeds_version(published)
    with published.transaction() as db:
        add_learner(
            db,
            SLUG,
            name="Ana Gómez",
            email="  Ana.Gomez@Example.ORG ",
            zone="co",  # a one-zone country: America/Bogota
            availability="mon-fri 18:00-22:00",
            locale="es-CO",
            now=now,
        )
    with published.transaction() as db:
        person = db.scalar(select(PersonRow).where(PersonRow.email == "ana.gomez@example.org"))
        assert person is not None
        assert (person.name, person.zone, person.locale, person.availability) == (
            "Ana Gómez",
            "America/Bogota",
            "es_CO",
            "Mon-Fri 18:00-22:00",
        )
        members = db.scalar(select(func.count()).where(SectionMemberRow.person_id == person.id))
    row = enrollment(published, "ana.gomez@example.org")
    assert (row.role, row.status, row.enrolled_at, row.left_at) == ("learner", "active", now, None)
    welcome = notifications(published, "ana.gomez@example.org", WELCOME)
    assert [(w.status, w.due_at) for w in welcome] == [("pending", now)]
    items = deadlines(published, "ana.gomez@example.org")
    assert items  # computed at once, before any new plan is published
    assert members == 0  # placed in a section by the next `cohort plan --publish`
    assert feeds_version(published) > before


def test_a_withdrawn_learner_is_enrolled_again(published: Runtime) -> None:
    now = published.clock.now()
    with published.transaction() as db:
        remove_learner(db, SLUG, "sam@example.org", now=now)
    with published.transaction() as db:
        add_learner(db, SLUG, name="Sam", email="sam@example.org", zone="America/Denver", now=now)
    row = enrollment(published, "sam@example.org")
    assert (row.status, row.left_at) == ("active", None)
    assert deadlines(published, "sam@example.org")
    with published.transaction() as db:
        zone = db.scalar(select(PersonRow.zone).where(PersonRow.email == "sam@example.org"))
    assert zone == "America/Denver"


def test_update_zone_moves_deadlines_and_replaces_their_reminders(published: Runtime) -> None:
    reminders_in_course(published)
    before = deadlines(published, "lea@example.org")
    old = notifications(published, "lea@example.org", DEADLINE_REMINDER)
    old_live = notifications(published, "lea@example.org", LIVE_REMINDER)
    assert old and all(r.status == "pending" for r in old)
    assert old_live
    with published.transaction() as db:
        update_learner(
            db, SLUG, "LEA@example.org", zone="US/Eastern", now=IN_COURSE, horizon=HORIZON
        )
    with published.transaction() as db:
        zone = db.scalar(select(PersonRow.zone).where(PersonRow.email == "lea@example.org"))
    assert zone == "America/New_York"  # canonicalised like a roster import
    after = deadlines(published, "lea@example.org")
    shared = before.keys() & after.keys()
    assert shared and all(after[k] != before[k] for k in shared)  # 20:00 in New York now
    assert any(k.startswith("replay/") for k in after.keys() - before.keys())  # classes: too early
    by_id = {r.id: r for r in notifications(published, "lea@example.org", DEADLINE_REMINDER)}
    assert all(by_id[r.id].status == "cancelled" for r in old)  # the old times: not sent
    new = [r for r in by_id.values() if r.status == "pending"]
    assert new
    assert {r.due_at for r in new}.isdisjoint({r.due_at for r in old})
    # live sessions did not move: their reminders stay as they were
    live = {r.id: r.status for r in notifications(published, "lea@example.org", LIVE_REMINDER)}
    assert live == {r.id: r.status for r in old_live}


def test_a_zone_change_reaches_every_published_cohort_of_the_person(
    published: Runtime, example_cohort_text: str, make_roster: Callable[..., bytes]
) -> None:
    other = "ml-foundations-2027-b"
    now = published.clock.now()
    with published.transaction() as db:
        text = example_cohort_text.replace(f'slug = "{SLUG}"', f'slug = "{other}"')
        load_cohort(db, text, "b.toml", now)
        import_roster(db, other, make_roster([ROWS[2]]), "b.csv", now)
        _, _, plan = plan_cohort(db, other)
        publishing.publish(db, other, plan, now)

    def soft_deadlines(slug: str) -> set[datetime]:
        with published.transaction() as db:
            cohort = repo.get_cohort(db, slug)
            return {
                i.soft
                for i in learner_items(db, cohort.id, person_id(published, "lea@example.org"))
            }

    before = soft_deadlines(other)
    with published.transaction() as db:
        update_learner(db, SLUG, "lea@example.org", zone="Asia/Kolkata", now=now)
    after = soft_deadlines(other)
    assert before and after and before != after  # the other cohort follows the person's clock


def test_update_availability_back_to_the_cohort_default(published: Runtime) -> None:
    now = published.clock.now()
    with published.transaction() as db:
        update_learner(db, SLUG, "yuki@example.org", availability="", now=now)
        availability = db.scalar(
            select(PersonRow.availability).where(PersonRow.email == "yuki@example.org")
        )
    assert availability is None


def test_remove_withdraws_keeps_history_and_cancels_pending_mail(published: Runtime) -> None:
    reminders_in_course(published)
    pending = [
        r
        for r in notifications(published, "yuki@example.org", LIVE_REMINDER, DEADLINE_REMINDER)
        if r.status == "pending"
    ]
    assert pending
    yuki = person_id(published, "yuki@example.org")
    with published.transaction() as db:
        remove_learner(db, SLUG, "yuki@example.org", now=IN_COURSE, horizon=HORIZON)
    row = enrollment(published, "yuki@example.org")
    assert (row.status, row.left_at) == ("withdrawn", IN_COURSE)
    after = {
        r.id: r.status
        for r in notifications(
            published, "yuki@example.org", LIVE_REMINDER, DEADLINE_REMINDER, WELCOME
        )
    }
    assert all(after[r.id] == "cancelled" for r in pending)
    assert "pending" not in after.values()
    cancellations = notifications(published, "yuki@example.org", "cancellation")
    assert cancellations  # the class series leaves their calendar
    with published.transaction() as db:
        assert db.get(PersonRow, yuki) is not None  # never deleted
        assert not db.scalar(select(func.count()).where(LearnerDeadlinesRow.person_id == yuki))
        assert not db.scalar(select(func.count()).where(SectionMemberRow.person_id == yuki))
    with published.transaction() as db:  # again: nothing changes
        remove_learner(db, SLUG, "yuki@example.org", now=IN_COURSE + timedelta(hours=1))
    assert enrollment(published, "yuki@example.org").left_at == IN_COURSE


def test_bad_input_lists_every_field_and_writes_nothing(published: Runtime) -> None:
    now = published.clock.now()
    before = feeds_version(published)
    with pytest.raises(InputError) as caught, published.transaction() as db:
        add_learner(
            db,
            SLUG,
            name="",
            email="not-an-address",
            zone="Europe/Berlinn",
            availability="Mon 25:00-26:00",
            locale="xx_YY",
            now=now,
        )
    fields = [p.field for p in caught.value.problems]
    assert fields == ["name", "email", "zone", "availability", "locale"]
    assert "Europe/Berlin" in (caught.value.problems[2].hint or "")  # did you mean
    with published.transaction() as db:
        assert db.scalar(select(func.count()).select_from(PersonRow)) == 3 + 3  # + facilitators
    with pytest.raises(InputError) as caught, published.transaction() as db:
        update_learner(
            db, SLUG, "lea@example.org", zone="Mars/Olympus", availability="often", now=now
        )
    assert [p.field for p in caught.value.problems] == ["zone", "availability"]
    with published.transaction() as db:
        zone = db.scalar(select(PersonRow.zone).where(PersonRow.email == "lea@example.org"))
    assert zone == "Europe/Berlin"
    assert feeds_version(published) == before


@pytest.mark.parametrize(
    ("email", "message"),
    [("sam@example.org", "already a learner"), ("amara@example.org", "is a facilitator")],
    ids=["enrolled_learner", "facilitator"],
)
def test_adding_someone_already_in_the_cohort_is_refused(
    published: Runtime, email: str, message: str
) -> None:
    with pytest.raises(InputError, match=message), published.transaction() as db:
        add_learner(db, SLUG, name="X", email=email, zone="UTC", now=published.clock.now())


def test_unknown_learner_or_cohort_is_not_found(published: Runtime) -> None:
    now = published.clock.now()
    with published.transaction() as db:
        with pytest.raises(NotFoundError, match=r"nobody@example\.org"):
            remove_learner(db, SLUG, "nobody@example.org", now=now)
        with pytest.raises(NotFoundError):
            update_learner(db, SLUG, "amara@example.org", zone="UTC", now=now)  # a facilitator
        with pytest.raises(NotFoundError):
            update_learner(db, SLUG, "not an address", zone="UTC", now=now)
        with pytest.raises(NotFoundError, match="no cohort"):
            add_learner(db, "no-such-cohort", name="A", email="a@example.org", zone="UTC", now=now)
