"""One golden email per shipped language: the live-session reminder a learner reads, subject
and plain text, from the real catalogs. A change to a template or a catalog shows here as a
diff to review; regenerate with ``UPDATE_GOLDEN=1 pytest tests/unit/outputs/test_email_golden_i18n.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import test_email as base  # the contexts of test_email.py (pytest puts this folder on sys.path)

from scheduler.outputs.email import EmailTemplates
from scheduler.outputs.i18n import SHIPPED, text_direction, translations
from scheduler.services.compose import lead_text

templates = base.templates  # module fixture shared with test_email.py
make_context = base.make_context

GOLDEN = Path(__file__).parent / "golden" / "i18n"
ZONES = {"ar": "Africa/Cairo", "de": "Europe/Berlin", "es": "America/Bogota", "fr": "Europe/Paris"}
ZONES |= {"ja": "Asia/Tokyo", "pt_BR": "America/Sao_Paulo"}


@pytest.mark.parametrize("language", SHIPPED)
def test_the_live_reminder_reads_as_written_in_each_language(
    templates: EmailTemplates, make_context: Callable[..., dict[str, Any]], language: str
) -> None:
    context = make_context("live_reminder", locale=language, zone=ZONES[language])
    context["session"]["lead"] = lead_text(timedelta(hours=1), translations(language))
    rendered = templates.render("live_reminder", context)
    shown = f"Subject: {rendered.subject}\n\n{rendered.text}"
    golden = GOLDEN / f"live_reminder.{language}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(shown, encoding="utf-8")
    assert shown == golden.read_text(encoding="utf-8")
    direction = text_direction(language)
    assert f'dir="{direction}"' in rendered.html
    english = make_context("live_reminder")
    english["session"]["lead"] = lead_text(timedelta(hours=1))
    assert templates.render("live_reminder", english).subject != rendered.subject  # translated
