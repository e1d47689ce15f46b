"""``make_plan``: choose live-session times for a cohort, exactly, every week, DST-aware.

Objectives (all optimised exactly; see :mod:`scheduler.planning.search`):

* **Whole-cohort series** (a ``class`` or ``office_hours`` with no sections): ``per_week`` times,
  at least ``max(min_gap, duration)`` apart on the weekly circle, led by one facilitator who fits
  every time every week and has the load left. Maximise learner-occurrences that fit; ties go to
  more learners fitted every week (stable across DST changes), then to more slack from the edges
  of their windows (capped at an hour), then to earlier times.
* **Sections** (``max_section_size``, ``sections = N`` or ``auto_sections``): ``k`` sections, each
  with its own ``per_week`` times and facilitator; every learner is assigned to one section
  (at most ``max_section_size`` each). A learner's section *fits* them when every occurrence of it
  (each weekly time, every active week) fits. Maximise the learners whose section fits them.
  Among equal choices the times with more learner-occurrences, then more slack, win.
  Facilitators never get two overlapping sessions. (Options whose learner set and facilitator set
  are both contained in another option's are dropped before the search; if facilitator overlaps
  rule out every dominating option the search may miss a dominated one.)
* **Co-working** (follow the sun): the fewest blocks (up to ``max_blocks``) so that every learner
  with a time that fits every week gets one; no facilitator needed. With ``per_week > 1`` the
  search treats each block's learner set as reusable up to ``per_week`` times.
* **Rotation** (``rotate = true``, ``per_week = 1``): times A (even weeks) and B (odd weeks)
  maximising the learners reached at least once, then learner-occurrences; exhaustive.
* ``office_hours`` are planned like a whole-cohort class.

Series are planned in file order; each takes facilitator load from the ones after it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from scheduler.domain.cohort import CohortSpec, Facilitator, SeriesKind, SeriesRequest
from scheduler.errors import PlanningError
from scheduler.planning.fit import (
    BoolArray,
    Classes,
    FitData,
    Grid,
    IntArray,
    build_classes,
    build_fit,
    build_grid,
    facilitator_fit,
)
from scheduler.planning.model import (
    AutoSectionReport,
    AutoSectionStep,
    DstWarning,
    LearnerInput,
    LeftOut,
    LeftOutReason,
    Occurrence,
    Plan,
    SectionPlan,
    SeriesCoverage,
    SessionTime,
)
from scheduler.planning.search import best_cover, best_rotation, best_times
from scheduler.timeutil import MINUTES_PER_DAY, MINUTES_PER_WEEK, Weekday, zone

__all__ = ["local_start", "make_plan", "sectioned"]


def sectioned(request: SeriesRequest) -> bool:
    """Whether a series is split into sections (else one whole-cohort time set)."""
    return request.kind != SeriesKind.COWORKING and (
        request.max_section_size is not None
        or request.sections is not None
        or request.auto_sections
    )


@dataclass
class _Staff:
    """Facilitator load and busy intervals (anchor minutes of the week) while planning."""

    people: tuple[Facilitator, ...]
    load: list[int]
    busy: list[list[tuple[int, int]]]

    def free(self, f: int, start: int, length: int, extra: Sequence[tuple[int, int]]) -> bool:
        return not _meets(start, length, (*self.busy[f], *extra))


def _meets(start: int, length: int, busy: Sequence[tuple[int, int]]) -> bool:
    """Whether ``[start, start + length)`` overlaps one of ``busy`` on the weekly circle."""
    for b_start, b_len in busy:
        if (start - b_start) % MINUTES_PER_WEEK < b_len or (
            b_start - start
        ) % MINUTES_PER_WEEK < length:
            return True
    return False


@dataclass
class _Chosen:
    series: SeriesRequest
    section: int
    times: tuple[int, ...]
    alternate: tuple[int, ...]
    facilitator: str | None
    members: list[int]  # learner indices


@dataclass
class _Context:
    spec: CohortSpec
    learners: Sequence[LearnerInput]
    grid: Grid
    classes: Classes
    class_of: IntArray
    staff: _Staff
    fits: dict[int, FitData] = field(default_factory=dict)
    fac_ok: dict[int, BoolArray] = field(default_factory=dict)  # duration -> [f, c]
    busy: list[tuple[int, int]] = field(default_factory=list)  # live (minute of week, length)
    _regions: tuple[IntArray, list[str]] | None = None

    def regions(self) -> tuple[IntArray, list[str]]:
        """Each learner's zone region ("America" for America/Bogota) as an index, and the names."""
        if self._regions is None:
            names: dict[str, int] = {}
            ids = [names.setdefault(x.zone.split("/")[0], len(names)) for x in self.learners]
            self._regions = (np.array(ids, dtype=np.int64), list(names))
        return self._regions

    def fit(self, duration: int) -> FitData:
        if duration not in self.fits:
            self.fits[duration] = build_fit(self.grid, self.classes, duration)
        return self.fits[duration]

    def facilitator_ok(self, duration: int) -> BoolArray:
        if duration not in self.fac_ok:
            rows = [
                facilitator_fit(self.grid, f.zone, f.availability, duration)
                for f in self.staff.people
            ]
            shape = (0, self.grid.size)
            self.fac_ok[duration] = np.array(rows, dtype=bool).reshape(
                (len(rows), self.grid.size) if rows else shape
            )
        return self.fac_ok[duration]


def make_plan(spec: CohortSpec, learners: Sequence[LearnerInput]) -> Plan:
    """Plan every series of ``spec`` for ``learners`` (all active learners of the cohort).

    Deterministic: the same spec and the same learners (in any order) give an equal plan.
    Raises :class:`PlanningError` naming every series that cannot be planned at all.
    """
    ordered = sorted(learners, key=lambda item: item.key)
    keys = [item.key for item in ordered]
    if len(set(keys)) != len(keys):
        dupes = sorted(k for k, n in Counter(keys).items() if n > 1)
        raise PlanningError(f"learner keys must be unique: {', '.join(dupes[:5])}")
    grid = build_grid(spec)
    classes = build_classes(grid, [x.zone for x in ordered], [x.availability for x in ordered])
    class_of = np.zeros(len(ordered), dtype=np.int64)
    for g, members in enumerate(classes.members):
        class_of[list(members)] = g
    people = spec.facilitators
    staff = _Staff(people, [f.max_sessions_per_week for f in people], [[] for _ in people])
    ctx = _Context(spec, ordered, grid, classes, class_of, staff)
    chosen: list[_Chosen] = []
    reports: list[AutoSectionReport] = []
    notes: list[str] = []
    problems: list[str] = []
    objective: list[tuple[str, int]] = []
    # Co-working comes last so its blocks can avoid the live sessions already chosen: a block at
    # the same time as a learner's class is one they cannot use.
    for request in sorted(spec.series, key=lambda r: r.kind == SeriesKind.COWORKING):
        try:
            if request.kind == SeriesKind.COWORKING:
                picked, value = _plan_coworking(ctx, request)
            elif sectioned(request):
                picked, value, report = _plan_sections(ctx, request)
                if report is not None:
                    reports.append(report)
            elif request.rotate and request.per_week == 1:
                picked, value = _plan_rotation(ctx, request)
            else:
                if request.rotate:
                    notes.append(f"{request.key}: rotation needs per_week = 1; planned without it")
                picked, value = _plan_whole(ctx, request)
        except _NoPlan as e:
            problems.append(f"series {request.key!r}: {e}")
            continue
        chosen.extend(picked)
        objective.append((request.key, value))
        if request.kind != SeriesKind.COWORKING:
            length = _minutes(request.duration)
            ctx.busy.extend(
                (c * grid.step, length) for item in picked for c in item.times + item.alternate
            )
    if problems:
        raise PlanningError("; ".join(problems))
    return _assemble(ctx, chosen, reports, notes, objective)


class _NoPlan(Exception):
    pass


# --- facilitators -------------------------------------------------------------------------------


def _allowed(ctx: _Context, request: SeriesRequest) -> list[int]:
    if not request.facilitators:
        return list(range(len(ctx.staff.people)))
    wanted = {e.lower() for e in request.facilitators}
    return [i for i, f in enumerate(ctx.staff.people) if f.email.lower() in wanted]


def _assign_staff(
    ctx: _Context,
    request: SeriesRequest,
    sections: Sequence[tuple[int, ...]],
    allowed: Sequence[int],
    ok: BoolArray,
) -> list[int | None] | None:
    """One facilitator per section (all its times), or None when impossible. Without any
    facilitator in the cohort every section runs unfacilitated ([None, ...])."""
    if not ctx.staff.people:
        return [None] * len(sections)
    step, length = ctx.grid.step, _minutes(request.duration)
    used: dict[int, list[tuple[int, int]]] = {}
    out: list[int | None] = []

    def place(j: int) -> bool:
        if j == len(sections):
            return True
        times = sections[j]
        for f in allowed:
            extra = used.setdefault(f, [])
            if ctx.staff.load[f] - len(extra) < len(times) or not all(ok[f, c] for c in times):
                continue
            if not all(ctx.staff.free(f, c * step, length, extra) for c in times):
                continue
            extra.extend((c * step, length) for c in times)
            out.append(f)
            if place(j + 1):
                return True
            out.pop()
            del extra[len(extra) - len(times) :]
        return False

    return list(out) if place(0) else None


def _book(ctx: _Context, request: SeriesRequest, f: int | None, times: Sequence[int]) -> str | None:
    if f is None:
        return None
    for c in times:
        ctx.staff.busy[f].append((c * ctx.grid.step, _minutes(request.duration)))
    ctx.staff.load[f] -= len(times)
    return ctx.staff.people[f].email


def _eligible(ctx: _Context, allowed: Sequence[int], ok: BoolArray, need: int) -> BoolArray:
    """Candidates some allowed facilitator fits with ``need`` sessions of load left."""
    has_week = ctx.grid.active.any(axis=1)
    if not ctx.staff.people:
        return np.asarray(has_week)
    mask = np.zeros(ctx.grid.size, dtype=bool)
    for f in allowed:
        if ctx.staff.load[f] >= need:
            mask |= ok[f]
    return mask & has_week


def _minutes(value: timedelta) -> int:
    return int(value // timedelta(minutes=1))


def _far_enough(request: SeriesRequest, step: int) -> int:
    """Smallest distance (in candidates) between two weekly times of one section."""
    gap = max(_minutes(request.min_gap), _minutes(request.duration))
    return math.ceil(gap / step)


def _circular(a: int, b: int, size: int) -> int:
    d = abs(a - b) % size
    return min(d, size - d)


# --- whole-cohort series ---------------------------------------------------------------------


def _scores(ctx: _Context, fit: FitData, slots: int) -> list[int]:
    n = ctx.classes.count
    total = int(n.sum())
    occ = (n @ fit.occ).tolist()
    stable = (n @ fit.full).tolist()
    edge = (n @ fit.edge).tolist()
    b1 = total * 60 * slots + 1
    b2 = total * slots * b1 + 1
    return [int(o) * b2 + int(s) * b1 + int(e) for o, s, e in zip(occ, stable, edge, strict=True)]


def _plan_whole(ctx: _Context, request: SeriesRequest) -> tuple[list[_Chosen], int]:
    duration = _minutes(request.duration)
    fit = ctx.fit(duration)
    allowed = _allowed(ctx, request)
    ok = ctx.facilitator_ok(duration)
    eligible = np.flatnonzero(_eligible(ctx, allowed, ok, request.per_week)).tolist()
    scores = _scores(ctx, fit, request.per_week)
    size, apart = ctx.grid.size, _far_enough(request, ctx.grid.step)
    result = best_times(
        scores,
        eligible,
        request.per_week,
        lambda a, b: _circular(a, b, size) >= apart,
        lambda times: _assign_staff(ctx, request, [times], allowed, ok) is not None,
    )
    if result is None:
        raise _NoPlan(f"no {request.per_week} time(s) a facilitator can take")
    _, times = result
    staff = _assign_staff(ctx, request, [times], allowed, ok)
    assert staff is not None
    email = _book(ctx, request, staff[0], times)
    value = int((ctx.classes.count @ fit.occ[:, list(times)]).sum())
    return [_Chosen(request, 0, times, (), email, list(range(len(ctx.learners))))], value


def _plan_rotation(ctx: _Context, request: SeriesRequest) -> tuple[list[_Chosen], int]:
    duration = _minutes(request.duration)
    fit = ctx.fit(duration)
    even = fit.fits[:, :, 0::2].sum(axis=2).astype(np.int64)
    odd = fit.fits[:, :, 1::2].sum(axis=2).astype(np.int64)
    allowed = _allowed(ctx, request)
    ok = ctx.facilitator_ok(duration)
    best: tuple[tuple[int, int], tuple[int, int], int | None] | None = None
    pools: list[tuple[int | None, list[int]]]
    if ctx.staff.people:
        pools = [
            (f, np.flatnonzero(ok[f] & ctx.grid.active.any(axis=1)).tolist())
            for f in allowed
            if ctx.staff.load[f] >= 1
        ]
    else:
        pools = [(None, np.flatnonzero(ctx.grid.active.any(axis=1)).tolist())]
    for f, cands in pools:
        cands = [
            c for c in cands if f is None or ctx.staff.free(f, c * ctx.grid.step, duration, [])
        ]
        if not cands:
            continue
        key, pair = best_rotation(even, odd, ctx.classes.count, cands)
        if best is None or key > best[0]:
            best = (key, pair, f)
    if best is None:
        raise _NoPlan("no time a facilitator can take")
    key, (a, b), f = best
    email = _book(ctx, request, f, sorted({a, b}))
    return [_Chosen(request, 0, (a,), (b,), email, list(range(len(ctx.learners))))], key[0]


# --- sections --------------------------------------------------------------------------------


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
    ctx: _Context, request: SeriesRequest, fit: FitData, allowed: list[int], ok: BoolArray
) -> _Options:
    slots = request.per_week
    eligible = np.flatnonzero(_eligible(ctx, allowed, ok, slots)).tolist()
    if not eligible:
        raise _NoPlan("no time a facilitator can take")
    size, apart = ctx.grid.size, _far_enough(request, ctx.grid.step)
    tuples = _tuples(eligible, slots, apart, size)
    if tuples.shape[0] == 0:
        raise _NoPlan(f"no {slots} times far enough apart that a facilitator can take")
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
        raise _NoPlan("no facilitator can take all weekly times of a section")
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


def _plan_sections(
    ctx: _Context, request: SeriesRequest
) -> tuple[list[_Chosen], int, AutoSectionReport | None]:
    duration = _minutes(request.duration)
    fit = ctx.fit(duration)
    allowed = _allowed(ctx, request)
    ok = ctx.facilitator_ok(duration)
    options = _section_options(ctx, request, fit, allowed, ok)
    n = ctx.classes.count
    total = int(n.sum())
    cap = request.max_section_size
    most = max(1, ctx.spec.planning.max_sections)

    def solve(k: int) -> tuple[int, tuple[int, ...]] | None:
        def feasible(pick: tuple[int, ...]) -> bool:
            sections = [tuple(int(c) for c in options.times[i]) for i in pick]
            return _assign_staff(ctx, request, sections, allowed, ok) is not None

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
            raise _NoPlan("no sections a facilitator can take")
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
            raise _NoPlan(f"no {k} sections the facilitators can take")
        result = found
    value, pick = result
    sections = [tuple(int(c) for c in options.times[i]) for i in pick]
    staff = _assign_staff(ctx, request, sections, allowed, ok)
    assert staff is not None
    members = _assign_learners(ctx, fit, options.sets[list(pick)], sections, cap)
    out = []
    for j, times in enumerate(sections):
        email = _book(ctx, request, staff[j], times)
        out.append(_Chosen(request, j, times, (), email, members[j]))
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
    ctx: _Context,
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


# --- co-working --------------------------------------------------------------------------------


def _plan_coworking(ctx: _Context, request: SeriesRequest) -> tuple[list[_Chosen], int]:
    duration = _minutes(request.duration)
    fit = ctx.fit(duration)
    n = ctx.classes.count
    has_week = ctx.grid.active.any(axis=1)
    step = ctx.grid.step
    free = np.array([not _meets(c * step, duration, ctx.busy) for c in range(ctx.grid.size)])
    cands = np.flatnonzero(has_week & free)
    if cands.size == 0:
        cands = np.flatnonzero(has_week)  # the live sessions fill the week: allow overlaps
    sets = fit.full[:, cands].T
    coverable = sets.any(axis=0)
    goal = int(n[coverable].sum())
    weight = sets @ n
    occ = (n @ fit.occ)[cands]
    edge = (n @ fit.edge)[cands]
    order = np.lexsort((cands, -edge, -occ, -weight))
    packed = np.packbits(sets[order], axis=1)
    _, first = np.unique(packed, axis=0, return_index=True)
    reps = order[np.sort(first)]
    kept: list[int] = []
    for r in reps.tolist():
        if request.per_week == 1 and any((sets[q] >= sets[r]).all() for q in kept):
            continue
        kept.append(r)
    option_sets = sets[kept]
    blocks: tuple[int, ...] = ()
    value = 0
    most = max(1, request.max_blocks)
    need = request.per_week
    for k in range(need, most + 1):
        found = best_cover(
            option_sets,
            n,
            k,
            None,
            lambda pick: all(pick.count(i) <= need for i in pick),
            repeat=need > 1,
            stop_at=goal,
        )
        if found is None:
            break
        value, blocks = found
        if value >= goal:
            break
    if not blocks:
        raise _NoPlan("no co-working block fits anybody")
    out = []
    times = [int(cands[kept[i]]) for i in blocks]
    times = sorted(set(times))
    for j, c in enumerate(times):
        fitted = [
            i for g in np.flatnonzero(fit.full[:, c]).tolist() for i in ctx.classes.members[g]
        ]
        out.append(_Chosen(request, j, (c,), (), None, sorted(fitted)))
    return out, value


# --- assembling the plan --------------------------------------------------------------------------


def _session(grid: Grid, c: int) -> SessionTime:
    minute = c * grid.step
    return SessionTime(Weekday(minute // MINUTES_PER_DAY), minute % MINUTES_PER_DAY)


def _slots(item: _Chosen, week: int) -> tuple[int, ...]:
    return item.alternate if item.alternate and week % 2 else item.times


def _by_week(fit: FitData, g: int, item: _Chosen, weeks: int) -> tuple[int, ...]:
    return tuple(int(fit.fits[g, list(_slots(item, w)), w].sum()) for w in range(weeks))


def _assemble(
    ctx: _Context,
    chosen: list[_Chosen],
    reports: list[AutoSectionReport],
    notes: list[str],
    objective: list[tuple[str, int]],
) -> Plan:
    grid, spec = ctx.grid, ctx.spec
    weeks = spec.weeks
    sections: list[SectionPlan] = []
    occurrences: list[Occurrence] = []
    warnings: list[DstWarning] = []
    active_slots = [
        [int(grid.active[list(_slots(item, w)), w].sum()) for w in range(weeks)] for item in chosen
    ]
    for item, per_week in zip(chosen, active_slots, strict=True):
        request = item.series
        duration = _minutes(request.duration)
        fit = ctx.fit(duration)
        member_classes = Counter(
            dict(enumerate(np.bincount(ctx.class_of[item.members], minlength=0).tolist()))
        )
        member_classes = Counter({g: c for g, c in member_classes.items() if c})
        fitted = sum(
            count
            for g, count in member_classes.items()
            if all(
                fit.fits[g, c, w] or not grid.active[c, w]
                for w in range(weeks)
                for c in _slots(item, w)
            )
        )
        by_week: list[float | None] = []
        for w in range(weeks):
            if per_week[w] == 0:
                by_week.append(None)
                continue
            good = sum(
                count
                for g, count in member_classes.items()
                if int(fit.fits[g, list(_slots(item, w)), w].sum()) == per_week[w]
            )
            by_week.append(good / len(item.members) if item.members else 0.0)
        keys = tuple(ctx.learners[i].key for i in item.members)
        sections.append(
            SectionPlan(
                series=request.key,
                kind=request.kind,
                section=item.section,
                times=tuple(_session(grid, c) for c in item.times),
                alternate=tuple(_session(grid, c) for c in item.alternate),
                anchor_zone=grid.anchor,
                duration=request.duration,
                facilitator=item.facilitator,
                learners=keys,
                fitted=fitted,
                coverage_by_week=tuple(by_week),
            )
        )
        for w in range(weeks):
            for slot, c in enumerate(_slots(item, w)):
                start = grid.instant(c, w)
                blocked = not bool(grid.active[c, w])
                note = ""
                if blocked:
                    day = start.astimezone(zone(grid.anchor)).date()
                    labels = [b.label for b in spec.blackouts if b.contains(day)]
                    note = labels[0] if labels and labels[0] else "blackout"
                occurrences.append(
                    Occurrence(
                        request.key,
                        item.section,
                        slot,
                        w,
                        start,
                        start + request.duration,
                        blocked,
                        note,
                    )
                )
        warnings.extend(_dst_warnings(ctx, item, member_classes))
    coverage, left_out = _coverage(ctx, chosen, active_slots)
    sections.sort(key=lambda s: (_series_index(spec, s.series), s.section))
    occurrences.sort(key=lambda o: (_series_index(spec, o.series), o.section, o.week, o.slot))
    return Plan(
        cohort=spec.slug,
        anchor_zone=grid.anchor,
        weeks=weeks,
        sections=tuple(sections),
        occurrences=tuple(occurrences),
        coverage=tuple(coverage),
        left_out=tuple(left_out),
        warnings=tuple(warnings),
        auto_sections=tuple(reports),
        notes=tuple(notes),
        objective=tuple(objective),
    )


def _series_index(spec: CohortSpec, key: str) -> int:
    return next(i for i, s in enumerate(spec.series) if s.key == key)


def _coverage(
    ctx: _Context, chosen: list[_Chosen], active_slots: list[list[int]]
) -> tuple[list[SeriesCoverage], list[LeftOut]]:
    grid = ctx.grid
    coverage: list[SeriesCoverage] = []
    left_out: list[LeftOut] = []
    by_series: dict[str, list[int]] = {}
    for index, item in enumerate(chosen):
        by_series.setdefault(item.series.key, []).append(index)
    keys = tuple(x.key for x in ctx.learners)
    for key, indices in by_series.items():
        request = chosen[indices[0]].series
        coworking = request.kind == SeriesKind.COWORKING
        fit = ctx.fit(_minutes(request.duration))
        allowed = _allowed(ctx, request)
        ok = ctx.facilitator_ok(_minutes(request.duration))
        staffed: BoolArray = np.asarray(
            ok[allowed].any(axis=0)
            if ctx.staff.people and allowed and not coworking
            else grid.active.any(axis=1)
        )
        any_full: BoolArray = np.asarray(fit.full.any(axis=1))
        staffed_full: BoolArray = np.asarray((fit.full & staffed[None, :]).any(axis=1))
        place = np.full(len(ctx.learners), -1, dtype=np.int64)
        for index in reversed(indices):  # a learner in several blocks: the first one
            place[chosen[index].members] = index
        unplaced_total = 0 if coworking else sum(active_slots[indices[0]])
        outcome: dict[tuple[int, int], _Outcome] = {}
        rows: list[_Outcome] = []
        for i, (g, index) in enumerate(zip(ctx.class_of.tolist(), place.tolist(), strict=True)):
            known = outcome.get((g, index))
            if known is None:
                known = outcome[(g, index)] = _outcome(
                    ctx,
                    fit,
                    g,
                    chosen[index] if index >= 0 else None,
                    active_slots[index] if index >= 0 else None,
                    unplaced_total,
                    (bool(any_full[g]), bool(staffed_full[g])),
                    coworking,
                )
            rows.append(known)
            reason = known.reason
            if reason is not None:
                learner = ctx.learners[i]
                if not learner.has_availability and reason in _AVAILABILITY_SHAPED:
                    reason = LeftOutReason.NO_AVAILABILITY
                left_out.append(
                    LeftOut(learner.key, key, reason, known.week, _describe(reason, known.week))
                )
        coverage.append(
            SeriesCoverage(
                key,
                keys,
                tuple(r.section for r in rows),
                tuple(r.fitted for r in rows),
                tuple(r.occurrences for r in rows),
                tuple(r.by_week for r in rows),
            )
        )
    return coverage, left_out


_AVAILABILITY_SHAPED = frozenset({LeftOutReason.TIME_NOT_CHOSEN, LeftOutReason.NO_FEASIBLE_TIME})


@dataclass(frozen=True)
class _Outcome:
    section: int | None
    fitted: int
    occurrences: int
    by_week: tuple[int, ...]
    reason: LeftOutReason | None
    week: int | None


def _outcome(
    ctx: _Context,
    fit: FitData,
    g: int,
    item: _Chosen | None,
    per_week: list[int] | None,
    unplaced_total: int,
    fits_any: tuple[bool, bool],
    coworking: bool,
) -> _Outcome:
    weeks = ctx.spec.weeks
    if item is None or per_week is None:
        if not coworking:
            reason = LeftOutReason.CAPACITY
        else:
            reason = _reason(*fits_any)
            if reason == LeftOutReason.TIME_NOT_CHOSEN:
                reason = LeftOutReason.BLOCK_LIMIT
        return _Outcome(None, 0, unplaced_total, (0,) * weeks, reason, None)
    weekly = _by_week(fit, g, item, weeks)
    got, possible = sum(weekly), sum(per_week)
    if coworking or got == possible:
        return _Outcome(item.section, got, possible, weekly, None, None)
    until = _fits_until(weekly, per_week)
    if until is not None:
        return _Outcome(item.section, got, possible, weekly, LeftOutReason.DST_UNTIL_WEEK, until)
    missed = _reason(*fits_any) if got == 0 else None
    return _Outcome(item.section, got, possible, weekly, missed, None)


def _fits_until(weekly: tuple[int, ...], per_week: list[int]) -> int | None:
    """The first week that stops fitting for good, when every earlier active week fitted."""
    weeks = [w for w in range(len(weekly)) if per_week[w]]
    for pos, w in enumerate(weeks):
        if weekly[w] < per_week[w]:
            if pos == 0:
                return None
            return w if all(weekly[v] < per_week[v] for v in weeks[pos:]) else None
    return None


def _reason(any_full: bool, staffed_full: bool) -> LeftOutReason:
    """Why a learner no chosen time fits is left out (NO_AVAILABILITY is decided per learner)."""
    if not any_full:
        return LeftOutReason.NO_FEASIBLE_TIME
    if not staffed_full:
        return LeftOutReason.NO_FACILITATOR_OVERLAP
    return LeftOutReason.TIME_NOT_CHOSEN


_DETAILS = {
    LeftOutReason.NO_AVAILABILITY: "gave no availability and the cohort default does not fit",
    LeftOutReason.NO_FEASIBLE_TIME: "no time fits their availability every week",
    LeftOutReason.NO_FACILITATOR_OVERLAP: "the times that fit them suit no facilitator",
    LeftOutReason.CAPACITY: "every section is full",
    LeftOutReason.DST_UNTIL_WEEK: "fits only until week {week} because of a clock change",
    LeftOutReason.TIME_NOT_CHOSEN: "times that fit them serve fewer learners",
    LeftOutReason.BLOCK_LIMIT: "max_blocks was reached before a block reached them",
}


def _describe(reason: LeftOutReason, week: int | None) -> str:
    """In words; weeks are counted from 1 for people (``week`` itself is 0-based)."""
    text = _DETAILS[reason]
    return text.format(week=week + 1) if week is not None else text


def _dst_warnings(ctx: _Context, item: _Chosen, member_classes: Counter[int]) -> list[DstWarning]:
    """Weeks in which the series' wall time moves on some learners' clocks, in words.

    The series keeps its anchor wall time; a learner sees it move when their UTC offset and the
    anchor's change on different dates (or only one of them changes)."""
    if not item.members:
        return []
    local, grid, weeks = ctx.classes.local, ctx.grid, ctx.spec.weeks
    region_ids, region_names = ctx.regions()
    size = len(region_names)
    pairs = ctx.class_of[item.members] * size + region_ids[item.members]
    found, counts = np.unique(pairs, return_counts=True)
    regions: dict[int, Counter[str]] = {}
    for pair, count in zip(found.tolist(), counts.tolist(), strict=True):
        regions.setdefault(pair // size, Counter())[region_names[pair % size]] += count
    half = MINUTES_PER_WEEK // 2
    events: Counter[tuple[int, int, str]] = Counter()
    for g in member_classes:
        seen_events: set[tuple[int, int]] = set()
        for slot in range(len(item.times)):
            for w in range(1, weeks):
                c_now, c_before = _slots(item, w)[slot], _slots(item, w - 1)[slot]
                wall = ((c_now - c_before) * grid.step) % MINUTES_PER_WEEK
                clock = int(local[g, c_now, w] - local[g, c_before, w - 1]) % MINUTES_PER_WEEK
                shift = (clock - wall + half) % MINUTES_PER_WEEK - half
                if shift:
                    seen_events.add((w, shift))
        for w, shift in seen_events:
            for region, count in regions[g].items():
                events[(w, shift, region)] += count
    out = []
    what = item.series.kind.value.replace("_", " ")
    label = f"this {what}" + (f" (section {item.section + 1})" if sectioned(item.series) else "")
    for (w, shift, region), count in sorted(events.items()):
        direction = "later" if shift > 0 else "earlier"
        text = (
            f"from week {w + 1} {label} is {_amount(abs(shift))} {direction} "
            f"for the {count} learner{'s' if count != 1 else ''} in {region}/*"
        )
        out.append(DstWarning(item.series.key, item.section, w, shift, f"{region}/*", count, text))
    return out


def _amount(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    words = {1: "one hour", 2: "two hours"}
    if not rest:
        return words.get(hours, f"{hours} hours")
    if not hours:
        return f"{rest} minutes"
    return f"{words.get(hours, f'{hours} hours')} {rest} minutes"


def local_start(
    plan: Plan, series: str, section: int, week: int, zone_name: str, slot: int = 0
) -> datetime:
    """When an occurrence (series, section, week, slot) starts on ``zone_name``'s clock."""
    for occurrence in plan.occurrences:
        if (occurrence.series, occurrence.section, occurrence.week, occurrence.slot) == (
            series,
            section,
            week,
            slot,
        ):
            return occurrence.start.astimezone(zone(zone_name))
    raise KeyError(f"no occurrence {series}/{section} week {week} slot {slot}")
