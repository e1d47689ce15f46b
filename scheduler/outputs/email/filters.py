"""The Jinja filters of the email templates: local dates, times and durations, zone labels,
activity names, links and language tags.

Filters (``learner.zone`` and ``learner.locale`` are read from the template context):

- ``local_datetime(zone=True)``: ``Tue 2 Mar, 20:00 (Europe/Berlin)``;
- ``local_time(zone=False)``: ``20:00``;
- ``local_span(end)``: ``Tue 2 Mar, 20:00–21:30 (Europe/Berlin)`` (the end's date is shown
  when it falls on another local day);
- ``local_date(skeleton="MMMMEd")``: a :class:`datetime.date` as ``Mon 1 March``;
- ``minutes``: ``90`` -> ``1 hour, 30 minutes``;
- ``activity``: ``office_hours`` -> ``office hours``, in the learner's language (the catalog of
  the render, see :mod:`scheduler.outputs.email.language`);
- ``link``: the URL when it is ``http(s)``, ``webcal`` or ``mailto``, else ``None``;
- ``lang_tag``: ``pt_BR`` -> ``pt-BR`` (the HTML ``lang`` attribute);
- ``zone_name``: the canonical IANA name (``Asia/Calcutta`` -> ``Asia/Kolkata``);
- ``bdi``: the value escaped inside ``<bdi>...</bdi>`` (HTML only): a name, title or time, which
  may be Latin inside an Arabic sentence, keeps its own direction and order.

A naive datetime in the context raises ``ValueError``. Formatted instants are memoised per
(UTC instant, zone, locale): a worker sending one reminder to a whole cohort formats each
session time once per zone and locale, not once per learner.

:class:`~scheduler.outputs.email.templates.EmailTemplates` registers them under those names.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Final

from babel.dates import format_skeleton
from babel.lists import format_list
from babel.units import format_unit
from jinja2 import Undefined, UndefinedError, pass_context
from jinja2.runtime import Context
from markupsafe import Markup, escape

from scheduler.outputs.email.headers import _NOT_ONE_LINE
from scheduler.outputs.email.language import N_, catalog_of
from scheduler.outputs.formatting import local_datetime, local_time, locale_or_default
from scheduler.timeutil import canonical_zone
from scheduler.timeutil import zone as zone_info

_ACTIVITY: Final = {
    # TRANSLATORS: a kind of live session, as in "This weekly class has 8 meetings."
    "class": N_("class"),
    # TRANSLATORS: a kind of live session, as in "This weekly office hours has 8 meetings."
    "office_hours": N_("office hours"),
    # TRANSLATORS: a kind of session, as in "Co-working (co-working) is on".
    "coworking": N_("co-working"),
}
_LINK_SCHEMES: Final = ("https://", "http://", "webcal://", "mailto:")


def _clock(ctx: Context) -> tuple[str, str]:
    """The learner's (zone, locale) from the template context."""
    learner = ctx.get("learner")
    try:
        return str(learner["zone"]), str(learner["locale"])
    except (KeyError, TypeError) as e:
        raise UndefinedError(
            "date and time filters need learner.zone and learner.locale in the context"
        ) from e


def _defined(value: Any) -> None:
    """Make a missing value passed to a filter fail like any other use of it would."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the missing key
        raise UndefinedError("a value passed to an email template filter is undefined")


def _utc(instant: datetime) -> datetime:
    _defined(instant)
    if not isinstance(instant, datetime) or instant.utcoffset() is None:
        raise ValueError(f"email templates need aware datetimes, got {instant!r}")
    return instant.astimezone(UTC)


@lru_cache(maxsize=256)
def _zone_label(zone_name: str) -> str:
    return canonical_zone(zone_name) or zone_name


@lru_cache(maxsize=8192)
def _format_datetime(instant: datetime, zone_name: str, locale: str) -> str:
    return local_datetime(instant, zone_name, locale)


@lru_cache(maxsize=8192)
def _format_time(instant: datetime, zone_name: str, locale: str) -> str:
    return local_time(instant, zone_name, locale)


@lru_cache(maxsize=8192)
def _format_span(start: datetime, end: datetime, zone_name: str, locale: str) -> str:
    first = _format_datetime(start, zone_name, locale)
    tz = zone_info(zone_name)
    if start.astimezone(tz).date() == end.astimezone(tz).date():
        return f"{first}–{_format_time(end, zone_name, locale)}"
    return f"{first} – {_format_datetime(end, zone_name, locale)}"


@pass_context
def _local_datetime_filter(ctx: Context, instant: datetime, zone: bool = True) -> str:
    zone_name, locale = _clock(ctx)
    text = _format_datetime(_utc(instant), zone_name, locale)
    return f"{text} ({_zone_label(zone_name)})" if zone else text


@pass_context
def _local_time_filter(ctx: Context, instant: datetime, zone: bool = False) -> str:
    zone_name, locale = _clock(ctx)
    text = _format_time(_utc(instant), zone_name, locale)
    return f"{text} ({_zone_label(zone_name)})" if zone else text


@pass_context
def _local_span_filter(ctx: Context, start: datetime, end: datetime, zone: bool = True) -> str:
    zone_name, locale = _clock(ctx)
    text = _format_span(_utc(start), _utc(end), zone_name, locale)
    return f"{text} ({_zone_label(zone_name)})" if zone else text


@pass_context
def _local_date_filter(ctx: Context, day: date, skeleton: str = "MMMMEd") -> str:
    _, locale = _clock(ctx)
    _defined(day)
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ValueError(f"local_date needs a date, not an instant: {day!r}")
    return _format_date(day, skeleton, locale)


@lru_cache(maxsize=1024)
def _format_date(day: date, skeleton: str, locale: str) -> str:
    # format_skeleton turns a date into midnight UTC and formats it without a zone shift.
    return format_skeleton(skeleton, day, locale=locale_or_default(locale))


@pass_context
def _minutes_filter(ctx: Context, minutes: int) -> str:
    _, locale = _clock(ctx)
    _defined(minutes)
    return _format_minutes(int(minutes), locale)


@lru_cache(maxsize=1024)
def _format_minutes(minutes: int, locale: str) -> str:
    language = locale_or_default(locale)
    hours, rest = divmod(max(minutes, 0), 60)
    parts = [format_unit(hours, "duration-hour", length="long", locale=language)] if hours else []
    if rest or not hours:
        parts.append(format_unit(rest, "duration-minute", length="long", locale=language))
    try:
        return format_list(parts, style="unit", locale=language)
    except KeyError:  # Babel's unit list patterns for some locales (es) lack "2" and "start"
        return format_list(parts, style="standard", locale=language)


@pass_context
def _activity(ctx: Context, kind: str) -> str:
    """The name of a session kind in the learner's language (an unknown kind as written)."""
    _defined(kind)
    word = _ACTIVITY.get(kind)
    return kind.replace("_", " ") if word is None else catalog_of(ctx).gettext(word)


def _bdi(value: Any) -> Markup:
    """``Markup("<bdi>%s</bdi>") % (value,)``, without ``Markup.__mod__``'s per-argument
    wrapper: the same escaping (:func:`markupsafe.escape`), the same markup."""
    _defined(value)
    return Markup("".join(("<bdi>", escape(value), "</bdi>")))  # noqa: S704 (escaped)


def _link(url: str | None) -> str | None:
    """The URL when it is one a mail client may open (http(s), webcal, mailto), else ``None``."""
    if not url:
        return None
    clean = url.strip()
    if clean.lower().startswith(_LINK_SCHEMES) and not _NOT_ONE_LINE.search(clean):
        return clean
    return None


@lru_cache(maxsize=256)
def _lang_tag(locale: str | None) -> str:
    return str(locale_or_default(locale)).replace("_", "-")
