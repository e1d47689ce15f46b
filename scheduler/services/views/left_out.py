"""The left-out report of a cohort's page: one summary line per series (how many, where, why,
how many get replays), then the learners a :class:`LeftOutFilter` (series, reason, region)
matches, capped at ``LEFT_OUT_SHOWN``, each with their async path (replays, the next one due).

Every learner's zone and deadline group is read in one query and the series each deadline
group has replays of in another, whatever the number of left-out learners; per-learner queries
only for the (at most ``LEFT_OUT_SHOWN``) rows shown."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.domain.cohort import CohortSpec, Role, SeriesKind
from scheduler.errors import InputError, Problem
from scheduler.persistence.models import (
    DeadlineGroupRow,
    DeadlineItemRow,
    EnrollmentRow,
    LearnerDeadlinesRow,
    PersonRow,
)
from scheduler.planning.model import LeftOut, LeftOutReason
from scheduler.planning.report import REASON_TEXT, left_out_by_series, region
from scheduler.services.views.common import series_titles

LEFT_OUT_SHOWN = 100  # learners listed on the page; the roster export has them all


@dataclass(frozen=True, slots=True)
class LeftOutLearner:
    email: str
    name: str
    zone: str
    reasons: tuple[tuple[str, str], ...]  # (series title, why): the records the filter matched
    replays: int  # replay items on their list
    next_replay: datetime | None  # the soft deadline of the next replay after now
    next_replay_title: str = ""


@dataclass(frozen=True, slots=True)
class LeftOutSeries:
    """One line of the left-out summary: a series, its left-out learners by region and reason
    (``text``, from :meth:`scheduler.planning.report.SeriesLeftOut.describe` with the series'
    title), how many of the plan's learners every meeting fits, how many left out get replays."""

    series: str  # key: the filter's value
    title: str
    text: str  # "Office hours: 109 left out — 61 in Asia/*, …; 97: times that fit them …"
    left_out: int
    fit: int | None  # learners every meeting of the series fits (None: the report lacks it)
    planned: int | None  # learners the plan was made for (None: the report lacks it)
    replays: int | None  # of ``left_out``, how many have replays (None: a kind without replays)


@dataclass(frozen=True, slots=True)
class LeftOutChoices:
    """The values a :class:`LeftOutFilter` may take: those that occur among the left out."""

    series: tuple[tuple[str, str], ...] = ()  # (key, title)
    reasons: tuple[tuple[str, str], ...] = ()  # (LeftOutReason value, in words)
    regions: tuple[str, ...] = ()  # "Asia/*", "UTC"; "?" for a learner no longer stored


@dataclass(frozen=True, slots=True)
class LeftOutFilter:
    """Which left-out learners the detailed list shows: those left out of ``series`` (a key)
    for ``reason`` (a :class:`LeftOutReason` value), living in ``region`` (``Asia/*``). An empty
    field matches anything; series and reason must hold for the same record."""

    series: str = ""
    reason: str = ""
    region: str = ""

    @property
    def active(self) -> bool:
        return bool(self.series or self.reason or self.region)

    def matches(self, record: LeftOut, learner_region: str) -> bool:
        return (
            (not self.series or record.series == self.series)
            and (not self.reason or record.reason.value == self.reason)
            and (not self.region or learner_region == self.region)
        )

    def problems(self, choices: LeftOutChoices) -> list[Problem]:
        """Every field whose value is not one of ``choices`` (all of them at once)."""
        fields = (
            ("series", self.series, [key for key, _ in choices.series]),
            ("reason", self.reason, [value for value, _ in choices.reasons]),
            ("region", self.region, list(choices.regions)),
        )
        return [
            Problem(
                "no left-out learner has this value",
                field=name,
                value=given,
                hint="choose one of: " + ", ".join(allowed) if allowed else "nobody is left out",
            )
            for name, given, allowed in fields
            if given and given not in allowed
        ]


NO_FILTER = LeftOutFilter()  # the whole list: every left-out learner


@dataclass(frozen=True, slots=True)
class LeftOutReport:
    """The left-out card: the summary per series, then the detail the filter asked for."""

    total: int  # learners left out of at least one series
    series: tuple[LeftOutSeries, ...]
    choices: LeftOutChoices
    filter: LeftOutFilter
    matching: int  # learners the filter matches (all left out when it is empty)
    rows: tuple[LeftOutLearner, ...]  # the first LEFT_OUT_SHOWN of them, by email


def left_out_report(
    db: Session,
    cohort_id: int,
    spec: CohortSpec,
    summary: dict[str, Any],
    now: datetime,
    wanted: LeftOutFilter,
) -> LeftOutReport:
    """The report's left-out learners: one summary line per series, and the learners
    ``wanted`` matches (the first LEFT_OUT_SHOWN by email, with their replays). Raises
    InputError when ``wanted`` names a series, reason or region no left-out learner has."""
    records = _left_out_records(summary)
    people = _cohort_learners(db, cohort_id) if records else {}
    zones = {email: p.zone for email, p in people.items()}
    titles = series_titles(spec)
    grouped = left_out_by_series(records, zones)
    left_of: dict[str, set[str]] = {}
    for x in records:
        left_of.setdefault(x.series, set()).add(x.learner)
    everyone = set().union(*left_of.values())
    regions = {e: region(zones.get(e, "?")) for e in everyone}
    reasons = {x.reason for x in records}
    choices = LeftOutChoices(
        tuple((g.series, titles.get(g.series, g.series)) for g in grouped),
        tuple((r.value, REASON_TEXT[r]) for r in LeftOutReason if r in reasons),
        tuple(sorted(set(regions.values()))),
    )
    if problems := wanted.problems(choices):
        raise InputError(problems, "the left-out filter cannot be read")

    replay_series = _replay_series(db, cohort_id) if records else {}
    fit, planned = _fit_by_series(summary)
    kinds = {s.key: s.kind for s in spec.series}
    lines = []
    for g in grouped:
        replays: int | None = None  # only classes are recorded
        if kinds.get(g.series) == SeriesKind.CLASS:
            groups = [people[e].group for e in left_of[g.series] if e in people]
            replays = sum(g.series in replay_series.get(n, ()) for n in groups if n is not None)
        title = titles.get(g.series, g.series)
        lines.append(
            LeftOutSeries(
                g.series,
                title,
                replace(g, series=title).describe(),
                g.learners,
                fit.get(g.series, 0) if planned is not None else None,
                planned,
                replays,
            )
        )

    matching: dict[str, list[LeftOut]] = {}
    for x in records:
        if wanted.matches(x, regions[x.learner]):
            matching.setdefault(x.learner, []).append(x)
    rows = _left_out_rows(db, cohort_id, matching, people, titles, now)
    return LeftOutReport(len(everyone), tuple(lines), choices, wanted, len(matching), rows)


def _left_out_rows(
    db: Session,
    cohort_id: int,
    matching: dict[str, list[LeftOut]],
    people: dict[str, _Learner],
    titles: dict[str, str],
    now: datetime,
) -> tuple[LeftOutLearner, ...]:
    """The first LEFT_OUT_SHOWN matching learners by email, with the records that matched and
    their replays (one query for them all)."""
    shown = sorted(matching)[:LEFT_OUT_SHOWN]
    replays = _replays_of(db, cohort_id, [people[e].id for e in shown if e in people], now)
    rows = []
    for email in shown:
        person = people.get(email)
        count, nxt = replays.get(person.id, (0, None)) if person else (0, None)
        rows.append(
            LeftOutLearner(
                email,
                person.name if person else email,
                person.zone if person else "",
                tuple((titles.get(x.series, x.series), _why(x)) for x in matching[email]),
                count,
                nxt[0] if nxt else None,
                nxt[1] if nxt else "",
            )
        )
    return tuple(rows)


def _left_out_records(summary: dict[str, Any]) -> list[LeftOut]:
    """The report's stored left-out records as the planner's values (a record whose reason this
    version does not know is left out of the summary and the list; none is written so)."""
    known = {r.value: r for r in LeftOutReason}
    out = []
    for x in summary.get("left_out", []):
        reason = known.get(str(x.get("reason")))
        if reason is not None:
            week = x.get("week")
            out.append(
                LeftOut(
                    str(x.get("learner")),
                    str(x.get("series")),
                    reason,
                    week if isinstance(week, int) else None,
                    str(x.get("detail") or ""),
                )
            )
    return out


def _why(record: LeftOut) -> str:
    """The stored detail (it names the week a clock change ends the fit), else the reason."""
    return record.detail or REASON_TEXT[record.reason]


@dataclass(frozen=True, slots=True)
class _Learner:
    id: int
    name: str
    zone: str
    group: int | None  # their deadline group; None before deadlines were built


def _cohort_learners(db: Session, cohort_id: int) -> dict[str, _Learner]:
    """Every learner ever enrolled in the cohort (withdrawn ones too: a plan may name them) by
    email, with their zone and deadline group: one query, whatever the cohort's size."""
    query = (
        select(
            PersonRow.email,
            PersonRow.id,
            PersonRow.name,
            PersonRow.zone,
            LearnerDeadlinesRow.group_id,
        )
        .join(EnrollmentRow, EnrollmentRow.person_id == PersonRow.id)
        .outerjoin(
            LearnerDeadlinesRow,
            (LearnerDeadlinesRow.person_id == PersonRow.id)
            & (LearnerDeadlinesRow.cohort_id == cohort_id),
        )
        .where(EnrollmentRow.cohort_id == cohort_id, EnrollmentRow.role == Role.LEARNER.value)
    )
    return {
        email: _Learner(person_id, name, zone_name, group)
        for email, person_id, name, zone_name, group in db.execute(query)
    }


def _replay_series(db: Session, cohort_id: int) -> dict[int, set[str]]:
    """The series each of the cohort's deadline groups has replays of (groups are shared by
    learners with identical lists: about a thousand for 100k learners)."""
    query = (
        select(DeadlineItemRow.group_id, DeadlineItemRow.series_key)
        .join(DeadlineGroupRow, DeadlineGroupRow.id == DeadlineItemRow.group_id)
        .where(DeadlineGroupRow.cohort_id == cohort_id, DeadlineItemRow.kind == "replay")
        .distinct()
    )
    out: dict[int, set[str]] = {}
    for group_id, series in db.execute(query):
        out.setdefault(group_id, set()).add(series)
    return out


def _replays_of(
    db: Session, cohort_id: int, person_ids: list[int], now: datetime
) -> dict[int, tuple[int, tuple[datetime, str] | None]]:
    """Per person: how many replay items they have, and the next one due after ``now``."""
    if not person_ids:
        return {}
    query = (
        select(LearnerDeadlinesRow.person_id, DeadlineItemRow.soft, DeadlineItemRow.title)
        .join(DeadlineItemRow, DeadlineItemRow.group_id == LearnerDeadlinesRow.group_id)
        .where(
            LearnerDeadlinesRow.cohort_id == cohort_id,
            LearnerDeadlinesRow.person_id.in_(person_ids),
            DeadlineItemRow.kind == "replay",
        )
    )
    counts: Counter[int] = Counter()
    upcoming: dict[int, tuple[datetime, str]] = {}
    for person_id, soft, title in db.execute(query):
        counts[person_id] += 1
        if soft >= now and (person_id not in upcoming or soft < upcoming[person_id][0]):
            upcoming[person_id] = (soft, title)
    return {pid: (n, upcoming.get(pid)) for pid, n in counts.items()}


def _fit_by_series(summary: dict[str, Any]) -> tuple[dict[str, int], int | None]:
    """Per series, the plan's learners every meeting of it fits; and how many learners the plan
    was made for (None when the report has no per-learner part)."""
    learners = summary.get("learners")
    if not isinstance(learners, list):
        return {}, None
    fit: dict[str, set[str]] = {}
    for entry in learners:
        for row in entry.get("series", []):
            if row.get("occurrences") and row.get("fitted") == row.get("occurrences"):
                fit.setdefault(str(row.get("series")), set()).add(str(entry.get("learner")))
    return {series: len(who) for series, who in fit.items()}, len(learners)
