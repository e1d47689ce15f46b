"""Fairness across time zones: stretch hours, a pain by local hour, a fair rotation, a ledger.

**Pain of one meeting for one learner** (on the learner's clock that week, DST-aware):

* inside their *preferred* availability: 0;
* else inside their *stretch* windows: the pain of the meeting, at least 1;
* else it does not fit: the learner *misses* it (the replay).

The pain of a meeting is the largest pain of the local hours it touches, from a
:class:`PainCurve`. The default curve (:data:`DEFAULT_PAIN_CURVE`)::

    08:00-20:00  0   working day
    06:00-08:00  1   early morning        20:00-23:00  1   evening
    05:00-06:00  3   night                23:00-01:00  3   night
    01:00-05:00  never, unless the learner's stretch windows name these hours (then 3)

Stretch windows use the availability grammar (``Mon-Fri 06:00-08:00; Mon-Thu 22:00-23:30``).
A learner's own windows win; else the cohort's default stretch; else (neither given) *every hour
the curve allows* is stretch. An empty :class:`Availability` means "no stretch at all": only the
preferred window fits, as in the coverage planner.

**Regions**: the continent prefix of the IANA zone (``Asia/Tokyo`` -> ``Asia``; ``Australia`` and
``Pacific`` -> ``Oceania``; ``Atlantic``/``Indian`` islands -> the continent whose hours they
keep; ``UTC``/``Etc`` -> ``UTC``), or a grouping the runner names (zone names or prefixes to
group names; the longest match wins).

**Burden share** of a region: its learners' inconvenient meetings (in stretch hours, or missed)
divided by its learner-meetings (learners x course weeks). A meeting skipped for a blackout
counts as neither reached nor inconvenient. **Coverage**: learner-meetings reached (preferred or
stretch) / (learners x course weeks).

**Fair rotation** (:func:`plan_fair_rotation`): up to ``rotate_times`` weekly times from the
candidate grid and which weeks use which, such that

1. coverage is at least the best coverage any plan with that many times reaches, less
   ``max_coverage_loss`` (0.05 = 5 points);
2. subject to that, the worst region's burden share is as small as possible;
3. then the total pain (summed over meetings attended in stretch hours) is as small as possible;
4. then more coverage, fewer distinct times, earlier times.

Exactness: learners with the same zone clock, windows and region are one class; weeks with the
same fit for every class are one week type (weeks only differ across clock changes and
blackouts), and since every objective is a sum over weeks only *how many* weeks of each type use
each time matters. Candidate times that another time matches or beats for every region, in every
week type, on coverage, burden and pain are dropped (exact). The remaining times are searched
exhaustively (:mod:`scheduler.planning.fair_search`) when all their sets fit ``max_sets``;
otherwise the pool keeps the best times for coverage and for each region, the search is exact
within it, and a linear-programming lower bound over *all* candidates gives the optimality gap
of the worst share (``FairPlan.gap``; 0 when proven optimal).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from scheduler.domain.availability import Availability
from scheduler.domain.cohort import CohortSpec, SeriesRequest
from scheduler.planning.burden import BurdenLedger, BurdenRow, PlanFigures, evaluate_plan
from scheduler.planning.fair_search import (
    Tallies,
    best_reach,
    best_rotation,
    layout,
    nondominated,
    share_bound,
)
from scheduler.planning.fit import slot_instant
from scheduler.planning.model import LearnerInput, SessionTime
from scheduler.planning.pain import (
    DEFAULT_PAIN_CURVE,
    MISSED,
    NO_STRETCH,
    FairCosts,
    FairnessOptions,
    PainCurve,
    fair_costs,
    meeting_pain,
    pain_table,
    parse_stretch,
    region_of,
)
from scheduler.timeutil import MINUTES_PER_DAY, MINUTES_PER_WEEK, Weekday

__all__ = [
    "DEFAULT_PAIN_CURVE",
    "MISSED",
    "NO_STRETCH",
    "BurdenLedger",
    "BurdenRow",
    "FairCosts",
    "FairPlan",
    "FairnessOptions",
    "PainCurve",
    "PlanFigures",
    "choose_rotation",
    "evaluate_plan",
    "fair_costs",
    "fair_tallies",
    "meeting_pain",
    "pain_table",
    "parse_stretch",
    "plan_fair_rotation",
    "region_of",
]


@dataclass(frozen=True, slots=True)
class FairPlan:
    """A rotation: ``times`` (anchor wall times; ``candidates`` their grid indices) and, per
    course week, the index into ``times`` it uses (``week_times``), with its figures.

    ``reference_coverage``: the best coverage of any plan with up to ``rotate_times`` times;
    ``single_coverage``: of the best single weekly time; ``lower_bound``: no plan meeting the
    coverage floor has a smaller worst share; ``gap = worst_share - lower_bound`` (0: optimal);
    ``exact``: every candidate was searched exhaustively (then ``gap`` is 0)."""

    anchor_zone: str
    times: tuple[SessionTime, ...]
    candidates: tuple[int, ...]
    week_times: tuple[int, ...]
    coverage: float
    reference_coverage: float
    single_coverage: float
    worst_share: float
    worst_region: str
    total_pain: int
    lower_bound: float
    gap: float
    exact: bool
    ledger: BurdenLedger
    series: str = ""  # the series key (set by plan_fair_rotation)

    def start(self, spec: CohortSpec, week: int) -> datetime:
        """The UTC start of the meeting in course week ``week`` (the planner's DST policy)."""
        time = self.times[self.week_times[week]]
        return slot_instant(spec, week, time.weekday, time.minute, self.anchor_zone)


def fair_tallies(costs: FairCosts) -> tuple[Tallies, tuple[int, ...]]:
    """Group the course weeks into week types and tally them (see :mod:`fair_search`).

    Returns the tallies and each course week's type."""
    cost, active = costs.cost, costs.grid.active
    seen: dict[bytes, int] = {}
    type_of_week = []
    for w in range(costs.grid.weeks):
        key = cost[:, :, w].tobytes() + active[:, w].tobytes()
        type_of_week.append(seen.setdefault(key, len(seen)))
    reps = [type_of_week.index(t) for t in range(len(seen))]
    sub = cost[:, :, reps]  # [g, c, t]
    held = active[:, reps][None, :, :]
    n = costs.count.astype(np.int64)
    onehot = (costs.region[:, None] == np.arange(len(costs.region_names))[None, :]) * n[:, None]
    reach = np.einsum("g,gct->ct", n, ((sub >= 0) & held).astype(np.int64))
    pain = np.einsum("g,gct->ct", n, np.where((sub > 0) & held, sub, 0).astype(np.int64))
    inc = np.einsum("gr,gct->ctr", onehot, ((sub != 0) & held).astype(np.int64))
    weeks = np.bincount(np.array(type_of_week), minlength=len(seen)).astype(np.int64)
    sizes = onehot.sum(axis=0).astype(np.int64)
    sig = np.zeros((sub.shape[1], len(reps)), dtype=np.int64)
    for c in range(sub.shape[1]):
        ids: dict[bytes, int] = {}
        for t in range(len(reps)):
            sig[c, t] = ids.setdefault(sub[:, c, t].tobytes() + held[0, c, t].tobytes(), len(ids))
    return Tallies(reach, pain, inc, weeks, sizes, sig), tuple(type_of_week)


def _pool_size(max_sets: int, k: int) -> int:
    """The most candidates whose ``k``-sets number at most ``max_sets`` (at least ``k``)."""
    size = k
    while math.comb(size + 1, k) <= max_sets and size < MINUTES_PER_WEEK:
        size += 1
    return size


def _pool(tallies: Tallies, front: list[int], must: Sequence[int], size: int) -> list[int]:
    """The candidates the exact search keeps: ``must`` (a coverage-optimal set), then in turn
    the next best for coverage and for each region (fewest inconvenient meetings)."""
    if len(front) <= size:
        return front
    cands = np.array(front)
    reach = tallies.reach[cands] @ tallies.weeks
    rankings = [cands[np.lexsort((cands, -reach))].tolist()]
    for r in range(tallies.sizes.shape[0]):
        inc = tallies.inc[cands, :, r] @ tallies.weeks
        rankings.append(cands[np.lexsort((cands, -reach, inc))].tolist())
    chosen = list(dict.fromkeys(must))
    position = [0] * len(rankings)
    while len(chosen) < size:
        for i, ranking in enumerate(rankings):
            while position[i] < len(ranking) and ranking[position[i]] in chosen:
                position[i] += 1
            if position[i] < len(ranking) and len(chosen) < size:
                chosen.append(ranking[position[i]])
    return sorted(chosen)


def choose_rotation(
    costs: FairCosts,
    options: FairnessOptions | None = None,
    candidates: Sequence[int] | None = None,
) -> FairPlan:
    """The fair rotation for precomputed costs; ``candidates``: the grid indices allowed (e.g.
    the times a facilitator can take), default every candidate with a meeting in some week."""
    options = options or FairnessOptions()
    if not costs.keys:
        raise ValueError("no learners to plan for")
    grid = costs.grid
    tallies, type_of_week = fair_tallies(costs)
    if candidates is None:
        candidates = np.flatnonzero(grid.active.any(axis=1)).tolist()
    allowed = sorted(set(candidates))
    if not allowed:
        raise ValueError("no candidate time to choose from")
    k, people, weeks = options.rotate_times, len(costs.keys), grid.weeks
    keys = np.concatenate(
        [tallies.reach[:, :, None], -tallies.pain[:, :, None], -tallies.inc], axis=2
    ).reshape(tallies.reach.shape[0], -1)
    front = nondominated(keys.astype(np.float64), allowed)
    reference, reference_set = best_reach(tallies.reach, tallies.weeks, front, k)
    min_reach = max(0, reference - int(options.max_coverage_loss * people * weeks + 1e-9))
    pool = _pool(tallies, front, reference_set, _pool_size(options.max_sets, k))
    bound, weights, price = share_bound(tallies, front, min_reach)
    choice = best_rotation(
        tallies, pool, k, min_reach, max_rows=options.max_rows, multipliers=(weights, price)
    )
    if choice is None:  # pragma: no cover - the pool holds a set reaching ``reference``
        raise RuntimeError("no rotation reaches the coverage floor")
    exact = len(pool) == len(front) and choice.complete
    lower = choice.share if exact else min(choice.share, bound)
    week_times = layout(choice.counts, [int(choice.groups[t]) for t in type_of_week])
    figures = evaluate_plan(costs, [choice.times[i] for i in week_times])
    single = int((tallies.reach[allowed] @ tallies.weeks).max())
    total = max(1, people * weeks)
    step = grid.step
    return FairPlan(
        anchor_zone=grid.anchor,
        times=tuple(
            SessionTime(Weekday(c * step // MINUTES_PER_DAY), c * step % MINUTES_PER_DAY)
            for c in choice.times
        ),
        candidates=choice.times,
        week_times=week_times,
        coverage=figures.coverage,
        reference_coverage=reference / total,
        single_coverage=single / total,
        worst_share=figures.worst_share,
        worst_region=figures.worst_region,
        total_pain=figures.total_pain,
        lower_bound=lower,
        gap=max(0.0, figures.worst_share - lower),
        exact=exact,
        ledger=figures.ledger,
    )


def plan_fair_rotation(
    spec: CohortSpec,
    request: SeriesRequest,
    learners: Sequence[LearnerInput],
    stretch: Mapping[str, Availability | None] | None = None,
    options: FairnessOptions | None = None,
    candidates: Sequence[int] | None = None,
) -> FairPlan:
    """Plan a ``fairness = "rotate"`` series (one meeting a week) for ``learners``.

    ``stretch``: learner key -> stretch windows (:func:`parse_stretch`; default: each learner's
    own ``LearnerInput.stretch``); ``candidates``: grid indices allowed (default all).
    Deterministic: same input, same plan."""
    if request.per_week != 1:
        raise ValueError("a fair rotation plans one meeting a week (per_week = 1)")
    duration = int(request.duration // timedelta(minutes=1))
    ordered = sorted(learners, key=lambda x: x.key)
    if stretch is None:
        stretch = {x.key: x.stretch for x in ordered if x.stretch is not None}
    costs = fair_costs(spec, ordered, duration, stretch, options)
    return replace(choose_rotation(costs, options, candidates), series=request.key)
