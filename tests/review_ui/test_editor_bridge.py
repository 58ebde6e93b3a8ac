"""The server's side of the editor component (`review_ui.editor_component.bridge`) on SQLite and
PostgreSQL: a message is handled once however often the browser repeats it, saves keep the
optimistic version check (a conflict stores nothing and answers with their version), bad
turns are refused with the reason, submit hands the task on, and the audio window asked for
is kept inside the task and at most MAX_WINDOW_S long."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from store import models
from store.accounts import Principal
from review_ui.realign import Realigner
from review_ui.editing import TaskView, open_task, save_draft
from review_ui.editor_component.bridge import MAX_WINDOW_S, EditorSession, clamp_window, first_window, handle
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_editing import make_task


def _open(rs: ReviewStore, who: Principal, task_pk: int) -> TaskView:
    with rs.store.session() as session:
        return open_task(session, who, rs.store.blobs, task_pk)


def _texts(rs: ReviewStore, task_pk: int) -> list[str]:
    with rs.store.session() as session:
        return [r.turns[0]["text"] for r in session.scalars(select(models.TranscriptRevision).where(
            models.TranscriptRevision.task_pk == task_pk).order_by(models.TranscriptRevision.pk))]


def message(seq: int, op: str, base: int, turns: Any, mount: str = "tab-a", window: tuple[float, float] = (0.0, 10.0)) -> dict[str, Any]:
    return {"mount": mount, "seq": seq, "attempt": 0, "op": op, "base_version": base, "turns": turns,
            "window": {"start": window[0], "end": window[1]}, "turn": 1, "have": "0-10", "doc_version": base}


def test_saves_are_handled_once_and_a_conflict_stores_nothing_of_ours(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    state = EditorSession(task_pk, first_window(view, 0))
    mine = [{**view.turns[0], "text": "Hello there."}, *view.turns[1:]]
    assert handle(review_store.store, ann1, view, state, message(1, "save", 0, mine))
    assert state.ack == {"mount": "tab-a", "seq": 1, "op": "save", "ok": True, "version": 1, "submitted": False, "pii": []}
    assert state.doc_version == 1 and not state.needs_turns(1), "the tab holds what it saved: not sent back"
    assert not handle(review_store.store, ann1, view, state, {**message(1, "save", 0, mine), "attempt": 1}), "a repeat"
    assert _texts(review_store, task_pk) == ["Hello there."]

    with review_store.store.session() as session:  # another tab of the same person saves meanwhile
        save_draft(session, ann1, task_pk, 1, [{**view.turns[0], "text": "From the other tab."}, *view.turns[1:]], realigner=Realigner.of(review_store.store))
    again = [{**view.turns[0], "text": "Mine again."}, *view.turns[1:]]
    handle(review_store.store, ann1, view, state, message(2, "save", 1, again))
    assert state.ack["ok"] is False and state.ack["conflict"]["theirs_version"] == 2
    assert state.ack["conflict"]["theirs_turns"][0]["text"] == "From the other tab." and state.ack["conflict"]["theirs_author"] == "ann1"
    assert _texts(review_store, task_pk) == ["Hello there.", "From the other tab."], "nothing of ours stored over theirs"
    handle(review_store.store, ann1, view, state, message(3, "save", 2, again))  # "keep mine": on top of theirs
    assert state.ack["ok"] and state.ack["version"] == 3
    assert _texts(review_store, task_pk) == ["Hello there.", "From the other tab.", "Mine again."]

    other_tab = EditorSession(task_pk, first_window(view, 0))  # a new mount starts its own sequence
    assert handle(review_store.store, ann1, view, other_tab, message(1, "window", 3, None, mount="tab-b", window=(1.0, 5.0)))
    assert other_tab.ack == {"mount": "tab-b", "seq": 1, "op": "window", "ok": True} and other_tab.window == (1.0, 5.0)
    assert not other_tab.needs_audio({"start": 0.0, "end": 10.0}) and other_tab.needs_audio({"start": 1.0, "end": 5.0}), \
        "audio is sent again only for a window the tab does not hold (named as the browser names it)"


def test_bad_turns_are_refused_with_the_reason_and_submit_hands_the_task_to_review(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    review_store.add_user("rev1", "reviewer")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    state = EditorSession(task_pk, first_window(view, 0))
    broken = [{**view.turns[0], "start": 3.0, "end": 2.0}, *view.turns[1:]]
    handle(review_store.store, ann1, view, state, message(1, "save", 0, broken))
    assert state.ack["ok"] is False and "turn 0: start 3.000 s must be >= 0 and before end 2.000 s" in state.ack["error"]
    assert _texts(review_store, task_pk) == [] and not state.submitted
    handle(review_store.store, ann1, view, state, message(2, "submit", 0, view.turns))
    assert state.ack["ok"] and state.ack["submitted"]
    with review_store.store.session() as session:
        assert session.get(models.Task, task_pk).state == "submitted"
        reviews = session.scalars(select(models.Task).where(models.Task.kind == "review")).all()
        assert [(t.assignee, t.details["annotate_task"]) for t in reviews] == [("rev1", task_pk)]
    handle(review_store.store, ann1, view, state, message(3, "save", 1, view.turns))
    assert state.ack["ok"] is False and "can no longer be edited" in state.ack["error"], "a submitted task takes no more saves"
    assert state.submitted, "the page still says the task was submitted after later messages (a poll) are answered"


def test_the_audio_window_stays_inside_the_task_and_is_never_longer_than_the_limit(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    d = view.duration_s
    assert clamp_window(view, -5.0, 3.0) == (0.0, 8.0), "shifted into the recording, length kept"
    assert clamp_window(view, d - 1.0, d + 4.0) == (pytest.approx(d - 5.0, abs=1e-3), pytest.approx(d, abs=1e-3))
    assert clamp_window(view, 0.0, 10_000.0) == (0.0, pytest.approx(min(d, MAX_WINDOW_S), abs=1e-3))
    long = TaskView(**{**view.__dict__, "duration_s": 3600.0, "context_end_s": 3600.0, "end_s": 3600.0})
    assert clamp_window(long, 1000.0, 3000.0) == (1000.0, 1000.0 + MAX_WINDOW_S), "never the whole hour"
