"""Drafts' spread words aligned in the background (tiny.en, real audio, SQLite and PostgreSQL): the aligned
words become the draft's without a version bump, a person's newer save is never overwritten (raced on
purpose between the alignment and its write), and the browser is answered with the aligned words. The same
holds for the draft a personal-data mark saves and for a reviewer's edit before accepting."""

from __future__ import annotations

import time
from typing import Any

from review_ui.alignment_worker import AlignmentWorker
from review_ui.draft_alignment import aligned_for_tab, align_pending_draft, apply_alignment, plan_alignment, spec_of
from review_ui.editing import REVIEW_EDIT, SaveConflict, TaskView, open_task, save_draft, submit
from review_ui.editor_component.bridge import EditorSession, first_window, handle
from review_ui.realign import Realigner
from review_ui.review import accept, review_queue
from store import models
from store.pii_spans import spans_for_revision
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_editing import make_task

FIRST = "Hello, I would like to book a table for two, please."
CORRECTED = "Hello, I would like to book a table for three, please."  # the script says "I'd ... three"


def _open(rs: ReviewStore, who, task_pk: int) -> TaskView:  # type: ignore[no-untyped-def]
    with rs.store.session() as session:
        return open_task(session, who, rs.store.blobs, task_pk)


def _draft(rs: ReviewStore, who, task_pk: int, base: int, turns: list[dict[str, Any]]) -> models.TranscriptRevision:  # type: ignore[no-untyped-def]
    with rs.store.session() as session:
        return save_draft(session, who, task_pk, base, turns, realigner=Realigner.of(rs.store))


def _head(rs: ReviewStore, task_pk: int) -> tuple[models.Task, models.TranscriptRevision]:
    with rs.store.session() as session:
        task = session.get(models.Task, task_pk)
        head = session.get(models.TranscriptRevision, task.head_revision_pk)
        session.expunge_all()
        return task, head


def _corrected(turns: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Turn 0 retyped as the browser sends it (its words dropped), other turns as given."""
    return [{**turns[0], "text": text, "words": []}, *turns[1:]]


def _is_aligned(words: list[dict[str, Any]], text: str) -> bool:
    return [w["text"] for w in words] == text.split() and not any(w.get("spread") for w in words)


def test_background_alignment_never_overwrites_a_newer_save(review_store: ReviewStore) -> None:
    rs = review_store
    ann1 = rs.add_user("ann1", "annotator")
    task_pk = make_task(rs, "ann1")  # dlg001
    view = _open(rs, ann1, task_pk)
    first = _draft(rs, ann1, task_pk, 0, _corrected(view.turns, FIRST))
    assert all(w["spread"] for w in first.turns[0]["words"])
    plan = plan_alignment(rs.store, task_pk, Realigner.of(rs.store))
    assert plan is not None and plan.aligned == [0] and plan.head_pk == first.pk and plan.version == 1

    # the race: the person saves a newer text of that turn after the model ran, before its words are stored
    newer = _draft(rs, ann1, task_pk, 1, _corrected(view.turns, CORRECTED))
    assert apply_alignment(rs.store, plan) is False, "the words aligned for the older text must not be stored"
    task, head = _head(rs, task_pk)
    assert head.pk == newer.pk and task.version == 2 and head.turns[0]["text"] == CORRECTED
    assert all(w["spread"] for w in head.turns[0]["words"]), "the newer save's turn is untouched"

    # the worker's next try starts from the newer draft: its text, its words aligned; nothing else changes
    assert align_pending_draft(rs.store, task_pk, Realigner.of(rs.store)) == 1
    task, head = _head(rs, task_pk)
    assert task.version == 2, "aligning in the background bumps nobody into a conflict"
    assert head.parent_pk == newer.pk and head.author_kind == "aligner" and head.author == "tiny.en"
    assert head.turns[0]["text"] == CORRECTED and _is_aligned(head.turns[0]["words"], CORRECTED)
    would = next(w for w in head.turns[0]["words"] if w["text"] == "would")
    assert 1.2 < would["start"] < would["end"] < 2.0, "'would' lies where 'I'd' is said (1.53-1.73 s)"
    assert [w.get("typed", False) for w in head.turns[0]["words"]] == [w.get("typed", False) for w in newer.turns[0]["words"]]
    assert head.turns[1:] == newer.turns[1:] and head.author_params["turn_ids"] == newer.author_params.get(
        "turn_ids", head.author_params["turn_ids"])
    assert align_pending_draft(rs.store, task_pk, Realigner.of(rs.store)) == 0, "nothing left to align"

    # the tab asks for the words of the turn it shows without word times: it gets the stored ones
    aligned, waiting = aligned_for_tab(rs.store, task_pk, [spec_of(head.turns[0]), spec_of({**head.turns[0], "text": FIRST})])
    assert aligned == [{k: head.turns[0][k] for k in ("start", "end", "text", "words")}] and waiting is False

    # the person's next save, on the version they hold, still wins and keeps the aligned words it did not send
    after = _draft(rs, ann1, task_pk, 2, _corrected(view.turns, CORRECTED))
    assert after.turns[0]["words"] == head.turns[0]["words"] and after.author_params["task_version"] == 3
    # ... and a stale tab still conflicts, with the person (not the aligner) named as the other author
    try:
        _draft(rs, ann1, task_pk, 2, view.turns)
        raise AssertionError("a save on an older version must conflict")
    except SaveConflict as conflict:
        assert conflict.theirs_version == 3 and conflict.theirs_author == "ann1"


def test_a_newer_save_of_another_turn_is_kept_when_the_alignment_lands(review_store: ReviewStore) -> None:
    rs = review_store
    ann1 = rs.add_user("ann1", "annotator")
    task_pk = make_task(rs, "ann1")
    view = _open(rs, ann1, task_pk)
    _draft(rs, ann1, task_pk, 0, _corrected(view.turns, CORRECTED))
    plan = plan_alignment(rs.store, task_pk, Realigner.of(rs.store))
    assert plan is not None
    relabelled = _corrected(view.turns, CORRECTED)
    relabelled[1] = {**relabelled[1], "speaker": "spk-renamed"}
    newer = _draft(rs, ann1, task_pk, 1, relabelled)  # meanwhile: another turn's speaker changed
    assert apply_alignment(rs.store, plan) is False
    assert align_pending_draft(rs.store, task_pk, Realigner.of(rs.store)) == 1
    task, head = _head(rs, task_pk)
    assert head.parent_pk == newer.pk and head.turns[1]["speaker"] == "spk-renamed" and task.version == 2
    assert head.turns[0]["words"] == plan.turns[0]["words"], "the same text and bounds take the alignment found"


def _annotators_tab(rs: ReviewStore) -> tuple[Any, int, TaskView, EditorSession, AlignmentWorker]:
    """ann1's open task as a fresh tab sees it, with its own aligner: (ann1, task, view, tab session, worker)."""
    ann1 = rs.add_user("ann1", "annotator")
    task_pk = make_task(rs, "ann1")
    view = _open(rs, ann1, task_pk)
    return ann1, task_pk, view, EditorSession(task_pk, first_window(view, 0)), AlignmentWorker()


def test_the_bridge_queues_a_spread_draft_and_answers_with_its_aligned_words(review_store: ReviewStore) -> None:
    rs = review_store
    ann1, task_pk, view, state, worker = _annotators_tab(rs)
    turns = _corrected(view.turns, CORRECTED)
    pending = [{"start": turns[0]["start"], "end": turns[0]["end"], "text": CORRECTED}]
    message = {"mount": "tab", "seq": 1, "op": "save", "base_version": 0, "turns": turns, "pending": pending}
    assert handle(rs.store, ann1, view, state, message, worker) and state.ack["ok"] and state.ack["version"] == 1
    for seq in range(2, 400):  # what the tab does while the worker is on it: ask again
        if not state.ack.get("aligning") and (state.ack.get("aligned") or seq > 2):
            break
        time.sleep(0.1)
        assert handle(rs.store, ann1, view, state, {"mount": "tab", "seq": seq, "op": "words", "pending": pending}, worker)
    _, head = _head(rs, task_pk)
    assert head.author_kind == "aligner" and _is_aligned(head.turns[0]["words"], CORRECTED)
    assert state.ack["aligned"] == [{"start": turns[0]["start"], "end": turns[0]["end"], "text": CORRECTED,
                                     "words": head.turns[0]["words"]}] and state.ack["aligning"] is False
    assert "version" not in state.ack, "asking for words saves nothing"
    assert worker.idle()


def test_two_workers_aligning_the_same_draft_store_it_once(review_store: ReviewStore) -> None:
    rs = review_store
    ann1 = rs.add_user("ann1", "annotator")
    task_pk = make_task(rs, "ann1")
    view = _open(rs, ann1, task_pk)
    draft = _draft(rs, ann1, task_pk, 0, _corrected(view.turns, CORRECTED))
    one, two = (plan_alignment(rs.store, task_pk, Realigner.of(rs.store)) for _ in range(2))  # two server processes
    assert one is not None and two is not None and one.head_pk == two.head_pk == draft.pk
    assert apply_alignment(rs.store, one) is True and apply_alignment(rs.store, two) is False
    task, head = _head(rs, task_pk)
    assert head.parent_pk == draft.pk and task.version == 1
    with rs.store.session() as session:
        assert session.query(models.TranscriptRevision).filter_by(task_pk=task_pk, author_kind="aligner").count() == 1


def _wait_for_words(rs: ReviewStore, who, view: TaskView, state: EditorSession, worker: AlignmentWorker,  # type: ignore[no-untyped-def]
                    pending: list[dict[str, Any]], seq: int) -> None:
    """Ask for the pending turns' words as the tab does until the worker is done (at most 90 s: nice 19 on a busy machine)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert handle(rs.store, who, view, state, {"mount": "tab", "seq": seq, "op": "words", "pending": pending}, worker)
        if state.ack.get("aligned") and not state.ack.get("aligning"):
            return
        seq += 1
        time.sleep(0.2)
    raise AssertionError(f"no aligned words after 90 s: {state.ack}")


def test_a_marks_draft_is_aligned_in_the_background_and_keeps_its_mark(review_store: ReviewStore) -> None:
    rs = review_store
    ann1, task_pk, view, state, worker = _annotators_tab(rs)
    turns = _corrected(view.turns, CORRECTED)  # typed, then marked before the autosave: the mark saves the draft
    mark = {"action": "mark", "turn": 0, "word_start": 9, "word_end": 10, "kind": "number"}  # "three,"
    assert handle(rs.store, ann1, view, state, {"mount": "tab", "seq": 1, "op": "pii", "base_version": 0,
                                                "turns": turns, "pii": mark}, worker)
    assert state.ack["ok"] and state.ack["version"] == 1
    pending = [{"start": turns[0]["start"], "end": turns[0]["end"], "text": CORRECTED}]
    _wait_for_words(rs, ann1, view, state, worker, pending, 2)
    task, head = _head(rs, task_pk)
    assert head.author_kind == "aligner" and head.stage == "draft" and task.version == 1
    assert _is_aligned(head.turns[0]["words"], CORRECTED)
    with rs.store.session() as session:
        assert [s.to_json() for s in spans_for_revision(session, head.pk)] == [
            {"turn": 0, "word_start": 9, "word_end": 10, "kind": "number", "source": "ann1"}], "the mark holds for the aligned head"
    # the same mark repeated after the server forgot its answer, now on the aligned head: still one mark
    again = EditorSession(task_pk, first_window(view, 0))
    assert handle(rs.store, ann1, view, again, {"mount": "tab", "seq": 1, "attempt": 1, "op": "pii", "base_version": 0,
                                                "turns": turns, "pii": mark}, worker)
    assert again.ack["ok"] and again.ack["version"] == 1
    with rs.store.session() as session:
        assert session.query(models.PiiSpan).count() == 1
    assert worker.idle()


def _reviewing(rs: ReviewStore) -> tuple[Any, int, int, TaskView]:
    """ann1's task submitted as the model heard it; (rev1, the production task, its review task, rev1's view)."""
    ann1 = rs.add_user("ann1", "annotator")
    rev1 = rs.add_user("rev1", "reviewer")
    task_pk = make_task(rs, "ann1")
    view = _open(rs, ann1, task_pk)
    with rs.store.session() as session:
        submit(session, ann1, task_pk, 0, view.turns, realigner=Realigner.of(rs.store))
        (item,) = review_queue(session, rev1)
    return rev1, task_pk, item.task_pk, _open(rs, rev1, item.task_pk)


def test_a_reviewers_edit_is_aligned_in_the_background_without_a_version_bump(review_store: ReviewStore) -> None:
    rs = review_store
    rev1, task_pk, review_pk, seen = _reviewing(rs)
    state = EditorSession(review_pk, first_window(seen, 0))
    worker = AlignmentWorker()
    turns = _corrected(seen.turns, CORRECTED)
    pending = [{"start": turns[0]["start"], "end": turns[0]["end"], "text": CORRECTED}]
    assert handle(rs.store, rev1, seen, state, {"mount": "tab", "seq": 1, "op": "save", "base_version": seen.version,
                                                "turns": turns, "pending": pending}, worker)
    assert state.ack["ok"] and state.ack["version"] == 2
    _wait_for_words(rs, rev1, seen, state, worker, pending, 2)
    task, head = _head(rs, task_pk)
    assert head.author_kind == "aligner" and head.stage == REVIEW_EDIT and task.version == 2 and task.state == "submitted"
    assert _is_aligned(head.turns[0]["words"], CORRECTED) and state.ack["aligned"][0]["words"] == head.turns[0]["words"]
    assert _open(rs, rev1, review_pk).turns[0]["words"] == head.turns[0]["words"], "the review shows the aligned edit"
    with rs.store.session() as session:
        approved = accept(session, rev1, review_pk, version=2, realigner=Realigner.of(rs.store))
        session.commit()
        assert approved.parent_pk == head.pk and approved.author_params["word_timing"]["aligned"] == 0, \
            "accepting had nothing left to align"
        assert approved.turns[0]["words"] == head.turns[0]["words"]
    assert worker.idle()


def test_a_reviewers_newer_edit_or_decision_is_never_overwritten_by_the_aligner(review_store: ReviewStore) -> None:
    rs = review_store
    rev1, task_pk, review_pk, seen = _reviewing(rs)
    with rs.store.session() as session:
        edit = save_draft(session, rev1, review_pk, 1, _corrected(seen.turns, FIRST), realigner=Realigner.of(rs.store))
    assert edit.stage == REVIEW_EDIT
    plan = plan_alignment(rs.store, review_pk, Realigner.of(rs.store))  # the review task names the work it reviews
    assert plan is not None and plan.task_pk == task_pk and plan.head_pk == edit.pk and plan.stage == REVIEW_EDIT
    with rs.store.session() as session:  # the reviewer saves again meanwhile
        newer = save_draft(session, rev1, review_pk, 2, _corrected(seen.turns, CORRECTED), realigner=Realigner.of(rs.store))
    assert apply_alignment(rs.store, plan) is False
    task, head = _head(rs, task_pk)
    assert head.pk == newer.pk and task.version == 3
    plan = plan_alignment(rs.store, review_pk, Realigner.of(rs.store))
    assert plan is not None and plan.head_pk == newer.pk
    with rs.store.session() as session:  # ... then accepts before the aligner's words are stored
        accept(session, rev1, review_pk, version=3, realigner=Realigner.of(rs.store))
        session.commit()
    assert apply_alignment(rs.store, plan) is False, "an accepted task's head is not changed"
    task, head = _head(rs, task_pk)
    assert head.pk == newer.pk and task.state == "accepted"
    assert align_pending_draft(rs.store, review_pk, Realigner.of(rs.store)) == 0, "nothing to align once accepted"
