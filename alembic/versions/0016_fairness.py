"""fairness: stretch hours (learners and the cohort's default), a series' fairness options, and
the weekly times and week-to-time mapping of a published fair rotation

Revision ID: 0016_fairness
Revises: 0015_catch_up
Create Date: 2026-12-07 00:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0016_fairness'
down_revision: str | None = '0015_catch_up'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cohort', schema=None) as batch_op:
        batch_op.add_column(sa.Column('default_stretch', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('regions', sa.JSON(), nullable=True))
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stretch', sa.String(length=500), nullable=True))
    with op.batch_alter_table('series_request', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fairness', sa.String(length=10), server_default='none', nullable=False))
        batch_op.add_column(sa.Column('rotate_times', sa.Integer(), server_default='2', nullable=False))
        batch_op.add_column(sa.Column('max_coverage_loss', sa.Float(), server_default='0.05', nullable=False))
    with op.batch_alter_table('live_series', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rotation', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('rotation_weeks', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('live_series', schema=None) as batch_op:
        batch_op.drop_column('rotation_weeks')
        batch_op.drop_column('rotation')
    with op.batch_alter_table('series_request', schema=None) as batch_op:
        batch_op.drop_column('max_coverage_loss')
        batch_op.drop_column('rotate_times')
        batch_op.drop_column('fairness')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('stretch')
    with op.batch_alter_table('cohort', schema=None) as batch_op:
        batch_op.drop_column('regions')
        batch_op.drop_column('default_stretch')
