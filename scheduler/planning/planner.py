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
* **Fair rotation** (``fairness = "rotate"``): up to ``rotate_times`` weekly times and which
  weeks use which, sharing inconvenient hours between regions at a bounded coverage cost
  (:mod:`scheduler.planning.fairness`); the plan carries its burden ledger (``Plan.fairness``).
* ``office_hours`` are planned like a whole-cohort class.

Series are planned in file order; each takes facilitator load from the ones after it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from scheduler.domain.cohort import CohortSpec, Fairness, SeriesKind
from scheduler.errors import PlanningError
from scheduler.planning.assembly import assemble
from scheduler.planning.context import Chosen, Context, NoPlan, Staff, minutes, sectioned
from scheduler.planning.coworking import plan_coworking
from scheduler.planning.fairness import FairPlan
from scheduler.planning.fit import build_classes, build_grid
from scheduler.planning.model import AutoSectionReport, LearnerInput, Plan
from scheduler.planning.sections import plan_sections
from scheduler.planning.whole import plan_fair, plan_rotation, plan_whole
from scheduler.timeutil import zone

__all__ = ["local_start", "make_plan", "sectioned"]


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
    staff = Staff(people, [f.max_sessions_per_week for f in people], [[] for _ in people])
    ctx = Context(spec, ordered, grid, classes, class_of, staff)
    chosen: list[Chosen] = []
    reports: list[AutoSectionReport] = []
    notes: list[str] = []
    problems: list[str] = []
    objective: list[tuple[str, int]] = []
    fairness: list[FairPlan] = []
    # Co-working comes last so its blocks can avoid the live sessions already chosen: a block at
    # the same time as a learner's class is one they cannot use.
    for request in sorted(spec.series, key=lambda r: r.kind == SeriesKind.COWORKING):
        try:
            if request.kind == SeriesKind.COWORKING:
                picked, value = plan_coworking(ctx, request)
            elif request.fairness == Fairness.ROTATE:
                picked, value, fair = plan_fair(ctx, request)
                fairness.append(fair)
            elif sectioned(request):
                picked, value, report = plan_sections(ctx, request)
                if report is not None:
                    reports.append(report)
            elif request.rotate and request.per_week == 1:
                picked, value = plan_rotation(ctx, request)
            else:
                if request.rotate:
                    notes.append(f"{request.key}: rotation needs per_week = 1; planned without it")
                picked, value = plan_whole(ctx, request)
        except NoPlan as e:
            problems.append(f"series {request.key!r}: {e}")
            continue
        chosen.extend(picked)
        objective.append((request.key, value))
        if request.kind != SeriesKind.COWORKING:
            length = minutes(request.duration)
            ctx.busy.extend(
                (c * grid.step, length)
                for item in picked
                for c in sorted({*item.times, *item.alternate, *item.rotation})
            )
    if problems:
        raise PlanningError("; ".join(problems))
    return assemble(ctx, chosen, reports, notes, objective, tuple(fairness))


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
