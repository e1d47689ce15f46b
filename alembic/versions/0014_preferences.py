"""learners' reminder preferences: the kinds (and live reminder rules) each learner turned off,
and a pause through a date

Revision ID: 0014_preferences
Revises: 0013_send_ahead
Create Date: 2026-12-06 23:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import scheduler.persistence.types


revision: str = '0014_preferences'
down_revision: str | None = '0013_send_ahead'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reminder_opt_out',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cohort_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=30), nullable=False),
    sa.Column('rule', sa.String(length=40), server_default='', nullable=False),
    sa.Column('created_at', scheduler.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cohort_id'], ['cohort.id'], name=op.f('fk_reminder_opt_out_cohort_id_cohort'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_reminder_opt_out_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reminder_opt_out')),
    sa.UniqueConstraint('cohort_id', 'person_id', 'kind', 'rule', name=op.f('uq_reminder_opt_out_cohort_id'))
    )
    op.create_table('reminder_pause',
    sa.Column('cohort_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('paused_until', sa.Date(), nullable=False),
    sa.Column('updated_at', scheduler.persistence.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['cohort_id'], ['cohort.id'], name=op.f('fk_reminder_pause_cohort_id_cohort'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_reminder_pause_person_id_person'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('cohort_id', 'person_id', name=op.f('pk_reminder_pause'))
    )


def downgrade() -> None:
    op.drop_table('reminder_pause')
    op.drop_table('reminder_opt_out')
