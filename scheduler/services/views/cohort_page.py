"""One cohort's dashboard page, read from the database into a plain :class:`CohortOverview`.

It puts together the other views (pure reads, no writes, no web): the heatmap of a course week
(:mod:`.heatmap`), the published weekly times, their coverage and the meetings of the next two
weeks (:mod:`.meetings`), the left-out report (:mod:`.left_out`) and delivery
(:mod:`.delivery`); and from the report the planner wrote when the plan was published
(``plan_version.summary``), the manual changes made since, the clock changes (one line per
series and week, grouped by :mod:`scheduler.planning.report` as the CLI does), notes and the
automatic section counts.

Learners with the same zone and availability are read as one group (one query, one
availability parse per distinct text), so a 100k-learner cohort costs about as much as its
distinct availabilities.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from scheduler.domain.cohort import Role
from scheduler.persistence import repo
from scheduler.persistence.models import (
    CohortRow,
)
from scheduler.planning.fit import anchor_zone_name
from scheduler.planning.model import DstWarning
from scheduler.planning.report import dst_by_series_week
from scheduler.services.views.common import (
    end_date,
    facilitator_names,
    learner_groups,
    published_report,
    section_sizes,
    series_titles,
)
from scheduler.services.views.delivery import DeliveryView, delivery_view
from scheduler.services.views.heatmap import HeatmapView, heatmap_view
from scheduler.services.views.left_out import (
    NO_FILTER,
    LeftOutFilter,
    LeftOutReport,
    left_out_report,
)
from scheduler.services.views.meetings import (
    SECOND_HOST_THRESHOLD,
    UPCOMING_WINDOW,
    LiveTime,
    SectionCoverage,
    UpcomingMeeting,
    live_times,
    section_coverage,
    upcoming_meetings,
)
from scheduler.timeutil import zone


@dataclass(frozen=True, slots=True)
class CohortOverview:
    slug: str
    title: str
    start_date: date
    end_date: date
    weeks: int
    home_zone: str
    anchor_zone: str
    locale: str
    learners: int
    facilitators: int
    published_version: int | None
    published_at: datetime | None
    changes: tuple[str, ...]  # manual changes since the planner's report
    live_times: tuple[LiveTime, ...]
    heatmap: HeatmapView
    coverage: tuple[SectionCoverage, ...]
    left_out: LeftOutReport
    dst_lines: tuple[str, ...]  # one per series, week and shift (older plans: one per warning)
    notes: tuple[str, ...]
    upcoming: tuple[UpcomingMeeting, ...]
    upcoming_from: datetime
    upcoming_until: datetime
    second_host_threshold: int
    delivery: DeliveryView
    auto_sections: tuple[str, ...] = field(default=())


def current_week(cohort: CohortRow, now: datetime) -> int:
    """The course week ``now`` falls in (0 before the start, the last week after the end)."""
    today = now.astimezone(zone(cohort.home_zone)).date()
    return max(0, min(cohort.weeks - 1, (today - cohort.start_date).days // 7))


def cohort_overview(
    db: Session,
    slug: str,
    now: datetime,
    *,
    week: int | None = None,
    second_host_threshold: int = SECOND_HOST_THRESHOLD,
    window: timedelta = UPCOMING_WINDOW,
    left_out_filter: LeftOutFilter = NO_FILTER,
    mail_rate: float | None = None,
) -> CohortOverview:
    """Everything the cohort's dashboard page shows. ``week`` (0-based) picks the heatmap's
    week; by default the current course week (the first before the course starts).
    ``left_out_filter`` narrows the per-learner left-out list. Raises NotFoundError for an
    unknown cohort, InputError when the filter names a value no left-out learner has.
    ``mail_rate``: ``mail_rate_per_second``, for the delivery card's busiest stretch ahead."""
    cohort = repo.get_cohort(db, slug)
    spec = repo.cohort_spec(db, cohort)
    shown_week = current_week(cohort, now) if week is None else max(0, min(cohort.weeks - 1, week))
    counts = repo.roster_counts(db, cohort.id)
    groups = learner_groups(db, cohort)
    names = facilitator_names(db, cohort.id)
    sizes = section_sizes(db, cohort.id)
    live = live_times(db, cohort.id, names, sizes, groups, spec, shown_week)
    version, published_at, summary, changes = published_report(db, cohort.id)

    heatmap = heatmap_view(spec, groups, live, shown_week, cohort.weeks)
    left_out = left_out_report(db, cohort.id, spec, summary, now, left_out_filter)
    upcoming, start, until = upcoming_meetings(
        db, cohort.id, now, window, names, sizes, groups, second_host_threshold
    )
    return CohortOverview(
        slug=cohort.slug,
        title=cohort.title,
        start_date=cohort.start_date,
        end_date=end_date(cohort),
        weeks=cohort.weeks,
        home_zone=cohort.home_zone,
        anchor_zone=anchor_zone_name(spec),
        locale=cohort.locale,
        learners=counts.get(Role.LEARNER.value, 0),
        facilitators=counts.get(Role.FACILITATOR.value, 0),
        published_version=version,
        published_at=published_at,
        changes=tuple(changes),
        live_times=tuple(live),
        heatmap=heatmap,
        coverage=section_coverage(summary, live, names),
        left_out=left_out,
        dst_lines=_dst_lines(summary, series_titles(spec)),
        notes=tuple(str(n) for n in summary.get("notes", [])),
        upcoming=tuple(upcoming),
        upcoming_from=start,
        upcoming_until=until,
        second_host_threshold=second_host_threshold,
        delivery=delivery_view(db, now, mail_rate, slug),
        auto_sections=tuple(_auto_section_text(r) for r in summary.get("auto_sections", [])),
    )


def _dst_lines(summary: dict[str, Any], titles: dict[str, str]) -> tuple[str, ...]:
    """The clock changes, one line per series, course week and shift (from the report's
    ``dst`` records); a plan published before they were stored has its warnings' texts."""
    stored = summary.get("dst")
    if not isinstance(stored, list):
        return tuple(str(w) for w in summary.get("warnings", []))
    warnings = [
        DstWarning(
            str(w["series"]),
            int(w["section"]),
            int(w["week"]),
            int(w["shift_minutes"]),
            str(w["zone_pattern"]),
            int(w["learners"]),
            "",
        )
        for w in stored
    ]
    return tuple(
        replace(c, series=titles.get(c.series, c.series)).describe()
        for c in dst_by_series_week(warnings)
    )


def _auto_section_text(report: dict[str, Any]) -> str:
    steps = ", ".join(
        f"{s['sections']}: {s['share']:.0%}" for s in report.get("steps", []) if "share" in s
    )
    verdict = "reached" if report.get("reached") else "not reached"
    return (
        f"{report.get('series')}: share of learners fitted by number of sections: {steps}; "
        f"chose {report.get('chosen')} (target {float(report.get('target', 0)):.0%} {verdict})"
    )
