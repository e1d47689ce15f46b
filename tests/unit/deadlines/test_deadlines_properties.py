"""Properties of the deadline engine over random zones, schedules, rules and learners.

Every check here is computed independently of the engine (fits, quiet hours, the earliest
co-working block), so a wrong rule shows up as a counterexample."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.domain.availability import parse_availability
from scheduler.domain.cohort import (
    AssignmentRule,
    Blackout,
    CohortSpec,
    HardKind,
    PlanningOptions,
    Release,
    ReleaseKind,
    SeriesKind,
    SeriesRequest,
)
from scheduler.planning.deadlines import (
    DeadlineItem,
    DeadlineKind,
    DeadlineLearner,
    OccurrenceRef,
    compute_deadlines,
)
from scheduler.planning.model import Occurrence
from scheduler.timeutil import MINUTES_PER_DAY, canonical_zone, wall_to_utc, zone

NAMED_ZONES = [
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Europe/Berlin",
    "America/New_York",
    "Pacific/Kiritimati",
    "Pacific/Honolulu",
    "America/Santiago",
    "Asia/Kolkata",
    "America/Bogota",
    "Australia/Sydney",
]
AVAILABILITY = [
    "Mon-Fri 18:00-22:00",
    "Mon-Fri 09:00-17:00",
    "Mon-Thu 18:00-22:00; Sun 17:00-21:00",
    "Mon,Wed 07:00-08:30; Tue-Thu 12:00-13:30; Fri 18:00-21:00; Sat 10:00-14:00",
    "daily 00:00-24:00",
    "Sat 09:00-10:00",
    "Fri 22:00-02:00",
]
zones = st.one_of(
    st.sampled_from(NAMED_ZONES),
    st.timezones().map(lambda tz: tz.key).filter(lambda k: canonical_zone(k) is not None),
)
quarter_hours = st.integers(0, MINUTES_PER_DAY // 15 - 1).map(lambda q: q * 15)
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Case:
    spec: CohortSpec
    occurrences: list[Occurrence]
    learners: list[DeadlineLearner]


@st.composite
def cases(draw: Any) -> Case:
    start = draw(st.dates(date(2026, 1, 1), date(2028, 12, 31)))
    weeks = draw(st.integers(1, 6))
    home = draw(st.sampled_from(NAMED_ZONES))
    quiet = draw(st.one_of(st.just((22 * 60, 7 * 60)), st.tuples(quarter_hours, quarter_hours)))
    blackouts: tuple[Blackout, ...] = ()
    if draw(st.booleans()):
        day = start + timedelta(days=draw(st.integers(0, 7 * weeks - 1)))
        blackouts = (Blackout(day, day, "holiday"),)
    rules = tuple(
        draw(assignment_rules(start, weeks, key=f"rule{i}")) for i in range(draw(st.integers(1, 2)))
    )
    spec = CohortSpec(
        slug="p",
        title="P",
        start_date=start,
        weeks=weeks,
        home_zone=home,
        locale="en",
        default_availability=parse_availability("Mon-Fri 18:00-22:00"),
        planning=PlanningOptions(quiet_start=quiet[0], quiet_end=quiet[1]),
        series=(
            SeriesRequest("class", "Live class", SeriesKind.CLASS, 2, timedelta(minutes=90)),
            SeriesRequest("cowork", "Co-working", SeriesKind.COWORKING, 1, timedelta(hours=2)),
        ),
        assignments=rules,
        blackouts=blackouts,
    )
    occurrences: list[Occurrence] = []
    sections = draw(st.integers(1, 2))
    for section in range(sections):
        times = draw(st.lists(st.tuples(st.integers(0, 6), quarter_hours), min_size=1, max_size=2))
        length = timedelta(minutes=draw(st.integers(2, 12)) * 15)
        occurrences += weekly(spec, "class", section, sorted(times), length)
    for block in range(draw(st.integers(0, 3))):
        when = draw(st.tuples(st.integers(0, 6), quarter_hours))
        occurrences += weekly(spec, "cowork", block, [when], timedelta(hours=2))
    learners = []
    for i in range(draw(st.integers(1, 3))):
        enrolled = None
        if draw(st.booleans()):
            course_start = wall_to_utc(start, time(0), zone(home))
            enrolled = course_start + timedelta(minutes=draw(st.integers(-600, weeks * 7 * 1440)))
        chosen = draw(st.sampled_from([{}, {"class": 0}, {"class": sections - 1}]))
        learners.append(
            DeadlineLearner(
                f"l{i}",
                draw(zones),
                parse_availability(draw(st.sampled_from(AVAILABILITY))),
                chosen,
                enrolled,
            )
        )
    return Case(spec, occurrences, learners)


@st.composite
def assignment_rules(draw: Any, start: date, weeks: int, key: str) -> AssignmentRule:
    kind = draw(st.sampled_from(ReleaseKind))
    release = Release(kind)
    if kind == ReleaseKind.FIXED_DATE:
        release = Release(kind, on=start + timedelta(days=draw(st.integers(-3, 7 * weeks))))
    elif kind == ReleaseKind.DRIP:
        release = Release(kind, every=timedelta(hours=draw(st.integers(6, 24 * 8))))
    hard = draw(st.sampled_from(HardKind))
    return AssignmentRule(
        key=key,
        title=key.title(),
        series="class",
        prepares=draw(st.booleans()),
        soft_offset=timedelta(minutes=15 * draw(st.integers(1, 4 * 96))),
        effort=timedelta(minutes=15 * draw(st.integers(1, 4 * 12))),
        release=release,
        snap_to=draw(st.none() | quarter_hours),
        hard=hard,
        hard_after=timedelta(hours=draw(st.integers(0, 120)))
        if hard == HardKind.AFTER_SOFT
        else None,
    )


def weekly(
    spec: CohortSpec, series: str, section: int, times: list[tuple[int, int]], length: timedelta
) -> list[Occurrence]:
    tz = zone(spec.home_zone)
    out = []
    for week in range(spec.weeks):
        for slot, (weekday, minute) in enumerate(times):
            day = spec.start_date + timedelta(
                days=7 * week + (weekday - spec.start_date.weekday()) % 7
            )
            begin = wall_to_utc(day, time(minute // 60, minute % 60), tz)
            out.append(
                Occurrence(
                    series, section, slot, week, begin, begin + length, spec.is_blacked_out(day)
                )
            )
    return out


def in_quiet(local: datetime, spec: CohortSpec) -> bool:
    qs, qe = spec.planning.quiet_start * 60, spec.planning.quiet_end * 60
    seconds = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    if qs > qe:
        return seconds > qs or seconds < qe
    return qs < seconds < qe


def fits(occurrence: Occurrence, learner: DeadlineLearner) -> bool:
    local = occurrence.start.astimezone(zone(learner.zone))
    minute = local.weekday() * MINUTES_PER_DAY + local.hour * 60 + local.minute
    length = int((occurrence.end - occurrence.start).total_seconds() // 60)
    return learner.availability.covers(minute, length)


def check_learner(case: Case, learner: DeadlineLearner, items: tuple[DeadlineItem, ...]) -> None:
    spec = case.spec
    tz = zone(learner.zone)
    by_ref = {OccurrenceRef.of(o): o for o in case.occurrences}
    rules = {r.key: r for r in spec.assignments}
    section = learner.sections.get("class", 0)
    live = [
        o
        for o in case.occurrences
        if o.series == "class" and o.section == section and not o.skipped
    ]
    blocks = [
        o for o in case.occurrences if o.series == "cowork" and not o.skipped and fits(o, learner)
    ]
    assert len({i.key for i in items}) == len(items)
    for item in items:
        assert item.release <= item.soft
        assert item.hard is None or item.hard >= item.soft
        # Compare instants, not aware datetimes: Python treats an ambiguous wall time (the
        # repeated hour of a DST end) as unequal to every other zone's datetime (PEP 495).
        assert item.soft_local.timestamp() == item.soft.timestamp()
        assert item.soft_local.tzinfo == tz
        assert not in_quiet(item.soft_local, spec), item
        short = item.soft - item.release < item.effort
        assert short == any(w.startswith("less than the effort") for w in item.warnings), item
        if learner.enrolled_at is not None:
            assert item.release >= learner.enrolled_at
        target = by_ref[item.target]
        assert not target.skipped
        if item.kind == DeadlineKind.REPLAY:
            assert item.coworking is None
            continue
        rule = rules[item.assignment or ""]
        late = any(w.startswith("released after the rule's deadline") for w in item.warnings)
        if item.kind == DeadlineKind.ASSIGNMENT and rule.prepares:
            assert item.soft <= target.start - rule.soft_offset or late, item
        if item.kind == DeadlineKind.ASSIGNMENT and rule.snap_to is not None and not item.warnings:
            snap = time(rule.snap_to // 60, rule.snap_to % 60)
            day = item.soft_local.date()
            exists = wall_to_utc(day, snap, tz).astimezone(tz).time() == snap
            snap_quiet = in_quiet(datetime.combine(day, snap), spec)
            if exists and not snap_quiet:
                assert item.soft_local.time() == snap, item
        window = [b for b in blocks if item.release <= b.start and b.end <= item.soft]
        expected = min(window, key=lambda b: (b.start, b.section, b.slot, b.week), default=None)
        assert item.coworking == (None if expected is None else expected.start)
        if expected is not None:
            assert item.coworking_occurrence == OccurrenceRef.of(expected)
    for rule in spec.assignments:
        mine = [i for i in items if i.assignment == rule.key]
        assert sorted(i.target for i in mine) == sorted(OccurrenceRef.of(o) for o in live)
    enrolled = learner.enrolled_at
    replays = {i.target for i in items if i.kind == DeadlineKind.REPLAY}
    no_seat = "class" not in learner.sections
    assert replays == {
        OccurrenceRef.of(o)
        for o in live
        if no_seat or not fits(o, learner) or (enrolled is not None and o.start < enrolled)
    }


@PROPERTY
@given(cases())
def test_every_item_keeps_the_invariants(case: Case) -> None:
    result = compute_deadlines(case.spec, case.occurrences, case.learners)
    assert set(result) == {learner.key for learner in case.learners}
    for learner in case.learners:
        check_learner(case, learner, result[learner.key])


@PROPERTY
@given(cases())
def test_same_input_same_output_in_any_order(case: Case) -> None:
    first = compute_deadlines(case.spec, case.occurrences, case.learners)
    again = compute_deadlines(case.spec, case.occurrences[::-1], case.learners[::-1])
    assert again == first


DST_COURSES = [
    ("Europe/Berlin", date(2027, 3, 1)),
    ("Europe/Berlin", date(2027, 10, 4)),
    ("America/New_York", date(2027, 3, 1)),
    ("America/New_York", date(2027, 10, 4)),
    ("America/St_Johns", date(2027, 3, 1)),
    ("Pacific/Chatham", date(2027, 3, 8)),
    ("Pacific/Chatham", date(2027, 9, 6)),
    ("Australia/Lord_Howe", date(2027, 3, 8)),
    ("Australia/Lord_Howe", date(2027, 9, 13)),
    ("Australia/Sydney", date(2027, 9, 13)),
    ("America/Santiago", date(2027, 3, 8)),
]


@PROPERTY
@given(
    course=st.sampled_from(DST_COURSES),
    class_at=st.tuples(st.integers(0, 6), quarter_hours),
    offset_hours=st.integers(1, 72),
    follows=st.booleans(),
)
def test_a_20_00_snap_stays_20_00_across_the_learner_clock_change(
    course: tuple[str, date], class_at: tuple[int, int], offset_hours: int, follows: bool
) -> None:
    zone_name, start = course
    rule = AssignmentRule(
        key="r",
        title="R",
        series="class",
        prepares=not follows,
        soft_offset=timedelta(hours=offset_hours),
        effort=timedelta(hours=1),
        snap_to=20 * 60,
        hard=HardKind.AFTER_SOFT,
        hard_after=timedelta(hours=48),
    )
    spec = CohortSpec(
        slug="dst",
        title="DST",
        start_date=start,
        weeks=8,
        home_zone="UTC",
        locale="en",
        default_availability=parse_availability("daily 00:00-24:00"),
        series=(SeriesRequest("class", "Class", SeriesKind.CLASS, 1, timedelta(hours=1)),),
        assignments=(rule,),
    )
    occurrences = weekly(spec, "class", 0, [class_at], timedelta(hours=1))
    learner = DeadlineLearner("x", zone_name, parse_availability("daily 00:00-24:00"), {"class": 0})
    items = compute_deadlines(spec, occurrences, [learner])["x"]
    clean = [i for i in items if i.kind == DeadlineKind.ASSIGNMENT and not i.warnings]
    assert len(clean) >= 6
    assert {i.soft_local.time() for i in clean} == {time(20)}
    assert len({i.soft_local.utcoffset() for i in clean}) == 2  # the course crosses a change
    for item in clean:
        assert item.hard is not None
        assert item.hard.astimezone(zone(zone_name)).time() == time(20)
