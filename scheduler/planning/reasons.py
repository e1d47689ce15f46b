"""Why a learner is left out of a series, and the words for it in the plan's report."""

from __future__ import annotations

from scheduler.planning.model import LeftOutReason

__all__ = ["AVAILABILITY_SHAPED", "describe", "reason_for"]


# Reasons that, for a learner who gave no availability, are the cohort default's doing.
AVAILABILITY_SHAPED = frozenset({LeftOutReason.TIME_NOT_CHOSEN, LeftOutReason.NO_FEASIBLE_TIME})


def reason_for(any_full: bool, staffed_full: bool) -> LeftOutReason:
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


def describe(reason: LeftOutReason, week: int | None) -> str:
    """In words; weeks are counted from 1 for people (``week`` itself is 0-based)."""
    text = _DETAILS[reason]
    return text.format(week=week + 1) if week is not None else text
