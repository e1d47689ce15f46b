"""Use cases. Each takes a session ``db`` and ``now``; the caller owns the transaction."""
