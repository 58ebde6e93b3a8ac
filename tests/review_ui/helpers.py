"""Small builders for the review workflow tests (beside the shared fixtures in conftest.py)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.accounts import Principal
from store.db import Store
from review_ui import submission


def turn(speaker: str, start: float, end: float, text: str) -> dict[str, Any]:
    return {"speaker": speaker, "start": start, "end": end, "text": text, "words": []}


def submit(session: Session, task: models.Task, turns: list[dict[str, Any]], author: str | None = None,
           at: dt.datetime | None = None) -> models.TranscriptRevision:
    """What the editor's submit does to the store, without the editor: a submitted revision, then the submission."""
    revision = models.TranscriptRevision(recording_pk=task.recording_pk, author_kind="person", author=author or task.assignee,
                                         turns=turns, stage="submitted", task_pk=task.pk,
                                         **({"created_at": at} if at is not None else {}))
    session.add(revision)
    session.flush()
    task.head_revision_pk, task.version = revision.pk, (task.version or 0) + 1
    submission.after_submit(session, task, revision, author or task.assignee or "test")
    session.flush()
    return revision


def tasks_of(session: Session, *, kind: str | None = None, assignee: str | None = None) -> list[models.Task]:
    query = select(models.Task).order_by(models.Task.pk)
    if kind is not None:
        query = query.where(models.Task.kind == kind)
    if assignee is not None:
        query = query.where(models.Task.assignee == assignee)
    return list(session.scalars(query))


def approve_directly(session: Session, recording_pk: int, turns: list[dict[str, Any]], author: str = "rev0") -> models.TranscriptRevision:
    """An approved revision written straight into the store (the state a finished review leaves)."""
    revision = models.TranscriptRevision(recording_pk=recording_pk, author_kind="person", author=author, turns=turns, stage="approved")
    session.add(revision)
    session.flush()
    return revision


def make_gold(session: Session, manager: Principal, recording_pk: int, turns: list[dict[str, Any]]) -> models.TranscriptRevision:
    from review_ui.calibration import make_gold as make

    approve_directly(session, recording_pk, turns)
    return make(session, manager, recording_pk)


@contextmanager
def task_locked(store: Store, task_pk: int) -> Iterator[None]:
    """Another transaction holds the task (PostgreSQL: its row; SQLite: the write lock), as a long report or a backup
    can: a save waits at its version check until it ends."""
    if store.engine.dialect.name == "sqlite":
        conn = sqlite3.connect(str(store.engine.url.database), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    with store.engine.connect() as conn, conn.begin():
        conn.execute(select(models.Task.pk).where(models.Task.pk == task_pk).with_for_update())
        yield
