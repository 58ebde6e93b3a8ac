"""The editor's personal-data marks, the reviewer's edit before accepting, and comments pinned to a
turn's stable id, on the server side (`bridge.handle`, `review`) on SQLite and PostgreSQL; the same
flows act through a real browser in test_browser_review_pii.py. Attacks: a transcriber cannot
accept, a consumer cannot mark, a stale version is refused and stores nothing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from store import models
from store.accounts import PermissionDenied, Principal
from review_ui.editing import REVIEW_EDIT, TaskView, history, open_task, submit, turn_ids_of
from review_ui.editor_component.bridge import EditorSession, first_window, handle
from review_ui.realign import Realigner
from review_ui.review import ReviewStateError, accept, comment_pins, comments_for, pinned_turn, review_queue, send_back
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_editing import make_task


def _open(rs: ReviewStore, who: Principal, task_pk: int) -> TaskView:
    with rs.store.session() as session:
        return open_task(session, who, rs.store.blobs, task_pk)


def _msg(seq: int, op: str, base: int, turns: Any, ids: list[str] | None = None, pii: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"mount": "tab", "seq": seq, "attempt": 0, "op": op, "base_version": base, "turns": turns, "turn_ids": ids,
            "pii": pii, "window": {"start": 0.0, "end": 10.0}, "turn": 1, "have": "0-10", "doc_version": base}


def _rows(rs: ReviewStore) -> list[tuple[int, int, int, str, str]]:
    with rs.store.session() as session:
        return [(r.turn_index, r.word_start, r.word_end, r.kind, r.source) for r in session.scalars(select(models.PiiSpan))]


def test_personal_data_is_marked_on_the_saved_words_carried_through_edits_and_unmarked(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    reader = review_store.add_user("reader", "consumer")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    state = EditorSession(task_pk, first_window(view, 0))
    turns, ids = view.turns, view.turn_ids
    words = turns[1]["text"].split()
    mark = {"action": "mark", "turn": 1, "word_start": 1, "word_end": 3, "kind": "name"}
    # nothing saved yet: the tab's turns are saved first, then the mark goes on that revision
    handle(review_store.store, ann1, view, state, _msg(1, "pii", 0, turns, ids, mark))
    expected = {"turn": 1, "word_start": 1, "word_end": 3, "kind": "name", "source": "ann1"}
    assert state.ack["ok"] and state.ack["version"] == 1 and state.ack["pii"] == [expected]
    assert _rows(review_store) == [(1, 1, 3, "name", "ann1")]
    # an edit in front of the marked words: the next save's answer carries the span to where the words went
    edited = [turns[0], {**turns[1], "text": "Well, " + turns[1]["text"]}, *turns[2:]]
    handle(review_store.store, ann1, view, state, _msg(2, "save", 1, edited, ids))
    assert state.ack["pii"] == [{**expected, "word_start": 2, "word_end": 4}]
    assert edited[1]["text"].split()[2:4] == words[1:3]

    # attacks: a stale version stores nothing; a consumer may not mark; a bad kind is refused
    handle(review_store.store, ann1, view, state, _msg(3, "pii", 1, edited, ids, mark))
    assert state.ack["ok"] is False and state.ack["conflict"]["theirs_version"] == 2
    handle(review_store.store, reader, view, state, _msg(4, "pii", 2, edited, ids, mark))
    assert state.ack["ok"] is False and "not assigned to reader" in state.ack["error"]
    handle(review_store.store, ann1, view, state, _msg(5, "pii", 2, edited, ids, {**mark, "kind": "secret"}))
    assert state.ack["ok"] is False and "kind" in state.ack["error"]
    assert _rows(review_store) == [(1, 1, 3, "name", "ann1")], "nothing stored by the refused marks"
    with review_store.store.session() as session:
        assert session.scalar(select(func.count()).select_from(models.TranscriptRevision)
                              .where(models.TranscriptRevision.task_pk == task_pk)) == 2, "no revision from a refused mark"

    # unmark from a selection touching one of the two words: the span goes (stored on the ancestor revision)
    handle(review_store.store, ann1, view, state, _msg(6, "pii", 2, edited, ids,
                                                       {"action": "unmark", "turn": 1, "word_start": 3, "word_end": 4}))
    assert state.ack["ok"] and state.ack["pii"] == [] and state.ack["version"] == 2, "no new revision to unmark"
    assert _rows(review_store) == []
    with review_store.store.session() as session:
        events = session.scalars(select(models.AuditEvent.action).where(models.AuditEvent.action.like("pii_%"))).all()
        assert sorted(events) == ["pii_mark", "pii_unmark"]


def _submitted(rs: ReviewStore, ann1: Principal, rev1: Principal, task_pk: int, turns: list[dict[str, Any]],
               ids: list[str] | None) -> int:
    """Submit the task as ann1; the review task's pk."""
    with rs.store.session() as session:
        submit(session, ann1, task_pk, session.get(models.Task, task_pk).version, turns, turn_ids=ids,
               realigner=Realigner.of(rs.store))
        (item,) = review_queue(session, rev1)
        return item.task_pk


def test_a_reviewer_edits_before_accepting_and_the_history_names_the_reviewer(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    rev1 = review_store.add_user("rev1", "reviewer")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    review_pk = _submitted(review_store, ann1, rev1, task_pk, view.turns, view.turn_ids)
    assert not _open(review_store, ann1, task_pk).editable, "submitted: no longer the annotator's to edit"

    seen = _open(review_store, rev1, review_pk)
    assert seen.editable and seen.reviewing and seen.version == 1, "the reviewer edits the work at its version"
    state = EditorSession(review_pk, first_window(seen, 0))
    fixed = [{**seen.turns[0], "text": "Hello, a reviewer's fix."}, *seen.turns[1:]]
    handle(review_store.store, rev1, seen, state, _msg(1, "submit", seen.version, fixed, seen.turn_ids))
    assert state.ack["ok"] is False and "reviewer" in state.ack["error"], "a reviewer does not submit"
    handle(review_store.store, rev1, seen, state, _msg(2, "save", seen.version, fixed, seen.turn_ids))
    assert state.ack["ok"] and state.ack["version"] == 2
    assert _open(review_store, rev1, review_pk).turns[0]["text"] == "Hello, a reviewer's fix.", "the review shows the edit"

    with review_store.store.session() as session:
        with pytest.raises(PermissionDenied):
            accept(session, ann1, review_pk, realigner=Realigner.of(review_store.store))  # a transcriber may not accept (not even their own work)
        session.rollback()
        with pytest.raises(ReviewStateError, match="version 2, not the version 1"):
            accept(session, rev1, review_pk, version=1, realigner=Realigner.of(review_store.store))  # accepting what the reviewer saw before the edit: refused
        session.rollback()
        approved = accept(session, rev1, review_pk, version=2, realigner=Realigner.of(review_store.store))
        session.commit()
        assert approved.turns[0]["text"] == "Hello, a reviewer's fix." and approved.author == "rev1"
        edit = session.get(models.TranscriptRevision, approved.parent_pk)
        assert edit.author_params["word_timing"]["deferred"] == 1, "the reviewer's autosave did not run the model"
        assert all(w["spread"] for w in edit.turns[0]["words"])
        assert approved.author_params["word_timing"]["aligned"] == 1, "accepting aligned the reviewer's changed turn"
        assert [w["text"] for w in approved.turns[0]["words"]] == "Hello, a reviewer's fix.".split()
        assert not any(w.get("spread") for w in approved.turns[0]["words"])
        assert approved.turns[1:] == edit.turns[1:]
        entries = history(session, rev1, task_pk)
        assert [(e.stage, e.author) for e in entries] == [("submitted", "ann1"), (REVIEW_EDIT, "rev1"), ("approved", "rev1")]


def test_a_comment_stays_on_its_turn_through_a_split_and_a_merge(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    rev1 = review_store.add_user("rev1", "reviewer")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    assert len(view.turns) >= 6
    review_pk = _submitted(review_store, ann1, rev1, task_pk, view.turns, None)  # saved without ids: derived ones hold
    with review_store.store.session() as session:
        send_back(session, rev1, review_pk, 4, "Turn 5: the speaker is wrong.")
        session.commit()
    back = _open(review_store, ann1, task_pk)
    pinned_text = back.turns[4]["text"]

    def where(v: TaskView) -> int | None:
        with review_store.store.session() as session:
            (pin,) = comment_pins(session, comments_for(session, ann1, task_pk))
        return pinned_turn(pin, v.turn_ids, v.turns)

    assert where(back) == 4
    # split turn 2 (index 1) in two, as the editor does: the first half keeps its id, the second gets a new one
    t = back.turns[1]
    cut = round((t["start"] + t["end"]) / 2, 3)
    half = len(t["text"].split()) // 2
    first = {**t, "end": cut, "text": " ".join(t["text"].split()[:half]), "words": []}
    second = {**t, "start": cut, "text": " ".join(t["text"].split()[half:]), "words": []}
    split = [back.turns[0], first, second, *back.turns[2:]]
    ids = [back.turn_ids[0], back.turn_ids[1], "new-half", *back.turn_ids[2:]]
    with review_store.store.session() as session:
        submit(session, ann1, task_pk, back.version, split, turn_ids=ids, realigner=Realigner.of(review_store.store))
    after = _open(review_store, ann1, task_pk)
    assert where(after) == 5 and after.turns[5]["text"] == pinned_text, "still on the same text's turn, now Turn 6"
    with review_store.store.session() as session:
        head = session.get(models.TranscriptRevision, session.get(models.Task, task_pk).head_revision_pk)
        assert turn_ids_of(head) == ids
    # merged into the turn before it: the id is gone, the comment goes to the turn that now holds its words
    merged_turn = {**after.turns[4], "end": after.turns[5]["end"], "text": after.turns[4]["text"] + " " + pinned_text, "words": []}
    merged = [*after.turns[:4], merged_turn, *after.turns[6:]]
    pin_ids = [*after.turn_ids[:5], *after.turn_ids[6:]]
    assert where(TaskView(**{**after.__dict__, "turns": merged, "turn_ids": pin_ids})) == 4
