"""Parse a roster CSV into entries, reporting every bad row at once.

Input is the file's bytes: UTF-8 with or without a BOM, ``,`` or ``;`` delimited (detected from
the header). Columns (case-insensitive, any order): ``name``, ``email``, ``timezone`` are
required; ``availability``, ``stretch``, ``locale`` and ``role`` are optional (``stretch``: the
hours a learner could attend at a cost, in the availability grammar; blank: the cohort's default;
``none``: no stretch hours); other columns are ignored with a
warning. Cells are kept as text: a name starting with ``=`` stays a name, and any CSV the product
exports later neutralises such cells.

Email addresses follow the one rule in :mod:`scheduler.roster.addresses` (shared with the
single-learner service). Pure: no files, no database, no clock. The service decides what to
write.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from babel import Locale, UnknownLocaleError

from scheduler.domain.availability import (
    AVAILABILITY_HINT,
    STRETCH_HINT,
    AvailabilityError,
    parse_availability,
    stretch_text,
)
from scheduler.domain.cohort import Role
from scheduler.errors import Problem
from scheduler.progress import SILENT, Progress
from scheduler.roster.addresses import email_address
from scheduler.roster.zones import ZoneAnswer, resolve_zone

REQUIRED = ("name", "email", "timezone")
OPTIONAL = ("availability", "locale", "role", "stretch")
ALIASES = {
    "full name": "name",
    "full_name": "name",
    "e-mail": "email",
    "email address": "email",
    "time zone": "timezone",
    "time_zone": "timezone",
    "tz": "timezone",
    "zone": "timezone",
}
MAX_FIELD = {
    "name": 200,
    "email": 254,
    "timezone": 64,
    "availability": 500,
    "stretch": 500,
    "locale": 20,
    "role": 20,
}
MAX_UNKNOWN_FIELD = 10_000
PROGRESS_ROWS = 1000  # rows read between two reports to a Progress


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One valid row. ``availability`` and ``locale`` are ``None`` when the cell was empty
    (the cohort's default applies)."""

    line: int
    name: str
    email: str
    zone: str
    availability: str | None
    locale: str | None
    role: Role
    stretch: str | None = None  # None: the cohort's default; "none": no stretch hours


@dataclass(slots=True)
class RosterReport:
    source: str
    entries: list[RosterEntry] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def bad_lines(self) -> int:
        return len({p.line for p in self.errors if p.line is not None})


def parse_roster(
    data: bytes, source: str = "roster.csv", progress: Progress = SILENT
) -> RosterReport:
    """Validate a whole roster file; the report holds valid entries and every problem.
    ``progress`` hears of the rows read, in steps of :data:`PROGRESS_ROWS`."""
    report = RosterReport(source)
    text = _decode(data, report)
    if text is None:
        return report
    if not text.strip():
        report.errors.append(
            Problem(
                "the file is empty",
                source,
                hint="the first line must name the columns: " + ",".join(REQUIRED + OPTIONAL),
            )
        )
        return report
    delimiter = _delimiter(text.split("\n", 1)[0])
    previous_limit = csv.field_size_limit()
    csv.field_size_limit(max(previous_limit, len(text) + 1))
    try:
        progress.step(f"reading {source}", max(0, text.count("\n") - 1) or None)
        _read_rows(text, delimiter, report, progress)
    finally:
        csv.field_size_limit(previous_limit)
    return report


def _decode(data: bytes, report: RosterReport) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        report.errors.append(
            Problem(
                f"is not UTF-8 text (byte 0x{data[e.start]:02x} cannot be read)",
                report.source,
                line,
                hint="save the file as 'CSV UTF-8' in your spreadsheet program",
            )
        )
        return None


def _delimiter(header: str) -> str:
    return ";" if header.count(";") > header.count(",") else ","


def _rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    start = 1
    for row in reader:
        yield start, row
        start = reader.line_num + 1


def _read_rows(text: str, delimiter: str, report: RosterReport, progress: Progress) -> None:
    source = report.source
    rows = _rows(text, delimiter)
    try:
        _, header = next(rows)
    except StopIteration:  # pragma: no cover - empty text is handled before
        return
    columns = [ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        report.errors.append(
            Problem(
                f"missing required column(s): {', '.join(missing)}",
                source,
                1,
                "header",
                delimiter.join(header),
                f"the header must name at least {', '.join(REQUIRED)} "
                f"(found: {', '.join(columns) or 'nothing'})",
            )
        )
        return
    index: dict[str, int] = {}
    for i, name in enumerate(columns):
        if name in index:
            report.errors.append(Problem(f"column {name!r} appears twice", source, 1, "header"))
        elif name in REQUIRED or name in OPTIONAL:
            index[name] = i
        else:
            report.warnings.append(
                Problem(
                    f"unknown column {header[i].strip()!r} is ignored",
                    source,
                    1,
                    "header",
                    hint=f"known columns: {', '.join(REQUIRED + OPTIONAL)}",
                )
            )
    if report.errors:
        return
    seen: dict[str, int] = {}
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue  # blank lines are not rows
        report.rows += 1
        if report.rows % PROGRESS_ROWS == 0:
            progress.advance(PROGRESS_ROWS)
        entry, email = _read_row(line, row, index, len(header), report)
        if email is not None:
            first = seen.setdefault(email, line)
            if first != line:
                report.errors.append(
                    Problem(
                        f"duplicate email, first seen on line {first}",
                        source,
                        line,
                        "email",
                        email,
                        "each person appears once; remove or merge one row",
                    )
                )
                continue
        if entry is not None:
            report.entries.append(entry)
    if report.rows == 0:
        report.errors.append(
            Problem(
                "the file has a header but no rows",
                source,
                1,
                hint="add one row per learner under the header",
            )
        )


def _read_row(
    line: int, row: list[str], index: dict[str, int], width: int, report: RosterReport
) -> tuple[RosterEntry | None, str | None]:
    """The row's entry (None when it has errors, all reported) and its normalised email if valid."""
    source = report.source
    before = len(report.errors)

    def bad(column: str, message: str, value: str | None, hint: str | None = None) -> None:
        report.errors.append(Problem(message, source, line, column, value, hint))

    if len(row) != width:
        bad(
            "row",
            f"has {len(row)} cells but the header has {width}",
            None,
            "check for a missing or extra delimiter, or an unclosed quote",
        )
        if len(row) < width:
            return None, None
    for i, raw in enumerate(row):
        if len(raw) > MAX_UNKNOWN_FIELD:
            bad(
                f"column {i + 1}",
                f"is {len(raw):,} characters long",
                raw[:40],
                "a roster cell holds a short value",
            )
            return None, None

    def cell(column: str) -> str:
        i = index.get(column)
        value = row[i].strip() if i is not None and i < len(row) else ""
        if len(value) > MAX_FIELD[column]:
            bad(column, f"is {len(value):,} characters long (at most {MAX_FIELD[column]})", value)
            return ""
        return value

    name = cell("name")
    if not name and len(report.errors) == before:
        bad("name", "is empty", None, "write the person's name")
    elif any(ord(ch) < 32 for ch in name):
        bad("name", "contains control characters or line breaks", name)

    email = email_address(cell("email"))
    if isinstance(email, Problem):
        bad(
            "email",
            email.message,
            row[index["email"]].strip() if index["email"] < len(row) else "",
            email.hint,
        )

    zone_text = cell("timezone")
    zone = _zone(zone_text)
    if zone.error:
        bad("timezone", zone.error, zone_text, zone.hint)

    availability = cell("availability") or None
    if availability is not None:
        try:
            availability = _availability_text(availability)
        except AvailabilityError as e:
            bad("availability", str(e), row[index["availability"]].strip(), AVAILABILITY_HINT)

    stretch = cell("stretch") or None
    if stretch is not None:
        try:
            stretch = _stretch_text(stretch)
        except AvailabilityError as e:
            bad("stretch", str(e), row[index["stretch"]].strip(), STRETCH_HINT)

    locale = cell("locale") or None
    if locale is not None:
        normal = _locale(locale)
        if normal is None:
            bad(
                "locale",
                "is not a known locale",
                locale,
                "write one like 'en', 'en_GB', 'de_DE' or 'pt_BR'",
            )
        locale = normal

    role_text = cell("role").lower() or Role.LEARNER.value
    role = Role.LEARNER
    try:
        role = Role(role_text)
    except ValueError:
        bad("role", "must be learner or facilitator", role_text)

    if isinstance(email, Problem):
        return None, None
    if len(report.errors) > before or zone.zone is None:
        return None, email
    return RosterEntry(line, name, email, zone.zone, availability, locale, role, stretch), email


# The one address rule, shared with scheduler.services.learners (the name ``_email`` is kept
# for tests/unit/test_roster_parser.py).
_email = email_address


@lru_cache(maxsize=4096)
def _availability_text(text: str) -> str:
    return parse_availability(text).to_text()


@lru_cache(maxsize=4096)
def _stretch_text(text: str) -> str:
    return stretch_text(text)


@lru_cache(maxsize=2048)
def _zone(text: str) -> ZoneAnswer:
    return resolve_zone(text)


@lru_cache(maxsize=512)
def _locale(text: str) -> str | None:
    try:
        return str(Locale.parse(text.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        return None
