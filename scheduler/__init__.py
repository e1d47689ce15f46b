"""cohort-scheduler: live sessions and soft deadlines across time zones."""

from __future__ import annotations

__version__ = "0.1.0"
