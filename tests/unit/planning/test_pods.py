"""Co-working pods: sizes, partition, determinism, stability and section mixing."""

from __future__ import annotations

import random
from collections import Counter
from typing import TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.planning.pods import PodLearner, Pods, form_pods, pod_count

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney", "America/Bogota"]
SETTINGS = settings(max_examples=60, deadline=None)


class Sizes(TypedDict):
    min_size: int
    max_size: int
    target: int


def people(sections: list[int], prefix: str = "learner") -> list[PodLearner]:
    return [
        PodLearner(f"{prefix}{i:03d}@example.org", section, ZONES[i % len(ZONES)])
        for i, section in enumerate(sections)
    ]


@st.composite
def rosters(
    draw: st.DrawFn, min_n: int = 0, max_n: int = 40, sections: int = 3
) -> list[PodLearner]:
    ids = draw(st.lists(st.integers(0, 999), unique=True, min_size=min_n, max_size=max_n))
    return [
        PodLearner(
            f"learner{i:03d}@example.org",
            draw(st.integers(1, sections)),
            draw(st.sampled_from(ZONES)),
        )
        for i in ids
    ]


@st.composite
def sizes(draw: st.DrawFn) -> Sizes:
    """Any sizes meeting the contract: 2 <= min <= target <= max and max >= 2 * min - 1."""
    low = draw(st.integers(2, 4))
    high = draw(st.integers(2 * low - 1, 2 * low + 2))
    return Sizes(min_size=low, max_size=high, target=draw(st.integers(low, high)))


@st.composite
def histories(draw: st.DrawFn, roster: list[PodLearner]) -> dict[str, str]:
    """A messy previous week: some attendees unknown, some ghosts who are not coming."""
    pod_ids = st.sampled_from([f"pod{i}" for i in range(max(1, len(roster) // 3))])
    previous = {
        learner.key: draw(pod_ids)
        for learner in roster
        if draw(st.booleans()) or draw(st.booleans())
    }
    for ghost in range(draw(st.integers(0, 4))):
        previous[f"ghost{ghost}@example.org"] = draw(pod_ids)
    return previous


def pod_sets(result: Pods) -> list[frozenset[str]]:
    return [frozenset(pod) for pod in result.pods]


def inside_one_pod(group: set[str], result: Pods) -> bool:
    return any(group <= set(pod) for pod in result.pods)


def assert_partition(roster: list[PodLearner], result: Pods) -> None:
    keys = [key for pod in result.pods for key in pod]
    assert Counter(keys) == Counter(learner.key for learner in roster)


def assert_sizes(n: int, result: Pods, min_size: int, max_size: int) -> None:
    if n == 0:
        assert result.pods == ()
    elif n < min_size:
        assert len(result.pods) == 1
    else:
        assert all(min_size <= len(pod) <= max_size for pod in result.pods)


def expected_pod_count(n: int, min_size: int, max_size: int, target: int) -> int:
    """Oracle: the feasible count closest to n / target, ties to more pods (by brute force)."""
    feasible = [k for k in range(1, n + 1) if k * min_size <= n <= k * max_size]
    return min(feasible, key=lambda k: (abs(k * target - n), -k))


# --- partition and sizes -------------------------------------------------------------------------


@SETTINGS
@given(st.data(), rosters(), sizes(), st.integers(0, 2**32))
def test_every_attendee_in_one_pod_of_a_valid_size(
    data: st.DataObject, roster: list[PodLearner], size: Sizes, seed: int
) -> None:
    previous = data.draw(histories(roster))
    result = form_pods(roster, previous, rng=random.Random(seed), **size)
    assert_partition(roster, result)
    assert_sizes(len(roster), result, size["min_size"], size["max_size"])


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, []),
        (1, [1]),
        (2, [2]),
        (3, [3]),
        (5, [5]),
        (6, [3, 3]),
        (7, [3, 4]),
        (10, [3, 3, 4]),  # 2 or 3 pods are equally close to 2.5: more, smaller pods
        (11, [3, 4, 4]),
        (12, [4, 4, 4]),
    ],
    ids=lambda value: f"{value}_learners" if isinstance(value, int) else "",
)
def test_small_groups_get_these_pod_sizes(n: int, expected: list[int]) -> None:
    result = form_pods(people([1, 2] * 6)[:n], rng=random.Random(7))
    assert sorted(len(pod) for pod in result.pods) == expected
    assert_partition(people([1, 2] * 6)[:n], result)


@SETTINGS
@given(rosters(min_n=2), sizes(), st.integers(0, 2**32))
def test_pod_count_without_history_is_closest_to_n_over_target(
    roster: list[PodLearner], size: Sizes, seed: int
) -> None:
    result = form_pods(roster, rng=random.Random(seed), **size)
    if len(roster) >= size["min_size"]:
        assert len(result.pods) == expected_pod_count(len(roster), **size)
        lengths = [len(pod) for pod in result.pods]
        assert max(lengths) - min(lengths) <= 1


@pytest.mark.parametrize("low", [2, 3, 4, 5])
def test_every_count_from_min_size_on_is_split_at_the_tightest_sizes(low: int) -> None:
    """The docstring's size claim through form_pods, at ``max_size = 2 * min_size - 1`` (the
    tightest sizes it accepts) and both ends of the target: every count from ``min_size`` on gets
    pods of ``min_size..max_size``, fresh, after one learner left and with one newcomer."""
    high = 2 * low - 1
    for target in sorted({low, high}):
        size = Sizes(min_size=low, max_size=high, target=target)
        everyone = people([1, 2, 3] * 40)
        for n in range(low, 100):
            roster = everyone[:n]
            k = pod_count(n, **size)
            assert k * low <= n <= k * high, (size, n, k)
            one_left = form_pods(everyone[: n + 1], rng=random.Random(n), **size).pod_ids()
            one_new = form_pods(everyone[: n - 1], rng=random.Random(n), **size).pod_ids()
            for previous in ({}, one_left, one_new):
                result = form_pods(roster, previous, rng=random.Random(n), **size)
                if not previous:
                    assert len(result.pods) == k, (size, n)
                assert_partition(roster, result)
                assert all(low <= len(pod) <= high for pod in result.pods), (size, n, result)


# --- determinism ---------------------------------------------------------------------------------


@SETTINGS
@given(st.data(), rosters(), st.integers(0, 2**32), st.randoms(use_true_random=False))
def test_same_seed_same_pods_in_any_input_order(
    data: st.DataObject, roster: list[PodLearner], seed: int, shuffler: random.Random
) -> None:
    previous = data.draw(histories(roster))
    first = form_pods(roster, previous, rng=random.Random(seed))
    assert form_pods(roster, previous, rng=random.Random(seed)) == first
    shuffled = list(roster)
    shuffler.shuffle(shuffled)
    reordered = dict(reversed(list(previous.items())))
    assert form_pods(shuffled, reordered, rng=random.Random(seed)) == first


# --- stability -----------------------------------------------------------------------------------


@SETTINGS
@given(rosters(), sizes(), st.integers(0, 2**32), st.integers(0, 2**32))
def test_feeding_the_result_back_keeps_every_pod(
    roster: list[PodLearner], size: Sizes, seed: int, other_seed: int
) -> None:
    first = form_pods(roster, rng=random.Random(seed), **size)
    again = form_pods(roster, first.pod_ids(), rng=random.Random(other_seed), **size)
    assert again == first


@SETTINGS
@given(rosters(min_n=1), st.integers(0, 2**32), st.integers(0, 2**32), st.data())
def test_one_learner_leaving_keeps_the_other_pods(
    roster: list[PodLearner], seed: int, other_seed: int, data: st.DataObject
) -> None:
    before = form_pods(roster, rng=random.Random(seed))
    leaver = data.draw(st.sampled_from(roster)).key
    staying = [learner for learner in roster if learner.key != leaver]
    after = form_pods(staying, before.pod_ids(), rng=random.Random(other_seed))
    assert_partition(staying, after)
    assert_sizes(len(staying), after, 3, 5)
    stragglers = set(before.pod_of(leaver) or ()) - {leaver}
    others = [set(pod) for pod in before.pods if leaver not in pod]
    if len(stragglers) >= 3 or not stragglers:
        assert pod_sets(after) == sorted(
            [frozenset(pod) for pod in others] + ([frozenset(stragglers)] if stragglers else []),
            key=min,
        )
    elif sum(5 - len(pod) for pod in others) >= len(stragglers):
        assert all(inside_one_pod(pod, after) for pod in others)
        if any(5 - len(pod) >= len(stragglers) for pod in others):
            assert inside_one_pod(stragglers, after)


@SETTINGS
@given(rosters(min_n=3, max_n=30), st.integers(0, 6), st.integers(0, 2**32), st.integers(0, 2**32))
def test_newcomers_leave_previous_pods_together(
    roster: list[PodLearner], newcomers: int, seed: int, other_seed: int
) -> None:
    before = form_pods(roster, rng=random.Random(seed))
    joined = roster + people([1] * newcomers, prefix="new")
    after = form_pods(joined, before.pod_ids(), rng=random.Random(other_seed))
    assert_partition(joined, after)
    assert_sizes(len(joined), after, 3, 5)
    room = sum(5 - len(pod) for pod in before.pods)
    if newcomers == 0 or newcomers >= 3:
        assert all(frozenset(pod) in pod_sets(after) for pod in before.pods)
    elif newcomers <= room:
        assert all(inside_one_pod(set(pod), after) for pod in before.pods)


@SETTINGS
@given(st.data(), rosters(), st.integers(0, 2**32))
def test_kept_groups_stay_together_when_the_others_fit(
    data: st.DataObject, roster: list[PodLearner], seed: int
) -> None:
    """The stability guarantee as stated, on arbitrary histories (oversized groups skipped)."""
    previous = data.draw(histories(roster))
    result = form_pods(roster, previous, rng=random.Random(seed))
    attending: dict[str, set[str]] = {}
    for learner in roster:
        if learner.key in previous:
            attending.setdefault(previous[learner.key], set()).add(learner.key)
    if any(len(group) > 5 for group in attending.values()):
        return
    kept = [group for group in attending.values() if len(group) >= 3]
    others = len(roster) - sum(len(group) for group in kept)
    if others == 0 or others >= 3 or others <= sum(5 - len(group) for group in kept):
        assert all(inside_one_pod(group, result) for group in kept)
    unattached = all(len(group) < 2 for group in attending.values() if group not in kept)
    if unattached and (others == 0 or others >= 3):
        assert all(frozenset(group) in pod_sets(result) for group in kept)


def test_three_pairs_lose_only_one_pair() -> None:
    roster = people([1, 1, 2, 2, 3, 3])
    previous = {learner.key: f"pair{i // 2}" for i, learner in enumerate(roster)}
    result = form_pods(roster, previous, rng=random.Random(0))
    assert sorted(len(pod) for pod in result.pods) == [3, 3]
    pairs = [{roster[i].key, roster[i + 1].key} for i in (0, 2, 4)]
    assert sum(inside_one_pod(pair, result) for pair in pairs) == 2


def test_a_newcomer_with_every_pod_full_opens_one_pod() -> None:
    roster = people([1, 2, 1, 2, 1, 2, 1, 2, 1, 2])
    previous = {learner.key: "a" if i < 5 else "b" for i, learner in enumerate(roster)}
    newcomer = people([3], prefix="new")
    result = form_pods(roster + newcomer, previous, rng=random.Random(0))
    assert sorted(len(pod) for pod in result.pods) == [3, 3, 5]
    kept = [{learner.key for learner in roster[:5]}, {learner.key for learner in roster[5:]}]
    assert sum(frozenset(group) in pod_sets(result) for group in kept) == 1


def test_partial_pod_is_topped_up_with_a_missing_section() -> None:
    returning = people([1, 1])
    newcomers = people([1, 2, 1, 1, 1, 1], prefix="new")
    previous = {learner.key: "old" for learner in returning} | {"gone@example.org": "old"}
    result = form_pods(returning + newcomers, previous, rng=random.Random(3))
    pod = result.pod_of(returning[0].key)
    assert pod is not None and returning[1].key in pod
    assert newcomers[1].key in pod  # the only learner of section 2


# --- mixing --------------------------------------------------------------------------------------


@SETTINGS
@given(rosters(min_n=3, max_n=60, sections=4), sizes(), st.integers(0, 2**32))
def test_new_pods_mix_sections_when_no_section_is_too_big(
    roster: list[PodLearner], size: Sizes, seed: int
) -> None:
    result = form_pods(roster, rng=random.Random(seed), **size)
    largest = max(Counter(learner.section for learner in roster).values())
    if len(roster) >= size["min_size"] and largest <= len(roster) - len(result.pods):
        section = {learner.key: learner.section for learner in roster}
        assert all(len({section[key] for key in pod}) >= 2 for pod in result.pods)


@pytest.mark.parametrize(
    "sections",
    [[1] * 9 + [2] * 3, [1] * 6 + [2] * 6, [1, 2, 3, 4] * 3, [1] * 5 + [2, 3, 4] * 2 + [5]],
    ids=["largest_at_the_limit", "two_even_sections", "four_small_sections", "one_big_many_small"],
)
def test_every_pod_mixes_sections(sections: list[int]) -> None:
    roster = people(sections)
    for seed in range(20):
        result = form_pods(roster, rng=random.Random(seed))
        section = {learner.key: learner.section for learner in roster}
        assert all(len({section[key] for key in pod}) >= 2 for pod in result.pods), seed


# --- values and validation -----------------------------------------------------------------------


def test_pod_of_and_pod_ids() -> None:
    result = Pods((("a", "c", "e"), ("b", "d", "f")))
    assert result.pod_of("d") == ("b", "d", "f")
    assert result.pod_of("z") is None
    assert result.pod_ids() == {"a": "a", "c": "a", "e": "a", "b": "b", "d": "b", "f": "b"}


@pytest.mark.parametrize(
    "pods",
    [(("b", "a"),), (("b", "c"), ("a", "d")), (("a", "b"), ("b", "c")), ((),)],
    ids=["unsorted_pod", "unsorted_pods", "key_twice", "empty_pod"],
)
def test_pods_reject_malformed_values(pods: tuple[tuple[str, ...], ...]) -> None:
    with pytest.raises(ValueError, match="pod"):
        Pods(pods)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"min_size": 1, "max_size": 5, "target": 3}, "min_size"),
        ({"min_size": 3, "max_size": 5, "target": 6}, "target"),
        ({"min_size": 4, "max_size": 6, "target": 5}, "cannot be split"),
    ],
    ids=["pod_of_one", "target_too_big", "sizes_leave_gaps"],
)
def test_impossible_sizes_are_refused(overrides: Sizes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        form_pods(people([1] * 7), rng=random.Random(0), **overrides)


def test_a_learner_given_twice_is_refused() -> None:
    roster = people([1, 2, 3])
    with pytest.raises(ValueError, match="more than once"):
        form_pods([*roster, roster[0]], rng=random.Random(0))
