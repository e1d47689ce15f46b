"""VTIMEZONE in RRULE form (issue 19): the POSIX TZ parser, the generator on named zones, every
zone of the database against zoneinfo, and a golden file.

The checks expand the VTIMEZONE *text* with an expander of their own (a line parser and
``dateutil.rrule.rrulestr`` per observance), never with the generator's code, and compare the
UTC offset it gives with ``zoneinfo``'s.
"""

from __future__ import annotations

import calendar
import io
import os
import re
from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, available_timezones

import pytest
from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar, Timezone

from scheduler.outputs.ics import FeedBuilder, timezone_component
from scheduler.outputs.ics.timezones import _timezone_bytes, _vtimezone_text
from scheduler.outputs.vtimezone import (
    LocalTimeType,
    PosixDate,
    build_vtimezone,
    parse_posix_tz,
    parse_tzif,
    tzif_bytes,
)

GOLDEN = Path(__file__).parent / "golden" / "vtimezone"
ALL_ZONES = sorted(available_timezones())
WINDOW = (2020, 2036)  # 1 January 2020 to 1 January 2036: every day of 2020-2035

# Zones whose current rule cannot be written as RRULE:FREQ=YEARLY;BYDAY=<n><day>;BYMONTH=<m>
# (the only form Outlook reads), so the window is written as RDATEs (2020-2035, tzdata 2025b
# and 2026f alike): the change falls on another day than its weekday rule says.
# Morocco's changes follow Ramadan (a lunar calendar): no yearly rule at all. Its file lists
# them year by year as long as tzdata does (to 2087 in 2025b); the window is RDATEs then.
MOROCCO = {"Africa/Casablanca", "Africa/El_Aaiun"}
FALLBACK = {
    "Africa/Cairo": "M4.5.5/0,M10.5.4/24: Thursday 24:00, i.e. the Friday after the last Thursday",
    "Egypt": "link to Africa/Cairo",
    "America/Santiago": "M9.1.6/24,M4.1.6/24: Sunday 00:00 after the first Saturday",
    "Chile/Continental": "link to America/Santiago",
    "America/Nuuk": "M3.5.0/-1: Saturday 23:00 before the last Sunday",
    "America/Godthab": "link to America/Nuuk",
    "America/Scoresbysund": "same rule as America/Nuuk since 2024",
    "Asia/Jerusalem": "M3.4.4/26: the Friday after the fourth Thursday",
    "Asia/Tel_Aviv": "link to Asia/Jerusalem",
    "Israel": "link to Asia/Jerusalem",
    "Asia/Gaza": "M3.4.4/50 and listed changes (Ramadan) the rule does not make",
    "Asia/Hebron": "as Asia/Gaza",
}
RRULE_FORM = re.compile(
    r"FREQ=YEARLY;BYDAY=(-1|[1-4])(SU|MO|TU|WE|TH|FR|SA);BYMONTH=([1-9]|1[0-2])"
)


# --- an expander of our own: text -> onsets (UTC instant, offset from then on) ---------------


def observances(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """Each STANDARD / DAYLIGHT block of a VTIMEZONE: (kind, property name -> values)."""
    found: list[tuple[str, dict[str, list[str]]]] = []
    current: tuple[str, dict[str, list[str]]] | None = None
    for line in text.replace("\r\n ", "").split("\r\n"):
        if line in ("BEGIN:STANDARD", "BEGIN:DAYLIGHT"):
            current = (line[6:], {})
        elif current is not None and line == "END:" + current[0]:
            found.append(current)
            current = None
        elif current is not None:
            head, _, value = line.partition(":")
            current[1].setdefault(head.split(";")[0], []).append(value)
    return found


def utc_offset(text: str) -> int:
    sign = -1 if text.startswith("-") else 1
    digits = text[1:]
    return sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60 + int(digits[4:6] or 0))


def expand(text: str, until_year: int) -> tuple[list[int], list[int]]:
    """Every onset of every observance up to the end of ``until_year``, by dateutil: the sorted
    UTC instants and the offset (seconds) in force from each. DTSTART and RDATE are wall times
    in TZOFFSETFROM (RFC 5545 3.6.5)."""
    onsets: list[tuple[int, int]] = []
    for _, props in observances(text):
        offset_from = utc_offset(props["TZOFFSETFROM"][0])
        offset_to = utc_offset(props["TZOFFSETTO"][0])
        start = props["DTSTART"][0]  # the first onset (dateutil's sets leave it out)
        spec = [f"DTSTART:{start}", f"RDATE:{start}"]
        spec += [f"RRULE:{r}" for r in props.get("RRULE", [])]
        spec += [f"RDATE:{r}" for r in props.get("RDATE", [])]
        for wall in rrulestr("\n".join(spec), forceset=True):
            if wall.year > until_year:
                break
            onsets.append((calendar.timegm(wall.timetuple()) - offset_from, offset_to))
    onsets.sort()
    instants = [at for at, _ in onsets]
    assert len(set(instants)) == len(instants), "two observances start at the same instant"
    return instants, [offset for _, offset in onsets]


def zone_offset(tz: ZoneInfo, at: int) -> int:
    offset = datetime.fromtimestamp(at, tz).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


@lru_cache(maxsize=8)
def days(first_year: int, last_year: int) -> tuple[list[datetime], list[int]]:
    """Local noon (floating wall time) of every day from 1 Jan ``first_year`` to 31 Dec of the
    year before ``last_year``, and each as seconds since 1970-01-01 on that wall clock."""
    start = date(first_year, 1, 1).toordinal()
    end = date(last_year, 1, 1).toordinal()
    noons = [datetime.combine(date.fromordinal(n), time(12)) for n in range(start, end)]
    return noons, [calendar.timegm(n.timetuple()) for n in noons]


def check_against_zoneinfo(text: str, tz: ZoneInfo, first_year: int, last_year: int) -> int:
    """Assert the VTIMEZONE gives zoneinfo's UTC offset at local noon of every day of the window,
    just before and at every change zoneinfo makes in it (found between those noons), and just
    before and at each of its own onsets in the window. Returns the number of changes."""
    instants, offsets = expand(text, last_year)

    def ours(at: int) -> int:
        i = bisect_right(instants, at) - 1
        assert i >= 0, f"{tz.key}: the VTIMEZONE says nothing before {at}"
        return offsets[i]

    noons, local = days(first_year, last_year)
    theirs = [int(tz.utcoffset(n).total_seconds()) for n in noons]  # type: ignore[union-attr]
    probes = [wall - offset for wall, offset in zip(local, theirs, strict=True)]
    for noon, at, expected in zip(noons, probes, theirs, strict=True):
        got = ours(at)
        if got != expected:  # noon in a gap or fold: compare at the same instant
            assert got == zone_offset(tz, at), f"{tz.key} at {noon:%Y-%m-%d} noon"
    changes = 0
    for k in range(len(probes) - 1):
        if theirs[k] == theirs[k + 1]:
            continue
        lo, hi = probes[k], probes[k + 1]  # zoneinfo changes offset in (lo, hi]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if zone_offset(tz, mid) == theirs[k] else (lo, mid)
        for at in (hi - 1, hi):
            assert ours(at) == zone_offset(tz, at), f"{tz.key} at its change {hi}"
        changes += 1
    start, end = probes[0] - 86_400, probes[-1] + 86_400
    for at in instants:
        if start <= at <= end:
            for probe in (at - 1, at):
                assert ours(probe) == zone_offset(tz, probe), f"{tz.key} at our onset {at}"
    return changes


def vtimezone(key: str, first_year: int, last_year: int) -> str:
    return _timezone_bytes(key, first_year, last_year).decode("ascii")


def summary(text: str) -> list[tuple[str, str, str, str, str, str, list[str]]]:
    """(kind, DTSTART, RRULE or "", TZOFFSETFROM, TZOFFSETTO, TZNAME, RDATEs) per observance."""
    return [
        (
            kind,
            p["DTSTART"][0],
            "".join(p.get("RRULE", [])),
            p["TZOFFSETFROM"][0],
            p["TZOFFSETTO"][0],
            p["TZNAME"][0],
            ",".join(p.get("RDATE", [])).split(",") if "RDATE" in p else [],
        )
        for kind, p in observances(text)
    ]


def assert_outlook_rules(text: str) -> None:
    """Every RRULE is yearly with one BYDAY occurrence (never BYMONTHDAY); with RRULEs there is
    exactly one STANDARD and one DAYLIGHT rule, the DAYLIGHT one the larger offset."""
    rules = [(kind, p) for kind, p in observances(text) if "RRULE" in p]
    for _, props in rules:
        assert [RRULE_FORM.fullmatch(r) is not None for r in props["RRULE"]] == [True]
        assert "RDATE" not in props
    if rules:
        assert sorted(kind for kind, _ in rules) == ["DAYLIGHT", "STANDARD"]
        by_kind = {kind: utc_offset(p["TZOFFSETTO"][0]) for kind, p in rules}
        assert by_kind["DAYLIGHT"] > by_kind["STANDARD"]


# --- the POSIX TZ string ---------------------------------------------------------------------


def std_dst(text: str) -> tuple[LocalTimeType, LocalTimeType | None]:
    tz = parse_posix_tz(text)
    return tz.std, tz.dst


@pytest.mark.parametrize(
    ("text", "std", "dst"),
    [
        pytest.param(
            "CET-1CEST,M3.5.0,M10.5.0/3",
            LocalTimeType(3600, False, "CET"),
            LocalTimeType(7200, True, "CEST"),
            id="europe_berlin",
        ),
        pytest.param(
            "EST5EDT,M3.2.0,M11.1.0",
            LocalTimeType(-18000, False, "EST"),
            LocalTimeType(-14400, True, "EDT"),
            id="west_of_utc_default_dst_offset",
        ),
        pytest.param(
            "IST-1GMT0,M10.5.0,M3.5.0/1",
            LocalTimeType(3600, False, "IST"),
            LocalTimeType(0, True, "GMT"),
            id="negative_dst_dublin",
        ),
        pytest.param(
            "<+1030>-10:30<+11>-11,M10.1.0,M4.1.0",
            LocalTimeType(37800, False, "+1030"),
            LocalTimeType(39600, True, "+11"),
            id="quoted_names_half_hour_dst_lord_howe",
        ),
        pytest.param(
            "<+0545>-5:45", LocalTimeType(20700, False, "+0545"), None, id="no_dst_kathmandu"
        ),
        pytest.param("IST-5:30", LocalTimeType(19800, False, "IST"), None, id="no_dst_kolkata"),
        pytest.param("<-0930>9:30", LocalTimeType(-34200, False, "-0930"), None, id="marquesas"),
        pytest.param("UTC0", LocalTimeType(0, False, "UTC"), None, id="utc"),
        pytest.param("<+14>-14", LocalTimeType(50400, False, "+14"), None, id="etc_gmt_minus_14"),
        pytest.param(
            "AAA-1:02:03", LocalTimeType(3723, False, "AAA"), None, id="offset_with_seconds"
        ),
    ],
)
def test_posix_tz_names_and_offsets(text, std, dst):
    assert std_dst(text) == (std, dst)


@pytest.mark.parametrize(
    ("text", "year", "begins", "ends"),
    [
        pytest.param(
            "CET-1CEST,M3.5.0,M10.5.0/3",
            2027,
            "2027-03-28 02:00",
            "2027-10-31 03:00",
            id="last_sunday",
        ),
        pytest.param(
            "EST5EDT,M3.2.0,M11.1.0",
            2027,
            "2027-03-14 02:00",
            "2027-11-07 02:00",
            id="second_and_first_sunday",
        ),
        pytest.param(
            "<-02>2<-01>,M3.5.0/-1,M10.5.0/0",
            2027,
            "2027-03-27 23:00",
            "2027-10-31 00:00",
            id="negative_time_nuuk",
        ),
        pytest.param(
            "EET-2EEST,M3.4.4/50,M10.4.4/50",
            2027,
            "2027-03-27 02:00",
            "2027-10-30 02:00",
            id="time_past_a_day_gaza",
        ),
        pytest.param(
            "IST-2IDT,M3.4.4/26,M10.5.0",
            2027,
            "2027-03-26 02:00",
            "2027-10-31 02:00",
            id="friday_after_fourth_thursday_jerusalem",
        ),
        pytest.param(
            "AAA3BBB,J60/2,J300/1:30:15",
            2028,
            "2028-03-01 02:00",
            "2028-10-27 01:30:15",
            id="julian_day_skips_february_29",
        ),
        pytest.param(
            "AAA3BBB,59,299/-3",
            2028,
            "2028-02-29 02:00",
            "2028-10-25 21:00",
            id="zero_based_day_counts_february_29",
        ),
        pytest.param(
            "AAA3BBB,M2.5.3/167,M12.1.1/-167",
            2027,
            "2027-03-02 23:00",
            "2027-11-29 01:00",
            id="rfc8536_extreme_hours",
        ),
    ],
)
def test_posix_tz_change_dates(text, year, begins, ends):
    tz = parse_posix_tz(text)
    assert tz.start is not None and tz.end is not None

    def wall(posix: PosixDate) -> str:
        moment = datetime.fromtimestamp(posix.local_seconds(year), UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S").removesuffix(":00")

    assert (wall(tz.start), wall(tz.end)) == (begins, ends)


@pytest.mark.parametrize(
    ("text", "begins", "ends"),
    [
        pytest.param("CET-1CEST,M3.5.0,M10.5.0/3", "-1SU/3", "-1SU/10", id="last_is_minus_one"),
        pytest.param("EST5EDT,M3.2.0,M11.1.0", "2SU/3", "1SU/11", id="nth_weekday"),
        pytest.param("<-06>6<-05>,M9.1.6/22,M4.1.6/22", "1SA/9", "1SA/4", id="easter_22h"),
        pytest.param("<-04>4<-03>,M9.1.6/24,M4.1.6/24", None, None, id="chile_24h_is_sunday"),
        pytest.param("<-02>2<-01>,M3.5.0/-1,M10.5.0/0", None, "-1SU/10", id="nuuk_minus_1h"),
        pytest.param("AAA3BBB,J60,300", None, None, id="day_counts"),
    ],
)
def test_posix_dates_as_yearly_rules(text, begins, ends):
    tz = parse_posix_tz(text)
    assert tz.start is not None and tz.end is not None

    def rule(posix: PosixDate) -> str | None:
        yearly = posix.yearly_rule()
        return None if yearly is None else f"{yearly.byday}/{yearly.month}"

    assert (rule(tz.start), rule(tz.end)) == (begins, ends)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "CET",
        "C-1",  # a name has 3 letters at least
        "CET-1CEST",  # DST without its dates
        "CET-1CEST,M3.5.0",
        "CET-1CEST,M13.5.0,M10.5.0",
        "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,M3.5.7,M10.5.0",
        "CET-1CEST,M3.5.0/168,M10.5.0",
        "CET-1CEST,J0,J365",
        "CET-1CEST,J1,366",
        "CET-25",
        "CET-1:60",
        "<+1>-1",
        "CET-1 ",
    ],
)
def test_malformed_posix_tz_is_refused(text):
    with pytest.raises(ValueError, match="not a POSIX TZ string"):
        parse_posix_tz(text)


# --- the zone file ---------------------------------------------------------------------------


def test_tzif_is_the_file_zoneinfo_loads():
    for key in ("Europe/Berlin", "America/Sao_Paulo", "Asia/Tehran", "Etc/GMT+5"):
        data = tzif_bytes(key)
        from_file = ZoneInfo.from_file(io.BytesIO(data), key=key)
        assert all(
            from_file.utcoffset(n) == ZoneInfo(key).utcoffset(n) for n in days(1990, 2040)[0][::7]
        )
        assert data.rstrip(b"\n").rsplit(b"\n", 1)[-1] != b""  # the rule the footer carries


def test_tzif_parse_reads_the_footer_and_the_transitions():
    berlin = parse_tzif(tzif_bytes("Europe/Berlin"))
    assert berlin.footer == parse_posix_tz("CET-1CEST,M3.5.0,M10.5.0/3")
    assert len(berlin.times) == len(berlin.types) > 100
    assert list(berlin.times) == sorted(berlin.times)
    assert berlin.before.name == "LMT" and not berlin.before.is_dst
    utc = parse_tzif(tzif_bytes("Etc/UTC"))
    assert (utc.times, utc.footer) == ((), parse_posix_tz("UTC0"))


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../etc/passwd", "Europe/../../etc", "No/Such"])
def test_unknown_or_unsafe_zone_keys_are_refused(key):
    with pytest.raises(ValueError, match=r"not a zone key|no zone file"):
        build_vtimezone(key, 2026, 2028)


def test_empty_window_is_refused():
    with pytest.raises(ValueError, match="empty window"):
        build_vtimezone("Europe/Berlin", 2028, 2028)


@pytest.mark.parametrize(
    "data",
    [b"TZjf" + bytes(60), tzif_bytes("Europe/Berlin")[:300], b"TZif2"],
    ids=["bad_magic", "cut_short", "header_only"],
)
def test_not_a_tzif_file_is_refused(data):
    with pytest.raises(ValueError, match="not a TZif file"):
        parse_tzif(data)


# --- named zones -----------------------------------------------------------------------------

BERLIN_RULES = [
    (
        "DAYLIGHT",
        "19700329T020000",
        "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3",
        "+0100",
        "+0200",
        "CEST",
        [],
    ),
    (
        "STANDARD",
        "19701025T030000",
        "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10",
        "+0200",
        "+0100",
        "CET",
        [],
    ),
]


@pytest.mark.parametrize(
    ("key", "window", "expected"),
    [
        pytest.param("Europe/Berlin", (2026, 2030), BERLIN_RULES, id="europe_berlin"),
        pytest.param(
            "America/New_York",
            (2026, 2030),
            [
                ("DAYLIGHT", "19700308T020000", "FREQ=YEARLY;BYDAY=2SU;BYMONTH=3", "-0500", "-0400", "EDT", []),
                ("STANDARD", "19701101T020000", "FREQ=YEARLY;BYDAY=1SU;BYMONTH=11", "-0400", "-0500", "EST", []),
            ],
            id="america_new_york",
        ),
        pytest.param(
            "Australia/Sydney",
            (2026, 2030),
            [
                ("STANDARD", "19700405T030000", "FREQ=YEARLY;BYDAY=1SU;BYMONTH=4", "+1100", "+1000", "AEST", []),
                ("DAYLIGHT", "19701004T020000", "FREQ=YEARLY;BYDAY=1SU;BYMONTH=10", "+1000", "+1100", "AEDT", []),
            ],
            id="southern_sydney",
        ),
        pytest.param(
            "Pacific/Auckland",
            (2026, 2030),
            [
                ("STANDARD", "19700405T030000", "FREQ=YEARLY;BYDAY=1SU;BYMONTH=4", "+1300", "+1200", "NZST", []),
                ("DAYLIGHT", "19700927T020000", "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=9", "+1200", "+1300", "NZDT", []),
            ],
            id="southern_auckland",
        ),
        pytest.param(
            "Asia/Kolkata",
            (2026, 2030),
            [("STANDARD", "19700101T000000", "", "+0530", "+0530", "IST", [])],
            id="no_dst_half_hour_kolkata",
        ),
        pytest.param(
            "Asia/Kathmandu",
            (2026, 2030),
            [("STANDARD", "19700101T000000", "", "+0545", "+0545", "+0545", [])],
            id="no_dst_quarter_hour_kathmandu",
        ),
        pytest.param(
            "America/Bogota",
            (2026, 2030),
            [("STANDARD", "19700101T000000", "", "-0500", "-0500", "-05", [])],
            id="no_dst_bogota",
        ),
        pytest.param(
            "Australia/Lord_Howe",
            (2026, 2030),
            [
                ("STANDARD", "19700405T020000", "FREQ=YEARLY;BYDAY=1SU;BYMONTH=4", "+1100", "+1030", "+1030", []),
                ("DAYLIGHT", "19701004T020000", "FREQ=YEARLY;BYDAY=1SU;BYMONTH=10", "+1030", "+1100", "+11", []),
            ],
            id="half_hour_dst_lord_howe",
        ),
        pytest.param(
            # tzdata: IST (+01) is standard time in summer, GMT the negative "DST" in winter.
            # Written with the summer offset as DAYLIGHT, as clients (and Google) expect.
            "Europe/Dublin",
            (2026, 2030),
            [
                ("DAYLIGHT", "19700329T010000", "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3", "+0000", "+0100", "IST", []),
                ("STANDARD", "19701025T020000", "FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10", "+0100", "+0000", "GMT", []),
            ],
            id="negative_dst_dublin",
        ),
        pytest.param(
            # Brazil abolished DST in 2019: the last change (16 February 2019) is in the window.
            "America/Sao_Paulo",
            (2018, 2022),
            [
                ("DAYLIGHT", "20171015T000000", "", "-0300", "-0200", "-02", ["20181104T000000"]),
                ("STANDARD", "20180218T000000", "", "-0200", "-0300", "-03", ["20190217T000000"]),
            ],
            id="abolished_dst_2019_sao_paulo",
        ),
        pytest.param(
            "America/Sao_Paulo",
            (2026, 2030),
            [("STANDARD", "19700101T000000", "", "-0300", "-0300", "-03", [])],
            id="abolished_dst_before_the_window_sao_paulo",
        ),
        pytest.param(
            # Mexico abolished DST on 30 October 2022: the standard observance is that change.
            "America/Mexico_City",
            (2021, 2024),
            [
                ("STANDARD", "20201025T020000", "", "-0500", "-0600", "CST", ["20211031T020000", "20221030T020000"]),
                ("DAYLIGHT", "20210404T020000", "", "-0600", "-0500", "CDT", ["20220403T020000"]),
            ],
            id="abolished_dst_2022_mexico_city",
        ),
        pytest.param(
            # Jordan stayed on +03 from 28 October 2022: only the name and the DST flag changed.
            "Asia/Amman",
            (2022, 2024),
            [
                ("STANDARD", "20211029T010000", "", "+0300", "+0200", "EET", []),
                ("DAYLIGHT", "20220225T000000", "", "+0200", "+0300", "EEST", []),
                ("STANDARD", "20221028T010000", "", "+0300", "+0300", "+03", []),
            ],
            id="permanent_summer_time_2022_amman",
        ),
        pytest.param(
            "Asia/Tehran",
            (2022, 2024),
            [
                ("STANDARD", "20210922T000000", "", "+0430", "+0330", "+0330", ["20220922T000000"]),
                ("DAYLIGHT", "20220322T000000", "", "+0330", "+0430", "+0430", []),
            ],
            id="abolished_dst_2022_tehran",
        ),
        pytest.param(
            # Volgograd: +04 from October 2018, back to Moscow time on 27 December 2020.
            "Europe/Volgograd",
            (2020, 2022),
            [
                ("STANDARD", "20181028T020000", "", "+0300", "+0400", "+04", []),
                ("STANDARD", "20201227T020000", "", "+0400", "+0300", "MSK", []),
            ],
            id="standard_offset_changes_volgograd",
        ),
        pytest.param(
            # A rule in force from 2023 only, after changes in 2022: RRULEs start at 2023 and
            # the earlier changes of the window are RDATE observances.
            "America/Ciudad_Juarez",
            (2022, 2025),
            [
                ("STANDARD", "20211107T020000", "", "-0600", "-0700", "MST", ["20221130T000000"]),
                ("DAYLIGHT", "20220313T020000", "", "-0700", "-0600", "MDT", []),
                ("STANDARD", "20221030T020000", "", "-0600", "-0600", "CST", []),
                ("DAYLIGHT", "20230312T020000", "FREQ=YEARLY;BYDAY=2SU;BYMONTH=3", "-0700", "-0600", "MDT", []),
                ("STANDARD", "20231105T020000", "FREQ=YEARLY;BYDAY=1SU;BYMONTH=11", "-0600", "-0700", "MST", []),
            ],
            id="new_rule_inside_the_window_ciudad_juarez",
        ),
        pytest.param(
            "Etc/GMT+5",
            (2026, 2030),
            [("STANDARD", "19700101T000000", "", "-0500", "-0500", "-05", [])],
            id="etc_gmt_plus_5",
        ),
        pytest.param(
            "Etc/GMT-14",
            (2026, 2030),
            [("STANDARD", "19700101T000000", "", "+1400", "+1400", "+14", [])],
            id="etc_gmt_minus_14",
        ),
        pytest.param(
            "Etc/UTC",
            (2026, 2030),
            [("STANDARD", "19700101T000000", "", "+0000", "+0000", "UTC", [])],
            id="etc_utc",
        ),
        pytest.param(
            "Asia/Jerusalem",
            (2026, 2028),
            [
                ("STANDARD", "20251026T020000", "", "+0300", "+0200", "IST", ["20261025T020000", "20271031T020000"]),
                ("DAYLIGHT", "20260327T020000", "", "+0200", "+0300", "IDT", ["20270326T020000"]),
            ],
            id="fallback_friday_before_last_sunday_jerusalem",
        ),
    ],
)  # fmt: skip
def test_named_zones(key, window, expected):
    text = vtimezone(key, *window)
    assert summary(text) == expected
    assert_outlook_rules(text)
    check_against_zoneinfo(text, ZoneInfo(key), *window)


@pytest.mark.parametrize(
    ("key", "window"),
    [
        pytest.param("Europe/Berlin", (1975, 1985), id="berlin_before_its_current_rule"),
        pytest.param("America/New_York", (2005, 2010), id="us_rule_change_2007"),
        pytest.param("Europe/London", (1965, 1975), id="british_standard_time_1968_1971"),
        pytest.param("Asia/Kolkata", (1940, 1950), id="kolkata_war_time"),
        pytest.param("Europe/Berlin", (2030, 2045), id="berlin_after_the_listed_changes"),
        pytest.param("Africa/Casablanca", (2026, 2030), id="casablanca_ramadan"),
        pytest.param("Pacific/Apia", (2010, 2013), id="samoa_skips_30_december_2011"),
    ],
)
def test_historical_and_far_windows_match_zoneinfo(key, window):
    text = vtimezone(key, *window)
    assert_outlook_rules(text)
    assert check_against_zoneinfo(text, ZoneInfo(key), *window) > 0


@settings(max_examples=60, deadline=None)
@given(
    key=st.sampled_from(ALL_ZONES),
    first_year=st.integers(1971, 2060),
    length=st.integers(1, 12),
)
def test_any_zone_any_window_matches_zoneinfo(key, first_year, length):
    text = _vtimezone_text(build_vtimezone(key, first_year, first_year + length))
    assert_outlook_rules(text)
    check_against_zoneinfo(text, ZoneInfo(key), first_year, first_year + length)


# --- what feeds and invites carry ------------------------------------------------------------


def test_feed_vtimezone_is_cached_and_unchanged_by_an_icalendar_round_trip():
    data = FeedBuilder(stamp=datetime(2027, 2, 1, tzinfo=UTC)).timezone_bytes("Europe/Berlin")
    assert data is _timezone_bytes("Europe/Berlin", 2026, 2030)  # one build per zone and window
    assert timezone_component("Europe/Berlin", 2026, 2030).to_ical() == data
    assert Timezone.from_ical(data).to_ical() == data  # invites re-serialise it unchanged
    assert summary(data.decode()) == BERLIN_RULES
    assert b"RDATE" not in data


def test_rrule_form_is_what_icalendar_itself_reads():
    """icalendar turns our VTIMEZONE into a tzinfo (as it does for a TZID it does not know):
    the same offsets as zoneinfo across both 2027 changes."""
    tz = Timezone.from_ical(_timezone_bytes("Europe/Berlin", 2026, 2030)).to_tz(lookup_tzid=False)
    assert not isinstance(tz, ZoneInfo)
    for moment in (
        datetime(2027, 3, 28, 0, 59, tzinfo=UTC),
        datetime(2027, 3, 28, 1, 0, tzinfo=UTC),
        datetime(2027, 10, 31, 0, 59, tzinfo=UTC),
        datetime(2027, 10, 31, 1, 0, tzinfo=UTC),
    ):
        assert (
            moment.astimezone(tz).utcoffset()
            == moment.astimezone(ZoneInfo("Europe/Berlin")).utcoffset()
        )


@pytest.mark.parametrize(
    ("key", "name"),
    [
        ("Europe/Berlin", "Europe-Berlin_2026-2028.ics"),
        ("America/New_York", "America-New_York_2026-2028.ics"),
    ],
)
def test_golden_vtimezone(key, name):
    data = _timezone_bytes(key, 2026, 2028)
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert data == path.read_bytes()
    cal = Calendar.from_ical(
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\n" + data + b"END:VCALENDAR\r\n"
    )
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == [key]


# --- every zone ------------------------------------------------------------------------------


def _package_bytes(key: str) -> bytes | None:
    try:
        return resources.files("tzdata.zoneinfo").joinpath(*key.split("/")).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None


@pytest.mark.parametrize("source", ["zoneinfo", "tzdata_package"])
def test_every_zone_matches_zoneinfo_2020_to_2035(source):
    """Every key of ``zoneinfo.available_timezones()``, 2020-2035: the expanded VTIMEZONE gives
    zoneinfo's offset at noon every day and around every change; RRULEs are in Outlook's form;
    zones that still change their clocks use them except the FALLBACK set. ``zoneinfo``: the
    files the product reads (the system's, fat on Debian); ``tzdata_package``: the slim files of
    the tzdata package, built and checked with ``ZoneInfo.from_file``."""
    checked, changes, fallbacks = 0, 0, set()
    for key in ALL_ZONES:
        if source == "zoneinfo":
            text, tz = vtimezone(key, *WINDOW), ZoneInfo(key)
        else:
            data = _package_bytes(key)
            if data is None:
                assert key == "localtime"  # the system's link to /etc/localtime
                continue
            text = _vtimezone_text(build_vtimezone(key, *WINDOW, tzif=data))
            tz = ZoneInfo.from_file(io.BytesIO(data), key=key)
        assert f"\r\nTZID:{key}\r\n" in text
        assert_outlook_rules(text)
        changed = check_against_zoneinfo(text, tz, *WINDOW)
        changes += changed
        checked += 1
        late = datetime(WINDOW[1] - 2, 1, 1, tzinfo=UTC)
        still_changes = any(
            (late + timedelta(days=d)).astimezone(tz).utcoffset() != late.astimezone(tz).utcoffset()
            for d in range(0, 730, 7)
        )
        if still_changes and "RRULE:" not in text:
            fallbacks.add(key)
        if not still_changes and not changed:
            assert len(observances(text)) == 1  # no DST, no change in the window: one STANDARD
    assert checked >= 590
    assert changes > 2000
    assert set(FALLBACK) <= fallbacks <= set(FALLBACK) | MOROCCO
