"""Read ``cohort.toml`` text into a :class:`CohortSpec`, reporting every problem at once.

Every problem names its key path (``series[2].duration``; arrays count from 1) and, where it
helps, a hint. Unknown keys are problems too (with a "did you mean"), so a typo never silently
falls back to a default. Pure: the caller reads the file.

Numbers are bounded before they are used: a duration is at most ``MAX_DURATION`` (and a short
text), an agenda line may not take longer than its series, and a number too long for Python to
read is a problem rather than a crash. The agenda line grammar lives here too
(:func:`agenda_line_phases`), so the check and :mod:`scheduler.planning.agenda` read lines alike.

One responsibility in one module, longer than most (~950 lines): a reader per table of the
file, all built on the same problem-collecting reader and converters; split apart they would
each import the whole rest.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar

from babel import Locale, UnknownLocaleError

from scheduler.domain.availability import (
    STRETCH_HINT,
    AvailabilityError,
    parse_availability,
    read_stretch,
    stretch_text,
)
from scheduler.domain.cohort import (
    DEFAULT_EARLY,
    DEFAULT_MAX_COVERAGE_LOSS,
    MAX_CATCH_UP_SHIFT,
    MAX_CATCH_UP_SHIFTS,
    MAX_EARLY,
    MAX_ROTATE_TIMES,
    Anchor,
    AssignmentRule,
    Blackout,
    CatchUpOptions,
    CohortSpec,
    Facilitator,
    Fairness,
    HardKind,
    OrchestrationOptions,
    PlanningOptions,
    Release,
    ReleaseKind,
    ReminderAbout,
    ReminderRule,
    SeriesKind,
    SeriesRequest,
)
from scheduler.domain.status import NotificationKind
from scheduler.errors import ConfigError, Problem
from scheduler.timeutil import (
    Weekday,
    canonical_zone,
    format_duration,
    parse_clock,
    parse_duration,
    suggest_zones,
    zone_or_prefix,
)

T = TypeVar("T")
_MISSING = object()
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
DURATION_HINT = "write a duration like '90m', '1h30m' or '48h'"
MAX_DURATION = timedelta(weeks=520)
"""The longest duration any key accepts (ten years); more is a typo and would overflow dates."""
_MAX_DURATION_TEXT = 40  # characters: "52w6d23h59m" needs 11
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class _Reader:
    """Collects problems while reading one TOML table; every getter returns a default on error."""

    def __init__(self, table: Any, path: str, problems: list[Problem], source: str) -> None:
        self.path = path
        self.problems = problems
        self.source = source
        self.table: dict[str, Any] = table if isinstance(table, dict) else {}
        self.known: set[str] = set()
        if not isinstance(table, dict):
            self.problem("", "must be a table", hint=None)

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, name: str, message: str, value: Any = None, hint: str | None = None) -> None:
        field = self.key(name) if name else self.path
        shown = None if value is None else str(value)
        self.problems.append(Problem(message, self.source, None, field, shown, hint))

    def get(
        self,
        name: str,
        convert: Callable[[Any], T],
        default: T | object = _MISSING,
        hint: str | None = None,
    ) -> T | None:
        self.known.add(name)
        if name not in self.table:
            if default is _MISSING:
                self.problem(name, "is required", hint=hint)
                return None
            return default  # type: ignore[return-value]
        raw = self.table[name]
        try:
            return convert(raw)
        except (ValueError, TypeError) as e:
            self.problem(name, str(e), raw, getattr(e, "hint", None) or hint)
            return None

    def finish(self) -> None:
        """Report keys nobody asked for: they are typos or options this version does not have."""
        for name in self.table:
            if name not in self.known:
                close = difflib.get_close_matches(name, sorted(self.known), n=1)
                hint = (
                    f"did you mean {close[0]!r}?"
                    if close
                    else f"known keys: {', '.join(sorted(self.known))}"
                )
                self.problem(name, "is not a known key", hint=hint)


# --- converters: raise ValueError with a message that reads well after the key path -----------


def _text(max_len: int = 200) -> Callable[[Any], str]:
    def convert(raw: Any) -> str:
        if not isinstance(raw, str):
            raise TypeError("must be text in quotes")
        value = raw.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > max_len:
            raise ValueError(f"is longer than {max_len} characters")
        if any(ord(ch) < 32 for ch in value):
            raise ValueError("must not contain control characters or line breaks")
        return value

    return convert


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def convert(raw: Any) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise TypeError(f"must be a whole number between {low} and {high}")
        if not low <= raw <= high:
            raise ValueError(f"must be between {low} and {high}")
        return raw

    return convert


def _boolean(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise TypeError("must be true or false")
    return raw


def _date(raw: Any) -> date:
    if isinstance(raw, date) and not hasattr(raw, "hour"):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise ValueError("must be a date like 2027-03-01")


def _duration(raw: Any) -> timedelta:
    if not isinstance(raw, (str, int)) or isinstance(raw, bool):
        raise TypeError("must be a duration like '90m'")
    return _bounded_duration(raw)


def _bounded_duration(raw: str | int) -> timedelta:
    """:func:`parse_duration`, refusing long text and values beyond ``MAX_DURATION`` first.

    The checks come before any conversion, so thousands of digits never reach ``int()`` (slow,
    and a ValueError past 4300 digits) and no value overflows ``timedelta``.
    """
    too_long = ValueError(
        f"is longer than the longest duration allowed ({MAX_DURATION.days // 7} weeks)"
    )
    if isinstance(raw, str):
        if len(raw.strip()) > _MAX_DURATION_TEXT:
            raise ValueError(f"is not a duration (longer than {_MAX_DURATION_TEXT} characters)")
    elif raw > MAX_DURATION // timedelta(minutes=1):
        raise too_long
    try:
        value = parse_duration(raw)
    except OverflowError as e:
        raise too_long from e
    if value > MAX_DURATION:
        raise too_long
    return value


EARLY_HINT = "write a duration up to 1h like '5m', or 0 to send at the due time only"


def _early(raw: Any) -> timedelta:
    """A reminder's ``early``: 0 (never before its due time) up to :data:`MAX_EARLY`."""
    if raw in (0, "0", "0m"):
        return timedelta(0)
    value = _duration(raw)
    if value > MAX_EARLY:
        raise ValueError(f"is more than {format_duration(MAX_EARLY)}")
    return value


def _or_default(early: timedelta | None) -> timedelta:
    return DEFAULT_EARLY if early is None else early


def _zone(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError("must be an IANA time zone name like 'Europe/Berlin'")
    canonical = canonical_zone(raw)
    if canonical is None:
        close = suggest_zones(raw)
        error = ValueError("is not a known time zone")
        error.hint = (  # type: ignore[attr-defined]
            f"did you mean {' or '.join(close)}?"
            if close
            else "use an IANA name like 'America/New_York'"
        )
        raise error
    return canonical


def _locale(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError("must be a locale like 'en_GB'")
    try:
        return str(Locale.parse(raw.strip().replace("-", "_")))
    except (UnknownLocaleError, ValueError) as e:
        raise ValueError(
            "is not a known locale; use one like 'en', 'en_GB', 'de_DE' or 'pt_BR'"
        ) from e


def _availability(raw: Any) -> Any:
    if not isinstance(raw, str):
        raise TypeError("must be text like 'Mon-Fri 18:00-22:00'")
    return parse_availability(raw)


def _stretch(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise TypeError("must be text like 'Mon-Fri 06:00-08:00' or 'none'")
    try:
        return stretch_text(raw)
    except AvailabilityError as e:
        problem = ValueError(str(e))
        problem.hint = STRETCH_HINT  # type: ignore[attr-defined]
        raise problem from e


def _coverage_loss(raw: Any) -> float:
    """``max_coverage_loss``: a share (``0.05``) or a percentage (``"5%"``), 0 to 100%."""
    hint = 'write a share like 0.05 or a percentage like "5%"'
    if isinstance(raw, str):
        text = raw.strip()
        number = text[:-1].strip() if text.endswith("%") else None
        try:
            value = float(number) / 100 if number else float("nan")
        except ValueError:
            value = float("nan")
        if not 0 <= value <= 1:  # NaN fails too
            raise ValueError(f"must be a percentage between 0% and 100%; {hint}")
        return round(value, 6)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise TypeError(f"must be a share or a percentage; {hint}")
    if not 0 <= raw <= 1:
        raise ValueError(f"must be between 0 and 1 (0.05 = 5 points of coverage); {hint}")
    return float(raw)


def _clock(raw: Any) -> int:
    if not isinstance(raw, str):
        raise TypeError("must be a time of day like '20:00'")
    return parse_clock(raw)


def _email(raw: Any) -> str:
    value = _text(254)(raw)
    if not _EMAIL_RE.match(value):
        raise ValueError("is not an email address")
    return value.lower()


def _https_url(raw: Any) -> str:
    value = _text(500)(raw)
    if not value.startswith("https://") or any(c.isspace() for c in value):
        raise ValueError("must be an https:// URL without spaces")
    return value


def _choice(options: type[T]) -> Callable[[Any], T]:
    def convert(raw: Any) -> T:
        values = [str(o) for o in options]  # type: ignore[attr-defined]
        if isinstance(raw, str) and raw.strip().lower() in values:
            return options(raw.strip().lower())  # type: ignore[call-arg]
        raise ValueError(f"must be one of {', '.join(values)}")

    return convert


def _string_list(max_items: int, max_len: int) -> Callable[[Any], tuple[str, ...]]:
    item = _text(max_len)

    def convert(raw: Any) -> tuple[str, ...]:
        if not isinstance(raw, list):
            raise TypeError("must be a list of text items")
        if len(raw) > max_items:
            raise ValueError(f"has more than {max_items} items")
        return tuple(item(x) for x in raw)

    return convert


def _key(raw: Any) -> str:
    value = _text(40)(raw)
    if not KEY_RE.match(value):
        raise ValueError("must be lowercase letters, digits, '-' or '_' (at most 40)")
    return value


def _slug(raw: Any) -> str:
    value = _text(63)(raw)
    if not SLUG_RE.match(value):
        raise ValueError(
            "must be 2-63 lowercase letters, digits or '-', starting with a letter or digit"
        )
    return value


# --- the file ---------------------------------------------------------------------------------


def parse_cohort_file(text: str, source: str = "cohort.toml") -> CohortSpec:
    """Parse and validate cohort file text; raise :class:`ConfigError` listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        where = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        line = int(where.group(1)) if where else None
        msg = str(e).split(" (at line")[0]
        raise ConfigError(
            [
                Problem(
                    f"is not valid TOML: {msg}", source, line, hint="check quotes, brackets and '='"
                )
            ],
            f"{source} cannot be read",
        ) from e
    except ValueError as e:  # e.g. a number beyond Python's 4300-digit int() limit
        digits = _LONG_NUMBER_RE.search(text)
        line = text.count("\n", 0, digits.start()) + 1 if digits else None
        raise ConfigError(
            [
                Problem(
                    "contains a number too long to read",
                    source,
                    line,
                    hint="numbers in a cohort file have a few digits; check for a pasted value",
                )
            ],
            f"{source} cannot be read",
        ) from e
    problems: list[Problem] = []
    spec = _read_spec(data, problems, source)
    if problems or spec is None:
        raise ConfigError(problems, f"{source} has {len(problems)} problem(s)")
    return spec


_LONG_NUMBER_RE = re.compile(r"[0-9_]{100,}")


def _read_spec(data: dict[str, Any], problems: list[Problem], source: str) -> CohortSpec | None:
    top = _Reader(data, "", problems, source)
    for name in (
        "cohort",
        "planning",
        "orchestration",
        "facilitators",
        "series",
        "assignments",
        "reminders",
        "blackouts",
        "catch_up",
        "regions",
        "settings",
    ):
        top.known.add(name)
    top.finish()

    c = _Reader(data.get("cohort"), "cohort", problems, source)
    if "cohort" not in data:
        problems.append(Problem("is required", source, None, "cohort", hint="add a [cohort] table"))
    slug = c.get("slug", _slug)
    title = c.get("title", _text(200))
    start = c.get("start_date", _date)
    weeks = c.get("weeks", _integer(1, 104))
    home_zone = c.get("home_zone", _zone)
    locale = c.get("locale", _locale, "en")
    default_availability = c.get(
        "default_availability", _availability, parse_availability("Mon-Fri 18:00-21:00")
    )
    default_stretch = c.get("default_stretch", _stretch, None, hint=STRETCH_HINT)
    c.finish()

    regions = _read_regions(data.get("regions", {}), problems, source)
    planning = _read_planning(data.get("planning", {}), problems, source)
    orchestration = _read_orchestration(data.get("orchestration", {}), problems, source)
    facilitators = _read_array(data, "facilitators", problems, source, _read_facilitator)
    series = _read_array(data, "series", problems, source, _read_series)
    keys = _unique_keys(series, "series", problems, source)
    # Keys of series that had other problems still count, so one typo is reported once.
    raw_series = data.get("series", [])
    if isinstance(raw_series, list):
        keys |= {
            t["key"] for t in raw_series if isinstance(t, dict) and isinstance(t.get("key"), str)
        }
    emails = {f.email for f in facilitators}
    for i, s in enumerate(series, 1):
        for email in s.facilitators:
            if email not in emails:
                problems.append(
                    Problem(
                        "names a facilitator not in [[facilitators]]",
                        source,
                        None,
                        f"series[{i}].facilitators",
                        email,
                    )
                )
    if series and not facilitators:
        problems.append(
            Problem(
                "is required when there are live series",
                source,
                None,
                "facilitators",
                hint="add at least one [[facilitators]] entry",
            )
        )
    assignments = _read_array(data, "assignments", problems, source, _read_assignment)
    _unique_keys(assignments, "assignments", problems, source)
    for i, a in enumerate(assignments, 1):
        if a.series not in keys:
            problems.append(
                Problem(
                    "names a series that is not defined",
                    source,
                    None,
                    f"assignments[{i}].prepares_for/follows",
                    a.series,
                    f"defined series: {', '.join(sorted(keys)) or 'none'}",
                )
            )
    reminders = _read_array(data, "reminders", problems, source, _read_reminder)
    _unique_keys(reminders, "reminders", problems, source)
    blackouts = _read_array(data, "blackouts", problems, source, _read_blackout)
    catch_up = (
        _read_catch_up(data["catch_up"], problems, source)
        if "catch_up" in data
        else CatchUpOptions()
    )

    if (
        slug is None
        or title is None
        or start is None
        or weeks is None
        or home_zone is None
        or locale is None
        or default_availability is None
    ):
        return None
    end = start + timedelta(weeks=weeks)
    for i, b in enumerate(blackouts, 1):
        if b.end < start or b.start >= end:
            problems.append(
                Problem(
                    "lies outside the course dates",
                    source,
                    None,
                    f"blackouts[{i}]",
                    f"{b.start}..{b.end}",
                    f"the course runs {start} to {end - timedelta(days=1)}",
                )
            )
    return CohortSpec(
        slug=slug,
        title=title,
        start_date=start,
        weeks=weeks,
        home_zone=home_zone,
        locale=locale,
        default_availability=default_availability,
        planning=planning,
        orchestration=orchestration,
        facilitators=tuple(facilitators),
        series=tuple(series),
        assignments=tuple(assignments),
        reminders=tuple(reminders),
        blackouts=tuple(blackouts),
        catch_up=catch_up,
        default_stretch=read_stretch(default_stretch),
        regions=regions,
    )


REGIONS_HINT = (
    'a zone or zone prefix = a group name, e.g. "Asia/Kolkata" = "South Asia" or '
    '"America" = "Americas"'
)
MAX_REGIONS = 400


def _read_regions(raw: Any, problems: list[Problem], source: str) -> tuple[tuple[str, str], ...]:
    """``[regions]``: the runner's grouping of learners by zone for fair rotation's burden
    shares (zones they do not name keep their continent)."""
    table = _Reader(raw, "regions", problems, source)
    found: list[tuple[str, str]] = []
    for key in list(table.table)[:MAX_REGIONS]:
        table.known.add(key)
        where = zone_or_prefix(key) if len(key) <= 60 else None
        if where is None:
            table.problem(key, "is not a time zone or the start of one", key, REGIONS_HINT)
            continue
        name = table.get(key, _text(40), hint=REGIONS_HINT)
        if name is not None:
            found.append((where, name))
    if len(table.table) > MAX_REGIONS:
        table.problem("", f"names more than {MAX_REGIONS} zones", hint="group by prefix instead")
    return tuple(found)


def _read_array(
    data: dict[str, Any],
    name: str,
    problems: list[Problem],
    source: str,
    read_one: Callable[[_Reader], T | None],
) -> list[T]:
    raw = data.get(name, [])
    if not isinstance(raw, list):
        problems.append(
            Problem(f"must be an array of tables: write [[{name}]]", source, None, name)
        )
        return []
    out: list[T] = []
    for i, table in enumerate(raw, 1):
        reader = _Reader(table, f"{name}[{i}]", problems, source)
        before = len(problems)
        value = read_one(reader)
        reader.finish()
        if value is not None and len(problems) == before:
            out.append(value)
    return out


def _unique_keys(items: list[Any], name: str, problems: list[Problem], source: str) -> set[str]:
    seen: set[str] = set()
    for i, item in enumerate(items, 1):
        if item.key in seen:
            problems.append(
                Problem("repeats a key used earlier", source, None, f"{name}[{i}].key", item.key)
            )
        seen.add(item.key)
    return seen


def _read_planning(table: Any, problems: list[Problem], source: str) -> PlanningOptions:
    r = _Reader(table, "planning", problems, source)
    defaults = PlanningOptions()
    anchor = r.get("anchor", _choice(Anchor), defaults.anchor)
    target = r.get("target_coverage", _fraction, defaults.target_coverage)
    max_sections = r.get("max_sections", _integer(1, 24), defaults.max_sections)
    grid = r.get("grid_minutes", _grid, defaults.grid_minutes)
    quiet = r.get("quiet_hours", _quiet_hours, (defaults.quiet_start, defaults.quiet_end))
    r.finish()
    if anchor is None or target is None or max_sections is None or grid is None or quiet is None:
        return defaults
    return PlanningOptions(anchor, target, max_sections, grid, quiet[0], quiet[1])


def _read_orchestration(table: Any, problems: list[Problem], source: str) -> OrchestrationOptions:
    r = _Reader(table, "orchestration", problems, source)
    defaults = OrchestrationOptions()
    auto = r.get("auto_replan", _boolean, defaults.auto_replan)
    freeze = r.get("freeze", _span(timedelta(0), timedelta(weeks=104)), defaults.freeze)  # 0: none
    margin = r.get("replan_margin", _margin, defaults.replan_margin)
    moves = r.get("max_moves", _integer(0, 100), defaults.max_moves)
    pods = r.get(
        "pods_before", _span(timedelta(minutes=5), timedelta(days=2)), defaults.pods_before
    )
    r.finish()
    if auto is None or freeze is None or margin is None or moves is None or pods is None:
        return defaults
    return OrchestrationOptions(auto, freeze, margin, moves, pods)


CATCH_UP_HINT = "write whole days like '3d' or '1w'"


def _read_catch_up(table: Any, problems: list[Problem], source: str) -> CatchUpOptions:
    """``[catch_up]``: present means on (unless ``enabled = false``); see CatchUpOptions."""
    r = _Reader(table, "catch_up", problems, source)
    defaults = CatchUpOptions()
    enabled = r.get("enabled", _boolean, True)
    max_shift = r.get("max_shift", _whole_days, defaults.max_shift, hint=CATCH_UP_HINT)
    max_shifts = r.get("max_shifts", _integer(1, MAX_CATCH_UP_SHIFTS), defaults.max_shifts)
    r.finish()
    if enabled is None or max_shift is None or max_shifts is None:
        return defaults
    return CatchUpOptions(enabled, max_shift, max_shifts)


def _whole_days(raw: Any) -> timedelta:
    """A catch-up shift: whole days, from 1 day to MAX_CATCH_UP_SHIFT."""
    value = _duration(raw)
    if value % timedelta(days=1):
        raise ValueError("must be whole days")
    if value > MAX_CATCH_UP_SHIFT:
        raise ValueError(f"must be at most {_human(MAX_CATCH_UP_SHIFT)}")
    return value


_ZERO_RE = re.compile(r"^\s*0+\s*[wdhm]?\s*$")


def _span(low: timedelta, high: timedelta) -> Callable[[Any], timedelta]:
    """A duration between ``low`` and ``high``; when ``low`` is zero, ``0``/``"0m"`` too."""

    def convert(raw: Any) -> timedelta:
        zero = raw == 0 if isinstance(raw, int) else isinstance(raw, str) and _ZERO_RE.match(raw)
        if zero and not isinstance(raw, bool) and low == timedelta(0):
            return timedelta(0)
        value = _duration(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {_human(low)} and {_human(high)}")
        return value

    return convert


def _human(value: timedelta) -> str:
    minutes = int(value / timedelta(minutes=1))
    if minutes and minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes and minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _margin(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise TypeError("must be a number between 0 and 1, e.g. 0.05 for 5 percentage points")
    if not 0 <= raw <= 1:
        raise ValueError("must be between 0 and 1, e.g. 0.05 for 5 percentage points")
    return float(raw)


def _fraction(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise TypeError("must be a number between 0 and 1, e.g. 0.9")
    if not 0 < raw <= 1:
        raise ValueError("must be more than 0 and at most 1, e.g. 0.9 for 90%")
    return float(raw)


def _grid(raw: Any) -> int:
    value = _integer(5, 60)(raw)
    if 60 % value:
        raise ValueError("must divide an hour: 5, 10, 15, 20, 30 or 60")
    return value


def _quiet_hours(raw: Any) -> tuple[int, int]:
    if not isinstance(raw, str) or "-" not in raw:
        raise ValueError("must be a range of local times like '22:00-07:00'")
    start, _, end = raw.partition("-")
    return parse_clock(start.strip()), parse_clock(end.strip(), allow_24=True)


def _read_facilitator(r: _Reader) -> Facilitator | None:
    name = r.get("name", _text(120))
    email = r.get("email", _email)
    zone = r.get("zone", _zone)
    availability = r.get(
        "availability", _availability, hint="write windows like 'Mon-Fri 09:00-17:00'"
    )
    cap = r.get("max_sessions_per_week", _integer(1, 50), 5)
    if name is None or email is None or zone is None or availability is None or cap is None:
        return None
    return Facilitator(name, email, zone, availability, cap)


def _read_series(r: _Reader) -> SeriesRequest | None:
    key = r.get("key", _key)
    kind = r.get("kind", _choice(SeriesKind))
    title = r.get("title", _text(200), None)
    per_week = r.get("per_week", _integer(1, 14), 1)
    duration = r.get("duration", _duration, hint=DURATION_HINT)
    min_gap = r.get("min_gap", _duration, timedelta(0), hint=DURATION_HINT)
    max_size = r.get("max_section_size", _integer(2, 100_000), None)
    sections_raw = r.get("sections", _sections, None)
    max_blocks = r.get("max_blocks", _integer(1, 24), 6)
    rotate = r.get("rotate", _boolean, False)
    fairness = r.get("fairness", _choice(Fairness), Fairness.NONE)
    rotate_times = r.get("rotate_times", _integer(2, MAX_ROTATE_TIMES), 2)
    loss = r.get("max_coverage_loss", _coverage_loss, DEFAULT_MAX_COVERAGE_LOSS)
    agenda = r.get("agenda", _string_list(20, 200), ())
    facilitators = r.get("facilitators", _email_list, ())
    join_url = r.get("join_url", _https_url, None, hint="e.g. https://meet.example.org/class")
    if duration is not None and duration > timedelta(hours=12):
        r.problem("duration", "must be at most 12 hours", duration)
        return None
    if duration is not None and agenda:
        _check_agenda(r, agenda, duration)
    if fairness is not None and not _check_fairness(r, fairness, kind, per_week, rotate):
        return None
    if (
        key is None
        or kind is None
        or per_week is None
        or duration is None
        or min_gap is None
        or max_blocks is None
        or rotate is None
        or fairness is None
        or rotate_times is None
        or loss is None
        or agenda is None
        or facilitators is None
    ):
        return None
    if sections_raw is None and "sections" in r.table:
        return None
    auto = sections_raw == "auto"
    return SeriesRequest(
        key=key,
        title=title or key.replace("-", " ").replace("_", " ").capitalize(),
        kind=kind,
        per_week=per_week,
        duration=duration,
        min_gap=min_gap,
        max_section_size=max_size,
        sections=None if auto or sections_raw is None else int(sections_raw),
        auto_sections=auto,
        max_blocks=max_blocks,
        rotate=rotate,
        agenda=agenda,
        facilitators=facilitators,
        join_url=join_url,
        fairness=fairness,
        rotate_times=rotate_times,
        max_coverage_loss=loss,
    )


def _check_fairness(
    r: _Reader,
    fairness: Fairness,
    kind: SeriesKind | None,
    per_week: int | None,
    rotate: bool | None,
) -> bool:
    """``fairness = "rotate"`` plans one weekly meeting of the whole cohort; its two options
    mean nothing without it. Returns whether all is well."""
    before = len(r.problems)
    if fairness != Fairness.ROTATE:
        for name in ("rotate_times", "max_coverage_loss"):
            if name in r.table:
                r.problem(name, 'only applies with fairness = "rotate"', r.table[name])
        return len(r.problems) == before
    if kind == SeriesKind.COWORKING:
        r.problem("fairness", "cannot rotate a co-working series (it follows the sun already)")
    if per_week is not None and per_week != 1:
        r.problem("per_week", 'must be 1 with fairness = "rotate" (one meeting a week)', per_week)
    if rotate:
        r.problem(
            "rotate",
            'cannot be combined with fairness = "rotate"',
            hint='fairness = "rotate" with rotate_times = 2 is the fair form of A/B rotation',
        )
    for name in ("max_section_size", "sections"):
        if name in r.table:
            r.problem(
                name,
                'cannot be combined with fairness = "rotate" (the whole cohort meets together)',
            )
    return len(r.problems) == before


def _check_agenda(r: _Reader, agenda: tuple[str, ...], duration: timedelta) -> None:
    """Report agenda lines that alone take longer than one session of the series.

    A line's time is its phase, or for ``"2x50m focus with 10m break"`` all its rounds and breaks.
    The whole agenda may still add up to more than the session: the longest phases then shrink
    (see :mod:`scheduler.planning.agenda`); a single line that cannot fit is a typo.
    """
    limit = duration // timedelta(minutes=1)
    for i, line in enumerate(agenda, 1):
        phases = agenda_line_phases(line)
        total = sum(minutes for _, minutes in phases if minutes is not None)
        if total <= limit:
            continue
        takes = "far longer" if total >= AGENDA_HUGE_MINUTES else _agenda_minutes(total)
        if len(phases) > 1:
            hint = (
                f"its rounds and breaks together may take at most {_agenda_minutes(limit)}; "
                f"these take {takes}"
            )
        else:
            hint = f"one phase may take at most {_agenda_minutes(limit)}; this one takes {takes}"
        r.problem(
            f"agenda[{i}]",
            f"is longer than the series' duration ({_agenda_minutes(limit)})",
            line,
            hint,
        )


def _agenda_minutes(minutes: int) -> str:
    """``90`` -> ``1h30m``; a day or more in plain minutes (``100000000 minutes``)."""
    if minutes >= 24 * 60:
        return f"{minutes} minutes"
    hours, rest = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + (f"{rest}m" if rest or not hours else "")


def _sections(raw: Any) -> int | str:
    if raw == "auto":
        return "auto"
    if isinstance(raw, int) and not isinstance(raw, bool) and 1 <= raw <= 24:
        return raw
    raise ValueError('must be "auto" or a number of sections between 1 and 24')


def _email_list(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        raise TypeError("must be a list of facilitator emails")
    return tuple(_email(x) for x in raw)


_OFFSET_RE = re.compile(r"^\s*(.+?)\s+(before|after)\s*$", re.I)
_HARD_RE = re.compile(r"^\s*soft\s*\+\s*(.+?)\s*$", re.I)
_DRIP_RE = re.compile(r"^\s*drip\s+(?:every\s+)?(.+?)\s*$", re.I)


def _read_assignment(r: _Reader) -> AssignmentRule | None:
    key = r.get("key", _key)
    title = r.get("title", _text(200))
    prepares = r.get("prepares_for", _key, None)
    follows = r.get("follows", _key, None)
    if len([k for k in ("prepares_for", "follows") if k in r.table]) != 1:
        r.problem(
            "prepares_for",
            "give exactly one of prepares_for or follows",
            hint="name the series key this work prepares for (or follows)",
        )
        return None
    soft = r.get("soft_deadline", _soft_offset, hint="write '24h before' or '48h after'")
    snap = r.get("snap_to", _clock, None)
    hard = r.get(
        "hard_deadline", _hard, (HardKind.NONE, None), hint="write 'soft + 72h' or 'end of course'"
    )
    effort = r.get("effort", _duration, timedelta(hours=1), hint=DURATION_HINT)
    release = r.get(
        "release",
        _release,
        Release(),
        hint="write 'after previous', 'course start', a date, or 'drip 1d'",
    )
    if (
        key is None
        or title is None
        or soft is None
        or hard is None
        or effort is None
        or release is None
        or ("snap_to" in r.table and snap is None)
    ):
        return None
    direction, offset = soft
    if prepares is not None and direction != "before":
        r.problem(
            "soft_deadline",
            "work that prepares for a session is due before it",
            f"{direction}",
            "write e.g. '24h before'",
        )
        return None
    if follows is not None and direction != "after":
        r.problem(
            "soft_deadline",
            "work that follows a session is due after it",
            f"{direction}",
            "write e.g. '48h after'",
        )
        return None
    return AssignmentRule(
        key=key,
        title=title,
        series=prepares or follows or "",
        prepares=prepares is not None,
        soft_offset=offset,
        effort=effort,
        release=release,
        snap_to=snap,
        hard=hard[0],
        hard_after=hard[1],
    )


def _soft_offset(raw: Any) -> tuple[str, timedelta]:
    if isinstance(raw, str):
        match = _OFFSET_RE.match(raw)
        if match:
            return match.group(2).lower(), _bounded_duration(match.group(1).strip())
    raise ValueError("must be a duration and 'before' or 'after', like '24h before'")


def _hard(raw: Any) -> tuple[HardKind, timedelta | None]:
    if isinstance(raw, str):
        if raw.strip().lower() in ("end of course", "end_of_course"):
            return HardKind.END_OF_COURSE, None
        if raw.strip().lower() == "none":
            return HardKind.NONE, None
        match = _HARD_RE.match(raw)
        if match:
            return HardKind.AFTER_SOFT, _bounded_duration(match.group(1))
    raise ValueError("must be 'soft + <duration>' or 'end of course'")


def _release(raw: Any) -> Release:
    if isinstance(raw, date) and not hasattr(raw, "hour"):
        return Release(ReleaseKind.FIXED_DATE, on=raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text in ("after previous", "previous", "after previous session"):
            return Release()
        if text in ("course start", "start"):
            return Release(ReleaseKind.COURSE_START)
        drip = _DRIP_RE.match(text)
        if drip:
            return Release(ReleaseKind.DRIP, every=_bounded_duration(drip.group(1)))
        try:
            return Release(ReleaseKind.FIXED_DATE, on=date.fromisoformat(text))
        except ValueError:
            pass
    raise ValueError("is not a release rule")


def _read_reminder(r: _Reader) -> ReminderRule | None:
    key = r.get("key", _key)
    about = r.get("about", _choice(ReminderAbout))
    before = r.get("before", _duration, None, hint=DURATION_HINT)
    early = r.get("early", _early, None, hint=EARLY_HINT)
    at = r.get("at", _clock, None)
    weekday = r.get("weekday", _weekday, None)
    template = r.get("template", _key, None)
    if key is None or about is None:
        return None
    if about in (ReminderAbout.LIVE, ReminderAbout.DEADLINE) and before is None and at is None:
        r.problem(
            "before", f"a {about} reminder needs 'before' or 'at'", hint='write before = "24h"'
        )
        return None
    if about is ReminderAbout.WELCOME and early:
        r.problem(
            "early",
            "a welcome email goes when a learner joins; 'early' does not apply to it",
            hint="remove early from this reminder",
        )
        return None
    if about is ReminderAbout.DIGEST and (weekday is None or at is None):
        r.problem(
            "weekday",
            "a digest needs 'weekday' and 'at'",
            hint='write weekday = "Mon", at = "08:00"',
        )
        return None
    return ReminderRule(
        key=key,
        about=about,
        before=before,
        early=timedelta(0) if about is ReminderAbout.WELCOME else _or_default(early),
        at=at,
        weekday=weekday,
        template=template or _DEFAULT_TEMPLATES[about],
    )


_DEFAULT_TEMPLATES = {
    ReminderAbout.LIVE: NotificationKind.LIVE_REMINDER.value,
    ReminderAbout.DEADLINE: NotificationKind.DEADLINE_REMINDER.value,
    ReminderAbout.DIGEST: NotificationKind.DIGEST.value,
    ReminderAbout.WELCOME: NotificationKind.WELCOME.value,
}


def _weekday(raw: Any) -> int:
    if not isinstance(raw, str):
        raise TypeError("must be a weekday like 'Mon'")
    return int(Weekday.parse(raw))


def _read_blackout(r: _Reader) -> Blackout | None:
    if "date" in r.table:
        day = r.get("date", _date)
        start = end = day
    else:
        start = r.get("start", _date, hint="write date = 2027-04-05, or start and end")
        end = r.get("end", _date, start)
    label = r.get("label", _text(120), "")
    if start is None or end is None or label is None:
        return None
    if end < start:
        r.problem("end", "is before start", end)
        return None
    return Blackout(start, end, label)


# --- agenda lines ------------------------------------------------------------------------------
# The grammar of one agenda line, shared by the check above and scheduler.planning.agenda (which
# lays the phases out on an occurrence). Lines are described in that module's docstring.

AGENDA_HUGE_MINUTES = 10**15
"""What a number of more than 15 digits counts as: more minutes than any time span can hold.

Reading it exactly would only cost time (and fail past 4300 digits); every layout treats any
phase longer than its block the same way, so the cap changes no result.
"""
_AGENDA_DIGITS = 15
_AGENDA_DURATION = r"(?:(\d+)\s*h\s*(?:(\d+)\s*m(?:in)?)?|(\d+)\s*m(?:in)?)"
_AGENDA_REPEAT = re.compile(
    rf"^\s*(\d+)\s*[x×]\s*{_AGENDA_DURATION}\s+(.+?)"
    rf"(?:\s+with\s+{_AGENDA_DURATION}\s+(.+?))?\s*$",
    re.I,
)
_AGENDA_SINGLE = re.compile(rf"^\s*{_AGENDA_DURATION}\b\s*[:\-–]?\s*(.*?)\s*$", re.I)
AGENDA_MAX_ROUNDS = 24


def _agenda_number(digits: str | None) -> int:
    if not digits:
        return 0
    digits = digits.lstrip("0") or "0"
    return AGENDA_HUGE_MINUTES if len(digits) > _AGENDA_DIGITS else int(digits)


def parse_minutes(hours: str | None, minutes_after_hours: str | None, minutes: str | None) -> int:
    """Minutes from the groups of one duration match (``1h30m``, ``1h``, ``90m``).

    Numbers of more than 15 digits count as :data:`AGENDA_HUGE_MINUTES` without being read.
    """
    if hours is not None:
        return _agenda_number(hours) * 60 + _agenda_number(minutes_after_hours)
    return _agenda_number(minutes)


def agenda_line_phases(line: str) -> list[tuple[str, int | None]]:
    """The phases one agenda line makes: (label, minutes, or None for an untimed line)."""
    repeat = _AGENDA_REPEAT.match(line)
    if repeat is not None:
        rounds = _agenda_number(repeat.group(1))
        length = parse_minutes(*repeat.group(2, 3, 4))
        label = repeat.group(5).strip()
        if 1 <= rounds <= AGENDA_MAX_ROUNDS and length > 0:
            pause = parse_minutes(*repeat.group(6, 7, 8)) if repeat.group(9) else 0
            pause_label = (repeat.group(9) or "").strip()
            phases: list[tuple[str, int | None]] = []
            for i in range(rounds):
                if i and pause > 0:
                    phases.append((pause_label, pause))
                phases.append((label, length))
            return phases
    single = _AGENDA_SINGLE.match(line)
    if single is not None:
        length = parse_minutes(*single.group(1, 2, 3))
        label = single.group(4).strip()
        if length > 0 and label:
            return [(label, length)]
    return [(line.strip(), None)]


__all__ = [
    "AGENDA_HUGE_MINUTES",
    "MAX_DURATION",
    "AvailabilityError",
    "agenda_line_phases",
    "parse_cohort_file",
    "parse_minutes",
]
