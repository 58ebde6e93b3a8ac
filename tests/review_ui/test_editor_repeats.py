"""A save or submit the editor repeats (no answer within 5 s) is stored once and answered as stored, on SQLite and
PostgreSQL: when the server forgot its answer (a new server session: a restart) and when the repeat is handled
while the first copy still is (Streamlit starts a new script run for it at once). A save whose id is no longer
the head's still meets the conflict it is (someone saved on top)."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import func, select

from store import models
from store.accounts import Principal
from review_ui.editing import TaskView, open_task, save_draft
from review_ui.editor_component.bridge import EditorSession, first_window, handle
from review_ui.realign import Realigner
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.helpers import task_locked
from tests.review_ui.test_editing import make_task
from tests.review_ui.test_editor_bridge import message


def _open(rs: ReviewStore, who: Principal, task_pk: int) -> TaskView:
    with rs.store.session() as session:
        return open_task(session, who, rs.store.blobs, task_pk)


def _stored(rs: ReviewStore, task_pk: int) -> list[tuple[str, str]]:
    """(stage, first turn's text) of each person's revision of the task, oldest first."""
    rev = models.TranscriptRevision
    with rs.store.session() as session:
        return [(r.stage, r.turns[0]["text"]) for r in session.scalars(
            select(rev).where(rev.task_pk == task_pk, rev.author_kind == "person").order_by(rev.pk))]


def _count(rs: ReviewStore, model: Any, *where: Any) -> int:
    with rs.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_a_repeat_the_server_forgot_is_answered_as_the_save_and_the_submit_it_repeats(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    review_store.add_user("rev1", "reviewer")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    mine = [{**view.turns[0], "text": "Saved once."}, *view.turns[1:]]
    first = EditorSession(task_pk, first_window(view, 0))
    assert handle(review_store.store, ann1, view, first, message(1, "save", 0, mine))
    assert first.ack["ok"] and first.ack["version"] == 1
    restarted = EditorSession(task_pk, first_window(view, 0))  # the server's memory of its answers is gone
    assert handle(review_store.store, ann1, view, restarted, {**message(1, "save", 0, mine), "attempt": 1})
    assert restarted.ack == first.ack, "the repeat is answered as the save it repeats"
    assert _stored(review_store, task_pk) == [("draft", "Saved once.")]

    done = [{**view.turns[0], "text": "Submitted once."}, *view.turns[1:]]
    assert handle(review_store.store, ann1, view, first, message(2, "submit", 1, done))
    assert first.ack["ok"] and first.ack["submitted"] and first.ack["version"] == 2
    again = EditorSession(task_pk, first_window(view, 0))
    assert handle(review_store.store, ann1, view, again, {**message(2, "submit", 1, done), "attempt": 1})
    assert again.ack == first.ack, "not refused as an edit of a submitted task: it is that submit"
    assert _stored(review_store, task_pk) == [("draft", "Saved once."), ("submitted", "Submitted once.")]
    assert _count(review_store, models.Task, models.Task.kind == "review") == 1, "handed to review once"
    assert _count(review_store, models.AuditEvent, models.AuditEvent.action == "save_conflict") == 0

    stranger = EditorSession(task_pk, first_window(view, 0))  # another tab's message 2 is not this submit
    handle(review_store.store, ann1, view, stranger, message(2, "submit", 1, done, mount="tab-b"))
    assert stranger.ack["ok"] is False and "can no longer be edited" in stranger.ack["error"]


def _handled_twice_at_once(rs: ReviewStore, who: Principal, view: TaskView, task_pk: int,
                           msg: dict[str, Any]) -> list[EditorSession]:
    """Two script runs of one session handle copies of `msg`: both wait at the version check, then race for it."""
    runs = [EditorSession(task_pk, first_window(view, 0)) for _ in range(2)]
    with task_locked(rs.store, task_pk):
        threads = [threading.Thread(target=handle, args=(rs.store, who, view, run, {**msg, "attempt": n}))
                   for n, run in enumerate(runs)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
    for thread in threads:
        thread.join(timeout=60)
    return runs


def test_a_save_saved_over_since_still_conflicts(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    mine = [{**view.turns[0], "text": "Mine."}, *view.turns[1:]]
    assert handle(review_store.store, ann1, view, EditorSession(task_pk, first_window(view, 0)), message(1, "save", 0, mine))
    with review_store.store.session() as session:  # another tab saves on top before the repeat arrives
        save_draft(session, ann1, task_pk, 1, [{**view.turns[0], "text": "Theirs."}, *view.turns[1:]],
                   realigner=Realigner.of(review_store.store), save_id="tab-b:1")
    late = EditorSession(task_pk, first_window(view, 0))
    handle(review_store.store, ann1, view, late, {**message(1, "save", 0, mine), "attempt": 1})
    assert late.ack["ok"] is False and late.ack["conflict"]["theirs_version"] == 2
    assert _stored(review_store, task_pk) == [("draft", "Mine."), ("draft", "Theirs.")]


def test_a_repeat_handled_while_the_first_copy_still_is_stores_it_once(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    review_store.add_user("rev1", "reviewer")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    for seq, op in ((1, "save"), (2, "submit")):
        base = seq - 1
        turns = [{**view.turns[0], "text": f"{op} at once"}, *view.turns[1:]]
        runs = _handled_twice_at_once(review_store, ann1, view, task_pk, message(seq, op, base, turns))
        assert [(r.ack or {}).get("ok") for r in runs] == [True, True], [r.ack for r in runs]
        assert {r.ack["version"] for r in runs} == {seq}, "both answered with the one revision stored"
    assert _stored(review_store, task_pk) == [("draft", "save at once"), ("submitted", "submit at once")]
    assert _count(review_store, models.Task, models.Task.kind == "review") == 1
    assert _count(review_store, models.AuditEvent, models.AuditEvent.action == "save_conflict") == 0


def _mark_message(seq: int, base: int, turns: list[dict[str, Any]], mount: str = "tab-a") -> dict[str, Any]:
    """A personal-data mark of turn 2's words 1-2 as the tab sends it (with the tab's turns, maybe not saved yet)."""
    return {**message(seq, "pii", base, turns, mount=mount),
            "pii": {"action": "mark", "turn": 1, "word_start": 1, "word_end": 3, "kind": "name"}}


def test_a_repeated_mark_is_made_once_and_another_tabs_stale_mark_still_conflicts(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    edited = [{**view.turns[0], "text": "Typed before marking."}, *view.turns[1:]]  # not saved yet: the mark saves it first
    first = EditorSession(task_pk, first_window(view, 0))
    assert handle(review_store.store, ann1, view, first, _mark_message(1, 0, edited))
    assert first.ack["ok"] and first.ack["version"] == 1 and len(first.ack["pii"]) == 1
    assert not handle(review_store.store, ann1, view, first, {**_mark_message(1, 0, edited), "attempt": 1}), \
        "the same session answers a repeat from its memory"
    restarted = EditorSession(task_pk, first_window(view, 0))  # the answer is forgotten: the store is asked
    assert handle(review_store.store, ann1, view, restarted, {**_mark_message(1, 0, edited), "attempt": 2})
    assert restarted.ack == first.ack, "the repeat is answered as the mark it repeats, not as a conflict"
    assert _stored(review_store, task_pk) == [("draft", "Typed before marking.")], "the tab's turns saved once"
    assert _count(review_store, models.PiiSpan) == 1
    assert _count(review_store, models.AuditEvent, models.AuditEvent.action == "pii_mark") == 1
    assert _count(review_store, models.AuditEvent, models.AuditEvent.action == "save_conflict") == 0

    stale = EditorSession(task_pk, first_window(view, 0))  # another tab, still on version 0, marks the same words
    handle(review_store.store, ann1, view, stale, _mark_message(1, 0, edited, mount="tab-b"))
    assert stale.ack["ok"] is False and stale.ack["conflict"]["theirs_version"] == 1
    assert _stored(review_store, task_pk) == [("draft", "Typed before marking.")] and _count(review_store, models.PiiSpan) == 1


def test_two_copies_of_a_mark_handled_at_once_make_one_mark(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    edited = [{**view.turns[0], "text": "Marked at once."}, *view.turns[1:]]
    runs = _handled_twice_at_once(review_store, ann1, view, task_pk, _mark_message(1, 0, edited))
    assert [(r.ack or {}).get("ok") for r in runs] == [True, True], [r.ack for r in runs]
    assert {r.ack["version"] for r in runs} == {1}
    assert _stored(review_store, task_pk) == [("draft", "Marked at once.")] and _count(review_store, models.PiiSpan) == 1
    assert _count(review_store, models.AuditEvent, models.AuditEvent.action == "save_conflict") == 0
