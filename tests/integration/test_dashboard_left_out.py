"""The cohort page's left-out card and DST card over real HTTP (uvicorn on 127.0.0.1, SQLite).

The example cohort as ``cohort init`` makes it (150 sample learners, plus the few of
``test_dashboard``): the summary comes first (one line per series, one DST line per series and
week), the per-learner list is a collapsed ``<details>`` narrowed server-side by the query
parameters ``series``, ``reason`` and ``region``. Expected values are computed here from the
stored report and the people table, not by the code under test.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from test_dashboard import SLUG, Served, _login, _rows_text, serve_cohort

from scheduler.persistence.models import PersonRow, PlanVersionRow

LEARNERS = 150  # `cohort init`'s default roster
SHOWN = 100  # rows the detailed list shows at most
TITLES = {"class": "Live class", "office-hours": "Office hours", "cowork": "Co-working block"}
PAGE = f"/cohorts/{SLUG}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_cohort(tmp_path_factory.mktemp("left-out"), learners=LEARNERS) as s:
        yield s


@pytest.fixture(scope="module")
def admin(served: Served) -> Iterator[httpx.Client]:
    client = _login(served)
    yield client
    client.close()


@pytest.fixture(scope="module")
def report(served: Served) -> dict[str, Any]:
    with served.runtime.transaction() as db:
        summary = db.scalar(select(PlanVersionRow.summary).where(PlanVersionRow.version == 1))
    assert isinstance(summary, dict)
    return summary


@pytest.fixture(scope="module")
def regions(served: Served) -> dict[str, str]:
    """Every learner's region (``Asia/*``), from the people table."""
    with served.runtime.transaction() as db:
        zones = {email: zone for email, zone in db.execute(select(PersonRow.email, PersonRow.zone))}
    return {
        email: zone.split("/")[0] + "/*" if "/" in zone else zone for email, zone in zones.items()
    }


def _items(page: str, list_id: str) -> list[str]:
    """The text of each <li> of the list with id ``list_id``, tags removed, unescaped."""
    body = page.split(f'id="{list_id}"', 1)[1].split("</ul>", 1)[0]
    items = re.findall(r"<li>(.*?)</li>", body, re.S)
    return [html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", i))).strip() for i in items]


def _details(page: str) -> str:
    """The opening tag of the per-learner list's <details> and everything inside it."""
    start = page.index('<details id="left-out-list"')
    return page[start : page.index("</details>", start)]


def _listed(page: str) -> set[str]:
    """The emails in the per-learner table."""
    return {
        m
        for row in _rows_text(page, "left-out")
        for m in re.findall(r'<span class="muted small">([^<]+@[^<]+)</span>', row)
    }


def _expected(
    report: dict[str, Any],
    regions: dict[str, str],
    series: str = "",
    reason: str = "",
    region: str = "",
) -> set[str]:
    return {
        x["learner"]
        for x in report["left_out"]
        if (not series or x["series"] == series)
        and (not reason or x["reason"] == reason)
        and (not region or regions.get(x["learner"]) == region)
    }


# --- the summary -------------------------------------------------------------------------------


def test_the_summary_has_one_line_per_series_with_counts_regions_and_reasons(
    admin: httpx.Client, report: dict[str, Any], regions: dict[str, str]
) -> None:
    page = admin.get(PAGE)
    assert page.status_code == 200
    lines = _items(page.text, "left-out-summary")
    left: dict[str, set[str]] = {}
    for x in report["left_out"]:
        left.setdefault(x["series"], set()).add(x["learner"])
    assert len(lines) == len(left) == 3, lines
    total = len({x["learner"] for x in report["left_out"]})
    assert f"Left out ({total})" in page.text
    for series, learners in left.items():
        (line,) = [li for li in lines if li.startswith(TITLES[series] + ":")]
        assert line.startswith(f"{TITLES[series]}: {len(learners)} left out \u2014 "), line
        by_region = Counter(regions[e] for e in learners).most_common()
        region, n = by_region[0]
        assert f"\u2014 {n} in {region}" in line, line  # the biggest region first
        reasons = Counter(x["reason"] for x in report["left_out"] if x["series"] == series)
        top = {
            "time_not_chosen": "times that fit them serve fewer learners",
            "block_limit": "max_blocks was reached before a block reached them",
        }
        reason, count = reasons.most_common(1)[0]
        assert f"; {count}: {top[reason]}" in line, line
        assert f"of the {report['learners'].__len__()} learners planned for" in line
    # the per-learner list is not repeated per reason: the summary names each reason once
    office = next(li for li in lines if li.startswith("Office hours"))
    assert office.count("times that fit them serve fewer learners") == 1
    # only classes are recorded: the class line says how many of its left out get replays
    (classes,) = [li for li in lines if li.startswith("Live class")]
    assert re.search(r"All \d+ get replays|\d+ of the \d+ get replays", classes), classes
    assert not any("replays" in li for li in lines if not li.startswith("Live class"))


def test_each_summary_line_links_to_its_series_list(admin: httpx.Client) -> None:
    page = admin.get(PAGE).text
    summary = page.split('id="left-out-summary"', 1)[1].split("</ul>", 1)[0]
    links = re.findall(r'href="([^"]+)"', summary)
    assert links == [
        f"{PAGE}?series={key}#left-out-list" for key in ("class", "office-hours", "cowork")
    ]


def test_dst_changes_are_one_line_per_series_and_week(
    admin: httpx.Client, report: dict[str, Any]
) -> None:
    page = admin.get(PAGE)
    lines = _items(page.text, "dst-lines")
    assert len(report["dst"]) > len(lines), "the report has one record per section and region"
    learners: Counter[tuple[str, int, int]] = Counter()
    for w in report["dst"]:
        learners[(w["series"], w["week"], w["shift_minutes"])] += w["learners"]
    assert len(lines) == len(learners), lines
    for (series, week, shift), n in learners.items():
        direction = "later" if shift > 0 else "earlier"
        start = f"{TITLES[series]}: from week {week + 1}, "
        (line,) = [li for li in lines if li.startswith(start) and direction in li]
        assert f" on the clocks of {n} learner" in line, line
    for warning in report["warnings"]:  # the per-section texts are no longer listed
        assert warning not in page.text


def test_a_plan_published_without_dst_records_shows_its_warnings(
    served: Served, admin: httpx.Client, report: dict[str, Any]
) -> None:
    older = {k: v for k, v in report.items() if k != "dst"}
    with served.runtime.transaction() as db:
        row = db.scalars(select(PlanVersionRow).where(PlanVersionRow.version == 1)).one()
        row.summary = older
    try:
        page = admin.get(PAGE)
    finally:
        with served.runtime.transaction() as db:
            row = db.scalars(select(PlanVersionRow).where(PlanVersionRow.version == 1)).one()
            row.summary = report
    assert page.status_code == 200
    lines = _items(page.text, "dst-lines")
    assert lines == [w[:1].upper() + w[1:] + "." for w in report["warnings"]]
    assert len(_items(page.text, "left-out-summary")) == 3  # the rest of the card is unchanged


# --- the per-learner list ----------------------------------------------------------------------


def test_the_per_learner_list_is_collapsed_and_capped(
    admin: httpx.Client, report: dict[str, Any]
) -> None:
    page = admin.get(PAGE).text
    details = _details(page)
    opening = details.split(">", 1)[0]
    assert " open" not in opening, opening
    assert 'id="left-out"' in details  # the table is inside the collapsed <details>
    total = len({x["learner"] for x in report["left_out"]})
    assert total > SHOWN, "the example cohort leaves out more learners than the list shows"
    summary = re.search(r"<summary>(.*?)</summary>", details, re.S)
    assert summary and f"({total} learners)" in summary.group(1)
    everyone = sorted({x["learner"] for x in report["left_out"]})
    assert _listed(page) == set(everyone[:SHOWN])
    assert f"Showing the first {SHOWN} of {total}" in details
    for name in ("series", "reason", "region"):  # every select has its label
        assert f'<label for="lo-{name}">' in details and f'id="lo-{name}" name="{name}"' in details


@pytest.mark.parametrize(
    "query",
    [
        {"series": "cowork"},
        {"reason": "block_limit"},
        {"region": "Asia/*"},
        {"series": "office-hours", "reason": "time_not_chosen", "region": "America/*"},
        {"series": "class", "reason": "dst_until_week"},
    ],
    ids=["series", "reason", "region", "all_three", "series_and_reason"],
)
def test_the_filter_narrows_the_list(
    admin: httpx.Client,
    report: dict[str, Any],
    regions: dict[str, str],
    query: dict[str, str],
) -> None:
    page = admin.get(PAGE, params=query)
    assert page.status_code == 200
    details = _details(page.text)
    assert " open" in details.split(">", 1)[0]
    expected = _expected(report, regions, **query)
    everyone = {x["learner"] for x in report["left_out"]}
    assert 0 < len(expected) <= SHOWN and expected != everyone
    listed = _listed(page.text)
    assert listed == expected
    assert not listed & (everyone - expected)
    assert f"{len(expected)} of the {len(everyone)} left-out learners match" in details
    for name, value in query.items():  # the form shows the filter it applied
        select_html = details.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
        assert f'value="{html.escape(value)}" selected' in select_html
    if "series" in query:  # a row lists only the series asked for
        other = set(TITLES.values()) - {TITLES[query["series"]]}
        rows = _rows_text(page.text, "left-out")
        assert not any(f"<strong>{t}</strong>" in r for r in rows for t in other)


def test_the_selects_offer_only_values_that_occur(
    admin: httpx.Client, report: dict[str, Any], regions: dict[str, str]
) -> None:
    details = _details(admin.get(PAGE).text)

    def options(name: str) -> set[str]:
        body = details.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
        return set(re.findall(r'<option value="([^"]*)"', body)) - {""}

    assert options("series") == {x["series"] for x in report["left_out"]}
    assert options("reason") == {x["reason"] for x in report["left_out"]}
    assert options("region") == {html.escape(regions[x["learner"]]) for x in report["left_out"]}


def test_an_empty_filter_is_no_filter(admin: httpx.Client) -> None:
    page = admin.get(PAGE, params={"series": "", "reason": "", "region": "", "week": "2"})
    assert page.status_code == 200
    assert " open" not in _details(page.text).split(">", 1)[0]
    # the form keeps the heatmap's week
    assert '<input type="hidden" name="week" value="2">' in _details(page.text)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"series": "<script>alert(1)</script>"}, "series"),
        ({"series": "nope"}, "series"),
        ({"reason": "capacity"}, "reason"),  # a reason, but nobody is left out for it
        ({"region": "Mars/*"}, "region"),
        ({"region": "Asia/*\x00"}, "region"),
        ({"region": '"><img src=x onerror=alert(1)>'}, "region"),
        ({"series": "x" * 5000}, "series"),
    ],
    ids=["script", "unknown_series", "absent_reason", "unknown_region", "nul", "attribute", "huge"],
)
def test_a_filter_value_the_page_does_not_offer_is_refused_clearly(
    admin: httpx.Client, query: dict[str, str], field: str
) -> None:
    answer = admin.get(PAGE, params=query)
    assert answer.status_code == 422, answer.text[:300]
    assert f"{field}: no left-out learner has this value" in answer.text
    assert "choose one of:" in answer.text
    assert "<script>alert" not in answer.text and "<img" not in answer.text
    assert "Traceback" not in answer.text


def test_no_filter_value_makes_the_page_fail(served: Served) -> None:
    client = _login(served)
    value = st.one_of(
        st.sampled_from(["", "class", "office-hours", "time_not_chosen", "Asia/*", "?"]),
        st.text(max_size=30),
    )

    @settings(
        max_examples=30,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(series=value, reason=value, region=value)
    def check(series: str, reason: str, region: str) -> None:
        query = {"series": series, "reason": reason, "region": region}
        answer = client.get(PAGE, params=query)
        assert answer.status_code in (200, 422), (query, answer.text[:300])
        assert "<script" not in answer.text

    try:
        check()
    finally:
        client.close()
