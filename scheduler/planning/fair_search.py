"""Exact search for a fair rotation over grouped tallies (pure functions on numpy arrays).

The fairness planner (:mod:`scheduler.planning.fairness`) reduces a cohort to *tallies*: for each
candidate time ``c`` and each *week type* ``t`` (weeks whose fit and pain are identical for every
learner class: the same clock regime between DST changes, the same blackout status),

* ``reach[c, t]``: learners reached (preferred or stretch hours) by ``c`` in one such week,
* ``pain[c, t]``: the summed pain of those reached in stretch hours,
* ``inc[c, t, r]``: learners of region ``r`` who carry an inconvenient meeting (stretch or missed).

A plan picks up to ``k`` times and, for each week type with ``m[t]`` weeks, how many of those
weeks use each time (a *count vector*). Every objective is a sum over weeks, so which weeks of a
type get which time does not change any objective: enumerating count vectors instead of week
assignments is exact and turns ``k ** weeks`` assignments into a few hundred vectors.

Objective, lexicographic: reach at least ``min_reach``; then the smallest worst region share
``max_r inc_r / (size_r * weeks)``; then the least total pain; then more reach; then fewer times;
then the earliest times. :func:`best_rotation` enumerates the ``k``-subsets of a candidate pool in
order of a lower bound (each region at its own best in every week; the least pain in every week)
and stops when the bound passes the incumbent, so it is exact for the pool. :func:`share_bound`
gives a linear-programming lower bound valid for every plan over all candidates; the difference
is the optimality gap reported when the pool is smaller than the candidate set.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

__all__ = [
    "RotationChoice",
    "Tallies",
    "best_reach",
    "best_rotation",
    "layout",
    "nondominated",
    "share_bound",
]


@dataclass(frozen=True)
class Tallies:
    """Per candidate and week type: ``reach[c, t]``, ``pain[c, t]``, ``inc[c, t, r]``;
    ``weeks[t]``: how many course weeks are of type ``t``; ``sizes[r]``: learners per region;
    ``sig[c, t]``: equal for two types exactly when candidate ``c`` costs every class the same
    in both (a clock change elsewhere in the week leaves it alone), so a set of times sees
    fewer week types than the whole grid does."""

    reach: IntArray
    pain: IntArray
    inc: IntArray
    weeks: IntArray
    sizes: IntArray
    sig: IntArray

    @property
    def total_weeks(self) -> int:
        return int(self.weeks.sum())

    def values(self) -> FloatArray:
        """``[c, t, f]`` with f = reach, pain, inc per region (exact integers as floats)."""
        return np.concatenate(
            [self.reach[:, :, None], self.pain[:, :, None], self.inc], axis=2
        ).astype(np.float64)


@dataclass(frozen=True)
class RotationChoice:
    """The best plan found: ``times`` (candidate indices, ascending, each used at least once),
    ``counts[i, g]`` weeks of group ``g`` using ``times[i]`` (``groups[t]``: the group of week
    type ``t``, types that look alike to these times), its objective values, and whether every
    per-set problem was solved by full enumeration (``complete``)."""

    times: tuple[int, ...]
    counts: IntArray
    groups: IntArray
    reach: int
    pain: int
    inc: IntArray
    share: float
    complete: bool


@lru_cache(maxsize=256)
def compositions(total: int, parts: int) -> IntArray:
    """Every vector of ``parts`` non-negative integers summing to ``total`` (stars and bars)."""
    rows = []
    for bars in itertools.combinations(range(total + parts - 1), parts - 1):
        edges = (-1, *bars, total + parts - 1)
        rows.append([edges[i + 1] - edges[i] - 1 for i in range(parts)])
    return np.array(rows, dtype=np.int64).reshape(-1, parts)


def nondominated(keys: FloatArray, candidates: Sequence[int]) -> list[int]:
    """Candidates whose row of ``keys`` (larger is better in every column) no other candidate
    matches or beats everywhere; among equal rows the first is kept. Replacing a dominated time
    by its dominator never makes any objective worse, so dropping it is exact."""
    order = list(candidates)
    rows = keys[order]
    keep: list[int] = []
    kept = np.empty_like(rows)
    ranking = np.lexsort((np.arange(len(order)), *(-rows.T)[::-1]))  # best first, then earliest
    for i in ranking.tolist():
        row = rows[i]
        if keep and bool((kept[: len(keep)] >= row).all(axis=1).any()):
            continue
        kept[len(keep)] = row
        keep.append(order[i])
    return sorted(keep)


def best_reach(
    reach: IntArray, weeks: IntArray, candidates: Sequence[int], k: int
) -> tuple[int, tuple[int, ...]]:
    """The most learner-meetings reached by any plan with at most ``k`` times, and such times
    (exact). With no more week types than ``k`` each type takes its own best time; otherwise the
    ``k``-sets of candidates with non-dominated reach vectors are enumerated."""
    cands = list(candidates)
    per = reach[cands] * weeks[None, :]
    if reach.shape[1] <= k:
        best = per.argmax(axis=0)
        return int(per.max(axis=0).sum()), tuple(sorted({cands[int(i)] for i in best}))
    front = nondominated(per.astype(np.float64), range(len(cands)))
    size = min(k, len(front))
    value = -1
    chosen: tuple[int, ...] = ()
    combos = itertools.combinations(front, size)
    while chunk := list(itertools.islice(combos, 65_536)):
        sets = np.array(chunk, dtype=np.int64)
        got = per[sets].max(axis=1).sum(axis=1)
        best = int(np.argmax(got))  # the first of equal values: the earliest set
        if int(got[best]) > value:
            value, chosen = int(got[best]), tuple(cands[i] for i in chunk[best])
    return value, chosen


def _pick(totals: FloatArray, used: IntArray, min_reach: int, sizes: FloatArray) -> int | None:
    """Index of the best row of ``totals`` (reach, pain, inc...) by the module's objective."""
    feasible = totals[:, 0] >= min_reach
    if not feasible.any():
        return None
    share = (totals[:, 2:] / sizes[None, :]).max(axis=1)
    idx = np.flatnonzero(feasible)
    # lexsort: last key is primary. Earlier rows (earlier counts) win the final tie.
    order = np.lexsort((idx, used[idx], -totals[idx, 0], totals[idx, 1], share[idx]))
    return int(idx[order[0]])


def _solve_set(
    vals: FloatArray,
    weeks: IntArray,
    sig: IntArray,
    min_reach: int,
    sizes: FloatArray,
    max_rows: int,
    incumbent: tuple[float, float] | None = None,
) -> tuple[FloatArray, IntArray, IntArray, bool] | None:
    """Best count vectors for one set of times (``vals[i, t, f]``, ``sig[i, t]``): week types
    that look the same to every time of the set are merged; then full enumeration when the
    product of the per-type compositions has at most ``max_rows`` rows, else each week type in
    turn keeps only its best partial rows (``complete`` False). Returns the totals, the counts
    per merged group (``[i, group]``), each week type's group and ``complete``."""
    merged: dict[bytes, int] = {}
    groups = np.array(
        [merged.setdefault(sig[:, t].tobytes(), len(merged)) for t in range(sig.shape[1])]
    )
    firsts = [int(np.flatnonzero(groups == g)[0]) for g in range(len(merged))]
    weeks_of = np.bincount(groups, weights=weeks, minlength=len(merged)).astype(np.int64)
    solved = _solve_types(vals[:, firsts, :], weeks_of, min_reach, sizes, max_rows, incumbent)
    if solved is None:
        return None
    totals, counts, complete = solved
    return totals, counts, groups, complete


def _solve_types(
    vals: FloatArray,
    weeks: IntArray,
    min_reach: int,
    sizes: FloatArray,
    max_rows: int,
    incumbent: tuple[float, float] | None,
) -> tuple[FloatArray, IntArray, bool] | None:
    """Count vectors type by type (most weeks first). After each type, partial rows that cannot
    reach ``min_reach`` or cannot match ``incumbent`` (share, pain) even if every remaining
    week went to the best time of the set for each region, are dropped (exact)."""
    k, n_types, n_f = vals.shape
    order = np.argsort(-weeks, kind="stable").tolist()
    scaled = vals * weeks[None, :, None]
    best_reach = scaled[:, :, 0].max(axis=0)  # per type: the most any time of the set reaches
    least = scaled[:, :, 1:].min(axis=0)  # per type: least pain, least inconvenience per region
    totals = np.zeros((1, n_f))
    counts = np.zeros((1, k, 0), dtype=np.int64)
    complete = True
    for step, t in enumerate(order):
        comp = compositions(int(weeks[t]), k)
        part = comp @ vals[:, t, :]
        totals = (totals[:, None, :] + part[None, :, :]).reshape(-1, n_f)
        counts = np.concatenate(
            [
                np.repeat(counts, len(comp), axis=0),
                np.tile(comp, (counts.shape[0], 1))[:, :, None],
            ],
            axis=2,
        )
        rest = order[step + 1 :]
        reach_ub = totals[:, 0] + best_reach[rest].sum()
        low = totals[:, 1:] + least[rest].sum(axis=0)
        share_lb = (low[:, 1:] / sizes[None, :]).max(axis=1)
        keep = reach_ub >= min_reach
        if incumbent is not None:
            keep &= (share_lb < incumbent[0]) | (
                (share_lb == incumbent[0]) & (low[:, 0] <= incumbent[1])
            )
        totals, counts = totals[keep], counts[keep]
        if not len(totals):
            return None
        if len(totals) > max_rows:
            complete = False
            keep_rows = np.lexsort((low[keep][:, 0], share_lb[keep]))[:max_rows]
            totals, counts = totals[keep_rows], counts[keep_rows]
    used = (counts.sum(axis=2) > 0).sum(axis=1)
    best = _pick(totals, used, min_reach, sizes)
    if best is None:
        return None
    full = np.zeros((k, n_types), dtype=np.int64)
    full[:, order] = counts[best]
    return totals[best], full, complete


def best_rotation(
    tallies: Tallies,
    pool: Sequence[int],
    k: int,
    min_reach: int,
    *,
    max_rows: int = 50_000,
    multipliers: tuple[FloatArray, float] | None = None,
) -> RotationChoice | None:
    """The best plan with at most ``k`` times from ``pool`` (exact for the pool when
    ``complete``); None when no plan reaches ``min_reach``.

    Sets of times are tried in order of a lower bound on their worst share: the larger of
    "each region at its best time every week" and, with ``multipliers`` ``(w, u)`` (region
    weights summing to 1, a price per learner reached), the Lagrangian bound
    ``u * min_reach + sum_t m_t min_i (sum_r w_r inc_r / size_r - u * reach)``: valid for any
    non-negative multipliers, since the worst share is at least any weighted mean of the shares."""
    pool = sorted(pool)
    size = min(k, len(pool))
    if size == 0:
        return None
    vals = tallies.values()[pool]  # [p, t, f]
    sig = tallies.sig[pool]
    weeks = tallies.weeks
    sizes = tallies.sizes.astype(np.float64) * tallies.total_weeks
    sets = np.array(list(itertools.combinations(range(len(pool)), size)), dtype=np.int64)
    chunk = vals[sets]  # [s, i, t, f]
    reach_ub = (chunk[:, :, :, 0].max(axis=1) * weeks).sum(axis=1)
    pain_lb = (chunk[:, :, :, 1].min(axis=1) * weeks).sum(axis=1)
    inc_lb = (chunk[:, :, :, 2:].min(axis=1) * weeks[None, :, None]).sum(axis=1)
    share_lb = (inc_lb / sizes[None, :]).max(axis=1)
    if multipliers is not None:
        weights, price = multipliers
        mixed = (chunk[:, :, :, 2:] / sizes * weights).sum(axis=3) - price * chunk[:, :, :, 0]
        lagrange = price * min_reach + (mixed.min(axis=1) * weeks).sum(axis=1)
        share_lb = np.maximum(share_lb, lagrange - 1e-12)
    order = np.lexsort((np.arange(len(sets)), pain_lb, share_lb))
    best_key: tuple[float, float, float, int, tuple[int, ...]] | None = None
    best: RotationChoice | None = None
    complete = True
    for s in order.tolist():
        if reach_ub[s] < min_reach:
            continue
        if best_key is not None and (share_lb[s], pain_lb[s]) > best_key[:2]:
            break  # sorted by the bound: no later set can do better
        solved = _solve_set(
            vals[sets[s]],
            weeks,
            sig[sets[s]],
            min_reach,
            sizes,
            max_rows,
            None if best_key is None else (best_key[0], best_key[1]),
        )
        if solved is None:
            continue
        totals, counts, groups, whole = solved
        complete &= whole
        used = [i for i in range(size) if counts[i].sum() > 0]
        times = tuple(pool[int(sets[s][i])] for i in used)
        share = float((totals[2:] / sizes).max())
        key = (share, float(totals[1]), -float(totals[0]), len(times), times)
        if best_key is None or key < best_key:
            best_key = key
            best = RotationChoice(
                times=times,
                counts=counts[used],
                groups=groups,
                reach=int(totals[0]),
                pain=int(totals[1]),
                inc=totals[2:].astype(np.int64),
                share=share,
                complete=True,
            )
    if best is None:
        return None
    return RotationChoice(
        best.times, best.counts, best.groups, best.reach, best.pain, best.inc, best.share, complete
    )


def share_bound(
    tallies: Tallies, candidates: Sequence[int], min_reach: int
) -> tuple[float, FloatArray, float]:
    """A lower bound on the worst region share of *any* plan over ``candidates`` reaching
    ``min_reach``: the linear relaxation (weeks may be split between times, any number of
    times), solved with GLOP. Also returns multipliers ``(weights, per_reach)`` for
    :func:`best_rotation`'s per-set bound: the LP's dual values (any non-negative ones give a
    valid bound; these give the strongest). (0, uniform, 0) when the solver gives no answer."""
    from ortools.linear_solver import pywraplp

    n_t, n_r = tallies.weeks.shape[0], tallies.sizes.shape[0]
    fallback = (0.0, np.full(n_r, 1.0 / max(1, n_r)), 0.0)
    solver = pywraplp.Solver.CreateSolver("GLOP")
    if solver is None:  # pragma: no cover - GLOP ships with ortools
        return fallback
    cands = list(candidates)
    x = {(c, t): solver.NumVar(0.0, float(tallies.weeks[t]), "") for c in cands for t in range(n_t)}
    z = solver.NumVar(0.0, solver.infinity(), "z")
    for t in range(n_t):
        solver.Add(sum(x[c, t] for c in cands) == float(tallies.weeks[t]))
    coverage = solver.Add(
        sum(float(tallies.reach[c, t]) * x[c, t] for c in cands for t in range(n_t))
        >= float(min_reach)
    )
    denom = tallies.sizes.astype(np.float64) * tallies.total_weeks
    regions = [
        solver.Add(
            sum(float(tallies.inc[c, t, r]) / denom[r] * x[c, t] for c in cands for t in range(n_t))
            <= z
        )
        for r in range(n_r)
    ]
    solver.Minimize(z)
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        return fallback
    weights = np.abs(np.array([c.dual_value() for c in regions], dtype=np.float64))
    if weights.sum() <= 0:
        return fallback
    per_reach = abs(float(coverage.dual_value())) / float(weights.sum())
    return max(0.0, float(z.solution_value()) - 1e-9), weights / weights.sum(), per_reach


def layout(counts: IntArray, group_of_week: Sequence[int]) -> tuple[int, ...]:
    """Which time (row of ``counts``) each course week uses, given ``counts[i, g]`` weeks of group
    ``g`` for time ``i``: week by week, among the times with weeks of this group left, the one
    furthest behind its even share of the course so far goes next (A B A B ..., ties to the
    earlier time), so each time comes round at a steady pace."""
    left = counts.copy()
    totals = counts.sum(axis=1).astype(np.float64)
    given = np.zeros(counts.shape[0])
    weeks = len(group_of_week)
    out: list[int] = []
    for w, g in enumerate(group_of_week):
        behind = totals * (w + 1) / weeks - given
        i = int(np.argmax(np.where(left[:, g] > 0, behind, -np.inf)))
        left[i, g] -= 1
        given[i] += 1
        out.append(i)
    return tuple(out)
