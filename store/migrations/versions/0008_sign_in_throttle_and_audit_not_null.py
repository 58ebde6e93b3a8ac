"""sign-in throttle and a chain that cannot lose its hashes: users.failed_sign_ins, last_failed_sign_in_at, locked_until; audit hash columns NOT NULL

Events written before the chain existed (a leading run of rows with no hash at all) are
sealed into a chain of their own that starts at `LEGACY_GENESIS` instead of `GENESIS`,
so the live chain and every head hash noted earlier stay as they are and verification
still checks those rows. A row missing a hash anywhere else was tampered with: its
missing fields become '' (a break that `audit --verify` names) rather than made up.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

from store.audit import LEGACY_GENESIS, body_digest, content_digest, link_hash


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

HASH_COLUMNS = ('content_digest', 'prev_hash', 'entry_hash')
events = sa.table('audit_events', sa.column('pk', sa.Integer()), sa.column('at', sa.DateTime(timezone=True)),
                  sa.column('actor', sa.String()), sa.column('action', sa.String()), sa.column('subject', sa.String()),
                  sa.column('details', sa.JSON()), *(sa.column(c, sa.String()) for c in HASH_COLUMNS))


def _seal_legacy_and_mark_holes() -> None:
    connection = op.get_bind()
    first_chained = connection.scalar(sa.select(sa.func.min(events.c.pk)).where(events.c.entry_hash.is_not(None)))
    legacy = sa.and_(*(events.c[c].is_(None) for c in HASH_COLUMNS))
    if first_chained is not None:
        legacy = sa.and_(legacy, events.c.pk < first_chained)
    previous = LEGACY_GENESIS
    for row in connection.execute(sa.select(events).where(legacy).order_by(events.c.pk)).all():
        digest = content_digest(row.at, row.actor, row.action, body_digest(row.subject, row.details or {}))
        entry = link_hash(previous, digest)
        connection.execute(sa.update(events).where(events.c.pk == row.pk)
                           .values(content_digest=digest, prev_hash=previous, entry_hash=entry))
        previous = entry
    for column in HASH_COLUMNS:
        connection.execute(sa.update(events).where(events.c[column].is_(None)).values({column: ''}))


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_sign_ins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('last_failed_sign_in_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
    _seal_legacy_and_mark_holes()
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        for column in HASH_COLUMNS:
            batch_op.alter_column(column, existing_type=sa.String(length=64), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        for column in HASH_COLUMNS:
            batch_op.alter_column(column, existing_type=sa.String(length=64), nullable=True)
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('last_failed_sign_in_at')
        batch_op.drop_column('failed_sign_ins')
