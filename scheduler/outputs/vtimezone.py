"""VTIMEZONE definitions in the form Outlook reads: the zone's current rule as yearly RRULEs.

icalendar (7.x) writes a VTIMEZONE only as DTSTART + RDATE lists (``Timezone.from_tzinfo``
probes the offsets and lists every change it finds). Outlook desktop reads a VTIMEZONE into
its one-rule-per-zone structure (MS-OXCICAL 2.1.3.1.1.19): it needs a ``FREQ=YEARLY`` RRULE
with a single ``BYDAY`` occurrence (``BYDAY=-1SU``, never BYMONTHDAY, never both, and BYDAY
even where it looks redundant); given RDATEs only, it shows events of the other DST period an
hour off and names the zone wrongly. This module writes what Google Calendar writes::

    BEGIN:DAYLIGHT                       BEGIN:STANDARD
    DTSTART:19700329T020000              DTSTART:19701025T030000
    RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3  RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
    TZNAME:CEST                          TZNAME:CET
    TZOFFSETFROM:+0100                   TZOFFSETFROM:+0200
    TZOFFSETTO:+0200                     TZOFFSETTO:+0100
    END:DAYLIGHT                         END:STANDARD

Where it comes from
-------------------

The *current* rule is the POSIX TZ string at the end of the compiled zone file (RFC 8536
section 3.3, e.g. ``CET-1CEST,M3.5.0,M10.5.0/3``). The file is the one ``zoneinfo.ZoneInfo``
loads at runtime: the first match on ``zoneinfo.TZPATH``, else the ``tzdata`` package. The
actual changes are read from the same file (its transition list, then its rule), so what the
VTIMEZONE says can be compared with what the zone really did, change by change, over the
calendar's window of years (1 January of the first year to 1 January of the last, as UTC, with
a day's margin on each side so every local time of the window is covered).

What it writes
--------------

* **A zone with DST now, its rule expressible** (both change dates ``Mm.w.d`` at a wall time
  from 00:00 to 23:59:59): a STANDARD and a DAYLIGHT observance with
  ``RRULE:FREQ=YEARLY;BYDAY=<w or -1 for the 5th (last)><day>;BYMONTH=<m>``, DTSTART being the
  first change under the current rule, in the wall time of the offset it leaves, RFC 5545
  style. When the rule produced every change of the window, DTSTART is in 1970 (the year
  Google uses; earlier if the window starts before it): clients need nothing older.
* **A zone without DST now**: one STANDARD observance, ``TZOFFSETFROM`` = ``TZOFFSETTO``,
  DTSTART 1970-01-01, no RRULE (Outlook: no DAYLIGHT means no DST).
* **Changes inside the window that the current rule does not produce** (a zone that changed
  its rule or abolished DST, e.g. America/Mexico_City in 2022) are added as RDATE observances
  (DTSTART + RDATE list per kind of change), with the change in force at the window's start, so
  every instant of the window is described; a zone without DST now then keeps the observance of
  its last change (RDATEs included) as its standard time.
* **Fallback**: when the current rule cannot be written with a plain ``BYDAY`` (a change date
  that falls on another day than its weekday rule: ``/24`` in Chile, Egypt; ``/-1`` in
  Greenland; ``/26`` and ``/50`` in Israel and Palestine; or the rare ``Jn`` / ``n`` forms),
  or the zone file lists future changes the rule does not describe (Palestine, Morocco), the
  window is written in RDATE form only, as icalendar would, but from the zone file's own
  changes. ``BYMONTHDAY=23,...,29;BYDAY=FR`` would be exact, but Outlook rejects BYDAY with
  BYMONTHDAY.

STANDARD or DAYLIGHT
--------------------

The observance with the larger offset is DAYLIGHT. tzdata writes Irish time with negative DST
(``IST-1GMT0,M10.5.0,M3.5.0/1``: IST, +01:00, is "standard" time in summer and GMT the "DST"
in winter); calendar clients expect the summer offset to be the daylight one, so Europe/Dublin
comes out as DAYLIGHT IST +0100 from the last Sunday of March at 01:00 and STANDARD GMT +0000
from the last Sunday of October at 02:00, as Google writes it. For the changes written as
RDATEs the same holds where the DST flag flips; where it does not (a change of standard
offset), the zone file's flag decides.
"""

from __future__ import annotations

import os
import re
import struct
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache
from importlib import resources
from typing import Final, Literal

__all__ = [
    "LocalTimeType",
    "Observance",
    "PosixDate",
    "PosixTz",
    "Transition",
    "VTimezone",
    "YearlyRule",
    "build_vtimezone",
    "parse_posix_tz",
    "parse_tzif",
    "tzif_bytes",
]

Kind = Literal["STANDARD", "DAYLIGHT"]

_DAY: Final = 86_400
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_ANCHOR_YEAR: Final = 1970  # DTSTART of a rule in force throughout the window (as Google)
_WEEKDAYS: Final = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")  # POSIX: 0 is Sunday
_KEY: Final = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")


# --- the compiled zone file (RFC 8536) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalTimeType:
    """One kind of local time of a zone: UTC offset (seconds east), DST flag, abbreviation."""

    offset: int
    is_dst: bool
    name: str


@dataclass(frozen=True, slots=True)
class PosixDate:
    """When a POSIX TZ rule changes the clock: ``Mm.w.d``, ``Jn`` or ``n``, at ``time``
    seconds after local midnight (RFC 8536 allows -167 to +167 hours) in the offset it leaves."""

    form: Literal["M", "J", "n"]
    month: int = 0  # M: 1-12
    week: int = 0  # M: 1-4, or 5 for the last
    weekday: int = 0  # M: 0 (Sunday) to 6
    day: int = 0  # J: 1-365, February 29 never counted; n: 0-365, counted
    time: int = 7200

    def local_seconds(self, year: int) -> int:
        """The change's wall time in ``year`` (seconds since 1970-01-01 on that wall clock)."""
        if self.form == "M":
            first = date(year, self.month, 1)
            day = 1 + (self.weekday - first.isoweekday()) % 7 + 7 * (self.week - 1)
            days_in_month = (date(year + self.month // 12, self.month % 12 + 1, 1) - first).days
            while day > days_in_month:  # week 5: the last such weekday
                day -= 7
            when = date(year, self.month, day)
        elif self.form == "J":
            leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
            when = date(year, 1, 1) + timedelta(days=self.day - 1 + (leap and self.day >= 60))
        else:
            when = date(year, 1, 1) + timedelta(days=self.day)
        return (when.toordinal() - _EPOCH_ORDINAL) * _DAY + self.time

    def yearly_rule(self) -> YearlyRule | None:
        """The RRULE Outlook reads, or None when the change is not "the n-th (or last) weekday
        of a month at a wall time of that day" (then it needs BYMONTHDAY, or is a day count)."""
        if self.form != "M" or not 0 <= self.time < _DAY:
            return None
        return YearlyRule(self.month, -1 if self.week == 5 else self.week, self.weekday)


@dataclass(frozen=True, slots=True)
class YearlyRule:
    """``RRULE:FREQ=YEARLY;BYDAY=<week><weekday>;BYMONTH=<month>`` (week -1: the last)."""

    month: int
    week: int
    weekday: int  # 0 (Sunday) to 6

    @property
    def byday(self) -> str:
        return f"{self.week}{_WEEKDAYS[self.weekday]}"

    def rrule(self) -> str:
        return f"FREQ=YEARLY;BYDAY={self.byday};BYMONTH={self.month}"


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of local time type at ``at`` (Unix seconds)."""

    at: int
    before: LocalTimeType
    after: LocalTimeType

    def wall(self) -> datetime:
        """The change as RFC 5545 writes it: the wall time of the offset it leaves."""
        return datetime.fromtimestamp(self.at, timezone(timedelta(seconds=self.before.offset)))


@dataclass(frozen=True, slots=True)
class PosixTz:
    """The rule a zone file ends with: standard time, and DST with its two change dates."""

    std: LocalTimeType
    dst: LocalTimeType | None = None
    start: PosixDate | None = None  # DST begins (wall time in standard time)
    end: PosixDate | None = None  # DST ends (wall time in DST)

    def transitions(self, year: int) -> list[Transition]:
        """The rule's two changes in ``year`` (by local year), in time order; none without DST."""
        if self.dst is None or self.start is None or self.end is None:
            return []
        begin = Transition(self.start.local_seconds(year) - self.std.offset, self.std, self.dst)
        end = Transition(self.end.local_seconds(year) - self.dst.offset, self.dst, self.std)
        return sorted([begin, end], key=_at)


def _at(t: Transition) -> int:
    return t.at


_NAME: Final = r"<[A-Za-z0-9+-]{3,}>|[A-Za-z]{3,}"
_OFFSET: Final = r"[+-]?\d{1,2}(?::\d{1,2}){0,2}"
_DATE: Final = r"M\d{1,2}\.\d\.\d|J\d{1,3}|\d{1,3}"
_TIME: Final = r"[+-]?\d{1,3}(?::\d{1,2}){0,2}"
_POSIX: Final = re.compile(
    rf"(?P<std>{_NAME})(?P<stdoff>{_OFFSET})"
    rf"(?:(?P<dst>{_NAME})(?P<dstoff>{_OFFSET})?"
    rf",(?P<start>{_DATE})(?:/(?P<starttime>{_TIME}))?"
    rf",(?P<end>{_DATE})(?:/(?P<endtime>{_TIME}))?)?"
)


def _seconds(text: str, *, max_hours: int) -> int:
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")]
    hours, minutes, seconds = (*parts, 0, 0)[:3]
    if hours > max_hours or minutes > 59 or seconds > 59:
        raise ValueError(f"out of range: {text!r}")
    return sign * (hours * 3600 + minutes * 60 + seconds)


def _posix_date(text: str, time_text: str | None) -> PosixDate:
    time = 7200 if time_text is None else _seconds(time_text, max_hours=167)
    if text.startswith("M"):
        month, week, weekday = (int(p) for p in text[1:].split("."))
        if not (1 <= month <= 12 and 1 <= week <= 5 and 0 <= weekday <= 6):
            raise ValueError(f"bad month rule {text!r}")
        return PosixDate("M", month=month, week=week, weekday=weekday, time=time)
    if text.startswith("J"):
        if not 1 <= int(text[1:]) <= 365:
            raise ValueError(f"bad Julian day {text!r}")
        return PosixDate("J", day=int(text[1:]), time=time)
    if not 0 <= int(text) <= 365:
        raise ValueError(f"bad day {text!r}")
    return PosixDate("n", day=int(text), time=time)


def parse_posix_tz(text: str) -> PosixTz:
    """Read a POSIX TZ string as a zone file ends with it (RFC 8536 section 3.3), e.g.
    ``CET-1CEST,M3.5.0,M10.5.0/3``, ``<+0330>-3:30`` or ``IST-1GMT0,M10.5.0,M3.5.0/1``.

    Offsets are returned east of UTC (POSIX counts them west). ``ValueError`` when malformed,
    or when DST is named without the dates it starts and ends (RFC 8536 footers carry them).
    """
    match = _POSIX.fullmatch(text)
    if match is None:
        raise ValueError(f"not a POSIX TZ string: {text!r}")
    try:
        return _posix_tz(match)
    except ValueError as e:
        raise ValueError(f"not a POSIX TZ string: {text!r} ({e})") from e


def _posix_tz(match: re.Match[str]) -> PosixTz:
    std_offset = -_seconds(match["stdoff"], max_hours=24)
    std = LocalTimeType(std_offset, False, match["std"].strip("<>"))
    if match["dst"] is None:
        return PosixTz(std)
    dst_offset = std_offset + 3600
    if match["dstoff"] is not None:
        dst_offset = -_seconds(match["dstoff"], max_hours=24)
    return PosixTz(
        std,
        LocalTimeType(dst_offset, True, match["dst"].strip("<>")),
        _posix_date(match["start"], match["starttime"]),
        _posix_date(match["end"], match["endtime"]),
    )


@dataclass(frozen=True, slots=True)
class Tzif:
    """What ``zoneinfo`` reads from a compiled zone file."""

    times: tuple[int, ...]  # transition instants (Unix seconds), ascending
    types: tuple[LocalTimeType, ...]  # the local time type from each transition on
    before: LocalTimeType  # before the first transition (zoneinfo: the first non-DST type)
    footer: PosixTz | None  # from the last transition on; None: its type holds for ever


_HEADER: Final = struct.Struct(">4sc15x6l")


def parse_tzif(data: bytes) -> Tzif:
    """Read a TZif file (RFC 8536): its version 2+ data and footer when present, else v1.
    ``ValueError`` when it is not one (or is cut short)."""
    try:
        return _parse_tzif(data)
    except (struct.error, IndexError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise ValueError(f"not a TZif file ({e})") from e


def _parse_tzif(data: bytes) -> Tzif:
    magic, version, isut, isstd, leap, count, typecnt, charcnt = _HEADER.unpack_from(data)
    if magic != b"TZif" or typecnt < 1:
        raise ValueError("no TZif header")
    pos, size = _HEADER.size, 4
    if version >= b"2":  # skip the 32-bit block; use the 64-bit one and the footer
        pos += count * 5 + typecnt * 6 + charcnt + leap * 8 + isstd + isut
        magic, _, isut, isstd, leap, count, typecnt, charcnt = _HEADER.unpack_from(data, pos)
        pos, size = pos + _HEADER.size, 8
    times = struct.unpack_from(f">{count}{'q' if size == 8 else 'l'}", data, pos)
    pos += count * size
    indexes = data[pos : pos + count]
    pos += count
    raw = [struct.unpack_from(">lBB", data, pos + 6 * i) for i in range(typecnt)]
    pos += 6 * typecnt
    chars = data[pos : pos + charcnt]
    pos += charcnt + leap * (size + 4) + isstd + isut
    ttypes = [
        LocalTimeType(offset, bool(dst), chars[i : chars.index(b"\0", i)].decode("ascii"))
        for offset, dst, i in raw
    ]
    footer = None
    if size == 8:
        text = data[pos:].split(b"\n")[1].decode("ascii") if data[pos:].startswith(b"\n") else ""
        footer = parse_posix_tz(text) if text else None
    before = next((t for t in ttypes if not t.is_dst), ttypes[0])
    return Tzif(tuple(times), tuple(ttypes[i] for i in indexes), before, footer)


def tzif_bytes(key: str) -> bytes:
    """The compiled file of zone ``key``, found as ``zoneinfo.ZoneInfo`` finds it: the first
    match on ``zoneinfo.TZPATH``, else the ``tzdata`` package."""
    if not _KEY.fullmatch(key) or ".." in key.split("/"):
        raise ValueError(f"not a zone key: {key!r}")
    for root in zoneinfo.TZPATH:
        path = os.path.join(root, *key.split("/"))
        if os.path.isfile(path):
            with open(path, "rb") as f:
                return f.read()
    try:
        return resources.files("tzdata.zoneinfo").joinpath(*key.split("/")).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, IsADirectoryError) as e:
        raise ValueError(f"no zone file for {key!r}") from e


@lru_cache(maxsize=1024)
def _tzif(key: str) -> Tzif:
    return parse_tzif(tzif_bytes(key))


def _year(at: int) -> int:
    return datetime.fromtimestamp(at, UTC).year


def _changes(tzif: Tzif, lo: int, hi: int) -> Iterator[Transition]:
    """Every change of local time type before ``hi``, as ``zoneinfo`` applies the file: the
    listed transitions, the footer rule from the last one on. Changes that change nothing
    (same offset, flag and name) are left out. Rule changes are generated from the year before
    ``lo`` at the earliest: what came before the window matters only as its last change."""
    state = tzif.before
    rule = tzif.footer
    listed = len(tzif.times) if rule is None else len(tzif.times) - 1
    for at, after in zip(tzif.times[:listed], tzif.types[:listed], strict=True):
        if at >= hi:
            return
        if after != state:
            yield Transition(at, state, after)
            state = after
    if rule is None:
        return
    handover = tzif.times[-1] if tzif.times else None
    first_year = _year(lo) - 1
    if handover is not None:  # from the handover on, to know the rule's time at that instant
        first_year = min(first_year, _year(handover) - 1)
    generated = [
        t for year in range(first_year, _year(hi) + 2) for t in rule.transitions(year) if t.at < hi
    ]
    if handover is None:  # the rule holds for all time
        state = generated[0].before if generated else rule.std
    else:
        if handover >= hi:
            return
        in_force = [t.after for t in generated if t.at <= handover]
        now = in_force[-1] if in_force else (generated[0].before if generated else rule.std)
        if now != state:
            yield Transition(handover, state, now)
            state = now
        generated = [t for t in generated if t.at > handover]
    for t in generated:
        if t.after != state:
            yield Transition(t.at, state, t.after)
            state = t.after


# --- the VTIMEZONE --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observance:
    """A STANDARD or DAYLIGHT sub-component. ``start`` and ``rdates`` are wall times in
    ``offset_from`` (aware, in that fixed offset), as DTSTART and RDATE are written."""

    kind: Kind
    start: datetime
    offset_from: int
    offset_to: int
    name: str
    rule: YearlyRule | None = None
    rdates: tuple[datetime, ...] = ()


@dataclass(frozen=True, slots=True)
class VTimezone:
    """The VTIMEZONE of ``tzid`` for 1 January ``first_year`` to 1 January ``last_year``.
    ``form`` says how it was written: ``rule`` (the current rule as RRULEs, RDATE observances
    only for earlier changes in the window), ``fixed`` (no DST now) or ``rdate`` (fallback)."""

    tzid: str
    first_year: int
    last_year: int
    form: Literal["rule", "fixed", "rdate"]
    observances: tuple[Observance, ...]


def _kind(t: Transition) -> Kind:
    if t.before.is_dst != t.after.is_dst:
        return "DAYLIGHT" if t.after.offset > t.before.offset else "STANDARD"
    return "DAYLIGHT" if t.after.is_dst else "STANDARD"


def _fixed(kind: Kind, year: int, state: LocalTimeType) -> Observance:
    start = datetime(year, 1, 1, tzinfo=timezone(timedelta(seconds=state.offset)))
    return Observance(kind, start, state.offset, state.offset, state.name)


def _rdate_observances(
    changes: list[Transition], standard: Transition | None = None
) -> list[Observance]:
    """One observance per kind of change (kind, offsets, name): DTSTART the first, RDATE the
    rest. The group of ``standard`` is STANDARD whatever its flags (a zone's time from now on)."""
    groups: dict[tuple[Kind, int, int, str], list[Transition]] = {}
    for t in changes:
        kind = "STANDARD" if standard is not None and _same_kind(t, standard) else _kind(t)
        groups.setdefault((kind, t.before.offset, t.after.offset, t.after.name), []).append(t)
    return [
        Observance(
            kind,
            group[0].wall(),
            offset_from,
            offset_to,
            name,
            rdates=tuple(t.wall() for t in group[1:]),
        )
        for (kind, offset_from, offset_to, name), group in groups.items()
    ]


def _same_kind(a: Transition, b: Transition) -> bool:
    return (a.before.offset, a.after, _kind(a)) == (b.before.offset, b.after, _kind(b))


def _sorted(observances: list[Observance]) -> tuple[Observance, ...]:
    return tuple(sorted(observances, key=lambda o: (o.start, o.kind)))


def build_vtimezone(
    key: str, first_year: int, last_year: int, *, tzif: bytes | None = None
) -> VTimezone:
    """The VTIMEZONE for zone ``key`` valid from 1 January ``first_year`` to 1 January
    ``last_year`` (see the module's docstring). ``tzif``: the compiled zone file to use
    instead of the one ``zoneinfo`` loads (tests). ``ValueError`` for an unknown key or an
    empty window."""
    if last_year <= first_year:
        raise ValueError(f"empty window: {first_year} to {last_year}")
    data = _tzif(key) if tzif is None else parse_tzif(tzif)
    lo = int(datetime(first_year, 1, 1, tzinfo=UTC).timestamp()) - _DAY
    hi = int(datetime(last_year, 1, 1, tzinfo=UTC).timestamp()) + _DAY
    every = list(_changes(data, lo, hi))
    inside = [t for t in every if t.at >= lo]
    earlier = [t for t in every if t.at < lo][-1:]  # the change in force at the window's start
    anchor = min(_ANCHOR_YEAR, first_year - 1)

    def history(changes: list[Transition], standard: Transition | None = None) -> list[Observance]:
        """RDATE observances for ``changes``, after the one in force when the window starts
        (the zone's last earlier change; a fixed observance when it never changed before)."""
        if earlier:
            return _rdate_observances(earlier + changes, standard)
        state = changes[0].before if changes else data.before
        kind: Kind = "DAYLIGHT" if state.is_dst else "STANDARD"
        return [_fixed(kind, anchor, state), *_rdate_observances(changes, standard)]

    def rdate_form() -> VTimezone:
        return VTimezone(key, first_year, last_year, "rdate", _sorted(history(inside)))

    rule = data.footer
    if rule is None or rule.dst is None:  # no DST now
        final = inside[-1].after if inside else (earlier[-1].after if earlier else data.before)
        if rule is not None and final != rule.std:
            return rdate_form()  # listed changes go on past the window
        if not inside:
            fixed = _fixed("STANDARD", anchor, final)
            return VTimezone(key, first_year, last_year, "fixed", (fixed,))
        since = history(inside, standard=inside[-1])
        return VTimezone(key, first_year, last_year, "fixed", _sorted(since))

    assert rule.start is not None  # parse_posix_tz: DST comes with both dates
    assert rule.end is not None
    begin_rule, end_rule = rule.start.yearly_rule(), rule.end.yearly_rule()
    if begin_rule is None or end_rule is None:
        return rdate_form()
    produced = [
        t
        for year in range(first_year - 2, last_year + 2)
        for t in rule.transitions(year)
        if lo <= t.at < hi
    ]
    i, j = len(inside), len(produced)
    while i and j and inside[i - 1] == produced[j - 1]:
        i, j = i - 1, j - 1
    matched = inside[i:]
    if not matched:
        return rdate_form()  # the window ends on changes the rule does not make
    throughout = i == 0 and j == 0
    observances: list[Observance] = []
    for posix, yearly, before, after in (
        (rule.start, begin_rule, rule.std, rule.dst),
        (rule.end, end_rule, rule.dst, rule.std),
    ):
        if throughout:
            at = posix.local_seconds(anchor) - before.offset
        else:  # the first such change under the rule, in the window or just after it
            last = _year(matched[-1].at)
            candidates = [t for t in matched if (t.before, t.after) == (before, after)] or [
                t
                for year in range(last, last + 2)
                for t in rule.transitions(year)
                if t.at > matched[-1].at and (t.before, t.after) == (before, after)
            ]
            at = candidates[0].at
        kind: Kind = "DAYLIGHT" if after.offset > before.offset else "STANDARD"
        if after.offset == before.offset:
            kind = "DAYLIGHT" if after.is_dst else "STANDARD"
        wall = Transition(at, before, after).wall()
        observances.append(Observance(kind, wall, before.offset, after.offset, after.name, yearly))
    if not throughout:
        observances += history(inside[:i])
    return VTimezone(key, first_year, last_year, "rule", _sorted(observances))
