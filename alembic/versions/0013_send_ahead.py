"""send ahead inside a window, at the mail server's rate: notification.not_before, the shared
pacer row, each worker's measured sending rate, each reminder rule's early

Revision ID: 0013_send_ahead
Revises: 0012_admin_sessions
Create Date: 2026-12-06 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import scheduler.persistence.types


revision: str = '0013_send_ahead'
down_revision: str | None = '0012_admin_sessions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('not_before', scheduler.persistence.types.UTCDateTime(timezone=True), nullable=True))
    # rows queued before the upgrade keep today's behaviour: nothing before its due time
    op.execute("UPDATE notification SET not_before = due_at")
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.alter_column('not_before', existing_type=scheduler.persistence.types.UTCDateTime(timezone=True), nullable=False)
    with op.batch_alter_table('reminder_rule', schema=None) as batch_op:
        batch_op.add_column(sa.Column('early_seconds', sa.Integer(), server_default='300', nullable=False))
    with op.batch_alter_table('worker', schema=None) as batch_op:
        batch_op.add_column(sa.Column('send_rate', sa.Float(), nullable=True))
    op.create_table('send_pacer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rate', sa.Float(), nullable=True),
    sa.Column('next_free', scheduler.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('slowed_at', scheduler.persistence.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', scheduler.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_send_pacer'))
    )


def downgrade() -> None:
    op.drop_table('send_pacer')
    with op.batch_alter_table('worker', schema=None) as batch_op:
        batch_op.drop_column('send_rate')
    with op.batch_alter_table('reminder_rule', schema=None) as batch_op:
        batch_op.drop_column('early_seconds')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('not_before')
