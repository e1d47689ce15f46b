"""Email: render a notification from Jinja templates and build the MIME message to send.

The package is split by job:

- :mod:`~scheduler.outputs.email.templates`: the Jinja environment, its CSS-inlining loader and
  :class:`EmailTemplates` rendering a kind into a :class:`Rendered`;
- :mod:`~scheduler.outputs.email.filters`: the template filters (local dates, times and
  durations in the learner's zone and locale, zone labels, links);
- :mod:`~scheduler.outputs.email.headers`: the one-line rule and the hardened From, To and
  Subject header values;
- :mod:`~scheduler.outputs.email.mime`: :func:`build_message`, the message bytes (the stdlib
  ``EmailMessage`` path and the fast path for messages without a calendar).

The names below are the ones the rest of the code imports from ``scheduler.outputs.email``.
"""

from __future__ import annotations

from scheduler.outputs.email.headers import SUBJECT_LIMIT
from scheduler.outputs.email.mime import build_message, build_with_email_message
from scheduler.outputs.email.templates import KINDS, EmailTemplates, Rendered

__all__ = [
    "KINDS",
    "SUBJECT_LIMIT",
    "EmailTemplates",
    "Rendered",
    "build_message",
    "build_with_email_message",
]
