"""Exact searches over grouped fit data (pure functions on numpy arrays and ints).

* :func:`best_times` - choose ``count`` weekly times maximising a sum of per-time scores, pairwise
  far enough apart and accepted by a feasibility test (facilitators). Branch and bound over the
  times sorted by score; the bound (the chosen scores plus the next best remaining scores) is
  admissible, so the first best solution found is optimal.
* :func:`best_cover` - choose ``k`` options (each a set of learner classes) maximising the learners
  served, where a learner is served when one chosen option contains their class and, with a
  capacity, the option still has room. Served learners for a fixed choice are a maximum flow,
  computed exactly from the min-cut formula over the 2^k subsets of options. The search is branch
  and bound over options in a fixed order; the bound is the weighted coverage so far plus the ``r``
  largest single marginal gains (valid because coverage is submodular and flow <= coverage),
  capped at ``capacity * k``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


def best_times(
    scores: Sequence[int],
    candidates: Sequence[int],
    count: int,
    compatible: Callable[[int, int], bool],
    feasible: Callable[[tuple[int, ...]], bool],
) -> tuple[int, tuple[int, ...]] | None:
    """The best ``count`` candidates (sorted ascending) and their total score, or None.

    ``scores[c]`` is candidate ``c``'s score; ties go to the earlier candidates.
    """
    order = sorted(candidates, key=lambda c: (-scores[c], c))
    ranked = [scores[c] for c in order]
    best_value = -1
    best: tuple[int, ...] | None = None

    def search(start: int, chosen: list[int], value: int) -> None:
        nonlocal best_value, best
        need = count - len(chosen)
        if need == 0:
            if value > best_value and feasible(tuple(sorted(chosen))):
                best_value, best = value, tuple(sorted(chosen))
            return
        for i in range(start, len(order) - need + 1):
            if value + sum(ranked[i : i + need]) <= best_value:
                return  # sorted descending: no later start can do better
            c = order[i]
            if all(compatible(c, other) for other in chosen):
                chosen.append(c)
                if feasible(tuple(sorted(chosen))):
                    search(i + 1, chosen, value + ranked[i])
                chosen.pop()

    search(0, [], 0)
    return None if best is None else (best_value, best)


def served(sets: BoolArray, weights: IntArray, capacity: int | None) -> int:
    """Learners served by the options ``sets`` (k x classes): a max flow, by min cut.

    A class may be split over several options; each option takes at most ``capacity`` learners.
    """
    k = sets.shape[0]
    masks = (sets.astype(np.int64) << np.arange(k, dtype=np.int64)[:, None]).sum(axis=0)
    per_mask = np.bincount(masks, weights=weights, minlength=1 << k).astype(np.int64)
    per_mask[0] = 0
    total = int(per_mask.sum())
    if capacity is None:
        return total
    best = total
    all_masks = np.arange(1 << k)
    for cut in range(1, 1 << k):
        outside = (all_masks & ~cut) != 0
        value = capacity * cut.bit_count() + int(per_mask[outside].sum())
        best = min(best, value)
    return best


def best_cover(
    sets: BoolArray,
    weights: IntArray,
    k: int,
    capacity: int | None,
    feasible: Callable[[tuple[int, ...]], bool],
    *,
    repeat: bool,
    stop_at: int | None = None,
) -> tuple[int, tuple[int, ...]] | None:
    """The best choice of ``k`` option indices (non-decreasing) and the learners it serves.

    With ``repeat`` an option may be chosen more than once (two sections at the same time split a
    popular time when capacity binds). ``stop_at``: a value that cannot be beaten (ends early).
    """
    m = sets.shape[0]
    if m == 0:
        return None
    best_value = -1
    best: tuple[int, ...] | None = None
    limit = None if capacity is None else capacity * k
    ceiling = stop_at

    def done() -> bool:
        return ceiling is not None and best_value >= ceiling

    def search(lo: int, chosen: list[int], covered: BoolArray) -> None:
        nonlocal best_value, best
        need = k - len(chosen)
        if lo >= m:
            return
        base = int(weights[covered].sum())
        gains = (sets[lo:] & ~covered) @ weights
        top = np.sort(gains)[::-1]
        rest = int(top[: need - 1].sum())
        bound_all = base + int(top[:need].sum())
        if limit is not None:
            bound_all = min(bound_all, limit)
        if bound_all <= best_value:
            return
        positions = np.argsort(-gains, kind="stable") if need == 1 else range(len(gains))
        for pos in positions:
            i = lo + int(pos)
            bound = base + int(gains[pos]) + rest
            if limit is not None:
                bound = min(bound, limit)
            if bound <= best_value:
                if need == 1:
                    return  # candidates come in descending bound order
                continue
            pick = (*chosen, i)
            if need == 1:
                value = served(sets[list(pick)], weights, capacity)
                if value > best_value and feasible(pick):
                    best_value, best = value, pick
                    if done():
                        return
            elif feasible(pick):
                search(i if repeat else i + 1, list(pick), covered | sets[i])
                if done():
                    return

    search(0, [], np.zeros(sets.shape[1], dtype=bool))
    return None if best is None else (best_value, best)


def best_rotation(
    even: IntArray, odd: IntArray, weights: IntArray, candidates: Sequence[int]
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Rotation between two times A (even weeks) and B (odd weeks), exhaustively.

    ``even[g, c]`` / ``odd[g, c]``: fitting occurrences of candidate ``c`` for class ``g`` in the
    even / odd weeks. Maximises first the learners reached at least once, then learner-occurrences;
    ties go to the earliest (A, B). Returns ((reached, occurrences), (A, B)).
    """
    cands = np.asarray(sorted(candidates), dtype=np.int64)
    e, o = even[:, cands], odd[:, cands]
    best_key = (-1, -1)
    best_pair = (int(cands[0]), int(cands[0]))
    e_reach = e > 0
    o_reach = o > 0
    o_occ = weights @ o
    for ia, a in enumerate(cands):
        reached = ((e_reach[:, ia][:, None] | o_reach).T @ weights).astype(np.int64)
        occ = int(weights @ e[:, ia]) + o_occ
        key = reached * (int(occ.max()) + 1) + occ
        ib = int(np.argmax(key))
        candidate_key = (int(reached[ib]), int(occ[ib]))
        if candidate_key > best_key:
            best_key, best_pair = candidate_key, (int(a), int(cands[ib]))
    return best_key, best_pair
