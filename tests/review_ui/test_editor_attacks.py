"""The editor's message path attacked as an outsider would (`bridge.handle`, SQLite and PostgreSQL): another
person's task, a reviewer-only action from a transcriber, a replayed message, huge or malformed turns, control
characters, bad times, overlapping words, odd speaker labels, malformed shapes. Each gets a precise error, stores
nothing, and leaves the task's stored revision as it was. (Sign-out and an expired session: the page checks the
sign-in before a message is handled, test_browser_panels.py.)"""

from __future__ import annotations

import math
from typing import Any

import pytest
from sqlalchemy import func, select

from store import models
from store.accounts import Principal
from review_ui.editing import TaskView, open_task, submit
from review_ui.editor_component.bridge import EditorSession, first_window, handle
from review_ui.realign import Realigner
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_editing import make_task
from tests.review_ui.test_editor_bridge import message


def _open(rs: ReviewStore, who: Principal, task_pk: int) -> TaskView:
    with rs.store.session() as session:
        return open_task(session, who, rs.store.blobs, task_pk)


def _stored(rs: ReviewStore, task_pk: int) -> tuple[Any, ...]:
    """What a refused message must not change: the task's version, state and head, and every revision and mark."""
    with rs.store.session() as session:
        task = session.get(models.Task, task_pk)
        count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
        return task.version, task.state, task.head_revision_pk, count(models.TranscriptRevision), count(models.PiiSpan)


@pytest.fixture
def saved(review_store: ReviewStore) -> tuple[ReviewStore, Principal, TaskView, EditorSession]:
    """ann1's task with one draft saved (version 1) from tab-a, seq 1."""
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    view = _open(review_store, ann1, task_pk)
    state = EditorSession(task_pk, first_window(view, 0))
    assert handle(review_store.store, ann1, view, state, message(1, "save", 0, [{**view.turns[0], "text": "Mine."}, *view.turns[1:]]))
    assert state.ack["ok"] and state.ack["version"] == 1
    return review_store, ann1, _open(review_store, ann1, task_pk), state


def _refused(rs: ReviewStore, who: Principal, view: TaskView, state: EditorSession, msg: dict[str, Any], *needles: str) -> None:
    before = _stored(rs, view.task_pk)
    assert handle(rs.store, who, view, state, msg), "answered, not ignored"
    assert state.ack["ok"] is False and "version" not in state.ack, state.ack
    text = state.ack.get("error") or str(state.ack.get("conflict"))
    for needle in needles:
        assert needle in text, (needle, text[:500])
    assert len(state.ack.get("error", "")) < 2000, "the error names the problem, it does not echo the input"
    assert _stored(rs, view.task_pk) == before, "nothing stored, the stored revision unchanged"


def _with_turn0(view: TaskView, **changes: Any) -> list[dict[str, Any]]:
    return [{**view.turns[0], **changes}, *view.turns[1:]]


def test_another_persons_task_and_a_reviewer_only_action_are_refused(saved: Any) -> None:
    rs, ann1, view, state = saved
    ann2 = rs.add_user("ann2", "annotator")
    rs.add_user("rev1", "reviewer")
    theirs = EditorSession(view.task_pk, first_window(view, 0))  # ann2 sends messages naming ann1's open task
    turns = _with_turn0(view, text="Not yours.")
    _refused(rs, ann2, view, theirs, message(1, "save", 1, turns, mount="x"), "not assigned to ann2")
    _refused(rs, ann2, view, theirs, message(2, "submit", 1, turns, mount="x"), "not assigned to ann2")
    _refused(rs, ann2, view, theirs, {**message(3, "pii", 1, view.turns, mount="x"),
                                      "pii": {"action": "mark", "turn": 0, "word_start": 0, "word_end": 1, "kind": "name"}},
             "not assigned to ann2")
    _refused(rs, ann2, view, theirs, {**message(4, "words", 1, None, mount="x"),
                                      "pending": [{"start": view.turns[0]["start"], "end": view.turns[0]["end"], "text": "Mine."}]},
             "ann2 may not open task")
    # a transcriber sending what only a reviewer's page does, in the component's message form
    for seq, op in enumerate(("accept", "send_back", "review_edit", None, 7), start=2):
        _refused(rs, ann1, view, state, {**message(seq, "save", 1, turns), "op": op}, "unknown message", "the editor sends save")
    # ... or editing their own work once submitted (only its reviewer edits it now)
    with rs.store.session() as session:
        submit(session, ann1, view.task_pk, 1, view.turns, realigner=Realigner.of(rs.store))
    _refused(rs, ann1, view, state, message(10, "save", 2, turns), "submitted; it can no longer be edited")


def test_a_replayed_message_meets_the_newer_head_as_a_conflict(saved: Any) -> None:
    rs, ann1, view, state = saved
    assert handle(rs.store, ann1, view, state, message(2, "save", 1, _with_turn0(view, text="Newer.")))
    assert state.ack["version"] == 2
    restarted = EditorSession(view.task_pk, first_window(view, 0))  # the server forgot; an old message is replayed
    _refused(rs, ann1, view, restarted, message(1, "save", 0, _with_turn0(view, text="Mine.")), "'theirs_version': 2")
    assert not handle(rs.store, ann1, view, state, message(1, "save", 0, _with_turn0(view, text="Mine."))), \
        "the session that answered it ignores the replay"


def test_huge_text_and_control_characters_are_refused(saved: Any) -> None:
    rs, ann1, view, state = saved
    _refused(rs, ann1, view, state, message(2, "save", 1, _with_turn0(view, text="a" * 5_000_000)),
             "turn 0: text of 5,000,000 characters is longer than 50,000")
    many = [{"speaker": "A", "start": i * 0.0001, "end": i * 0.0001 + 0.0001, "text": "x", "words": []} for i in range(100_000)]
    _refused(rs, ann1, view, state, message(3, "save", 1, many), "100,000 turns is more than one save may hold (20,000)")
    wide = [{**t, "text": "b" * 45_000} for t in view.turns] * 6
    _refused(rs, ann1, view, state, message(4, "save", 1, wide), "characters of text is more than one save may hold")
    for seq, bad in enumerate(("nul\x00here", "bell\x07", "esc\x1b[31m", "del\x7f", "c1\x85\x9b", "half\ud800"), start=5):
        _refused(rs, ann1, view, state, message(seq, "save", 1, _with_turn0(view, text=bad)), "turn 0: text holds control characters U+")
    word = {**view.turns[0]["words"][0], "text": "w\x00"}
    _refused(rs, ann1, view, state, message(20, "save", 1, _with_turn0(view, words=[word, *view.turns[0]["words"][1:]])),
             "turn 0 word 0: text holds control characters U+0000")
    assert handle(rs.store, ann1, view, state, message(21, "save", 1, _with_turn0(view, text="tab\tand\nnewline are spaces")))
    assert state.ack["ok"] and _open(rs, ann1, view.task_pk).turns[0]["text"] == "tab and newline are spaces"


@pytest.mark.parametrize("times,needle", [
    ((-1.0, 2.0), "must be >= 0"), ((math.nan, 2.0), "finite numbers"), ((0.5, math.inf), "finite numbers"),
    ((2.0, 1.0), "must be >= 0 and before end"), ((1.0, 1.0), "before end"), ((0.5, 1e9), "past the end of the audio"),
    (("0.5", 2.0), "finite numbers"), ((True, 2.0), "finite numbers"), ((None, 2.0), "finite numbers"),
])
def test_bad_turn_times_are_refused(saved: Any, times: tuple[Any, Any], needle: str) -> None:
    rs, ann1, view, state = saved
    _refused(rs, ann1, view, state, message(2, "save", 1, _with_turn0(view, start=times[0], end=times[1], words=[])), "turn 0", needle)


def test_bad_words_and_speaker_labels_are_refused(saved: Any) -> None:
    rs, ann1, view, state = saved
    words = view.turns[1]["words"]  # the model's timed words (turn 1 was retyped by the fixture)
    assert len(words) >= 3

    def turn1(**changes: Any) -> list[dict[str, Any]]:
        return [view.turns[0], {**view.turns[1], **changes}, *view.turns[2:]]

    overlapping = [words[0], {**words[1], "start": words[0]["start"]}, *words[2:]]
    _refused(rs, ann1, view, state, message(2, "save", 1, turn1(words=overlapping)),
             "turn 1 word 1", "starts before", "words follow one another")
    backwards = [words[1], words[0], *words[2:]]
    _refused(rs, ann1, view, state, message(3, "save", 1, turn1(words=backwards)), "turn 1 word 1", "starts before")
    _refused(rs, ann1, view, state, message(4, "save", 1, turn1(words=[{**words[0], "start": math.nan}])),
             "turn 1 word 0: start/end must be numbers")
    _refused(rs, ann1, view, state, message(5, "save", 1, turn1(words=[{**words[0], "probability": 7}])),
             "probability must be a number from 0 to 1")
    for seq, (label, needle) in enumerate([("", "non-empty"), ("a/b", "slashes"), ("tab\there", "whitespace"),
                                           ("x" * 65, "longer than 64"), ("nul\x00", "control characters"), (3, "non-empty")], start=6):
        _refused(rs, ann1, view, state, message(seq, "save", 1, _with_turn0(view, speaker=label)), "turn 0", needle)
    crowd = [{**t, "speaker": f"spk{i}"} for i, t in enumerate(view.turns)] + [
        {"speaker": f"extra{i}", "start": 0.01 * i, "end": 0.01 * i + 0.005, "text": "", "words": []} for i in range(70)]
    _refused(rs, ann1, view, state, message(20, "save", 1, crowd), "speaker labels is more than 64")


@pytest.mark.parametrize("change,needle", [
    ({"turns": None}, "turns must be a list, not NoneType"), ({"turns": "turns"}, "turns must be a list, not str"),
    ({"turns": {"0": {}}}, "turns must be a list, not dict"), ({"turns": [1, "two"]}, "turn 0: must be an object"),
    ({"turns": [{"speaker": "A"}]}, "turn 0: missing start, end, text"),
    ({"turns": [{"speaker": "A", "start": 0, "end": 1, "text": "x", "extra": 1}]}, "unknown field(s) extra"),
    ({"turns": [{"speaker": "A", "start": 0, "end": 1, "text": "x", "words": "w"}]}, "'words' must be a list"),
    ({"turns": [{"speaker": "A", "start": 0, "end": 1, "text": 5}]}, "text must be a string"),
    ({"base_version": "1"}, "names no base version"), ({"base_version": True}, "names no base version"),
    ({"base_version": None}, "names no base version"), ({"turn_ids": ["a"]}, "turn_ids must be"),
    ({"turn_ids": "ids"}, "turn_ids must be"),
])
def test_malformed_saves_are_refused(saved: Any, change: dict[str, Any], needle: str) -> None:
    rs, ann1, view, state = saved
    _refused(rs, ann1, view, state, {**message(2, "save", 1, view.turns), **change}, needle)


@pytest.mark.parametrize("pii,needle", [
    (None, "a mark needs action"), ("mark", "a mark needs action"), ({"action": "erase"}, "a mark needs action"),
    ({"action": "mark", "turn": True, "word_start": 0, "word_end": 1, "kind": "name"}, "a mark needs action"),
    ({"action": "mark", "turn": 0, "word_start": 0, "word_end": 1, "kind": "secret"}, "a mark needs action"),
    ({"action": "mark", "turn": 999, "word_start": 0, "word_end": 1, "kind": "name"}, "there is no turn 999"),
    ({"action": "mark", "turn": 0, "word_start": 3, "word_end": 1, "kind": "name"}, "is not a word range"),
    ({"action": "unmark", "turn": 0, "word_start": -1, "word_end": 1}, "is not a word range"),
])
def test_malformed_marks_are_refused(saved: Any, pii: Any, needle: str) -> None:
    rs, ann1, view, state = saved
    _refused(rs, ann1, view, state, {**message(2, "pii", 1, view.turns), "turn_ids": view.turn_ids, "pii": pii}, needle)


def test_messages_without_a_name_are_ignored_and_odd_fields_change_nothing(saved: Any) -> None:
    rs, ann1, view, state = saved
    before, window = _stored(rs, view.task_pk), state.window
    for bad in (None, [], "save", 5, {"op": "save"}, {**message(2, "save", 1, view.turns), "seq": True},
                {**message(2, "save", 1, view.turns), "seq": "2"}, {**message(2, "save", 1, view.turns), "mount": "m" * 65},
                {**message(2, "save", 1, view.turns), "mount": ""}, {**message(0, "save", 1, view.turns)}):
        assert handle(rs.store, ann1, view, state, bad) is False, bad
    assert handle(rs.store, ann1, view, state, {**message(2, "window", -1, None), "window": {"start": math.nan, "end": math.inf}})
    assert state.ack["ok"] and state.window == window, "a window that is not finite is not taken"
    assert _stored(rs, view.task_pk) == before
