"""pulls and do-not-collect: every pull of a release recorded; erased identifiers kept as keyed hashes

`pulls` lets an erasure rewrite the pulls under the home and list the others with who
pulled them and when. `do_not_collect` holds HMACs (never raw ids or hashes) of what was
erased on request; `store_keys` the fingerprint of the key file the HMACs need.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pulls',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('release_pk', sa.Integer(), nullable=False),
    sa.Column('format', sa.String(length=32), nullable=False),
    sa.Column('audio', sa.String(length=16), nullable=False),
    sa.Column('path', sa.String(length=4096), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pulled_by', sa.String(length=128), nullable=False),
    sa.Column('pulled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('removed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('removed_reason', sa.String(length=128), server_default='', nullable=False),
    sa.ForeignKeyConstraint(['release_pk'], ['releases.pk'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk')
    )
    op.create_index(op.f('ix_pulls_release_pk'), 'pulls', ['release_pk'], unique=False)
    op.create_table('do_not_collect',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('tombstone_id', sa.String(length=64), nullable=False),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('digest')
    )
    op.create_table('store_keys',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('store_keys')
    op.drop_table('do_not_collect')
    op.drop_index(op.f('ix_pulls_release_pk'), table_name='pulls')
    op.drop_table('pulls')
