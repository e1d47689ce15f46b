"""Build time of personal ICS feeds: icalendar built naively vs. FeedBuilder, cold and warm.

    .venv/bin/python bench/feeds_build.py [--runs 31] [--learners 100000] [--sets 1000]

A personal feed here has 50 events: 30 live occurrences in the section's anchor zone
(Europe/Berlin, crossing the March DST change) with join link, agenda and a 15-minute alarm,
and 20 transparent deadlines in the learner's own zone (Asia/Kolkata: a zone without DST, whose
VTIMEZONE is the expensive one for icalendar).

- naive: ``feed_calendar(...).to_ical()``: icalendar builds every component, VTIMEZONEs included,
  nothing cached (what the issue measured: ~19 ms). Also shown without the VTIMEZONE cost.
- cold: a new FeedBuilder (empty event cache, i.e. the first feed of a new plan version), every
  event sanitised and serialised; the process-wide VTIMEZONE cache is warm (each zone is built
  once per process, timed separately below).
- warm: the same builder asked again: every event's bytes come from its cache.
- cohort: after a reschedule, every learner's feed of a 100k-learner cohort from ~1k distinct
  event sets (sections x learner zones) sharing cached event bytes, one new FeedBuilder.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Timezone, vDuration, vText

from scheduler.outputs.ics import (
    CalendarEvent,
    FeedBuilder,
    deadline_event,
    event_component,
    sanitize_text,
)

STAMP = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
NAMESPACE = uuid.UUID("6f1c3f5e-2b7a-4a8e-9d0c-0c0ffee00001")
AGENDA = "Agenda:\n1. Recap of last week\n2. Live exercise in pairs\n3. Q&A, next steps"


def uid(key: str) -> str:
    return f"{uuid.uuid5(NAMESPACE, key)}@cohort-scheduler"


def live(section: int, week: int, kind: int, anchor: str) -> CalendarEvent:
    start = datetime(2027, 3, 1, 17, 0, tzinfo=UTC) + timedelta(weeks=week, days=2 * kind)
    return CalendarEvent(
        uid=uid(f"occ:{section}:{kind}:{week}"),
        sequence=0,
        start=start,
        end=start + timedelta(minutes=90),
        tzid=anchor,
        summary=f"Week {week + 1}: Live class {kind + 1} (section {section})",
        description=AGENDA,
        location="https://meet.example.org/j/8413370042?pwd=abcdef",
        url="https://cohort.example.org/c/spring-2027/sessions",
        categories=("Live class",),
        alarm_minutes=15,
    )


def deadline(learner_zone: str, week: int, item: int, offset_hours: int) -> CalendarEvent:
    due = datetime(2027, 3, 2, 18, 29, tzinfo=UTC) + timedelta(
        weeks=week, days=item * 3, hours=offset_hours
    )
    return deadline_event(
        uid=uid(f"dl:{learner_zone}:{offset_hours}:{week}:{item}"),
        sequence=0,
        due=due,
        tzid=learner_zone,
        title=f"Week {week + 1} reading {item + 1}",
        description="Soft deadline; the hard cut-off is 72 hours later.",
    )


def personal_events(section: int = 0, zone_name: str = "Asia/Kolkata", offset: int = 0):
    events = [live(section, week, kind, "Europe/Berlin") for week in range(15) for kind in (0, 1)]
    events += [deadline(zone_name, week, item, offset) for week in range(10) for item in (0, 1)]
    return events


def median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def naive_feed(name: str, events: list[CalendarEvent], *, with_timezones: bool = True) -> bytes:
    """What a straightforward icalendar program does: build everything, cache nothing."""
    cal = Calendar()
    cal.add("VERSION", "2.0")
    cal.add("PRODID", "-//cohort-scheduler//EN")
    cal.add("CALSCALE", "GREGORIAN")
    cal.add("NAME", vText(sanitize_text(name, limit=255)))
    cal.add("X-WR-CALNAME", sanitize_text(name, limit=255))
    cal.add("REFRESH-INTERVAL", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("X-PUBLISHED-TTL", vDuration(timedelta(hours=1)).to_ical().decode())
    if with_timezones:
        for tzid in sorted({e.tzid for e in events}):
            cal.add_component(Timezone.from_tzid(tzid))
    for event in sorted(events, key=lambda e: (e.start, e.end, e.uid)):
        cal.add_component(event_component(event, stamp=STAMP))
    return bytes(cal.to_ical())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=31)
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--sets", type=int, default=1_000)
    args = parser.parse_args()

    events = personal_events()
    assert len(events) == 50
    name = "Spring 2027 cohort: Ana Lima"

    # VTIMEZONE, first build in this process (what the process-wide cache saves afterwards).
    start = time.perf_counter()
    FeedBuilder(stamp=STAMP).timezone_bytes("Asia/Kolkata")
    FeedBuilder(stamp=STAMP).timezone_bytes("Europe/Berlin")
    tz_first = (time.perf_counter() - start) * 1e3
    tz_naive = median_ms(
        lambda: (Timezone.from_tzid("Asia/Kolkata"), Timezone.from_tzid("Europe/Berlin")), 5
    )

    naive = median_ms(lambda: naive_feed(name, events), args.runs)
    naive_no_tz = median_ms(lambda: naive_feed(name, events, with_timezones=False), args.runs)
    cold = median_ms(lambda: FeedBuilder(stamp=STAMP).feed(name, events), args.runs)
    warm_builder = FeedBuilder(stamp=STAMP)
    warm_builder.feed(name, events)
    warm = median_ms(lambda: warm_builder.feed(name, events), args.runs)

    # Cohort after a reschedule: ~1k distinct event sets (20 sections x 50 zone/offset combos).
    zones = ["Asia/Kolkata", "Europe/Berlin", "America/Bogota", "Australia/Lord_Howe"]
    sets = []
    for index in range(args.sets):
        section, combo = divmod(index, 50)
        sets.append(personal_events(section, zones[combo % len(zones)], combo % 13))
    start = time.perf_counter()
    builder = FeedBuilder(stamp=STAMP + timedelta(minutes=1))
    total_bytes = 0
    for learner in range(args.learners):
        total_bytes += len(builder.feed(f"Learner {learner}", sets[learner % len(sets)]))
    cohort_s = time.perf_counter() - start
    distinct = len({e for s in sets for e in s})

    print(f"personal feed: {len(events)} events, {len(warm_builder.feed(name, events))} bytes")
    print(f"medians of {args.runs} runs")
    print(f"naive icalendar (Timezone.from_tzid, 2 zones):   {tz_naive:8.2f} ms")
    print(f"VTIMEZONE 2 zones, our first build in process:   {tz_first:8.2f} ms (then cached)")
    print(f"naive icalendar, whole feed incl. VTIMEZONEs:     {naive:8.2f} ms")
    print(f"naive icalendar, without VTIMEZONEs:              {naive_no_tz:8.2f} ms")
    print(f"FeedBuilder cold (new builder, events uncached):  {cold:8.3f} ms")
    print(f"FeedBuilder warm (events cached):                 {warm:8.3f} ms")
    print(f"speed-up vs naive: cold {naive / cold:6.1f}x, warm {naive / warm:6.1f}x")
    print(
        f"cohort: {args.learners} feeds from {len(sets)} event sets ({distinct} distinct events),"
        f" {total_bytes / 1e6:.0f} MB: {cohort_s:.1f} s"
        f" ({cohort_s / args.learners * 1e6:.0f} us per feed)"
    )


if __name__ == "__main__":
    main()
