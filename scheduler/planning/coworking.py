"""Co-working (follow the sun): the fewest blocks so every learner with a time that fits them every
week gets one. No facilitator; blocks avoid the live sessions already chosen when they can.
"""

from __future__ import annotations

import numpy as np

from scheduler.domain.cohort import SeriesRequest
from scheduler.planning.context import Chosen, Context, NoPlan, meets, minutes
from scheduler.planning.search import best_cover

__all__ = ["plan_coworking"]


def plan_coworking(ctx: Context, request: SeriesRequest) -> tuple[list[Chosen], int]:
    duration = minutes(request.duration)
    fit = ctx.fit(duration)
    n = ctx.classes.count
    has_week = ctx.grid.active.any(axis=1)
    step = ctx.grid.step
    free = np.array([not meets(c * step, duration, ctx.busy) for c in range(ctx.grid.size)])
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
        raise NoPlan("no co-working block fits anybody")
    out = []
    times = [int(cands[kept[i]]) for i in blocks]
    times = sorted(set(times))
    for j, c in enumerate(times):
        fitted = [
            i for g in np.flatnonzero(fit.full[:, c]).tolist() for i in ctx.classes.members[g]
        ]
        out.append(Chosen(request, j, (c,), (), None, sorted(fitted)))
    return out, value
