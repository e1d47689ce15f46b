"""admin sessions kept server-side; links of withdrawn learners revoked

Revision ID: 0012_admin_sessions
Revises: 0011_orchestration
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import scheduler.persistence.types


revision: str = '0012_admin_sessions'
down_revision: str | None = '0011_orchestration'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('admin_session',
    sa.Column('session_hash', sa.String(length=64), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('created_at', scheduler.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', scheduler.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', scheduler.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['token_id'], ['admin_token.id'], name=op.f('fk_admin_session_token_id_admin_token'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('session_hash', name=op.f('pk_admin_session'))
    )
    # Earlier versions left a withdrawn person's links live (and working again if they came
    # back): revoke them now, as of when the person left. Not undone by the downgrade.
    op.execute(
        """
        UPDATE feed_token SET revoked_at = (
            SELECT COALESCE(enrollment.left_at, enrollment.enrolled_at) FROM enrollment
            WHERE enrollment.cohort_id = feed_token.cohort_id
              AND enrollment.person_id = feed_token.person_id
        )
        WHERE feed_token.revoked_at IS NULL
          AND EXISTS (
            SELECT 1 FROM enrollment
            WHERE enrollment.cohort_id = feed_token.cohort_id
              AND enrollment.person_id = feed_token.person_id
              AND enrollment.status = 'withdrawn'
          )
        """
    )


def downgrade() -> None:
    op.drop_table('admin_session')
