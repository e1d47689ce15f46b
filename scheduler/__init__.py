"""cohort-scheduler: live sessions and soft deadlines for cohorts spread over the world's time zones."""

from __future__ import annotations

__version__ = "0.1.0"
