"""Saves through the editor component's bridge re-time the words of corrected turns (tiny.en, real audio):
drafts spread a changed turn's words at once (marked, no model run), the submission aligns them; the
submitted revision and its CTM carry aligned words, typed words are marked, unchanged turns are not
aligned again, and a turn that cannot be aligned keeps its text with evenly spread, marked words."""

from __future__ import annotations

import json
import statistics
from typing import Any

from sqlalchemy import select

from store import models
from store.rttm_stm_ctm import words_to_ctm
from review_ui.editing import TaskView, open_task
from review_ui.editor_component.bridge import EditorSession, first_window, handle
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_editing import make_task

CORRECTED = "Hello, I would like to book a table for three, please."  # the script says "I'd"


def _save(rs: ReviewStore, who, view: TaskView, state: EditorSession, seq: int, base: int,  # type: ignore[no-untyped-def]
          turns: list[dict[str, Any]], op: str = "save") -> models.TranscriptRevision:
    message = {"mount": "tab-a", "seq": seq, "attempt": 0, "op": op, "base_version": base, "turns": turns,
               "window": {"start": 0.0, "end": 10.0}, "turn": 0, "have": "0-10", "doc_version": base}
    assert handle(rs.store, who, view, state, message) and state.ack["ok"], state.ack
    with rs.store.session() as session:
        return session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.task_pk == view.task_pk)
                               .order_by(models.TranscriptRevision.pk.desc())).first()


def test_a_corrected_turn_is_saved_with_aligned_typed_words_and_exported_with_them(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")  # dlg001, pre-annotated with evenly spread words (probability 0.9)
    with review_store.store.session() as session:
        view = open_task(session, ann1, review_store.store.blobs, task_pk)
    state = EditorSession(task_pk, first_window(view, 0))
    before = view.turns[0]
    assert before["text"] == "Hello, I'd like to book a table for three, please."
    as_the_browser_sends = [{**before, "text": CORRECTED, "words": []}, *view.turns[1:]]

    draft = _save(review_store, ann1, view, state, 1, 0, as_the_browser_sends)  # an autosave: no model run
    assert draft.turns[0]["text"] == CORRECTED and [w["text"] for w in draft.turns[0]["words"]] == CORRECTED.split()
    assert all(w["spread"] for w in draft.turns[0]["words"])
    assert [w.get("typed", False) for w in draft.turns[0]["words"]] == [False, True, True] + [False] * 8
    assert draft.author_params["word_timing"] == {"model": None, "aligned": 0, "spread": 0, "reused": 0, "deferred": 1,
                                                  "problems": []}
    # the browser still holds the turn without words (its turns are not sent back): the next draft reuses them
    again = _save(review_store, ann1, view, state, 2, 1, as_the_browser_sends)
    assert again.turns == draft.turns and again.author_params["word_timing"]["reused"] == 1
    # words it sends back without their marks (the browser's shape) get them back from the revision it edited
    unmarked = [{**draft.turns[0], "words": [{k: w[k] for k in ("text", "start", "end", "probability")}
                                             for w in draft.turns[0]["words"]]}, *view.turns[1:]]
    third = _save(review_store, ann1, view, state, 3, 2, unmarked)
    assert third.turns[0]["words"] == draft.turns[0]["words"] and third.author_params["word_timing"]["deferred"] == 0

    revision = _save(review_store, ann1, view, state, 4, 3, as_the_browser_sends, op="submit")
    words = revision.turns[0]["words"]
    assert [w["text"] for w in words] == CORRECTED.split() and revision.turns[0]["text"] == CORRECTED
    assert [w.get("typed", False) for w in words] == [False, True, True] + [False] * 8
    assert [w["probability"] for w in words] == [0.9, 1.0, 1.0] + [0.9] * 8, "kept words keep the model's confidence"
    assert not any(w.get("spread") for w in words)
    assert words[0]["start"] == before["start"] and words[-1]["end"] == before["end"]
    assert revision.turns[1:] == view.turns[1:], "turns the person did not change are stored as they were"
    assert revision.author_params["word_timing"] == {"model": "tiny.en", "aligned": 1, "spread": 0, "reused": 0,
                                                     "deferred": 0, "problems": []}

    truth = json.loads((review_store.dialogues / "dlg001.turns.json").read_text())[0]["words"]
    kept = [(w, t) for w, t in zip(words[:1] + words[3:], truth[:1] + truth[2:], strict=True)]
    assert all(w["text"] == t["text"] for w, t in kept)
    error = statistics.median(abs(w[k] - t[k]) for w, t in kept for k in ("start", "end"))
    spread_error = statistics.median(abs(w[k] - t[k]) for w, t in zip(before["words"], truth) if w["text"] == t["text"]
                                     for k in ("start", "end"))
    assert error < 0.1 and error < spread_error, (error, spread_error)
    would = next(w for w in words if w["text"] == "would")
    assert 1.2 < would["start"] < would["end"] < 2.0, "'would' lies where 'I'd' is said (1.53-1.73 s)"

    ctm = words_to_ctm(revision.as_turns(), "dlg001").splitlines()
    assert f"dlg001 1 {would['start']:.3f} {would['end'] - would['start']:.3f} would 1.000" in ctm
    assert sum(1 for line in ctm if float(line.split()[2]) < before["end"]) >= len(CORRECTED.split())


def test_a_turn_too_short_for_its_words_keeps_its_text_with_spread_marked_words(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    with review_store.store.session() as session:
        view = open_task(session, ann1, review_store.store.blobs, task_pk)
    state = EditorSession(task_pk, first_window(view, 0))
    start = view.turns[0]["start"]
    text = "a whole sentence typed into a tiny turn"
    squeezed = [{**view.turns[0], "end": start + 0.05, "text": text, "words": []}, *view.turns[1:]]
    revision = _save(review_store, ann1, view, state, 1, 0, squeezed, op="submit")
    turn = revision.turns[0]
    assert turn["text"] == text and [w["text"] for w in turn["words"]] == text.split()
    assert all(w.get("spread") and w.get("typed") for w in turn["words"])
    assert turn["words"][0]["start"] == start and turn["words"][-1]["end"] == round(start + 0.05, 3)
    timing = revision.author_params["word_timing"]
    assert timing["spread"] == 1 and timing["aligned"] == 0 and "too short" in timing["problems"][0]
