"""orchestration options of a cohort: auto re-plan, freeze horizon, margin, move cap, pod lead

Revision ID: 0011_orchestration
Revises: 0010_audit_log
Create Date: 2026-11-29 16:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0011_orchestration'
down_revision: str | None = '0010_audit_log'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cohort', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_replan', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('freeze_minutes', sa.Integer(), server_default='10080', nullable=False))
        batch_op.add_column(sa.Column('replan_margin', sa.Float(), server_default='0.05', nullable=False))
        batch_op.add_column(sa.Column('max_moves', sa.Integer(), server_default='2', nullable=False))
        batch_op.add_column(sa.Column('pods_before_minutes', sa.Integer(), server_default='120', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('cohort', schema=None) as batch_op:
        batch_op.drop_column('pods_before_minutes')
        batch_op.drop_column('max_moves')
        batch_op.drop_column('replan_margin')
        batch_op.drop_column('freeze_minutes')
        batch_op.drop_column('auto_replan')
