"""Turn what people write in a roster's time zone column into a canonical IANA zone name.

Accepted: an IANA name in any case (``europe/berlin``), a legacy alias (``US/Eastern``,
``Asia/Calcutta``, canonicalised), or an ISO 3166 country code when that country has exactly
one zone (``JP`` -> ``Asia/Tokyo``). pytz is used here only for its country table.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytz

from scheduler.timeutil import canonical_zone, suggest_zones


@dataclass(frozen=True, slots=True)
class ZoneAnswer:
    zone: str | None
    error: str | None = None
    hint: str | None = None


def resolve_zone(text: str) -> ZoneAnswer:
    value = text.strip()
    if not value:
        return ZoneAnswer(
            None, "is empty", "write an IANA zone like 'Europe/Berlin' or a country code like 'JP'"
        )
    canonical = canonical_zone(value)
    if canonical is not None:
        return ZoneAnswer(canonical)
    if len(value) == 2 and value.isalpha():
        zones = pytz.country_timezones.get(value.upper())
        if zones is None:
            return ZoneAnswer(
                None,
                "is not a known country code or time zone",
                "write an IANA zone like 'Asia/Tokyo'",
            )
        if len(zones) == 1:
            return ZoneAnswer(canonical_zone(zones[0]) or zones[0])
        shown = ", ".join(zones[:6]) + (f" and {len(zones) - 6} more" if len(zones) > 6 else "")
        return ZoneAnswer(
            None, f"country {value.upper()} has {len(zones)} time zones", f"write one of: {shown}"
        )
    close = suggest_zones(value)
    hint = (
        f"did you mean {' or '.join(close)}?"
        if close
        else "write an IANA zone like 'America/New_York'"
    )
    return ZoneAnswer(None, "is not a known time zone", hint)
