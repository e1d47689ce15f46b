"""Whole-cohort series: one set of weekly times for everybody (``class``, ``office_hours``), the
A/B rotation of one weekly time (``rotate = true``) and the fair rotation (``fairness =
"rotate"``, :mod:`scheduler.planning.fairness`).

The objectives are in :mod:`scheduler.planning.planner`; the searches in
:mod:`scheduler.planning.search`.
"""

from __future__ import annotations

import numpy as np

from scheduler.domain.cohort import SeriesRequest
from scheduler.planning.context import Chosen, Context, NoPlan, far_enough, minutes
from scheduler.planning.fairness import FairnessOptions, FairPlan, plan_fair_rotation
from scheduler.planning.fit import FitData
from scheduler.planning.search import best_rotation, best_times
from scheduler.planning.staffing import allowed_staff, assign_staff, book, staffable_times

__all__ = ["plan_fair", "plan_rotation", "plan_whole"]


def _circular(a: int, b: int, size: int) -> int:
    d = abs(a - b) % size
    return min(d, size - d)


def _scores(ctx: Context, fit: FitData, slots: int) -> list[int]:
    n = ctx.classes.count
    total = int(n.sum())
    occ = (n @ fit.occ).tolist()
    stable = (n @ fit.full).tolist()
    edge = (n @ fit.edge).tolist()
    b1 = total * 60 * slots + 1
    b2 = total * slots * b1 + 1
    return [int(o) * b2 + int(s) * b1 + int(e) for o, s, e in zip(occ, stable, edge, strict=True)]


def plan_whole(ctx: Context, request: SeriesRequest) -> tuple[list[Chosen], int]:
    duration = minutes(request.duration)
    fit = ctx.fit(duration)
    allowed = allowed_staff(ctx, request)
    ok = ctx.facilitator_ok(duration)
    eligible = np.flatnonzero(staffable_times(ctx, allowed, ok, request.per_week)).tolist()
    scores = _scores(ctx, fit, request.per_week)
    size, apart = ctx.grid.size, far_enough(request, ctx.grid.step)
    result = best_times(
        scores,
        eligible,
        request.per_week,
        lambda a, b: _circular(a, b, size) >= apart,
        lambda times: assign_staff(ctx, request, [times], allowed, ok) is not None,
    )
    if result is None:
        raise NoPlan(f"no {request.per_week} time(s) a facilitator can take")
    _, times = result
    staff = assign_staff(ctx, request, [times], allowed, ok)
    assert staff is not None
    email = book(ctx, request, staff[0], times)
    value = int((ctx.classes.count @ fit.occ[:, list(times)]).sum())
    return [Chosen(request, 0, times, (), email, list(range(len(ctx.learners))))], value


def plan_rotation(ctx: Context, request: SeriesRequest) -> tuple[list[Chosen], int]:
    duration = minutes(request.duration)
    fit = ctx.fit(duration)
    even = fit.fits[:, :, 0::2].sum(axis=2).astype(np.int64)
    odd = fit.fits[:, :, 1::2].sum(axis=2).astype(np.int64)
    allowed = allowed_staff(ctx, request)
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
        raise NoPlan("no time a facilitator can take")
    key, (a, b), f = best
    email = book(ctx, request, f, sorted({a, b}))
    return [Chosen(request, 0, (a,), (b,), email, list(range(len(ctx.learners))))], key[0]


def plan_fair(ctx: Context, request: SeriesRequest) -> tuple[list[Chosen], int, FairPlan]:
    """A fair rotation led by one facilitator who fits every chosen time every week.

    The rotation is searched over the times some allowed facilitator (with a meeting a week of
    load left, free then) can take; when no single one can take all the chosen times, it is
    searched again per facilitator and the fairest result wins (worst share, then pain, then
    coverage, then the facilitator's order)."""
    duration = minutes(request.duration)
    options = FairnessOptions(
        rotate_times=request.rotate_times,
        max_coverage_loss=request.max_coverage_loss,
        default_stretch=ctx.spec.default_stretch,
        regions=ctx.spec.regions,
    )
    held = ctx.grid.active.any(axis=1)
    pools: list[tuple[int | None, set[int]]]
    if ctx.staff.people:
        ok = ctx.facilitator_ok(duration)
        step = ctx.grid.step
        pools = [
            (
                f,
                {
                    c
                    for c in np.flatnonzero(ok[f] & held).tolist()
                    if ctx.staff.free(f, c * step, duration, [])
                },
            )
            for f in allowed_staff(ctx, request)
            if ctx.staff.load[f] >= 1
        ]
        pools = [(f, cands) for f, cands in pools if cands]
    else:
        pools = [(None, set(np.flatnonzero(held).tolist()))]
    if not pools:
        raise NoPlan("no time a facilitator can take")

    def rotation(cands: set[int]) -> FairPlan:
        return plan_fair_rotation(ctx.spec, request, ctx.learners, None, options, sorted(cands))

    union = set().union(*(cands for _, cands in pools))
    fair = rotation(union)
    lead = next((f for f, cands in pools if cands.issuperset(fair.candidates)), -1)
    if lead == -1:
        tried = [(rotation(cands), i) for i, (_, cands) in enumerate(pools)]
        fair, index = min(
            tried, key=lambda t: (t[0].worst_share, t[0].total_pain, -t[0].coverage, t[1])
        )
        lead = pools[index][0]
    email = None
    if lead is not None:
        for c in fair.candidates:
            ctx.staff.busy[lead].append((c * ctx.grid.step, duration))
        ctx.staff.load[lead] -= 1  # one meeting a week, whichever time
        email = ctx.staff.people[lead].email
    reached = round(fair.coverage * len(ctx.learners) * ctx.spec.weeks)
    item = Chosen(
        request,
        0,
        (fair.candidates[0],),
        (),
        email,
        list(range(len(ctx.learners))),
        rotation=fair.candidates,
        week_times=fair.week_times,
    )
    return [item], reached, fair
