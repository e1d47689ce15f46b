"""Dates and times for people: on their clock, in their language (Babel)."""

from __future__ import annotations

from datetime import datetime

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton

from scheduler.timeutil import zone


def locale_or_default(name: str | None, default: str = "en") -> Locale:
    try:
        return Locale.parse(name or default)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(default)


def local_datetime(instant: datetime, zone_name: str, locale: str | None) -> str:
    """``Tue, 2 Mar, 20:00`` (en_GB), ``Di., 2. März, 20:00`` (de_DE): weekday, date, 24h time."""
    local = instant.astimezone(zone(zone_name))
    language = locale_or_default(locale)
    day = format_skeleton("MMMEd", local, locale=language)
    clock = format_skeleton("Hm", local, locale=language)
    pattern = str(language.datetime_formats.get("medium", "{1} {0}"))
    return pattern.replace("{1}", day).replace("{0}", clock)


def local_time(instant: datetime, zone_name: str, locale: str | None) -> str:
    return format_skeleton(
        "Hm", instant.astimezone(zone(zone_name)), locale=locale_or_default(locale)
    )
