"""Turning the chosen sections into a :class:`~scheduler.planning.model.Plan`: section plans with
their weekly coverage, every occurrence (blackouts marked), coverage per learner, left-out
records and clock-change warnings, in the order of the cohort file.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from scheduler.domain.cohort import CohortSpec
from scheduler.planning.context import Chosen, Context, minutes, slots_in_week
from scheduler.planning.coverage import measure_coverage
from scheduler.planning.dst import dst_warnings
from scheduler.planning.fairness import FairPlan
from scheduler.planning.fit import Grid
from scheduler.planning.model import (
    AutoSectionReport,
    DstWarning,
    Occurrence,
    Plan,
    SectionPlan,
    SessionTime,
)
from scheduler.timeutil import MINUTES_PER_DAY, Weekday, zone

__all__ = ["assemble"]


def _session(grid: Grid, c: int) -> SessionTime:
    minute = c * grid.step
    return SessionTime(Weekday(minute // MINUTES_PER_DAY), minute % MINUTES_PER_DAY)


def assemble(
    ctx: Context,
    chosen: list[Chosen],
    reports: list[AutoSectionReport],
    notes: list[str],
    objective: list[tuple[str, int]],
    fairness: tuple[FairPlan, ...] = (),
) -> Plan:
    """The plan of the chosen sections, sorted by series (file order), section, week, slot."""
    grid, spec = ctx.grid, ctx.spec
    weeks = spec.weeks
    sections: list[SectionPlan] = []
    occurrences: list[Occurrence] = []
    warnings: list[DstWarning] = []
    active_slots = [
        [int(grid.active[list(slots_in_week(item, w)), w].sum()) for w in range(weeks)]
        for item in chosen
    ]
    for item, per_week in zip(chosen, active_slots, strict=True):
        request = item.series
        duration = minutes(request.duration)
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
                for c in slots_in_week(item, w)
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
                if int(fit.fits[g, list(slots_in_week(item, w)), w].sum()) == per_week[w]
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
                rotation=tuple(_session(grid, c) for c in item.rotation),
                week_times=item.week_times,
            )
        )
        for w in range(weeks):
            for slot, c in enumerate(slots_in_week(item, w)):
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
        warnings.extend(dst_warnings(ctx, item, member_classes))
    coverage, left_out = measure_coverage(ctx, chosen, active_slots)
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
        fairness=fairness,
    )


def _series_index(spec: CohortSpec, key: str) -> int:
    return next(i for i, s in enumerate(spec.series) if s.key == key)
