"""The course runner's access, and the keys the server signs with.

* One admin token (only its hash stored), rotated by `cohort admin token`; rotating it revokes
  every earlier token and ends every dashboard session made from one.
* A dashboard session is a row (``admin_session``): the cookie carries a random session id,
  the table only its SHA-256. Logging out revokes the row, so a copied cookie stops working too.
* One key per purpose: :func:`purpose_key` derives it from the server's secret with HMAC and a
  purpose label, so a value signed (or a MAC made) for one purpose never verifies for another
  and a leaked purpose key reveals neither the secret nor the other keys. Nothing signs with
  the bare secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from scheduler.persistence.models import AdminSessionRow, AdminTokenRow
from scheduler.settings import MIN_SECRET_KEY_BYTES

# What the server's secret signs; each gets its own key (see purpose_key). Mail tokens keep
# their own derivation under the secret, with a label of their own (services.feeds.mail_tokens).
Purpose = Literal["session", "flash", "csrf"]
MAX_SIGNED = 4096  # longer signed values are refused unread (a cookie is at most ~4 KB)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- keys and signatures -----------------------------------------------------------------------


def purpose_key(secret: bytes, purpose: Purpose) -> bytes:
    """The key for one purpose: HMAC-SHA256 of a purpose label under the server's secret.

    Raises ``ValueError`` for a secret shorter than ``MIN_SECRET_KEY_BYTES`` (the settings and
    the key file refuse one first: this is the last line of defence against an empty key).
    """
    if len(secret) < MIN_SECRET_KEY_BYTES:
        raise ValueError(f"the secret key is too short (at least {MIN_SECRET_KEY_BYTES} bytes)")
    label = f"cohort-scheduler purpose key v1: {purpose}"
    return hmac.new(secret, label.encode(), hashlib.sha256).digest()


def mac(secret: bytes, purpose: Purpose, message: str) -> str:
    """The hex HMAC-SHA256 of ``message`` under ``purpose``'s key (e.g. a CSRF token)."""
    key = purpose_key(secret, purpose)
    return hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def sign(secret: bytes, purpose: Purpose, value: str) -> str:
    """``value.MAC``: ``value`` (ASCII: it goes in a cookie) signed for ``purpose``;
    :func:`unsign` with the same purpose gives it back, with any other gives None."""
    if not value.isascii():
        raise ValueError("only ASCII values are signed")
    return f"{value}.{mac(secret, purpose, value)}"


def unsign(secret: bytes, purpose: Purpose, signed: str) -> str | None:
    """The value of ``signed`` if it was signed for ``purpose`` with ``secret``, else None.

    Never raises, whatever comes in (a cookie is attacker-controlled): non-ASCII text, no
    dot, an empty value or an oversized one is simply not a valid signature.
    """
    if not isinstance(signed, str) or len(signed) > MAX_SIGNED or not signed.isascii():
        return None
    value, dot, given = signed.rpartition(".")
    if not dot or not value:
        return None
    good = mac(secret, purpose, value)
    return value if hmac.compare_digest(given.encode(), good.encode()) else None


# --- admin tokens ------------------------------------------------------------------------------


def rotate_admin_token(db: Session, now: datetime) -> tuple[str, int]:
    """A new admin token; every earlier one stops working, and every dashboard session with it.
    Returns the token and how many tokens it revoked."""
    revoked = db.execute(
        update(AdminTokenRow).where(AdminTokenRow.revoked_at.is_(None)).values(revoked_at=now)
    ).rowcount  # type: ignore[attr-defined]
    db.execute(
        update(AdminSessionRow).where(AdminSessionRow.revoked_at.is_(None)).values(revoked_at=now)
    )
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


# --- dashboard sessions ------------------------------------------------------------------------


def open_session(db: Session, token_id: int, now: datetime, lifetime: timedelta) -> str:
    """A new session for the admin token ``token_id``, live until ``now + lifetime``; returns
    its id (only the id's SHA-256 is stored). Sessions that have ended are deleted."""
    db.execute(delete(AdminSessionRow).where(AdminSessionRow.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    db.add(
        AdminSessionRow(
            session_hash=_hash(session_id),
            token_id=token_id,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    db.flush()
    return session_id


def live_session(db: Session, session_id: str, now: datetime) -> int | None:
    """The admin token id of session ``session_id`` if it is live (not logged out, not expired,
    its token not rotated), else None. One lookup by primary key."""
    if not session_id or len(session_id) > 200:
        return None
    return db.scalar(
        select(AdminSessionRow.token_id)
        .join(AdminTokenRow, AdminTokenRow.id == AdminSessionRow.token_id)
        .where(
            AdminSessionRow.session_hash == _hash(session_id),
            AdminSessionRow.revoked_at.is_(None),
            AdminSessionRow.expires_at > now,
            AdminTokenRow.revoked_at.is_(None),
        )
    )


def close_session(db: Session, session_id: str, now: datetime) -> bool:
    """End session ``session_id`` (logout); False if it was not live."""
    closed = db.execute(
        update(AdminSessionRow)
        .where(
            AdminSessionRow.session_hash == _hash(session_id), AdminSessionRow.revoked_at.is_(None)
        )
        .values(revoked_at=now)
    ).rowcount  # type: ignore[attr-defined]
    return bool(closed)
