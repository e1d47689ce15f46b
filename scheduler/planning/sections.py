"""Sectioned series: ``k`` sections with their own weekly times and facilitator, and which learner
goes to which section.

The candidate options (time tuples with the learner classes they fit every week and the
facilitators who can take them) are reduced to the non-dominated ones, ``k`` is fixed or chosen by
``auto_sections``, :func:`scheduler.planning.search.best_cover` picks the options, and a maximum
flow puts learners in the sections that fit them (the rest where most of their sessions fit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scheduler.domain.cohort import SeriesRequest
from scheduler.planning.context import Chosen, Context, NoPlan, far_enough, minutes
from scheduler.planning.fit import BoolArray, FitData, IntArray
from scheduler.planning.model import AutoSectionReport, AutoSectionStep
from scheduler.planning.search import best_cover
from scheduler.planning.staffing import allowed_staff, assign_staff, book, staffable_times

__all__ = ["plan_sections"]


@dataclass(frozen=True)
class _Options:
    times: IntArray  # [option, slot] representative candidate times
    sets: BoolArray  # [option, class] every occurrence fits
    staff: list[frozenset[int]]


def _tuples(eligible: list[int], slots: int, apart: int, size: int) -> IntArray:
    cands = np.asarray(eligible, dtype=np.int64)
    rows = cands[:, None]
    for _ in range(slots - 1):
        last = rows[:, -1]
        right = cands[None, :]
        keep = right > last[:, None]
        for j in range(rows.shape[1]):
            d = np.abs(right - rows[:, j][:, None]) % size
            keep &= np.minimum(d, size - d) >= apart
        left, pick = np.nonzero(keep)
        rows = np.concatenate([rows[left], cands[pick][:, None]], axis=1)
    return rows


def _section_options(
    ctx: Context, request: SeriesRequest, fit: FitData, allowed: list[int], ok: BoolArray
) -> _Options:
    slots = request.per_week
    eligible = np.flatnonzero(staffable_times(ctx, allowed, ok, slots)).tolist()
    if not eligible:
        raise NoPlan("no time a facilitator can take")
    size, apart = ctx.grid.size, far_enough(request, ctx.grid.step)
    tuples = _tuples(eligible, slots, apart, size)
    if tuples.shape[0] == 0:
        raise NoPlan(f"no {slots} times far enough apart that a facilitator can take")
    if ctx.staff.people:
        bits = np.zeros(size, dtype=np.int64)
        for f in allowed:
            if ctx.staff.load[f] >= slots:
                bits |= ok[f].astype(np.int64) << f
        staff_bits = np.bitwise_and.reduce(bits[tuples], axis=1)
    else:
        staff_bits = np.ones(tuples.shape[0], dtype=np.int64)
    keep = staff_bits != 0
    tuples, staff_bits = tuples[keep], staff_bits[keep]
    if tuples.shape[0] == 0:
        raise NoPlan("no facilitator can take all weekly times of a section")
    n = ctx.classes.count
    sets: BoolArray = np.asarray(fit.full[:, tuples].all(axis=2).T)  # [tuple, class]
    occ = (n @ fit.occ)[tuples].sum(axis=1)
    edge = (n @ fit.edge)[tuples].sum(axis=1)
    weight = sets @ n
    order = np.lexsort((np.arange(tuples.shape[0]), -edge, -occ, -weight))
    packed = np.packbits(sets[order], axis=1)
    signature = np.concatenate(
        [packed, staff_bits[order].astype(">i8").view(np.uint8).reshape(-1, 8)], axis=1
    )
    _, first = np.unique(signature, axis=0, return_index=True)
    reps = order[np.sort(first)]  # best representative of each (set, staff) pair, best first
    kept: list[int] = []
    kept_sets = np.zeros((0, sets.shape[1]), dtype=bool)
    kept_bits: list[int] = []
    for r in reps.tolist():
        s, b = sets[r], int(staff_bits[r])
        contains = (kept_sets >= s).all(axis=1) if kept else np.zeros(0, dtype=bool)
        if any(contains[i] and (kept_bits[i] | b) == kept_bits[i] for i in range(len(kept))):
            continue
        kept.append(r)
        kept_sets = np.vstack([kept_sets, s])
        kept_bits.append(b)
    people = [frozenset(f for f in range(64) if b >> f & 1) for b in kept_bits]
    return _Options(tuples[kept], sets[kept], people)


def plan_sections(
    ctx: Context, request: SeriesRequest
) -> tuple[list[Chosen], int, AutoSectionReport | None]:
    duration = minutes(request.duration)
    fit = ctx.fit(duration)
    allowed = allowed_staff(ctx, request)
    ok = ctx.facilitator_ok(duration)
    options = _section_options(ctx, request, fit, allowed, ok)
    n = ctx.classes.count
    total = int(n.sum())
    cap = request.max_section_size
    most = max(1, ctx.spec.planning.max_sections)

    def solve(k: int) -> tuple[int, tuple[int, ...]] | None:
        def feasible(pick: tuple[int, ...]) -> bool:
            sections = [tuple(int(c) for c in options.times[i]) for i in pick]
            return assign_staff(ctx, request, sections, allowed, ok) is not None

        if ctx.staff.people and sum(ctx.staff.load[f] // request.per_week for f in allowed) < k:
            return None  # not enough facilitator load for k sections
        limit = total if cap is None else min(total, cap * k)
        return best_cover(options.sets, n, k, cap, feasible, repeat=True, stop_at=limit)

    report = None
    if request.auto_sections:
        start = 1 if cap is None else max(1, min(most, math.ceil(total / cap)))
        steps: list[AutoSectionStep] = []
        results: dict[int, tuple[int, tuple[int, ...]]] = {}
        previous = 0 if start == 1 else -1
        chosen_k = None
        while start > 1 and solve(start) is None:
            start -= 1  # the facilitators cannot take that many sections: fewer, some left out
        for k in range(start, most + 1):
            found = solve(k)
            if found is None:
                break
            results[k] = found
            gain = found[0] - previous if previous >= 0 else found[0]
            share = found[0] / total if total else 1.0
            steps.append(AutoSectionStep(k, found[0], share, gain))
            previous = found[0]
            if chosen_k is not None:
                break  # one step past the choice: what one more section would add
            if share >= ctx.spec.planning.target_coverage or found[0] == total:
                chosen_k = k
                if k == most:
                    break
        if not results:
            raise NoPlan("no sections a facilitator can take")
        reached = chosen_k is not None
        k = chosen_k if chosen_k is not None else max(results)
        result = results[k]
        report = AutoSectionReport(
            request.key, k, ctx.spec.planning.target_coverage, reached, tuple(steps)
        )
    else:
        if request.sections is not None:
            k = request.sections
        else:
            k = 1 if cap is None else max(1, min(most, math.ceil(total / cap)))
        found = solve(k)
        while found is None and request.sections is None and k > 1:
            k -= 1  # the facilitators cannot take that many sections: fewer, some left out
            found = solve(k)
        if found is None:
            raise NoPlan(f"no {k} sections the facilitators can take")
        result = found
    value, pick = result
    sections = [tuple(int(c) for c in options.times[i]) for i in pick]
    staff = assign_staff(ctx, request, sections, allowed, ok)
    assert staff is not None
    members = _assign_learners(ctx, fit, options.sets[list(pick)], sections, cap)
    out = []
    for j, times in enumerate(sections):
        email = book(ctx, request, staff[j], times)
        out.append(Chosen(request, j, times, (), email, members[j]))
    return out, value, report


def _max_flow(sets: BoolArray, supply: IntArray, cap: int | None) -> IntArray:
    """A maximum flow (classes -> sections), deterministic (Edmonds-Karp, lowest index first)."""
    k, g_count = sets.shape
    flow = np.zeros((g_count, k), dtype=np.int64)
    room = [cap if cap is not None else int(supply.sum()) for _ in range(k)]
    left = supply.copy()
    # Greedy start: each class fills its fitting sections in order.
    for g in range(g_count):
        for j in range(k):
            if sets[j, g] and left[g] and room[j]:
                amount = min(int(left[g]), room[j])
                flow[g, j] += amount
                left[g] -= amount
                room[j] -= amount
    while True:  # augment: class g -> section j -> (back edge) class h -> section j2 ...
        prev: dict[tuple[str, int], tuple[str, int] | None] = {}
        queue: list[tuple[str, int]] = []
        for g in range(g_count):
            if left[g] > 0:
                prev[("g", g)] = None
                queue.append(("g", g))
        end = None
        while queue and end is None:
            kind, node = queue.pop(0)
            if kind == "g":
                for j in range(k):
                    if sets[j, node] and ("s", j) not in prev:
                        prev[("s", j)] = (kind, node)
                        if room[j] > 0:
                            end = j
                            break
                        queue.append(("s", j))
            else:
                for h in range(g_count):
                    if flow[h, node] > 0 and ("g", h) not in prev:
                        prev[("g", h)] = (kind, node)
                        queue.append(("g", h))
        if end is None:
            return flow
        path: list[tuple[str, int]] = []
        step: tuple[str, int] | None = ("s", end)
        while step is not None:
            path.append(step)
            step = prev[step]
        path.reverse()
        amount = min(int(left[path[0][1]]), room[end])
        for i in range(1, len(path), 2):  # g -> s forward, s -> g backward
            g, j = path[i - 1][1], path[i][1]
            if i + 1 < len(path):
                amount = min(amount, int(flow[path[i + 1][1], j]))
        for i in range(1, len(path), 2):
            g, j = path[i - 1][1], path[i][1]
            flow[g, j] += amount
            if i + 1 < len(path):
                flow[path[i + 1][1], j] -= amount
        left[path[0][1]] -= amount
        room[end] -= amount


def _assign_learners(
    ctx: Context,
    fit: FitData,
    sets: BoolArray,
    sections: Sequence[tuple[int, ...]],
    cap: int | None,
) -> list[list[int]]:
    n = ctx.classes.count
    flow = _max_flow(sets, n, cap)
    k = len(sections)
    room = [
        (cap if cap is not None else len(ctx.learners)) - int(flow[:, j].sum()) for j in range(k)
    ]
    partial = np.stack([fit.occ[:, list(t)].sum(axis=1) for t in sections], axis=1)  # [g, j]
    members: list[list[int]] = [[] for _ in range(k)]
    for g, people in enumerate(ctx.classes.members):
        cursor = 0
        for j in range(k):
            take = int(flow[g, j])
            members[j].extend(people[cursor : cursor + take])
            cursor += take
        rest = people[cursor:]
        if not rest:
            continue
        prefs = sorted(range(k), key=lambda j: (-int(partial[g, j]), j))
        for j in prefs:
            take = min(room[j], len(rest))
            members[j].extend(rest[:take])
            room[j] -= take
            rest = rest[take:]
    return [sorted(m) for m in members]
