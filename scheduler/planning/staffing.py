"""Facilitators for chosen times: who may lead a series, who fits and is free, and booking them.

A facilitator leads every weekly time of a section, fits each of them (their availability, every
week), has the load left (``max_sessions_per_week``) and never gets two overlapping sessions.
Without any facilitator in the cohort every section runs unfacilitated.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from scheduler.domain.cohort import SeriesRequest
from scheduler.planning.context import Context, minutes
from scheduler.planning.fit import BoolArray

__all__ = ["allowed_staff", "assign_staff", "book", "staffable_times"]


def allowed_staff(ctx: Context, request: SeriesRequest) -> list[int]:
    if not request.facilitators:
        return list(range(len(ctx.staff.people)))
    wanted = {e.lower() for e in request.facilitators}
    return [i for i, f in enumerate(ctx.staff.people) if f.email.lower() in wanted]


def assign_staff(
    ctx: Context,
    request: SeriesRequest,
    sections: Sequence[tuple[int, ...]],
    allowed: Sequence[int],
    ok: BoolArray,
) -> list[int | None] | None:
    """One facilitator per section (all its times), or None when impossible. Without any
    facilitator in the cohort every section runs unfacilitated ([None, ...])."""
    if not ctx.staff.people:
        return [None] * len(sections)
    step, length = ctx.grid.step, minutes(request.duration)
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


def book(ctx: Context, request: SeriesRequest, f: int | None, times: Sequence[int]) -> str | None:
    if f is None:
        return None
    for c in times:
        ctx.staff.busy[f].append((c * ctx.grid.step, minutes(request.duration)))
    ctx.staff.load[f] -= len(times)
    return ctx.staff.people[f].email


def staffable_times(ctx: Context, allowed: Sequence[int], ok: BoolArray, need: int) -> BoolArray:
    """Candidates some allowed facilitator fits with ``need`` sessions of load left."""
    has_week = ctx.grid.active.any(axis=1)
    if not ctx.staff.people:
        return np.asarray(has_week)
    mask = np.zeros(ctx.grid.size, dtype=bool)
    for f in allowed:
        if ctx.staff.load[f] >= need:
            mask |= ok[f]
    return mask & has_week
