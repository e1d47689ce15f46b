"""The course runner's access: one admin token (only its hash stored), rotated by
`cohort admin token`; the dashboard exchanges it for a signed session cookie."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from scheduler.persistence.models import AdminTokenRow


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def rotate_admin_token(db: Session, now: datetime) -> tuple[str, int]:
    """A new admin token; every earlier one stops working. Returns it and how many it revoked."""
    revoked = db.execute(
        update(AdminTokenRow).where(AdminTokenRow.revoked_at.is_(None)).values(revoked_at=now)
    ).rowcount  # type: ignore[attr-defined]
    token = secrets.token_urlsafe(32)
    db.add(AdminTokenRow(token_hash=_hash(token), created_at=now))
    db.flush()
    return token, int(revoked or 0)


def admin_token_id(db: Session, token: str) -> int | None:
    """The id of the live admin token ``token`` is, else None (compared by hash)."""
    if not token or len(token) > 200:
        return None
    row = db.scalar(
        select(AdminTokenRow).where(
            AdminTokenRow.token_hash == _hash(token), AdminTokenRow.revoked_at.is_(None)
        )
    )
    return None if row is None else row.id


def token_is_live(db: Session, token_id: int) -> bool:
    row = db.get(AdminTokenRow, token_id)
    return row is not None and row.revoked_at is None


def sign(secret: bytes, value: str) -> str:
    mac = hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()
    return f"{value}.{mac}"


def unsign(secret: bytes, signed: str) -> str | None:
    value, _, mac = signed.rpartition(".")
    good = hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()
    return value if value and hmac.compare_digest(mac, good) else None
