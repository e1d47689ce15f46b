"""The burden ledger: per learner and per region, meetings attended in preferred hours, in
stretch hours (with their pain), missed (replays) and skipped (blackouts), for any plan."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scheduler.planning.pain import FairCosts

__all__ = ["BurdenLedger", "BurdenRow", "PlanFigures", "evaluate_plan"]


@dataclass(frozen=True, slots=True)
class BurdenRow:
    """One learner's (``learners == 1``) or one region's meetings: attended in preferred hours,
    attended in stretch hours (and their summed ``pain``), missed (replays), skipped (blackout)."""

    name: str
    learners: int
    preferred: int
    stretch: int
    pain: int
    missed: int
    skipped: int

    @property
    def meetings(self) -> int:
        return self.preferred + self.stretch + self.missed + self.skipped

    @property
    def share(self) -> float:
        """Inconvenient (stretch or missed) meetings per learner-meeting: the burden share."""
        return (self.stretch + self.missed) / self.meetings if self.meetings else 0.0


@dataclass(frozen=True, slots=True)
class BurdenLedger:
    """Per learner (as columns, cheap for 100k learners) and per region."""

    learners: tuple[str, ...]
    region: tuple[str, ...]
    preferred: tuple[int, ...]
    stretch: tuple[int, ...]
    pain: tuple[int, ...]
    missed: tuple[int, ...]
    skipped: tuple[int, ...]
    regions: tuple[BurdenRow, ...]

    def row(self, i: int) -> BurdenRow:
        return BurdenRow(
            self.learners[i],
            1,
            self.preferred[i],
            self.stretch[i],
            self.pain[i],
            self.missed[i],
            self.skipped[i],
        )

    def of(self, learner: str) -> BurdenRow:
        return self.row(self.learners.index(learner))

    def of_region(self, name: str) -> BurdenRow:
        return next(r for r in self.regions if r.name == name)


@dataclass(frozen=True, slots=True)
class PlanFigures:
    coverage: float
    worst_share: float
    worst_region: str
    total_pain: int
    ledger: BurdenLedger


def evaluate_plan(costs: FairCosts, week_candidates: Sequence[int]) -> PlanFigures:
    """Coverage, burden and the ledger of any plan given as one candidate per course week."""
    weeks = costs.grid.weeks
    if len(week_candidates) != weeks:
        raise ValueError(f"need one candidate per week ({weeks})")
    cols = np.array(week_candidates, dtype=np.int64)
    values = costs.cost[:, cols, np.arange(weeks)]  # [g, w]
    held = costs.grid.active[cols, np.arange(weeks)][None, :]
    per_class = {
        "preferred": ((values == 0) & held).sum(axis=1),
        "stretch": ((values > 0) & held).sum(axis=1),
        "pain": np.where((values > 0) & held, values, 0).sum(axis=1),
        "missed": ((values < 0) & held).sum(axis=1),
        "skipped": np.broadcast_to(~held, values.shape).sum(axis=1),
    }
    n = len(costs.keys)
    owner = np.zeros(n, dtype=np.int64)
    for g, group in enumerate(costs.members):
        owner[list(group)] = g
    names = [costs.region_names[int(r)] for r in costs.region[owner]]
    rows = []
    for r, name in enumerate(costs.region_names):
        mask = costs.region == r
        w = costs.count[mask]
        rows.append(
            BurdenRow(name, int(w.sum()), *(int(w @ per_class[f][mask]) for f in per_class))
        )
    rows.sort(key=lambda row: (-row.share, row.name))
    ledger = BurdenLedger(
        learners=costs.keys,
        region=tuple(str(x) for x in names),
        **{f: tuple(int(v) for v in per_class[f][owner]) for f in per_class},
        regions=tuple(rows),
    )
    reached = sum(row.preferred + row.stretch for row in rows)
    worst = rows[0] if rows else BurdenRow("", 0, 0, 0, 0, 0, 0)
    return PlanFigures(
        coverage=reached / (n * weeks) if n else 0.0,
        worst_share=(worst.stretch + worst.missed) / (worst.learners * weeks) if rows else 0.0,
        worst_region=worst.name,
        total_pain=sum(row.pain for row in rows),
        ledger=ledger,
    )
