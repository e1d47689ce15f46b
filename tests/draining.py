"""Deliver the whole outbox in the test process, batch after batch, as one worker would."""

from __future__ import annotations

import random

from scheduler.outputs.mailers import Mailer
from scheduler.runtime import Runtime
from scheduler.services.delivery import BatchCounts, deliver_batch


def drain(runtime: Runtime, mailer: Mailer, worker: str = "w1") -> BatchCounts:
    """Claim, compose, send and record until nothing is due; the counts of every batch."""
    total = BatchCounts()
    while True:
        counts = deliver_batch(
            runtime.sessions,
            mailer,
            runtime.templates(),
            runtime.delivery_config(),
            worker,
            runtime.clock.now,
            skip_locked=runtime.is_postgres,
            rng=random.Random(7),
        )
        if counts.claimed == 0:
            return total
        total.add(counts)
