"""The pain model of fair planning: stretch windows, a pain by local hour, the cost matrix.

See :mod:`scheduler.planning.fairness` for the rules in words (the default curve is drawn there
and in :data:`DEFAULT_PAIN_CURVE`). :func:`fair_costs` groups learners into classes (same clock
trajectory over the course, preferred windows, stretch windows and region) and gives, for each
class, candidate time and course week, the cost of the meeting: 0 preferred, > 0 its pain in
stretch hours, :data:`MISSED` when it does not fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

import numpy as np
import numpy.typing as npt

from scheduler.domain.availability import Availability, parse_availability
from scheduler.domain.cohort import CohortSpec
from scheduler.planning.fit import Grid, build_grid, offsets_at, slack_table
from scheduler.planning.model import LearnerInput
from scheduler.timeutil import MINUTES_PER_WEEK, zone

__all__ = [
    "DEFAULT_PAIN_CURVE",
    "MISSED",
    "NO_STRETCH",
    "FairCosts",
    "FairnessOptions",
    "PainCurve",
    "fair_costs",
    "in_stretch",
    "meeting_pain",
    "pain_table",
    "parse_stretch",
    "region_of",
]

MISSED = -1  # cost of a meeting that does not fit
NO_STRETCH = Availability(())


@dataclass(frozen=True, slots=True)
class PainCurve:
    """Pain per local hour (24 entries, hour 0 = 00:00-01:00); ``None``: never, unless the
    learner's own (or the cohort's) stretch windows name that hour, when it costs ``night``."""

    hours: tuple[int | None, ...]
    night: int = 3
    floor: int = 1  # least pain of a meeting outside the preferred window

    def __post_init__(self) -> None:
        if len(self.hours) != 24:
            raise ValueError("a pain curve has 24 hourly values")
        if any(p is not None and not 0 <= p <= 100 for p in self.hours):
            raise ValueError("pains are between 0 and 100")
        if not 1 <= self.floor <= self.night <= 100:
            raise ValueError("need 1 <= floor <= night <= 100")


DEFAULT_PAIN_CURVE = PainCurve(
    (3, None, None, None, None, 3, 1, 1, *([0] * 12), 1, 1, 1, 3), night=3, floor=1
)


@dataclass(frozen=True, slots=True)
class FairnessOptions:
    """``rotate_times``: at most this many weekly times (1-4); ``max_coverage_loss``: coverage
    may fall this far below the best (0.05 = 5 points); ``default_stretch``: the cohort's stretch
    windows (None: the curve's allowed hours); ``regions``: (zone or prefix, group) pairs;
    ``pool``: candidate times the exact search keeps (more: slower, smaller gap)."""

    rotate_times: int = 2
    max_coverage_loss: float = 0.05
    curve: PainCurve = DEFAULT_PAIN_CURVE
    default_stretch: Availability | None = None
    regions: tuple[tuple[str, str], ...] = ()
    max_sets: int = 20_000
    max_rows: int = 50_000

    def __post_init__(self) -> None:
        if not 1 <= self.rotate_times <= 4:
            raise ValueError("rotate_times must be between 1 and 4")
        if not 0 <= self.max_coverage_loss <= 1:
            raise ValueError("max_coverage_loss must be between 0 and 1")
        if self.max_sets < 1 or self.max_rows < 1:
            raise ValueError("max_sets and max_rows must be positive")


def parse_stretch(text: str | None) -> Availability | None:
    """A roster or cohort ``stretch`` value: blank -> None (use the default), ``none`` -> no
    stretch at all, else the availability grammar (:class:`AvailabilityError` when bad)."""
    if text is None or not text.strip():
        return None
    if text.strip().lower() in ("none", "no", "-"):
        return NO_STRETCH
    return parse_availability(text)


def region_of(zone_name: str, regions: Mapping[str, str] | Sequence[tuple[str, str]] = ()) -> str:
    """The region of a zone: the runner's grouping (longest matching zone or prefix) first."""
    pairs = regions.items() if isinstance(regions, Mapping) else regions
    best = ""
    group = None
    for key, name in pairs:
        if (zone_name == key or zone_name.startswith(key.rstrip("/") + "/")) and len(key) > len(
            best
        ):
            best, group = key, name
    if group is not None:
        return group
    prefix, _, place = zone_name.partition("/")
    if prefix in ("Atlantic", "Indian", "Arctic"):
        return _OCEAN_REGIONS.get(place, prefix)
    if prefix in ("Australia", "Pacific"):
        return "Oceania"
    if prefix in ("UTC", "Etc", "GMT"):
        return "UTC"
    return prefix


# Island zones named after an ocean, sent to the continent whose hours they keep.
_OCEAN_REGIONS = {
    **dict.fromkeys(
        ("Azores", "Canary", "Faroe", "Faeroe", "Madeira", "Reykjavik", "Jan_Mayen"), "Europe"
    ),
    "Longyearbyen": "Europe",
    **dict.fromkeys(("Cape_Verde", "St_Helena"), "Africa"),
    **dict.fromkeys(("Bermuda", "Stanley", "South_Georgia"), "America"),
    **dict.fromkeys(
        ("Antananarivo", "Comoro", "Mayotte", "Mauritius", "Reunion", "Mahe", "Kerguelen"),
        "Africa",
    ),
    **dict.fromkeys(("Chagos", "Maldives", "Christmas", "Cocos"), "Asia"),
}


def meeting_pain(curve: PainCurve, start: int, duration: int, *, explicit: bool) -> int | None:
    """Pain of a meeting starting ``start`` minutes after local midnight (may exceed a day)
    lasting ``duration`` minutes, outside the preferred window; None when it cannot be attended
    (a ``never`` hour and no explicit stretch). At least ``curve.floor``."""
    pain = curve.floor
    for hour in range(start // 60, (start + duration - 1) // 60 + 1):
        value = curve.hours[hour % 24]
        if value is None:
            if not explicit:
                return None
            value = curve.night
        pain = max(pain, value)
    return pain


def pain_table(curve: PainCurve, duration: int, *, explicit: bool) -> npt.NDArray[np.int16]:
    """``table[m]``: :func:`meeting_pain` of a meeting at local minute-of-week ``m``, or
    :data:`MISSED` (vectorised over the week)."""
    hourly = np.array(
        [curve.night if p is None and explicit else -1 if p is None else p for p in curve.hours],
        dtype=np.int16,
    )
    week = np.tile(hourly, 7)
    starts = np.arange(MINUTES_PER_WEEK)
    first, last = starts // 60, (starts + duration - 1) // 60
    pain = np.full(MINUTES_PER_WEEK, curve.floor, dtype=np.int16)
    never = np.zeros(MINUTES_PER_WEEK, dtype=bool)
    for j in range(int((last - first).max()) + 1):
        inside = first + j <= last
        value = week[(first + j) % len(week)]
        never |= inside & (value < 0)
        pain = np.where(inside, np.maximum(pain, value), pain)
    pain[never] = MISSED
    return pain


@dataclass(frozen=True)
class FairCosts:
    """Cost of every candidate for every learner class in every week.

    ``cost[g, c, w]``: 0 preferred, > 0 stretch pain, :data:`MISSED`; meaningful where
    ``grid.active[c, w]`` (else the meeting is skipped for a blackout). ``members[g]``: learner
    indices of class ``g``; ``region[g]`` indexes ``region_names``."""

    grid: Grid
    duration: int
    keys: tuple[str, ...]
    count: npt.NDArray[np.int64]
    members: tuple[tuple[int, ...], ...]
    region: npt.NDArray[np.int64]
    region_names: tuple[str, ...]
    cost: npt.NDArray[np.int16]


def fair_costs(
    spec: CohortSpec,
    learners: Sequence[LearnerInput],
    duration: int,
    stretch: Mapping[str, Availability | None] | None = None,
    options: FairnessOptions | None = None,
) -> FairCosts:
    """Group learners by (clock trajectory, preferred, stretch, region) and cost every candidate.

    ``stretch`` maps a learner key to their windows (see :func:`parse_stretch`); absent or None
    means the cohort default (``options.default_stretch``), then the curve."""
    options = options or FairnessOptions()
    stretch = stretch or {}
    grid = build_grid(spec)
    offsets: dict[str, npt.NDArray[np.int64]] = {}
    trajectory: dict[str, bytes] = {}
    for name in sorted({x.zone for x in learners}):
        offsets[name] = offsets_at(zone(name), grid.epoch, grid.minutes)
        trajectory[name] = offsets[name].astype(np.int32).tobytes()
    regions: dict[str, int] = {}
    groups: dict[tuple[bytes, Availability, Availability | None, int], int] = {}
    members: list[list[int]] = []
    first: list[tuple[str, Availability, Availability | None, int]] = []
    for i, person in enumerate(learners):
        own = stretch.get(person.key)
        windows = own if own is not None else options.default_stretch
        r = regions.setdefault(region_of(person.zone, options.regions), len(regions))
        key = (trajectory[person.zone], person.availability, windows, r)
        g = groups.setdefault(key, len(members))
        if g == len(members):
            members.append([])
            first.append((person.zone, person.availability, windows, r))
        members[g].append(i)
    implicit = pain_table(options.curve, duration, explicit=False)
    explicit = pain_table(options.curve, duration, explicit=True)
    tables: dict[Availability, npt.NDArray[np.int16]] = {}

    def fits(windows: Availability) -> npt.NDArray[np.int16]:
        if windows not in tables:
            tables[windows] = slack_table(windows, duration)
        return tables[windows]

    cost = np.empty((len(members), *grid.minutes.shape), dtype=np.int16)
    for g, (name, preferred, windows, _) in enumerate(first):
        local = (grid.minutes + offsets[name]) % MINUTES_PER_WEEK
        if windows is None:
            outside = implicit
        elif windows.is_empty:
            outside = np.full(MINUTES_PER_WEEK, MISSED, dtype=np.int16)
        else:
            union = Availability.from_windows([*preferred.windows, *windows.windows])
            outside = np.where(fits(union) >= 0, explicit, MISSED).astype(np.int16)
        cost[g] = np.where(fits(preferred)[local] >= 0, 0, outside[local])
    return FairCosts(
        grid=grid,
        duration=duration,
        keys=tuple(x.key for x in learners),
        count=np.array([len(m) for m in members], dtype=np.int64),
        members=tuple(tuple(m) for m in members),
        region=np.array([r for *_, r in first], dtype=np.int64),
        region_names=tuple(regions),
        cost=cost,
    )


def in_stretch(
    preferred: Availability,
    stretch: Availability | None,
    start: datetime,
    duration: int,
    tz: tzinfo,
    curve: PainCurve = DEFAULT_PAIN_CURVE,
) -> bool:
    """Whether a meeting at the instant ``start`` that is *outside* the learner's preferred
    window lies in their stretch hours (the rule of :func:`fair_costs` for one meeting):
    ``stretch`` None means every hour ``curve`` allows, empty means none."""
    if preferred.covers_at(start, duration, tz):
        return False
    if stretch is None:
        local = start.astimezone(tz)
        return (
            meeting_pain(curve, local.hour * 60 + local.minute, duration, explicit=False)
            is not None
        )
    if stretch.is_empty:
        return False
    return Availability.from_windows([*preferred.windows, *stretch.windows]).covers_at(
        start, duration, tz
    )
