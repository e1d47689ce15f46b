"""Late joiners (pure): the section with room whose future meetings fit best; nobody else moves."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduler.domain.availability import Availability, parse_availability
from scheduler.planning.placement import (
    Newcomer,
    SectionSeats,
    fit_count,
    place_learner,
    place_learners,
)
from scheduler.timeutil import MINUTES_PER_WEEK

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "America/Bogota"]
MONDAY = datetime(2027, 3, 1, tzinfo=UTC)  # spans both March clock changes over 5 weeks


def weekly(weekday: int, hour: int, minute: int = 0, weeks: int = 5, minutes: int = 90) -> tuple:
    """Meetings once a week at a fixed UTC time, as (start, end) pairs."""
    first = MONDAY + timedelta(days=weekday, hours=hour, minutes=minute)
    return tuple(
        (first + timedelta(weeks=w), first + timedelta(weeks=w, minutes=minutes))
        for w in range(weeks)
    )


def seats(section: int, meetings: tuple, size: int = 0, capacity: int | None = None):
    return SectionSeats(section, capacity, size, meetings)


# --- named cases -------------------------------------------------------------------------------

EVENING_BERLIN = weekly(0, 17)  # Mon 17:00 UTC: 18:00/19:00 in Berlin
MORNING_NEW_YORK = weekly(1, 14)  # Tue 14:00 UTC: 09:00/10:00 in New York


def test_joins_the_section_that_fits_their_evening() -> None:
    sections = [seats(0, MORNING_NEW_YORK), seats(1, EVENING_BERLIN)]
    choice = place_learner(sections, "Europe/Berlin", parse_availability("Mon 17:00-22:00"))
    assert choice is not None
    assert (choice.section, choice.fits, choice.meetings) == (1, 5, 5)


def test_full_section_is_skipped_even_when_it_fits_best() -> None:
    sections = [seats(0, MORNING_NEW_YORK), seats(1, EVENING_BERLIN, size=3, capacity=3)]
    choice = place_learner(sections, "Europe/Berlin", parse_availability("Mon 17:00-22:00"))
    assert choice is not None
    assert (choice.section, choice.fits) == (0, 0)


def test_every_section_full_places_nobody() -> None:
    sections = [seats(0, MORNING_NEW_YORK, 2, 2), seats(1, EVENING_BERLIN, 3, 3)]
    assert place_learner(sections, "Europe/Berlin", parse_availability("daily 00:00-23:59")) is None


@pytest.mark.parametrize(
    ("sizes", "expected"),
    [((5, 3), 1), ((3, 3), 0), ((2, 7), 0)],
    ids=["smaller_section_wins", "equal_size_lower_index_wins", "first_is_smaller"],
)
def test_ties_in_fit_go_to_the_smaller_then_lower_section(
    sizes: tuple[int, int], expected: int
) -> None:
    sections = [seats(0, EVENING_BERLIN, sizes[0]), seats(1, EVENING_BERLIN, sizes[1])]
    choice = place_learner(sections, "Europe/Berlin", parse_availability("Mon 17:00-22:00"))
    assert choice is not None and choice.section == expected


def test_clock_change_counts_only_the_weeks_that_fit() -> None:
    # Mon 22:00 UTC is 17:00 in New York until 14 March 2027 and 18:00 after it.
    sections = [seats(0, weekly(0, 22, weeks=4, minutes=60))]
    choice = place_learner(sections, "America/New_York", parse_availability("Mon 17:00-18:00"))
    assert choice is not None and (choice.fits, choice.meetings) == (2, 4)


def test_several_newcomers_fill_a_section_then_the_next() -> None:
    sections = [seats(0, EVENING_BERLIN, 1, 2), seats(1, MORNING_NEW_YORK, 0, 2)]
    evening = parse_availability("Mon 17:00-22:00")
    newcomers = [Newcomer(f"n{i}@example.org", "Europe/Berlin", evening) for i in range(4)]
    placed = place_learners(sections, newcomers)
    assert [p.section if p else None for p in placed.values()] == [0, 1, 1, None]
    assert list(placed) == sorted(placed)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="capacity"):
        seats(0, EVENING_BERLIN, 0, 0)
    with pytest.raises(ValueError, match="aware"):
        SectionSeats(0, None, 0, ((datetime(2027, 3, 1), datetime(2027, 3, 2)),))  # noqa: DTZ001
    with pytest.raises(ValueError, match="unique"):
        place_learners([seats(0, ()), seats(0, ())], [])


# --- properties --------------------------------------------------------------------------------

availabilities = st.lists(
    st.tuples(st.integers(0, MINUTES_PER_WEEK - 1), st.integers(30, 12 * 60)).map(
        lambda w: (w[0], w[0] + w[1])
    ),
    max_size=4,
).map(Availability.from_windows)

meeting_lists = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 23), st.sampled_from([0, 30])),
    max_size=3,
).map(lambda times: tuple(m for d, h, mm in times for m in weekly(d, h, mm, weeks=3)))


@st.composite
def series_sections(draw: st.DrawFn) -> list[SectionSeats]:
    count = draw(st.integers(1, 5))
    capacity = draw(st.none() | st.integers(1, 6))
    indexes = draw(st.permutations(range(count)))
    sections = []
    for index in indexes:
        top = 8 if capacity is None else capacity
        sections.append(
            SectionSeats(index, capacity, draw(st.integers(0, top)), draw(meeting_lists))
        )
    return sections


newcomer_lists = st.lists(
    st.builds(
        Newcomer,
        key=st.integers(0, 10_000).map(lambda i: f"l{i}@example.org"),
        zone=st.sampled_from(ZONES),
        availability=availabilities,
    ),
    max_size=8,
    unique_by=lambda n: n.key,
)


@given(series_sections(), st.sampled_from(ZONES), availabilities)
def test_choice_has_room_and_fits_best(
    sections: list[SectionSeats], zone_name: str, availability: Availability
) -> None:
    choice = place_learner(sections, zone_name, availability)
    open_ = [s for s in sections if s.has_room]
    if not open_:
        assert choice is None
        return
    assert choice is not None
    chosen = next(s for s in sections if s.section == choice.section)
    assert chosen.has_room
    fits = {s.section: fit_count(s, zone_name, availability) for s in open_}
    assert choice.fits == fits[choice.section] == max(fits.values())
    best = [s for s in open_ if fits[s.section] == choice.fits]
    assert (chosen.size, chosen.section) == min((s.size, s.section) for s in best)
    assert choice.meetings == len(chosen.meetings)


@given(series_sections(), newcomer_lists)
def test_capacity_is_never_exceeded(
    sections: list[SectionSeats], newcomers: list[Newcomer]
) -> None:
    placed = place_learners(sections, newcomers)
    assert set(placed) == {n.key for n in newcomers}
    for s in sections:
        joined = sum(1 for p in placed.values() if p is not None and p.section == s.section)
        if s.capacity is not None:
            assert s.size + joined <= max(s.size, s.capacity)
            if s.size >= s.capacity:
                assert joined == 0
    room = sum(
        len(newcomers) if s.capacity is None else max(0, s.capacity - s.size) for s in sections
    )
    assert sum(p is not None for p in placed.values()) == min(len(newcomers), room)


@given(series_sections(), newcomer_lists, st.randoms(use_true_random=False))
def test_answer_does_not_depend_on_input_order(
    sections: list[SectionSeats], newcomers: list[Newcomer], rng: random.Random
) -> None:
    first = place_learners(sections, newcomers)
    shuffled_sections, shuffled_newcomers = list(sections), list(newcomers)
    rng.shuffle(shuffled_sections)
    rng.shuffle(shuffled_newcomers)
    assert place_learners(shuffled_sections, shuffled_newcomers) == first
    assert place_learners(sections, newcomers) == first
