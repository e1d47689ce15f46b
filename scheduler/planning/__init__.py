"""Pure planning core: choose live-session times for a cohort (see README.md in this folder)."""

from __future__ import annotations

from scheduler.planning.model import (
    AutoSectionReport,
    AutoSectionStep,
    DstWarning,
    LearnerCoverage,
    LearnerInput,
    LeftOut,
    LeftOutReason,
    Occurrence,
    Plan,
    SectionPlan,
    SeriesCoverage,
    SessionTime,
)
from scheduler.planning.planner import local_start, make_plan, sectioned

__all__ = [
    "AutoSectionReport",
    "AutoSectionStep",
    "DstWarning",
    "LearnerCoverage",
    "LearnerInput",
    "LeftOut",
    "LeftOutReason",
    "Occurrence",
    "Plan",
    "SectionPlan",
    "SeriesCoverage",
    "SessionTime",
    "local_start",
    "make_plan",
    "sectioned",
]
