"""The plan's report for people: left-out learners and clock changes grouped, pure."""

from __future__ import annotations

from scheduler.planning.model import DstWarning, LeftOut, LeftOutReason
from scheduler.planning.report import (
    SeriesLeftOut,
    dst_by_series_week,
    left_out_by_series,
    region,
)

R = LeftOutReason


def test_region_is_the_first_part_of_the_zone() -> None:
    assert region("Asia/Tokyo") == "Asia/*"
    assert region("America/Argentina/Salta") == "America/*"
    assert region("UTC") == "UTC"


def test_left_out_counts_each_learner_once_per_series_by_region_and_reason() -> None:
    zones = {"a": "Asia/Tokyo", "b": "Asia/Seoul", "c": "America/Lima", "d": "Europe/Oslo"}
    records = [
        LeftOut("a", "class", R.TIME_NOT_CHOSEN),
        LeftOut("a", "class", R.TIME_NOT_CHOSEN),  # a second record of the same learner
        LeftOut("b", "class", R.DST_UNTIL_WEEK, week=4, detail="fits only until week 5"),
        LeftOut("c", "class", R.TIME_NOT_CHOSEN),
        LeftOut("a", "office-hours", R.NO_AVAILABILITY),
        LeftOut("e", "office-hours", R.NO_AVAILABILITY),  # zone unknown
    ]
    by_series = left_out_by_series(records, zones)
    assert [s.series for s in by_series] == ["class", "office-hours"]
    cls, office = by_series
    assert cls == SeriesLeftOut(
        "class",
        3,
        (("Asia/*", 2), ("America/*", 1)),
        ((R.TIME_NOT_CHOSEN, 2), (R.DST_UNTIL_WEEK, 1)),
    )
    assert office.learners == 2
    assert dict(office.by_region) == {"Asia/*": 1, "?": 1}
    assert cls.describe() == (
        "class: 3 left out \u2014 2 in Asia/*, 1 in America/*; "
        "2: times that fit them serve fewer learners, "
        "1: a clock change moves the time out of their window"
    )


def test_more_than_three_regions_are_counted_as_elsewhere() -> None:
    zones = {
        "a": "Asia/Tokyo",
        "b": "Asia/Dhaka",
        "c": "America/Lima",
        "d": "Europe/Oslo",
        "e": "Africa/Lagos",
        "f": "Pacific/Fiji",
    }
    [summary] = left_out_by_series([LeftOut(k, "class", R.TIME_NOT_CHOSEN) for k in zones], zones)
    text = summary.describe()
    assert "2 in Asia/*, 1 in Africa/*, 1 in America/*, 2 elsewhere" in text
    assert "Europe" not in text


def _warning(series: str, section: int, week: int, shift: int, zone: str, n: int) -> DstWarning:
    return DstWarning(series, section, week, shift, zone, n, "")


def test_clock_changes_are_one_line_per_series_week_and_shift() -> None:
    warnings = [
        _warning("class", 0, 4, -60, "Asia/*", 30),
        _warning("class", 1, 4, -60, "Asia/*", 6),  # another section, same week: merged
        _warning("class", 1, 4, -60, "Africa/*", 12),
        _warning("class", 0, 2, 60, "America/*", 7),
        _warning("class", 0, 4, 30, "Australia/*", 1),  # Lord Howe: a different shift
        _warning("cowork", 2, 4, -60, "Asia/*", 5),
    ]
    changes = dst_by_series_week(warnings)
    assert [(c.series, c.week, c.shift_minutes, c.learners) for c in changes] == [
        ("class", 2, 60, 7),
        ("class", 4, -60, 48),
        ("class", 4, 30, 1),
        ("cowork", 4, -60, 5),
    ]
    assert changes[1].by_region == (("Asia/*", 36), ("Africa/*", 12))
    assert changes[1].describe() == (
        "class: from week 5, 1h earlier on the clocks of 48 learners (36 in Asia/*, 12 in Africa/*)"
    )
    assert changes[0].describe().startswith("class: from week 3, 1h later on the clocks of 7")
    assert "30 min later on the clocks of 1 learner (" in changes[2].describe()
    ninety = dst_by_series_week([_warning("x", 0, 1, -90, "Asia/*", 2)])[0]
    assert "1h30 earlier" in ninety.describe()
