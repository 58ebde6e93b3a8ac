"""What an editor save's rerun reads, on SQLite and PostgreSQL: the view a save leaves is the one `open_task` would
show, so the rerun checks one task row instead of re-reading the whole task; the whole task is read again when that
row changed (another tab saved) and the rights are checked on it (a task taken away is refused); a stale save still
conflicts; and a save of a task whose recording has no personal-data marks does not walk the revision lineage."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from store import models
from store.accounts import PermissionDenied
from store.db import Store
from store.pii_spans import mark_span
from review_ui.editing import refresh_view, save_draft
from review_ui.editor_component.bridge import EditorSession, first_window, handle
from review_ui.realign import Realigner
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_editing import make_task
from tests.review_ui.test_editor_bridge import _open, message


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """The SQL statements the store's engine runs inside the block."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", note)


def test_a_save_leaves_the_view_open_task_shows_and_the_rerun_reads_the_whole_task_only_when_its_row_changed(
        review_store: ReviewStore) -> None:
    store = review_store.store
    ann1 = review_store.add_user("ann1", "annotator")
    review_store.add_user("ann2", "annotator")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    state = EditorSession(task_pk, first_window(view, 0))
    mine = [{**view.turns[0], "text": "Saved from this tab."}, *view.turns[1:]]
    assert handle(store, ann1, view, state, message(1, "save", 0, mine)) and state.ack["ok"]
    assert state.saved_view == _open(review_store, ann1, task_pk), "what a whole re-read would show"
    assert state.saved_view.version == 1 and state.saved_view.state == "in_progress"
    with store.session() as session, statements(store) as seen:
        assert refresh_view(session, ann1, store.blobs, state.saved_view) is state.saved_view
    assert len(seen) == 1 and "FROM tasks" in seen[0], f"one task row read, not the whole task: {seen}"

    with store.session() as session:  # another tab of the same person saves: the row no longer matches
        save_draft(session, ann1, task_pk, 1, [{**view.turns[0], "text": "From the other tab."}, *view.turns[1:]],
                   realigner=Realigner.of(store))
    with store.session() as session:
        fresh = refresh_view(session, ann1, store.blobs, state.saved_view)
    assert fresh == _open(review_store, ann1, task_pk) and fresh.version == 2
    assert fresh.turns[0]["text"] == "From the other tab."

    handle(store, ann1, fresh, state, message(2, "save", 1, mine))  # this tab's stale version still conflicts
    assert state.ack["ok"] is False and state.ack["conflict"]["theirs_version"] == 2 and state.saved_view is None
    with store.session() as session:
        assert session.get(models.Task, task_pk).version == 2, "nothing stored over theirs"
        session.get(models.Task, task_pk).state = "submitted"  # (as another tab's submit leaves it)
        session.commit()
    with store.session() as session:
        done = refresh_view(session, ann1, store.blobs, fresh)
    assert done.state == "submitted" and not done.editable
    with store.session() as session:
        session.get(models.Task, task_pk).assignee = "ann2"  # taken away: the row matches the view but for the assignee
        session.commit()
    with store.session() as session, pytest.raises(PermissionDenied):
        refresh_view(session, ann1, store.blobs, done)


def test_a_save_without_personal_data_marks_does_not_walk_the_lineage_and_one_with_marks_carries_them(
        review_store: ReviewStore) -> None:
    store = review_store.store
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    state = EditorSession(task_pk, first_window(view, 0))
    turns = [{**view.turns[0], "text": "call me on five five five"}, *view.turns[1:]]
    with statements(store) as seen:
        handle(store, ann1, view, state, message(1, "save", 0, turns))
    assert state.ack["ok"] and state.ack["pii"] == []
    assert not any("lineage" in s for s in seen), "no marks on the recording: the lineage is not walked"
    with store.session() as session:
        mark_span(session, ann1, session.get(models.Task, task_pk).head_revision_pk, 0, 3, 6, "phone")
        session.commit()
    with statements(store) as seen:
        handle(store, ann1, view, state, message(2, "save", 1, [{**turns[1], "text": turns[1]["text"] + " ok"} if i == 1
                                                               else t for i, t in enumerate(turns)]))
    assert state.ack["ok"] and any("lineage" in s for s in seen)
    assert [(s["turn"], s["word_start"], s["word_end"], s["kind"]) for s in state.ack["pii"]] == [(0, 3, 6, "phone")], \
        "the mark on the parent is carried to the new revision"
