"""Coverage per learner of each planned series: their section, the occurrences that fit them (in
all and per week), and for those left out the reason (see :mod:`scheduler.planning.reasons`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scheduler.domain.cohort import SeriesKind
from scheduler.planning.context import Chosen, Context, minutes, slots_in_week
from scheduler.planning.fit import BoolArray, FitData
from scheduler.planning.model import LeftOut, LeftOutReason, SeriesCoverage
from scheduler.planning.reasons import AVAILABILITY_SHAPED, describe, reason_for
from scheduler.planning.staffing import allowed_staff

__all__ = ["measure_coverage"]


def measure_coverage(
    ctx: Context, chosen: list[Chosen], active_slots: list[list[int]]
) -> tuple[list[SeriesCoverage], list[LeftOut]]:
    """Each series' coverage per learner (learners in key order) and its left-out records."""
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
        fit = ctx.fit(minutes(request.duration))
        allowed = allowed_staff(ctx, request)
        ok = ctx.facilitator_ok(minutes(request.duration))
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
                if not learner.has_availability and reason in AVAILABILITY_SHAPED:
                    reason = LeftOutReason.NO_AVAILABILITY
                left_out.append(
                    LeftOut(learner.key, key, reason, known.week, describe(reason, known.week))
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


@dataclass(frozen=True)
class _Outcome:
    section: int | None
    fitted: int
    occurrences: int
    by_week: tuple[int, ...]
    reason: LeftOutReason | None
    week: int | None


def _outcome(
    ctx: Context,
    fit: FitData,
    g: int,
    item: Chosen | None,
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
            reason = reason_for(*fits_any)
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
    missed = reason_for(*fits_any) if got == 0 else None
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


def _by_week(fit: FitData, g: int, item: Chosen, weeks: int) -> tuple[int, ...]:
    return tuple(int(fit.fits[g, list(slots_in_week(item, w)), w].sum()) for w in range(weeks))
