"""Time zones, weekdays, durations and the DST policy, on zoneinfo + tzdata.

Pure: no clock is read here. ``now`` is always an argument.

DST policy (applied by :func:`wall_to_utc`, the one place that turns intent into instants):

* a **nonexistent** wall time (inside a spring-forward gap) moves **forward** by the length of
  the gap: 02:30 on the night Berlin jumps from 02:00 to 03:00 becomes 03:30 local;
* an **ambiguous** wall time (inside a fall-back fold) takes the **first** occurrence, i.e. the
  one still on summer time (``fold=0``).
"""

from __future__ import annotations

import difflib
import re
from datetime import UTC, date, datetime, time, timedelta
from enum import IntEnum
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "MINUTES_PER_DAY",
    "MINUTES_PER_WEEK",
    "UTC",
    "Weekday",
    "ZoneLookup",
    "canonical_zone",
    "format_duration",
    "is_aware",
    "parse_clock",
    "parse_duration",
    "suggest_zones",
    "wall_to_utc",
    "week_minute",
    "zone",
    "zone_or_prefix",
]

MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY


class Weekday(IntEnum):
    """ISO weekday numbered from 0 (Monday), as :meth:`datetime.date.weekday` returns."""

    MON = 0
    TUE = 1
    WED = 2
    THU = 3
    FRI = 4
    SAT = 5
    SUN = 6

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @classmethod
    def parse(cls, text: str) -> Weekday:
        """Read ``Mon``, ``monday`` or ``MO``; raise ``ValueError`` otherwise."""
        key = text.strip().lower()
        for day in cls:
            full = _FULL_NAMES[day]
            if key in (full, full[:3], full[:2]):
                return day
        raise ValueError(f"unknown weekday {text!r}")


_FULL_NAMES = {
    Weekday.MON: "monday",
    Weekday.TUE: "tuesday",
    Weekday.WED: "wednesday",
    Weekday.THU: "thursday",
    Weekday.FRI: "friday",
    Weekday.SAT: "saturday",
    Weekday.SUN: "sunday",
}


def is_aware(value: datetime) -> bool:
    return value.tzinfo is not None and value.utcoffset() is not None


# --- zones -----------------------------------------------------------------------------


class ZoneLookup:
    """The IANA zone names known to the installed tzdata, with legacy aliases resolved.

    Canonical names are those in ``zone.tab`` plus ``UTC``. A link such as ``US/Eastern`` or
    ``Asia/Calcutta`` that is not itself in ``zone.tab`` resolves to its target
    (``America/New_York``, ``Asia/Kolkata``). Matching ignores case.
    """

    def __init__(
        self, canonical: frozenset[str], links: dict[str, str], zones: frozenset[str]
    ) -> None:
        self.canonical = canonical
        self._links = links
        self._by_lower: dict[str, str] = {}
        for name in (*links, *zones, *canonical):
            self._by_lower[name.lower()] = name

    @classmethod
    def from_tzdata(cls) -> ZoneLookup:
        root = resources.files("tzdata") / "zoneinfo"
        canonical = {"UTC"}
        for line in (root / "zone.tab").read_text(encoding="utf-8").splitlines():
            if line and not line.startswith("#"):
                canonical.add(line.split("\t")[2])
        links: dict[str, str] = {}
        zones: set[str] = set()
        for line in (root / "tzdata.zi").read_text(encoding="utf-8").splitlines():
            if line.startswith("L "):
                _, target, alias = line.split()
                links[alias] = target
            elif line.startswith("Z "):
                zones.add(line.split()[1])
        return cls(frozenset(canonical), links, frozenset(zones))

    def resolve(self, name: str) -> str | None:
        """The canonical name for ``name``, or ``None`` when tzdata does not know it."""
        exact = self._by_lower.get(name.strip().lower())
        if exact is None:
            return None
        seen = 0
        while exact not in self.canonical and exact in self._links and seen < 8:
            exact = self._links[exact]
            seen += 1
        if exact == "Etc/UTC":
            return "UTC"
        return exact

    def suggest(self, name: str, limit: int = 3) -> list[str]:
        lowered = {n.lower(): n for n in self.canonical}
        key = name.strip().lower().replace(" ", "_")
        hits = difflib.get_close_matches(key, list(lowered), n=limit, cutoff=0.6)
        if not hits and "/" not in key:
            hits = [n for n in lowered if n.rsplit("/", 1)[-1] == key][:limit]
        return [lowered[h] for h in hits]


@lru_cache(maxsize=1)
def _lookup() -> ZoneLookup:
    return ZoneLookup.from_tzdata()


def canonical_zone(name: str) -> str | None:
    """``Asia/Calcutta`` -> ``Asia/Kolkata``; ``europe/berlin`` -> ``Europe/Berlin``; else None."""
    return _lookup().resolve(name)


def zone_or_prefix(name: str) -> str | None:
    """A canonical zone (``Asia/Kolkata``), else the prefix of some zones as tzdata spells it
    (``america`` -> ``America``, ``America/Argentina``); None when it is neither."""
    exact = canonical_zone(name)
    if exact is not None:
        return exact
    key = name.strip().strip("/").lower()
    if not key:
        return None
    for canonical in sorted(_lookup().canonical):
        if canonical.lower().startswith(key + "/"):
            return canonical[: len(key)]
    return None


def suggest_zones(name: str) -> list[str]:
    return _lookup().suggest(name)


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for a canonical name (cached); ``ValueError`` when unknown."""
    canonical = canonical_zone(name)
    if canonical is None:
        raise ValueError(f"unknown time zone {name!r}")
    try:
        return ZoneInfo(canonical)
    except ZoneInfoNotFoundError as e:  # pragma: no cover - tzdata and zone.tab disagree
        raise ValueError(f"unknown time zone {name!r}") from e


def week_minute(moment: datetime) -> int:
    """Minutes since Monday 00:00 on ``moment``'s own wall clock (0 to 10079)."""
    return moment.weekday() * MINUTES_PER_DAY + moment.hour * 60 + moment.minute


# --- the DST policy ------------------------------------------------------------------------


def wall_to_utc(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of ``wall`` o'clock on ``day`` in ``tz``, under the module's DST policy.

    Nonexistent times move forward by the gap; ambiguous times take the first (fold=0).
    """
    local = datetime.combine(day, wall.replace(tzinfo=None, fold=0), tzinfo=tz)
    # zoneinfo gives a gap time the offset from before the transition, so converting it to
    # UTC lands exactly "gap length" later on the wall clock: the forward move we want.
    return local.astimezone(UTC)


# --- durations and clock times -------------------------------------------------------------------

_DURATION_RE = re.compile(
    r"^\s*(?:(\d+)\s*w)?\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*$", re.I
)
_CLOCK_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*$")


def parse_duration(text: str | int) -> timedelta:
    """Read ``90m``, ``1h30m``, ``2h``, ``3d``, ``1w`` or a bare number of minutes.

    Raises ``ValueError`` for anything else, including zero or negative durations.
    """
    if isinstance(text, bool):
        raise ValueError("a duration is not true/false")
    if isinstance(text, int):
        minutes = text
    else:
        match = _DURATION_RE.match(text)
        if text.strip().isdigit():
            minutes = int(text.strip())
        elif match is None or not any(match.groups()):
            raise ValueError(f"{text!r} is not a duration")
        else:
            w, d, h, m = (int(g) if g else 0 for g in match.groups())
            minutes = (w * 7 + d) * MINUTES_PER_DAY + h * 60 + m
    if minutes <= 0:
        raise ValueError("a duration must be longer than zero")
    return timedelta(minutes=minutes)


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration`: ``timedelta(minutes=90)`` -> ``1h30m``."""
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, MINUTES_PER_DAY)
    hours, mins = divmod(rest, 60)
    out = (
        (f"{days}d" if days else "") + (f"{hours}h" if hours else "") + (f"{mins}m" if mins else "")
    )
    return out or "0m"


def parse_clock(text: str, *, allow_24: bool = False) -> int:
    """Minutes after midnight for ``HH:MM``; ``24:00`` only when ``allow_24``."""
    match = _CLOCK_RE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time of day like 18:30")
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes >= 60 or hours > 24 or (hours == 24 and (minutes or not allow_24)):
        raise ValueError(f"{text!r} is not a time of day between 00:00 and 24:00")
    return hours * 60 + minutes
