from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.domain import sending
from scheduler.domain.sending import (
    Burst,
    release_horizon,
    suggest_early,
    suggest_rate,
    worst_burst,
)

T0 = datetime(2025, 3, 3, 18, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- brute forces, independent of the module -----------------------------------------------

Row = tuple[int, int, int]  # (not_before, due, count) in whole seconds from T0


def expand(rows: list[Row]) -> list[tuple[int, int]]:
    return [(nb, due) for nb, due, count in rows for _ in range(count)]


def edf_feasible(rows: list[Row], rate: int) -> bool:
    """Naive EDF on the 1/rate grid (optimal for unit jobs with grid release times)."""
    jobs = sorted((nb * rate, due * rate) for nb, due in expand(rows))
    ready: list[int] = []
    tick, i = jobs[0][0], 0
    while i < len(jobs) or ready:
        if not ready and jobs[i][0] > tick:
            tick = jobs[i][0]
        while i < len(jobs) and jobs[i][0] <= tick:
            heapq.heappush(ready, jobs[i][1])
            i += 1
        if heapq.heappop(ready) < tick:
            return False
        tick += 1
    return True


def permutation_feasible(rows: list[Row], rate: int) -> bool:
    """Try every send order, each message as early as its order and not_before allow."""
    gap = Fraction(1, rate)
    for order in itertools.permutations(expand(rows)):
        clock: Fraction | None = None
        for nb, due in order:
            clock = Fraction(nb) if clock is None else max(Fraction(nb), clock + gap)
            if clock > due:
                break
        else:
            return True
    return False


def naive_key(rows: list[Row], a: int, b: int, rate: int) -> tuple[float, int]:
    count = sum(c for nb, due, c in rows if a <= nb and due <= b)
    if b == a:
        return (math.inf if count > 1 else 0.0), count
    return (count - 1) / (rate * (b - a)), count


def naive_worst_key(rows: list[Row], rate: int) -> float:
    return max(
        naive_key(rows, a, b, rate)[0]
        for a in {r[0] for r in rows}
        for b in {r[1] for r in rows}
        if a <= b
    )


def alap_ticks(dues: list[int], rate: int) -> list[int]:
    """Latest start of each row in due order, row by row, in 1/rate ticks."""
    starts: list[int] = []
    for due in sorted(dues, reverse=True):
        starts.append(due * rate if not starts else min(due * rate, starts[-1] - 1))
    return starts[::-1]


def simulate(rows: list[Row], rate: int) -> list[tuple[int, int, int]]:
    """Send one released row per tick; returns (not_before, due, sent) in ticks."""
    unsent = sorted(expand(rows), key=lambda row: row[1])
    tick = min(nb for nb, _ in unsent) * rate
    last_tick = (max(due for _, due in unsent) + len(unsent) + 1) * rate
    sent: list[tuple[int, int, int]] = []
    while unsent:
        assert tick <= last_tick
        now = T0 + timedelta(microseconds=round(tick * 1_000_000 / rate))
        pending = sorted((at(due), count) for due, count in Counter(d for _, d in unsent).items())
        horizon = release_horizon(pending, now, rate)
        assert horizon >= now
        for index, (nb, due) in enumerate(unsent):  # sorted by due: first eligible is EDF
            if at(due) <= horizon and nb * rate <= tick:
                sent.append((nb * rate, due * rate, tick))
                del unsent[index]
                break
        tick += 1
    return sent


# --- release_horizon: hand-made cases ------------------------------------------------------


def test_lone_notification_goes_exactly_at_its_due() -> None:
    pending = [(T0, 1)]
    assert release_horizon(pending, at(-3600), 300) == at(-3600)
    assert release_horizon(pending, at(-0.001), 300) == at(-0.001)
    assert release_horizon(pending, T0, 300) == T0
    assert release_horizon(pending, at(5), 300) == at(5)  # overdue: due anyway


def test_burst_of_20000_starts_just_early_enough() -> None:
    pending = [(T0, 20_000)]
    lead = 19_999 / 300  # 66.663... s: the last of them leaves exactly at T0
    assert release_horizon(pending, at(-3600), 300) == at(-3600)
    assert release_horizon(pending, at(-lead - 0.01), 300) == at(-lead - 0.01)
    assert release_horizon(pending, at(-lead + 0.01), 300) == T0
    assert release_horizon(pending, at(-1), 300) == T0


def test_second_group_follows_the_first_without_a_gap() -> None:
    pending = [(T0, 600), (at(60), 600)]  # at 10/s each group takes 59.9 s after its first
    assert release_horizon(pending, at(-60), 10) == at(-60)
    assert release_horizon(pending, at(-59.9), 10) == T0
    assert release_horizon(pending, at(0.05), 10) == at(0.05)
    assert release_horizon(pending, at(0.1), 10) == at(60)


def test_overlapping_groups_push_the_first_earlier() -> None:
    pending = [(T0, 600), (at(60), 1200)]  # the second needs 119.9 s: starts at -59.9
    assert release_horizon(pending, at(-120), 10) == at(-120)
    assert release_horizon(pending, at(-119.9), 10) == T0
    assert release_horizon(pending, at(-60), 10) == T0
    assert release_horizon(pending, at(-59.9), 10) == at(60)


def test_horizon_is_cheap_for_many_large_groups() -> None:
    pending = [(at(3600 * i), 20_000) for i in range(1, 100_001)]
    started = time.perf_counter()
    assert release_horizon(pending, T0, 300) == T0
    assert time.perf_counter() - started < 1


def test_horizon_edge_inputs() -> None:
    assert release_horizon([], T0, 1) == T0
    assert release_horizon([(T0, 20_000)], at(-1), math.inf) == at(-1)
    for bad_rate in (0, -1, math.nan):
        with pytest.raises(ValueError, match="rate"):
            release_horizon([(T0, 1)], T0, bad_rate)
    with pytest.raises(ValueError, match="sorted"):
        release_horizon([(at(10), 1), (T0, 1)], at(-100), 1)
    with pytest.raises(ValueError, match="counts"):
        release_horizon([(T0, 0)], T0, 1)


# --- Burst and worst_burst: hand-made cases ------------------------------------------------


def test_burst_properties() -> None:
    burst = Burst(start=at(-300), end=T0, count=20_000, rate=50)
    assert burst.need == 400
    assert burst.room == 300
    assert not burst.fits
    assert Burst(start=at(-2), end=T0, count=3, rate=1).fits  # one message at the start
    assert not Burst(start=at(-2), end=T0, count=4, rate=1).fits


def test_evening_burst_and_suggestions() -> None:
    rows = [(at(-300), T0, 20_000), (at(-200), at(100), 5)]
    burst = worst_burst(rows, 50)
    assert burst == Burst(start=at(-300), end=T0, count=20_000, rate=50)
    assert suggest_early(burst) == timedelta(minutes=8)  # 400 s + 10 % + 1 s = 441 s
    assert suggest_rate(burst) == 74  # 20000 / 300 = 66.7, + 10 %
    later = worst_burst([(T0 - suggest_early(burst), T0, 20_000)], 50)
    assert later is not None and later.fits
    faster = worst_burst(rows, suggest_rate(burst))
    assert faster is not None and faster.fits


def test_worst_burst_picks_the_infeasible_long_window_over_a_fitting_dense_one() -> None:
    rows = [(T0, at(2), 3), (at(10), at(108), 100)]  # 3 in 2 s fits; 100 in 98 s does not
    burst = worst_burst(rows, 1)
    assert burst is not None and not burst.fits
    assert (burst.start, burst.end, burst.count) == (at(10), at(108), 100)


def test_worst_burst_edge_inputs() -> None:
    assert worst_burst([], 1) is None
    lone = worst_burst([(T0, T0, 1)], 1)
    assert lone is not None and lone.fits and lone.count == 1
    pair = worst_burst([(T0, T0, 1), (at(-5), at(5), 1), (T0, T0, 1)], 1)
    assert pair == Burst(start=T0, end=T0, count=2, rate=1)
    assert not pair.fits
    assert suggest_early(pair) == timedelta(minutes=1)
    with pytest.raises(ValueError, match="room"):
        suggest_rate(pair)
    with pytest.raises(ValueError, match="bad row"):
        worst_burst([(at(1), T0, 1)], 1)
    with pytest.raises(ValueError, match="rate"):
        worst_burst([(T0, T0, 1)], 0)


def test_worst_burst_is_fast_for_5000_groups() -> None:
    rnd = random.Random(7)
    rows = []
    for _ in range(5000):
        due = at(rnd.randrange(7 * 86400))
        rows.append((due - timedelta(seconds=rnd.choice([300, rnd.randrange(3600)])), due, 9))
    started = time.perf_counter()
    burst = worst_burst(rows, 2)
    assert burst is not None
    assert time.perf_counter() - started < 2  # ~0.2 s on an idle machine; slack for load


# --- properties against brute force --------------------------------------------------------

rates = st.sampled_from([1, 2, 3])


@st.composite
def agreeable_rows(draw: st.DrawFn) -> list[Row]:
    """Reminders: not_before = due - early with one early for all, <= 8 rows."""
    early = draw(st.integers(0, 4))
    groups = draw(st.lists(st.tuples(st.integers(0, 20), st.integers(1, 3)), min_size=1))
    rows, total = [], 0
    for due, count in groups:
        count = min(count, 8 - total)
        if count:
            rows.append((due - early, due, count))
            total += count
    return rows


@st.composite
def any_rows(draw: st.DrawFn, max_rows: int = 8) -> list[Row]:
    """Arbitrary windows not_before <= due, <= max_rows rows."""
    groups = draw(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 6), st.integers(1, 3))))
    rows, total = [], 0
    for nb, width, count in groups:
        count = min(count, max_rows - total)
        if count:
            rows.append((nb, nb + width, count))
            total += count
    return rows or [(0, 0, 1)]


@settings(max_examples=300, deadline=None)
@given(rows=agreeable_rows(), rate=rates)
def test_simulated_reminders_leave_as_late_as_possible_and_on_time(
    rows: list[Row], rate: int
) -> None:
    sent = simulate(rows, rate)
    assert all(tick >= nb for nb, _, tick in sent)
    if edf_feasible(rows, rate):
        assert all(tick <= due for _, due, tick in sent)
        assert sorted(tick for *_, tick in sent) == alap_ticks([d for _, d in expand(rows)], rate)


@settings(max_examples=200, deadline=None)
@given(rows=any_rows(), rate=rates)
def test_simulation_never_sends_before_not_before(rows: list[Row], rate: int) -> None:
    sent = simulate(rows, rate)
    assert len(sent) == sum(c for *_, c in rows)
    assert all(tick >= nb for nb, _, tick in sent)


@settings(max_examples=300, deadline=None)
@given(rows=any_rows(max_rows=6), rate=rates)
def test_edf_oracle_agrees_with_trying_every_order(rows: list[Row], rate: int) -> None:
    assert edf_feasible(rows, rate) == permutation_feasible(rows, rate)


@settings(max_examples=400, deadline=None)
@given(rows=any_rows(), rate=rates, block=st.sampled_from([1, 2, 64]))
def test_worst_burst_fits_iff_a_schedule_exists(rows: list[Row], rate: int, block: int) -> None:
    groups = [(at(nb), at(due), count) for nb, due, count in rows]
    with mock.patch.object(sending, "_BLOCK", block):
        burst = worst_burst(groups, rate)
    assert burst is not None
    assert burst.fits == edf_feasible(rows, rate)
    a, b = int((burst.start - T0).total_seconds()), int((burst.end - T0).total_seconds())
    key, count = naive_key(rows, a, b, rate)
    assert burst.count == count
    worst = naive_worst_key(rows, rate)
    assert key == worst or math.isclose(key, worst)
