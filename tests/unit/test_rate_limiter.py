"""The feed rate limiter: a limit per window per key, bounded memory, O(1) per call."""

from __future__ import annotations

import statistics
import time

from scheduler.web.app import RateLimiter


def test_limit_per_window_per_key() -> None:
    limiter = RateLimiter(3, window=60.0)
    assert [limiter.allow("a", now=t) for t in (0, 1, 2, 3, 59.9)] == [True] * 3 + [False] * 2
    assert limiter.allow("b", now=30)  # another client has its own count
    assert [limiter.allow("b", now=31) for _ in range(3)] == [True, True, False]
    assert [limiter.allow("a", now=200) for _ in range(4)] == [True] * 3 + [False]


def test_a_window_opens_with_a_keys_first_hit() -> None:
    limiter = RateLimiter(2, window=60.0)
    assert [limiter.allow("a", now=t) for t in (10, 20, 69.9)] == [True, True, False]
    assert [limiter.allow("a", now=t) for t in (70, 71, 72)] == [True, True, False]


def test_closed_windows_are_forgotten() -> None:
    limiter = RateLimiter(1, window=60.0)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 256}.{i % 256}", now=i / 100)
    assert len(limiter) == 1000
    for i in range(600):  # a minute later: each call drops closed windows from the front
        limiter.allow(f"192.0.2.{i % 200}", now=100 + i / 1000)
    assert len(limiter) == 200


def test_past_max_keys_the_oldest_window_is_forgotten() -> None:
    limiter = RateLimiter(1, window=60.0, max_keys=10)
    for i in range(10):
        assert limiter.allow(f"k{i}", now=i)
    assert not limiter.allow("k0", now=10)
    assert limiter.allow("k10", now=11)  # table full: k0, the oldest window, is forgotten
    assert len(limiter) == 10
    assert limiter.allow("k0", now=12)
    assert not limiter.allow("k10", now=13)  # newer windows are kept


def test_a_million_distinct_clients_bounded_memory_and_constant_time() -> None:
    """A flood of distinct addresses (an IPv6 /64 has 2**64): the table stays under its bound
    and a call costs the same at the millionth key as at the first. The old limiter kept every
    address for a window and then scanned all of them on each new one (5-8 ms a call past
    100k keys, under a lock on the event loop)."""
    limiter = RateLimiter(120, window=60.0)
    chunk, chunks = 1000, 1000
    times: list[float] = []
    for c in range(chunks):
        keys = [f"2001:db8::{c:x}:{i:x}" for i in range(chunk)]
        start = time.perf_counter()
        for key in keys:
            limiter.allow(key)
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        if c >= 100:  # fail fast instead of running for an hour on a linear-time limiter
            assert elapsed < max(0.5, 50 * statistics.median(times[:100])), (c, elapsed)
            if c % 100 == 0:
                assert len(limiter) <= limiter.max_keys
    # Medians of 100 chunks each; the old limiter was ~1000x slower at the end. A ratio of 10
    # leaves room for a loaded, shared machine without letting a linear-time limiter through.
    first, last = statistics.median(times[:100]), statistics.median(times[-100:])
    assert last / first < 10, (first, last)
    assert len(limiter) == limiter.max_keys
