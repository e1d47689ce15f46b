"""catching up: a cohort's [catch_up] options and the shifts learners made of their deadlines

Revision ID: 0015_catch_up
Revises: 0014_preferences
Create Date: 2026-12-06 23:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import scheduler.persistence.types


revision: str = '0015_catch_up'
down_revision: str | None = '0014_preferences'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('catch_up_rule',
    sa.Column('cohort_id', sa.Integer(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('max_shift_days', sa.Integer(), nullable=False),
    sa.Column('max_shifts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['cohort_id'], ['cohort.id'], name=op.f('fk_catch_up_rule_cohort_id_cohort'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('cohort_id', name=op.f('pk_catch_up_rule'))
    )
    op.create_table('catch_up_shift',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cohort_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('at', scheduler.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['cohort_id'], ['cohort.id'], name=op.f('fk_catch_up_shift_cohort_id_cohort'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_catch_up_shift_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catch_up_shift'))
    )
    with op.batch_alter_table('catch_up_shift', schema=None) as batch_op:
        batch_op.create_index('ix_catch_up_shift_cohort_id', ['cohort_id', 'person_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('catch_up_shift', schema=None) as batch_op:
        batch_op.drop_index('ix_catch_up_shift_cohort_id')
    op.drop_table('catch_up_shift')
    op.drop_table('catch_up_rule')
