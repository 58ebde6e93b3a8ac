"""model bundles: a protocol's default models; each pre-annotation's bundles by checksum

`protocol_model_choices` is what `turnscribe models use` sets (newest per protocol id and
role wins). `transcript_revisions.asr_bundle_sha256` / `diarizer_bundle_sha256` name the
model bundles (asr/model_bundles.py) that produced a pre-annotation; older revisions keep
NULL there: what made them was not recorded by checksum.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 12:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('protocol_model_choices',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('protocol_id', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('bundle', sa.String(length=64), nullable=False),
    sa.Column('checksum', sa.String(length=64), nullable=False),
    sa.Column('chosen_by', sa.String(length=128), nullable=False),
    sa.Column('chosen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk')
    )
    op.create_index('ix_protocol_model_choice', 'protocol_model_choices', ['protocol_id', 'role', 'pk'], unique=False)
    with op.batch_alter_table('transcript_revisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('asr_bundle_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('diarizer_bundle_sha256', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_transcript_revisions_asr_bundle_sha256'), ['asr_bundle_sha256'], unique=False)


def downgrade() -> None:
    # plain ALTER TABLE … DROP COLUMN (SQLite >= 3.35 has it): a batch rebuild would drop and recreate
    # transcript_revisions, which the foreign keys of other tables (PII spans, comments) refuse
    op.drop_index('ix_transcript_revisions_asr_bundle_sha256', table_name='transcript_revisions')
    op.drop_column('transcript_revisions', 'diarizer_bundle_sha256')
    op.drop_column('transcript_revisions', 'asr_bundle_sha256')
    op.drop_index('ix_protocol_model_choice', table_name='protocol_model_choices')
    op.drop_table('protocol_model_choices')
