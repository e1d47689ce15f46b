"""Cohort loading and roster import through the services, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from scheduler.domain.cohort import Role
from scheduler.domain.cohort_file import parse_cohort_file
from scheduler.errors import ConfigError, NotFoundError, RosterError
from scheduler.persistence import repo
from scheduler.persistence.models import EnrollmentRow, PersonRow
from scheduler.runtime import Runtime
from scheduler.services.cohorts import load_cohort
from scheduler.services.roster import import_roster

SLUG = "ml-foundations-2027"
Build = Callable[..., bytes]


@pytest.fixture
def loaded(runtime: Runtime, example_cohort_text: str) -> Runtime:
    with runtime.transaction() as db:
        load_cohort(db, example_cohort_text, "cohort.toml", runtime.clock.now())
    return runtime


def _counts(runtime: Runtime) -> tuple[int, int]:
    with runtime.transaction() as db:
        return (
            db.scalar(select(func.count()).select_from(PersonRow)) or 0,
            db.scalar(select(func.count()).select_from(EnrollmentRow)) or 0,
        )


def test_stored_cohort_reads_back_equal(loaded: Runtime, example_cohort_text: str) -> None:
    parsed = parse_cohort_file(example_cohort_text)
    with loaded.transaction() as db:
        stored = repo.cohort_spec(db, repo.get_cohort(db, SLUG))
    by_email = sorted(parsed.facilitators, key=lambda f: f.email)
    assert stored == replace(parsed, facilitators=tuple(by_email))


def test_reloading_the_same_file_changes_nothing(loaded: Runtime, example_cohort_text: str) -> None:
    before = _counts(loaded)
    with loaded.transaction() as db:
        result = load_cohort(db, example_cohort_text, "cohort.toml", loaded.clock.now())
    assert not result.created
    assert _counts(loaded) == before == (3, 3)


def test_bad_cohort_file_writes_nothing(runtime: Runtime, example_cohort_text: str) -> None:
    with pytest.raises(ConfigError), runtime.transaction() as db:
        load_cohort(
            db,
            example_cohort_text.replace("weeks = 8", "weeks = -1"),
            "c.toml",
            runtime.clock.now(),
        )
    with runtime.transaction() as db:
        assert repo.list_cohorts(db) == []


def test_import_then_reimport(loaded: Runtime, make_roster: Build) -> None:
    rows = [
        ["Ann", "ann@example.org", "Europe/Berlin", "", "", ""],
        ["Bo", "bo@example.org", "JP", "Mon-Fri 08:00-10:00", "ja_JP", ""],
        ["Cy", "cy@example.org", "US/Pacific", "", "", "learner"],
    ]
    with loaded.transaction() as db:
        first = import_roster(db, SLUG, make_roster(rows), "r.csv", loaded.clock.now())
    assert first.counts()["added"] == 3
    with loaded.transaction() as db:
        again = import_roster(db, SLUG, make_roster(rows), "r.csv", loaded.clock.now())
    assert (len(again.added), len(again.updated), len(again.unchanged)) == (0, 0, 3)
    changed = [rows[0], ["Bo", "BO@example.org", "Asia/Seoul", "Mon-Fri 08:00-10:00", "ja_JP", ""]]
    with loaded.transaction() as db:
        third = import_roster(db, SLUG, make_roster(changed), "r.csv", loaded.clock.now())
        people = {
            p.email: p for _, p in repo.roster(db, repo.get_cohort(db, SLUG).id, Role.LEARNER)
        }
    assert third.updated == ["bo@example.org"]
    assert third.unchanged == ["ann@example.org"]
    assert third.missing == ["cy@example.org"]  # reported, kept
    assert people["bo@example.org"].zone == "Asia/Seoul"
    assert people["cy@example.org"].zone == "America/Los_Angeles"
    assert people["ann@example.org"].availability is None  # the cohort default applies


def test_bad_roster_writes_nothing(loaded: Runtime, make_roster: Build) -> None:
    before = _counts(loaded)
    rows = [["Ann", "ann@example.org", "UTC", "", "", ""], ["Bad", "bad", "Nowhere/X", "", "", ""]]
    with pytest.raises(RosterError) as info, loaded.transaction() as db:
        import_roster(db, SLUG, make_roster(rows), "r.csv", loaded.clock.now())
    assert [(p.line, p.field) for p in info.value.problems] == [(3, "email"), (3, "timezone")]
    assert "nothing was imported" in info.value.summary
    assert _counts(loaded) == before


def test_partial_imports_only_valid_rows(loaded: Runtime, make_roster: Build) -> None:
    rows = [["Ann", "ann@example.org", "UTC", "", "", ""], ["Bad", "bad", "UTC", "", "", ""]]
    with loaded.transaction() as db:
        result = import_roster(
            db, SLUG, make_roster(rows), "r.csv", loaded.clock.now(), partial=True
        )
    assert result.added == ["ann@example.org"]
    assert len(result.report.errors) == 1
    assert _counts(loaded) == (4, 4)


def test_dry_run_writes_nothing(loaded: Runtime, make_roster: Build) -> None:
    before = _counts(loaded)
    with loaded.transaction() as db:
        result = import_roster(
            db,
            SLUG,
            make_roster([["Ann", "ann@example.org", "UTC", "", "", ""]]),
            "r.csv",
            loaded.clock.now(),
            dry_run=True,
        )
    assert result.added == ["ann@example.org"]
    assert not result.written
    assert _counts(loaded) == before


def test_unknown_cohort(runtime: Runtime, make_roster: Build) -> None:
    with pytest.raises(NotFoundError, match="cohort cohort load"), runtime.transaction() as db:
        import_roster(
            db,
            "nope",
            make_roster([["A", "a@example.org", "UTC", "", "", ""]]),
            "r.csv",
            runtime.clock.now(),
        )


def test_person_in_two_cohorts(
    loaded: Runtime, example_cohort_text: str, make_roster: Build
) -> None:
    other = example_cohort_text.replace('slug = "ml-foundations-2027"', 'slug = "second-run"')
    row = [["Ann", "ann@example.org", "UTC", "", "", ""]]
    with loaded.transaction() as db:
        load_cohort(db, other, "c2.toml", loaded.clock.now())
        import_roster(db, SLUG, make_roster(row), "r.csv", loaded.clock.now())
        second = import_roster(db, "second-run", make_roster(row), "r.csv", loaded.clock.now())
    assert second.added == ["ann@example.org"]
    assert _counts(loaded) == (4, 8)  # 3 facilitators + Ann; each enrolled in both cohorts
