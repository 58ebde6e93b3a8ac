"""release entries: a release's recording entries as rows (release_entries), out of releases.manifest

Existing releases are moved over: each entry of `manifest["recordings"]` becomes a row at
its position and the manifest keeps the header. The release id does not change (it
commits to the header and to `recording_digests`, never to the list itself).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 01:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BATCH = 1000
releases = sa.table('releases', sa.column('pk', sa.Integer()), sa.column('manifest', sa.JSON()))
entries = sa.table('release_entries', sa.column('release_pk', sa.Integer()), sa.column('position', sa.Integer()),
                   sa.column('entry', sa.JSON()))


def upgrade() -> None:
    op.create_table('release_entries',
    sa.Column('release_pk', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('entry', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['release_pk'], ['releases.pk'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('release_pk', 'position')
    )
    connection = op.get_bind()
    for (pk,) in connection.execute(sa.select(releases.c.pk).order_by(releases.c.pk)).all():
        manifest = connection.scalar(sa.select(releases.c.manifest).where(releases.c.pk == pk)) or {}
        recordings = manifest.pop('recordings', None) or []
        rows = [{'release_pk': pk, 'position': i, 'entry': e} for i, e in enumerate(recordings)]
        for start in range(0, len(rows), BATCH):
            connection.execute(sa.insert(entries), rows[start:start + BATCH])
        connection.execute(sa.update(releases).where(releases.c.pk == pk).values(manifest=manifest))


def downgrade() -> None:
    connection = op.get_bind()
    for (pk,) in connection.execute(sa.select(releases.c.pk).order_by(releases.c.pk)).all():
        manifest = connection.scalar(sa.select(releases.c.manifest).where(releases.c.pk == pk)) or {}
        manifest['recordings'] = list(connection.scalars(
            sa.select(entries.c.entry).where(entries.c.release_pk == pk).order_by(entries.c.position)))
        connection.execute(sa.update(releases).where(releases.c.pk == pk).values(manifest=manifest))
    op.drop_table('release_entries')
