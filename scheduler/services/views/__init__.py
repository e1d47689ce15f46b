"""Read models for the dashboard: pure reads (no writes, no web) from the database into plain
frozen dataclasses, one module per view.

* :mod:`.cohorts` — the list of cohorts;
* :mod:`.cohort_page` — one cohort's page, put together from the views below;
* :mod:`.heatmap` — the availability heatmap of a course week and its CSS shade levels;
* :mod:`.meetings` — the published weekly times, their coverage, the upcoming meetings;
* :mod:`.left_out` — the left-out report, its filter and the filter's choices;
* :mod:`.delivery` — the outbox and the workers' heartbeat;
* :mod:`.roster` — the roster and plan exports and the learner search;
* :mod:`.common` — the reads and labels several of them share.
"""

from __future__ import annotations

from scheduler.services.views.cohort_page import CohortOverview, cohort_overview, current_week
from scheduler.services.views.cohorts import CohortCard, cohort_cards
from scheduler.services.views.delivery import DeliveryView, delivery_view
from scheduler.services.views.heatmap import (
    HEAT_LEVELS,
    SLOT_MINUTES,
    HeatCell,
    HeatmapView,
    HeatRow,
)
from scheduler.services.views.left_out import (
    LEFT_OUT_SHOWN,
    LeftOutChoices,
    LeftOutFilter,
    LeftOutLearner,
    LeftOutReport,
    LeftOutSeries,
)
from scheduler.services.views.meetings import (
    SECOND_HOST_THRESHOLD,
    UPCOMING_WINDOW,
    LiveTime,
    SectionCoverage,
    UpcomingMeeting,
    series_choices,
)
from scheduler.services.views.roster import (
    LearnerRow,
    Table,
    find_learners,
    plan_rows,
    roster_rows,
)

__all__ = [
    "HEAT_LEVELS",
    "LEFT_OUT_SHOWN",
    "SECOND_HOST_THRESHOLD",
    "SLOT_MINUTES",
    "UPCOMING_WINDOW",
    "CohortCard",
    "CohortOverview",
    "DeliveryView",
    "HeatCell",
    "HeatRow",
    "HeatmapView",
    "LearnerRow",
    "LeftOutChoices",
    "LeftOutFilter",
    "LeftOutLearner",
    "LeftOutReport",
    "LeftOutSeries",
    "LiveTime",
    "SectionCoverage",
    "Table",
    "UpcomingMeeting",
    "cohort_cards",
    "cohort_overview",
    "current_week",
    "delivery_view",
    "find_learners",
    "plan_rows",
    "roster_rows",
    "series_choices",
]
