"""web sessions: a signed-in browser survives a reload until it expires or signs out

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 08:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_sessions',
    sa.Column('token_sha256', sa.String(length=64), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['username'], ['users.username'], ),
    sa.PrimaryKeyConstraint('token_sha256')
    )
    op.create_index(op.f('ix_web_sessions_username'), 'web_sessions', ['username'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_web_sessions_username'), table_name='web_sessions')
    op.drop_table('web_sessions')
