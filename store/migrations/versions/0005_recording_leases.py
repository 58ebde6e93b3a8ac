"""recording leases: concurrent pre-annotation runs claim recordings for a while (asr.batch)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recording_leases',
    sa.Column('recording_pk', sa.Integer(), nullable=False),
    sa.Column('holder', sa.String(length=128), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['recording_pk'], ['recordings.pk'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('recording_pk')
    )
    op.create_index(op.f('ix_recording_leases_expires_at'), 'recording_leases', ['expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_recording_leases_expires_at'), table_name='recording_leases')
    op.drop_table('recording_leases')
