"""The words a person sees for a kind of schedule entry and for a section, in one place.

Every output (the dashboard, the learner page, the CLI's tables, feeds, invitations) names a
series kind and a section through these, so a label changes once.
"""

from __future__ import annotations

from scheduler.domain.cohort import SeriesKind

KIND_LABELS: dict[str, str] = {
    SeriesKind.CLASS.value: "Live class",
    SeriesKind.OFFICE_HOURS.value: "Office hours",
    SeriesKind.COWORKING.value: "Co-working",
    "assignment": "Due",
    "catch_up": "Catch up",
    "replay": "Replay",
}


def kind_label(kind: str) -> str:
    """``"Live class"`` for ``"class"``; an unknown kind is shown as it is stored."""
    return KIND_LABELS.get(kind, kind)


def section_suffix(section: int, sections: int) -> str:
    """``" · section 2"`` for the second of several sections (0-based ``section``); ``""``
    when the series has one section."""
    return f" · section {section + 1}" if sections > 1 else ""


def meeting_title(title: str, kind: str, section: int, sections: int) -> str:
    """What a learner's calendar, page and reminders call a meeting: ``Live class · section 2``
    when the series has several sections; a co-working block keeps its title (a learner joins
    whichever block fits them, so its number means nothing to them)."""
    if kind == SeriesKind.COWORKING.value:
        return title
    return title + section_suffix(section, sections)


def section_title(title: str, kind: str, section: int, sections: int) -> str:
    """What the runner's views call one section of a series: ``Live class · section 2``;
    co-working blocks are numbered (``Co-working block 3``)."""
    if sections <= 1:
        return title
    if kind == SeriesKind.COWORKING.value:
        return f"{title} {section + 1}"
    return title + section_suffix(section, sections)
