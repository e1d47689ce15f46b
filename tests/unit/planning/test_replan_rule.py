"""Rolling re-plans: coverage of a series' future and the rule that decides what moves.

Named cases pin the rule of :mod:`scheduler.planning.replan` (and its DST behaviour: coverage is
judged on each learner's own clock, week by week); hypothesis properties check the invariants
over small random cohorts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.domain.availability import parse_availability
from scheduler.planning.replan import (
    Meeting,
    Person,
    ReplanDecision,
    SeriesFuture,
    choose_replan,
    series_coverage,
)

BASE = datetime(2027, 3, 1, tzinfo=UTC)  # a Monday, 00:00 UTC
EVENINGS = parse_availability("Mon-Fri 18:00-22:00")
MORNINGS = parse_availability("Mon 08:00-10:00")
NEVER = parse_availability("Sat 10:00-11:00")


def meeting(week: int, day: int, hour: int, minute: int = 0, minutes: int = 60) -> Meeting:
    """A meeting ``day`` days (0 = Monday) and ``hour``:``minute`` UTC into course week ``week``."""
    start = BASE + timedelta(weeks=week, days=day, hours=hour, minutes=minute)
    return Meeting(week, start, start + timedelta(minutes=minutes))


def at(when: datetime, week: int, minutes: int = 60) -> Meeting:
    return Meeting(week, when, when + timedelta(minutes=minutes))


# For Bogota (UTC-5 all year, no DST) on "Mon-Fri 18:00-22:00":
def good(week: int, day: int = 0) -> Meeting:
    return meeting(week, day, 23)  # 18:00-19:00 in Bogota: fits


def bad(week: int, day: int = 0) -> Meeting:
    return meeting(week, day, 14)  # 09:00-10:00 in Bogota: does not fit


def bogota(availability: str = "Mon-Fri 18:00-22:00") -> Person:
    return Person("America/Bogota", parse_availability(availability))


def sectioned(
    key: str, meetings: dict[int, tuple[Meeting, ...]], members: dict[str, int]
) -> SeriesFuture:
    return SeriesFuture(key, True, meetings, members)


def cowork(key: str, meetings: dict[int, tuple[Meeting, ...]]) -> SeriesFuture:
    return SeriesFuture(key, False, meetings)


def verdicts(decision: ReplanDecision) -> dict[str, str]:
    return {v.key: v.verdict for v in decision.series}


# --- series_coverage: sectioned series ----------------------------------------------------------


def test_sectioned_all_fitting_scores_one() -> None:
    s = sectioned("class", {0: (good(0), good(0, 2), good(1))}, {"ana": 0})
    assert series_coverage(s, {"ana": bogota()}) == 1.0


def test_sectioned_none_fitting_scores_zero() -> None:
    s = sectioned("class", {0: (bad(0), bad(0, 2), bad(1))}, {"ana": 0})
    assert series_coverage(s, {"ana": bogota()}) == 0.0


def test_sectioned_half_fitting_scores_half() -> None:
    s = sectioned("class", {0: (good(0), bad(0, 2), good(1), bad(1, 2))}, {"ana": 0})
    assert series_coverage(s, {"ana": bogota()}) == 0.5


def test_sectioned_scores_each_learner_on_their_own_section() -> None:
    s = sectioned("class", {0: (good(0), good(1)), 1: (bad(0), good(1))}, {"ana": 0, "ben": 1})
    assert series_coverage(s, {"ana": bogota(), "ben": bogota()}) == 1.5


def test_learner_in_no_section_scores_zero() -> None:
    """Only members are summed: ben would fit section 0 but is in none, so he adds nothing."""
    s = sectioned("class", {0: (good(0), good(1))}, {"ana": 0})
    people = {"ana": bogota(), "ben": bogota()}
    assert series_coverage(s, people) == 1.0
    assert series_coverage(s, {"ben": bogota()}) == 0.0


def test_member_of_a_section_without_meetings_scores_zero() -> None:
    s = sectioned("class", {0: (good(0),), 1: ()}, {"ana": 0, "ben": 1})
    assert series_coverage(s, {"ana": bogota(), "ben": bogota()}) == 1.0


def test_member_unknown_to_people_is_ignored() -> None:
    s = sectioned("class", {0: (good(0),)}, {"ana": 0, "ghost": 0})
    assert series_coverage(s, {"ana": bogota()}) == 1.0


def test_series_that_no_longer_meets_scores_zero() -> None:
    s = sectioned("class", {0: (), 1: ()}, {"ana": 0})
    assert not s.meets
    assert series_coverage(s, {"ana": bogota()}) == 0.0


def test_a_meeting_must_fit_whole() -> None:
    """21:30-22:30 in Bogota starts inside 18:00-22:00 but ends outside it."""
    s = sectioned("class", {0: (meeting(0, 1, 2, 30),)}, {"ana": 0})
    assert series_coverage(s, {"ana": bogota()}) == 0.0
    inside = sectioned("class", {0: (meeting(0, 1, 2, 0),)}, {"ana": 0})  # 21:00-22:00
    assert series_coverage(inside, {"ana": bogota()}) == 1.0


# --- series_coverage: co-working ------------------------------------------------------------------


def test_cowork_is_the_share_of_weeks_with_a_fitting_block() -> None:
    s = cowork("cowork", {0: (bad(0), good(0, 2), bad(1), bad(1, 2))})
    assert series_coverage(s, {"ana": bogota()}) == 0.5


def test_cowork_counts_a_week_once_however_many_blocks_fit() -> None:
    s = cowork("cowork", {0: (good(0), good(0, 1), good(0, 2), bad(1), good(1, 3))})
    assert series_coverage(s, {"ana": bogota()}) == 1.0


def test_cowork_any_block_of_any_section_counts() -> None:
    """The fitting block of week 0 is in another section (block) than the bad one."""
    s = cowork("cowork", {0: (bad(0), bad(1)), 1: (good(0),), 2: (bad(1, 3),)})
    assert series_coverage(s, {"ana": bogota()}) == 0.5


def test_cowork_sums_over_every_learner_without_members() -> None:
    s = cowork("cowork", {0: (good(0), good(1))})
    people = {"ana": bogota(), "ben": bogota(), "chi": bogota("Sat 10:00-11:00")}
    assert s.members == {}
    assert series_coverage(s, people) == 2.0


def test_cowork_weeks_are_those_that_still_have_blocks() -> None:
    """Weeks before the boundary are not in the future at all, so they do not dilute it."""
    s = cowork("cowork", {0: (good(5), bad(6), good(7))})
    assert series_coverage(s, {"ana": bogota()}) == pytest.approx(2 / 3)


# --- DST: every week is judged on the learner's own clock ------------------------------------


def test_berlin_fixed_utc_meeting_fits_before_the_march_change_only() -> None:
    """Mon 20:00 UTC is 21:00-22:00 CET on 22 March, 22:00-23:00 CEST on 29 March."""
    ana = {"ana": Person("Europe/Berlin", EVENINGS)}
    before = at(datetime(2027, 3, 22, 20, tzinfo=UTC), 3)
    after = at(datetime(2027, 3, 29, 20, tzinfo=UTC), 4)
    assert series_coverage(sectioned("c", {0: (before,)}, {"ana": 0}), ana) == 1.0
    assert series_coverage(sectioned("c", {0: (after,)}, {"ana": 0}), ana) == 0.0
    assert series_coverage(sectioned("c", {0: (before, after)}, {"ana": 0}), ana) == 0.5
    assert series_coverage(cowork("w", {0: (before, after)}), ana) == 0.5


def test_berlin_fixed_utc_meeting_fits_after_the_march_change_only() -> None:
    """Mon 16:30 UTC is 17:30 CET on 22 March (too early), 18:30 CEST on 29 March."""
    ana = {"ana": Person("Europe/Berlin", EVENINGS)}
    before = at(datetime(2027, 3, 22, 16, 30, tzinfo=UTC), 3)
    after = at(datetime(2027, 3, 29, 16, 30, tzinfo=UTC), 4)
    assert series_coverage(sectioned("c", {0: (before,)}, {"ana": 0}), ana) == 0.0
    assert series_coverage(sectioned("c", {0: (after,)}, {"ana": 0}), ana) == 1.0
    assert series_coverage(sectioned("c", {0: (before, after)}, {"ana": 0}), ana) == 0.5


def test_new_york_changes_two_weeks_before_berlin() -> None:
    """Mon 22:30 UTC: 17:30 EST on 8 March (no), 18:30 EDT on 15 March (yes); in Berlin it is
    23:30 or later in every week, so never."""
    weeks = [at(datetime(2027, 3, d, 22, 30, tzinfo=UTC), w) for w, d in ((1, 8), (2, 15))]
    s = sectioned("c", {0: tuple(weeks)}, {"ny": 0, "de": 0})
    assert series_coverage(s, {"ny": Person("America/New_York", EVENINGS)}) == 0.5
    assert series_coverage(s, {"de": Person("Europe/Berlin", EVENINGS)}) == 0.0
    only_first = sectioned("c", {0: weeks[:1]}, {"ny": 0})
    assert series_coverage(only_first, {"ny": Person("America/New_York", EVENINGS)}) == 0.0


def test_sydney_changes_the_other_way_in_april() -> None:
    """Sun 21:30 UTC is Mon 08:30 AEDT on 29 March, Mon 07:30 AEST on 5 April."""
    early = {"syd": Person("Australia/Sydney", parse_availability("Mon-Fri 07:00-09:00"))}
    weeks = (
        at(datetime(2027, 3, 28, 21, 30, tzinfo=UTC), 4),
        at(datetime(2027, 4, 4, 21, 30, tzinfo=UTC), 5),
    )
    assert series_coverage(sectioned("c", {0: weeks}, {"syd": 0}), early) == 0.5
    assert series_coverage(sectioned("c", {0: weeks[1:]}, {"syd": 0}), early) == 1.0


@pytest.mark.parametrize("zone", ["America/Bogota", "Asia/Kolkata"])
def test_zones_without_dst_see_a_fixed_utc_slot_the_same_every_week(zone: str) -> None:
    daily = Person(zone, parse_availability("daily 00:00-12:00"))
    for hour in range(0, 24, 3):
        slots = tuple(meeting(w, 0, hour) for w in range(8))  # 1 March to 26 April
        score = series_coverage(sectioned("c", {0: slots}, {"p": 0}), {"p": daily})
        assert score in (0.0, 1.0), (zone, hour, score)


def test_replan_that_keeps_the_berlin_wall_clock_after_the_change_applies() -> None:
    ana = {"ana": Person("Europe/Berlin", EVENINGS)}
    first = at(datetime(2027, 3, 22, 20, tzinfo=UTC), 3)  # 21:00 CET
    now = sectioned("class", {0: (first, at(datetime(2027, 3, 29, 20, tzinfo=UTC), 4))}, {"ana": 0})
    new = sectioned("class", {0: (first, at(datetime(2027, 3, 29, 19, tzinfo=UTC), 4))}, {"ana": 0})
    d = choose_replan([now], [new], ana, {}, 0.05, 2)
    assert (d.apply, d.moves, d.before, d.after) == (True, ("class",), 0.5, 1.0)


# --- choose_replan: verdicts ------------------------------------------------------------------


def two_learners() -> dict[str, Person]:
    return {"ana": bogota(), "ben": bogota()}


def current_class() -> SeriesFuture:
    return sectioned("class", {0: (good(0), bad(1)), 1: (bad(0), bad(1))}, {"ana": 0, "ben": 1})


def better_class() -> SeriesFuture:
    return sectioned("class", {0: (good(0), good(1)), 1: (good(0), bad(1))}, {"ana": 0, "ben": 1})


def test_same_future_is_unchanged() -> None:
    d = choose_replan([current_class()], [current_class()], two_learners(), {}, 0.05, 2)
    assert verdicts(d) == {"class": "unchanged"}
    assert (d.apply, d.moves, d.before, d.after, d.pairs) == (False, (), 0.25, 0.25, 2)


def test_same_meetings_in_another_order_are_unchanged() -> None:
    shuffled = sectioned("class", {1: (bad(1), bad(0)), 0: (bad(1), good(0))}, {"ben": 1, "ana": 0})
    d = choose_replan([current_class()], [shuffled], two_learners(), {}, 0.05, 2)
    assert verdicts(d) == {"class": "unchanged"}


def test_same_meetings_with_other_members_is_a_change() -> None:
    swapped = sectioned("class", {0: (good(0), bad(1)), 1: (bad(0), bad(1))}, {"ana": 1, "ben": 0})
    d = choose_replan([current_class()], [swapped], two_learners(), {}, 0.0, 2)
    assert verdicts(d) == {"class": "no_gain"}


def test_better_future_moves_and_applies() -> None:
    d = choose_replan([current_class()], [better_class()], two_learners(), {}, 0.05, 2)
    assert verdicts(d) == {"class": "moves"}
    assert (d.apply, d.moves, d.pairs) == (True, ("class",), 2)
    assert (d.before, d.after) == (0.25, 0.75)
    assert d.gain == 0.5
    (v,) = d.series
    assert (v.before, v.after) == (0.5, 1.5)  # per series: summed over learners, not a mean


@pytest.mark.parametrize(("so_far", "max_moves"), [(2, 2), (3, 2), (1, 1), (0, 0)])
def test_series_moved_max_moves_times_is_capped(so_far: int, max_moves: int) -> None:
    d = choose_replan(
        [current_class()], [better_class()], two_learners(), {"class": so_far}, 0.05, max_moves
    )
    assert verdicts(d) == {"class": "capped"}
    assert (d.apply, d.moves) == (False, ())
    assert (d.before, d.after) == (0.25, 0.25)  # a capped series keeps its coverage


def test_one_move_left_still_moves() -> None:
    d = choose_replan([current_class()], [better_class()], two_learners(), {"class": 1}, 0.05, 2)
    assert (d.apply, d.moves) == (True, ("class",))


def test_max_moves_zero_never_moves_anything() -> None:
    d = choose_replan(
        [current_class(), cowork("cowork", {0: (bad(0), bad(1))})],
        [better_class(), cowork("cowork", {0: (good(0), good(1))})],
        two_learners(),
        {},
        0.0,
        0,
    )
    assert verdicts(d) == {"class": "capped", "cowork": "capped"}
    assert (d.apply, d.moves) == (False, ())


def test_capped_is_judged_before_gain() -> None:
    d = choose_replan([better_class()], [current_class()], two_learners(), {"class": 2}, 0.05, 2)
    assert verdicts(d) == {"class": "capped"}


def test_unchanged_wins_over_capped() -> None:
    d = choose_replan([current_class()], [current_class()], two_learners(), {"class": 5}, 0.05, 2)
    assert verdicts(d) == {"class": "unchanged"}


@pytest.mark.parametrize(
    "proposed",
    [
        # the same coverage from other meetings
        sectioned("class", {0: (good(0, 1), bad(1)), 1: (bad(0), bad(1))}, {"ana": 0, "ben": 1}),
        # less coverage
        sectioned("class", {0: (bad(0), bad(1)), 1: (bad(0), bad(1))}, {"ana": 0, "ben": 1}),
    ],
    ids=["equal", "worse"],
)
def test_no_gain_when_proposed_coverage_is_not_strictly_higher(proposed: SeriesFuture) -> None:
    d = choose_replan([current_class()], [proposed], two_learners(), {}, 0.0, 2)
    assert verdicts(d) == {"class": "no_gain"}
    assert (d.apply, d.moves) == (False, ())
    assert d.before == 0.25
    assert d.after == 0.25  # a kept series counts with its current coverage


def test_no_gain_is_judged_before_dropping_a_section() -> None:
    worse_and_merged = sectioned("class", {0: (bad(0), bad(1))}, {"ana": 0, "ben": 0})
    d = choose_replan([current_class()], [worse_and_merged], two_learners(), {}, 0.0, 2)
    assert verdicts(d) == {"class": "no_gain"}


def test_drops_section_when_a_section_with_future_meetings_disappears() -> None:
    merged = sectioned("class", {0: (good(0), good(1))}, {"ana": 0, "ben": 0})
    d = choose_replan([current_class()], [merged], two_learners(), {}, 0.05, 2)
    assert verdicts(d) == {"class": "drops_section"}
    assert (d.apply, d.moves) == (False, ())
    (v,) = d.series
    assert (v.before, v.after) == (0.5, 2.0)  # it would have gained: kept all the same


def test_drops_section_when_a_section_is_left_without_meetings() -> None:
    emptied = sectioned("class", {0: (good(0), good(1)), 1: ()}, {"ana": 0, "ben": 0})
    d = choose_replan([current_class()], [emptied], two_learners(), {}, 0.05, 2)
    assert verdicts(d) == {"class": "drops_section"}


def test_a_section_whose_meetings_are_all_past_may_go() -> None:
    now = sectioned("class", {0: (bad(0), bad(1)), 1: ()}, {"ana": 0, "ben": 0})
    new = sectioned("class", {0: (good(0), good(1))}, {"ana": 0, "ben": 0})
    d = choose_replan([now], [new], two_learners(), {}, 0.05, 2)
    assert verdicts(d) == {"class": "moves"}
    assert d.apply


def test_adding_a_section_is_allowed() -> None:
    more = sectioned(
        "class",
        {0: (good(0), bad(1)), 1: (bad(0), bad(1)), 2: (good(0), good(1))},
        {"ana": 0, "ben": 2},
    )
    d = choose_replan([current_class()], [more], two_learners(), {}, 0.05, 2)
    assert verdicts(d) == {"class": "moves"}
    assert d.apply


def test_qualifying_series_move_together_and_others_stay() -> None:
    keep = sectioned("oh", {0: (good(0), good(1))}, {"ana": 0, "ben": 0})
    worse = sectioned("oh", {0: (bad(0), good(1))}, {"ana": 0, "ben": 0})
    d = choose_replan(
        [current_class(), keep, cowork("cowork", {0: (bad(0), bad(1))})],
        [better_class(), worse, cowork("cowork", {0: (good(0), bad(1))})],
        two_learners(),
        {},
        0.05,
        2,
    )
    assert verdicts(d) == {"class": "moves", "cowork": "moves", "oh": "no_gain"}
    assert d.moves == ("class", "cowork")
    assert d.pairs == 6
    assert d.before == pytest.approx((0.5 + 0 + 2) / 6)
    assert d.after == pytest.approx((1.5 + 1 + 2) / 6)


# --- choose_replan: the margin ----------------------------------------------------------------


def margin_cohort(size: int) -> tuple[list[SeriesFuture], list[SeriesFuture], dict[str, Person]]:
    """``size`` learners: 6 evening people in section 0 (all fit), one morning person in section
    1 and the rest never free. The proposal moves section 1 to the morning: one learner gains."""
    people = {f"eve{i}": bogota() for i in range(6)}
    people["early"] = bogota("Mon 08:00-10:00")
    people |= {f"busy{i}": bogota("Sat 10:00-11:00") for i in range(size - 7)}
    members = {k: (1 if k == "early" else 0) for k in people}
    now = sectioned("class", {0: (good(0),), 1: (meeting(0, 0, 20),)}, members)
    new = sectioned("class", {0: (good(0),), 1: (meeting(0, 0, 13),)}, members)  # 08:00 Bogota
    return [now], [new], people


def test_gain_of_exactly_the_margin_applies_despite_float_rounding() -> None:
    now, new, people = margin_cohort(20)
    assert 7 / 20 - 6 / 20 < 0.05  # a plain float comparison would refuse this
    d = choose_replan(now, new, people, {}, 0.05, 2)
    assert (d.before, d.after, d.pairs) == (0.3, 0.35, 20)
    assert (d.apply, d.moves) == (True, ("class",))
    assert verdicts(d) == {"class": "moves"}


def test_gain_below_the_margin_moves_nothing_but_reports_the_after() -> None:
    now, new, people = margin_cohort(25)
    d = choose_replan(now, new, people, {}, 0.05, 2)
    assert (d.apply, d.moves) == (False, ())
    assert verdicts(d) == {"class": "below_margin"}
    assert d.before == pytest.approx(0.24)
    assert d.after == pytest.approx(0.28)  # the after as if it had moved
    assert d.gain == pytest.approx(0.04)


def test_same_gain_applies_under_a_smaller_margin() -> None:
    now, new, people = margin_cohort(25)
    assert choose_replan(now, new, people, {}, 0.04, 2).apply
    assert not choose_replan(now, new, people, {}, 0.0401, 2).apply


def test_zero_margin_applies_any_gain() -> None:
    now, new, people = margin_cohort(100)
    d = choose_replan(now, new, people, {}, 0.0, 2)
    assert (d.apply, d.moves) == (True, ("class",))


def test_gain_just_below_a_margin_between_basis_points_does_not_apply() -> None:
    ana = {"ana": bogota()}
    now = sectioned("class", {0: (bad(0), bad(0, 1), bad(0, 2))}, {"ana": 0})
    new = sectioned("class", {0: (good(0), good(0, 1), bad(0, 2))}, {"ana": 0})
    d = choose_replan([now], [new], ana, {}, 0.6667, 2)
    assert d.gain < 0.6667
    assert not d.apply


@pytest.mark.parametrize("margin", [-0.01, 1.01])
def test_margin_outside_zero_to_one_is_refused(margin: float) -> None:
    with pytest.raises(ValueError, match="margin"):
        choose_replan([current_class()], [better_class()], two_learners(), {}, margin, 2)


# --- choose_replan: pairs and series that start or stop meeting -------------------------------


def test_pairs_are_learners_times_series_that_meet() -> None:
    people = {"ana": bogota(), "ben": bogota(), "chi": bogota()}  # chi is in no section
    gone = sectioned("old", {0: ()}, {"ana": 0})
    d = choose_replan(
        [current_class(), gone, cowork("cowork", {0: (good(0),)})],
        [current_class(), gone, cowork("cowork", {0: (good(0),)})],
        people,
        {},
        0.05,
        2,
    )
    assert d.pairs == 6  # 3 learners x (class, cowork); "old" no longer meets
    assert d.before == pytest.approx((0.5 + 3) / 6)
    assert d.before == d.after


def test_a_series_only_in_the_proposal_counts_its_pairs() -> None:
    new = cowork("cowork", {0: (good(0), good(1))})
    d = choose_replan([current_class()], [current_class(), new], two_learners(), {}, 0.05, 2)
    assert verdicts(d) == {"class": "unchanged", "cowork": "moves"}
    assert d.pairs == 4
    assert (d.before, d.after) == (0.5 / 4, 2.5 / 4)
    assert d.moves == ("cowork",)


def test_a_series_missing_from_the_proposal_is_kept() -> None:
    d = choose_replan([current_class()], [], two_learners(), {}, 0.0, 2)
    assert verdicts(d) == {"class": "no_gain"}
    assert d.pairs == 2
    assert (d.apply, d.before, d.after) == (False, 0.25, 0.25)


def test_nothing_to_compare() -> None:
    d = choose_replan([], [], two_learners(), {}, 0.05, 2)
    assert (d.apply, d.moves, d.before, d.after, d.pairs, d.series) == (False, (), 0.0, 0.0, 0, ())


# --- properties -------------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "America/Bogota"]
AVAILABILITIES = [
    parse_availability(text)
    for text in (
        "Mon-Fri 18:00-22:00",
        "daily 08:00-20:00",
        "Mon-Fri 09:00-17:00",
        "daily 06:00-23:00",
        "weekends 10:00-18:00",
        "Mon,Wed,Fri 07:00-09:00",
    )
]
LEARNERS = ["ana", "ben", "chi", "dev"]
KEYS = ["class", "cowork", "office-hours"]

people_st = st.dictionaries(
    st.sampled_from(LEARNERS),
    st.builds(Person, st.sampled_from(ZONES), st.sampled_from(AVAILABILITIES)),
    min_size=1,
    max_size=4,
)
# Course weeks 2-5 from 1 March 2027: across the US, European and Australian changes.
meeting_st = st.builds(
    lambda week, day, hour: meeting(week, day, hour),
    st.integers(2, 5),
    st.integers(0, 6),
    st.sampled_from([0, 8, 12, 14, 17, 20, 23]),
)


@st.composite
def future_st(
    draw: st.DrawFn,
    key: str,
    is_sectioned: bool,
    keep: frozenset[int] = frozenset(),
    learners: tuple[str, ...] = tuple(LEARNERS),
) -> SeriesFuture:
    """A series' future; every section in ``keep`` has at least one meeting. Members are
    mostly drawn from ``learners`` (the cohort's), sometimes from anyone."""
    sections = draw(
        st.dictionaries(
            st.integers(0, 2), st.lists(meeting_st, max_size=4).map(tuple), min_size=1, max_size=3
        )
    )
    for section in keep:
        if not sections.get(section):
            sections[section] = tuple(draw(st.lists(meeting_st, min_size=1, max_size=4)))
    members: dict[str, int] = {}
    if is_sectioned:
        names = st.sampled_from(learners) | st.sampled_from(LEARNERS)
        members = draw(st.dictionaries(names, st.integers(0, 2), max_size=4))
    return SeriesFuture(key, is_sectioned, sections, members)


@st.composite
def case_st(draw: st.DrawFn) -> dict:
    people = draw(people_st)
    current: list[SeriesFuture] = []
    proposed: list[SeriesFuture] = []
    for key in draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3, unique=True)):
        is_sectioned = key != "cowork"
        learners = tuple(sorted(people))
        old = draw(st.none() | future_st(key, is_sectioned, learners=learners))
        new = draw(st.sampled_from(["keeps sections", "same", "any", "none"]))
        if old is not None:
            current.append(old)
        if new == "same" and old is not None:
            proposed.append(old)
        elif new == "keeps sections" and old is not None:
            still = frozenset(s for s, m in old.meetings.items() if m)
            proposed.append(draw(future_st(key, is_sectioned, still, learners)))
        elif new != "none":
            proposed.append(draw(future_st(key, is_sectioned, learners=learners)))
    moves_so_far = draw(st.dictionaries(st.sampled_from(KEYS), st.integers(0, 3), max_size=2))
    return {
        "current": current,
        "proposed": proposed,
        "people": people,
        "moves_so_far": moves_so_far,
        "margin": draw(st.integers(0, 20)) / 100,  # whole percentage points
        "max_moves": draw(st.sampled_from([2, 3, 1, 0])),
    }


PROPERTY = settings(max_examples=100, deadline=None)


@PROPERTY
@given(case_st())
def test_applied_decisions_gain_at_least_the_margin(case: dict) -> None:
    d = choose_replan(**case)
    if d.apply:
        assert d.moves
        assert d.after - d.before >= case["margin"] - 1e-9
    assert 0.0 <= d.before <= 1.0
    assert 0.0 <= d.after <= 1.0


@PROPERTY
@given(case_st())
def test_a_decision_not_applied_moves_nothing(case: dict) -> None:
    d = choose_replan(**case)
    if not d.apply:
        assert d.moves == ()
        assert "moves" not in verdicts(d).values()
    else:
        assert "below_margin" not in verdicts(d).values()


@PROPERTY
@given(case_st())
def test_moves_are_exactly_the_qualifying_series_under_the_cap(case: dict) -> None:
    d = choose_replan(**case)
    by_key = verdicts(d)
    for key in d.moves:
        assert by_key[key] == "moves"
        assert case["moves_so_far"].get(key, 0) < case["max_moves"]
    assert d.moves == tuple(k for k, v in by_key.items() if v == "moves")
    for v in d.series:
        if v.verdict in ("moves", "below_margin"):
            assert v.after > v.before


@PROPERTY
@given(case_st())
def test_a_capped_series_never_moves(case: dict) -> None:
    d = choose_replan(**case)
    for v in d.series:
        if case["moves_so_far"].get(v.key, 0) >= case["max_moves"]:
            assert v.verdict in ("unchanged", "capped")
            assert v.key not in d.moves
        if v.verdict == "capped":
            assert v.key not in d.moves


@PROPERTY
@given(case_st())
def test_max_moves_zero_moves_nothing(case: dict) -> None:
    d = choose_replan(**(case | {"max_moves": 0}))
    assert (d.apply, d.moves) == (False, ())
    assert set(verdicts(d).values()) <= {"unchanged", "capped"}


@PROPERTY
@given(case_st(), st.randoms(use_true_random=False))
def test_decision_is_deterministic_and_ignores_list_order(case: dict, rnd: Random) -> None:
    d = choose_replan(**case)
    assert choose_replan(**case) == d
    current, proposed = list(case["current"]), list(case["proposed"])
    rnd.shuffle(current)
    rnd.shuffle(proposed)
    assert choose_replan(**(case | {"current": current, "proposed": proposed})) == d
    # The order of the people may only change float sums in their last bits.
    people = dict(reversed(list(case["people"].items())))
    again = choose_replan(**(case | {"people": people}))
    assert (again.apply, again.moves, verdicts(again)) == (d.apply, d.moves, verdicts(d))
    assert (again.before, again.after) == pytest.approx((d.before, d.after), abs=1e-12)


@PROPERTY
@given(case_st(), st.integers(0, 100))
def test_raising_the_margin_never_makes_a_decision_apply(case: dict, extra: int) -> None:
    low = choose_replan(**case)
    higher = min(1.0, case["margin"] + extra / 100)
    high = choose_replan(**(case | {"margin": higher}))
    if not low.apply:
        assert not high.apply
    assert (high.before, high.after, high.pairs) == (low.before, low.after, low.pairs)


@PROPERTY
@given(case_st())
def test_pairs_count_learners_of_every_series_that_meets(case: dict) -> None:
    d = choose_replan(**case)
    meeting_keys = {f.key for f in [*case["current"], *case["proposed"]] if f.meets}
    assert d.pairs == len(case["people"]) * len(meeting_keys)
    assert [v.key for v in d.series] == sorted(
        {f.key for f in [*case["current"], *case["proposed"]]}
    )


@PROPERTY
@given(people_st, future_st("class", True), future_st("cowork", False))
def test_coverage_is_a_share_per_learner(people: dict, klass: SeriesFuture, co: SeriesFuture):
    members_here = sum(1 for learner in klass.members if learner in people)
    assert 0.0 <= series_coverage(klass, people) <= members_here
    assert 0.0 <= series_coverage(co, people) <= len(people)
    reordered = SeriesFuture(
        co.key, False, {s: tuple(reversed(m)) for s, m in reversed(co.meetings.items())}
    )
    assert series_coverage(reordered, people) == pytest.approx(series_coverage(co, people))
