"""review and governance: accounts, calibration, task fields, comments, work time, PII spans, tombstones, release speakers, audit hash chain

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 00:16:27.187658
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tombstones',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('tombstone_id', sa.String(length=64), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('erased_by', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('counts', sa.JSON(), nullable=False),
    sa.Column('releases_affected', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('pk'),
    sa.UniqueConstraint('tombstone_id')
    )
    op.create_table('users',
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('display_name', sa.String(length=256), nullable=False),
    sa.Column('password_hash', sa.String(length=256), nullable=False),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('groups', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('username')
    )
    op.create_table('calibrations',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('language', sa.String(length=32), nullable=False),
    sa.Column('accent', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['username'], ['users.username'], ),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('calibrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calibrations_username'), ['username'], unique=False)

    op.create_table('release_speakers',
    sa.Column('release_pk', sa.Integer(), nullable=False),
    sa.Column('speaker_id', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['release_pk'], ['releases.pk'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('release_pk', 'speaker_id')
    )
    with op.batch_alter_table('release_speakers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_release_speakers_speaker_id'), ['speaker_id'], unique=False)

    op.create_table('work_intervals',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=128), nullable=False),
    sa.Column('task_pk', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_pk'], ['tasks.pk'], ),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('work_intervals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_intervals_task_pk'), ['task_pk'], unique=False)
        batch_op.create_index(batch_op.f('ix_work_intervals_username'), ['username'], unique=False)

    op.create_table('pii_spans',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('revision_pk', sa.Integer(), nullable=False),
    sa.Column('turn_index', sa.Integer(), nullable=False),
    sa.Column('word_start', sa.Integer(), nullable=False),
    sa.Column('word_end', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['revision_pk'], ['transcript_revisions.pk'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('pii_spans', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pii_spans_revision_pk'), ['revision_pk'], unique=False)

    op.create_table('review_comments',
    sa.Column('pk', sa.Integer(), nullable=False),
    sa.Column('task_pk', sa.Integer(), nullable=False),
    sa.Column('revision_pk', sa.Integer(), nullable=False),
    sa.Column('turn_index', sa.Integer(), nullable=True),
    sa.Column('author', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['revision_pk'], ['transcript_revisions.pk'], ),
    sa.ForeignKeyConstraint(['task_pk'], ['tasks.pk'], ),
    sa.PrimaryKeyConstraint('pk')
    )
    with op.batch_alter_table('review_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_comments_task_pk'), ['task_pk'], unique=False)

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content_digest', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('entry_hash', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint('uq_audit_prev_hash', ['prev_hash'])

    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('card', sa.JSON(), server_default=sa.text("'{}'"), nullable=False))
        batch_op.add_column(sa.Column('parent_pk', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('created_by', sa.String(length=128), server_default='', nullable=False))
        batch_op.create_foreign_key('fk_releases_parent', 'releases', ['parent_pk'], ['pk'])

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('start_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('end_s', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('pair_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('blind', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('head_revision_pk', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_tasks_pair_key'), ['pair_key'], unique=False)

    with op.batch_alter_table('transcript_revisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('stage', sa.String(length=16), server_default='model', nullable=False))
        batch_op.add_column(sa.Column('task_pk', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_transcript_revisions_stage'), ['stage'], unique=False)
        batch_op.create_index(batch_op.f('ix_transcript_revisions_task_pk'), ['task_pk'], unique=False)
        batch_op.create_foreign_key('fk_revisions_task', 'tasks', ['task_pk'], ['pk'])



def downgrade() -> None:
    with op.batch_alter_table('transcript_revisions', schema=None) as batch_op:
        batch_op.drop_constraint('fk_revisions_task', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_transcript_revisions_task_pk'))
        batch_op.drop_index(batch_op.f('ix_transcript_revisions_stage'))
        batch_op.drop_column('task_pk')
        batch_op.drop_column('stage')

    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tasks_pair_key'))
        batch_op.drop_column('due_at')
        batch_op.drop_column('version')
        batch_op.drop_column('head_revision_pk')
        batch_op.drop_column('blind')
        batch_op.drop_column('pair_key')
        batch_op.drop_column('end_s')
        batch_op.drop_column('start_s')

    with op.batch_alter_table('releases', schema=None) as batch_op:
        batch_op.drop_constraint('fk_releases_parent', type_='foreignkey')
        batch_op.drop_column('created_by')
        batch_op.drop_column('parent_pk')
        batch_op.drop_column('card')

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_constraint('uq_audit_prev_hash', type_='unique')
        batch_op.drop_column('entry_hash')
        batch_op.drop_column('prev_hash')
        batch_op.drop_column('content_digest')

    with op.batch_alter_table('review_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_comments_task_pk'))

    op.drop_table('review_comments')
    with op.batch_alter_table('pii_spans', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pii_spans_revision_pk'))

    op.drop_table('pii_spans')
    with op.batch_alter_table('work_intervals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_intervals_username'))
        batch_op.drop_index(batch_op.f('ix_work_intervals_task_pk'))

    op.drop_table('work_intervals')
    with op.batch_alter_table('release_speakers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_release_speakers_speaker_id'))

    op.drop_table('release_speakers')
    with op.batch_alter_table('calibrations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calibrations_username'))

    op.drop_table('calibrations')
    op.drop_table('users')
    op.drop_table('tombstones')
