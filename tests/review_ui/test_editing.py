"""The turn editor's domain: what the server checks in saved turns, opening a task, drafts with conflict detection, history."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from store import models
from store.accounts import PermissionDenied
from review_ui.realign import Realigner
from review_ui.editing import SaveConflict, TurnValidationError, history, open_task, save_draft, validate_turns
from tests.review_ui.conftest import ReviewStore

WORDS = [{"text": w, "start": s, "end": s + 0.4, "probability": p}
         for w, s, p in (("good", 1.0, 0.95), ("morning", 1.5, 0.3), ("how", 2.2, 0.9), ("are", 2.7, 0.9), ("you", 3.1, 0.4))]
TURNS = [
    {"speaker": "A", "start": 1.0, "end": 3.6, "text": "good morning how are you", "words": WORDS},
    {"speaker": "B", "start": 4.0, "end": 5.0, "text": "fine thanks", "words": []},
]


def make_task(rs: ReviewStore, assignee: str, recording_index: int = 0, **fields: Any) -> int:
    """A task row as the workflow's cutter leaves it (fields overridable for blind/chunk cases)."""
    with rs.store.session() as session:
        task = models.Task(kind=fields.pop("kind", "annotate"), recording_pk=rs.recording_pks[recording_index],
                           assignee=assignee, state=fields.pop("state", "open"), **fields)
        session.add(task)
        session.commit()
        return task.pk


def relabel(turns: list[dict[str, Any]], index: int, speaker: str) -> list[dict[str, Any]]:
    """The turns with turn `index` given another speaker (what the editor in the browser sends)."""
    return [{**t, "speaker": speaker} if i == index else t for i, t in enumerate(turns)]


# -- what the server checks in the turns the editor sends ------------------------------------------

def test_validation_names_each_bad_turn() -> None:
    bad = [{"speaker": "A", "start": 2.0, "end": 1.0, "text": "x"},
           {"speaker": "", "start": 0.0, "end": 99.0, "text": "y"},
           {"speaker": "A", "start": 0.0, "end": 1.0, "text": "z", "colour": "red"},
           {"speaker": "A", "start": "0", "end": 1.0, "text": "w"}]
    with pytest.raises(TurnValidationError) as caught:
        validate_turns(bad, duration_s=10.0)
    assert caught.value.problems == [
        "turn 0: start 2.000 s must be >= 0 and before end 1.000 s",
        "turn 1: speaker must be a non-empty label",
        "turn 1: end 99.000 s is past the end of the audio (10.000 s)",
        "turn 2: unknown field(s) colour",
        "turn 3: start and end must be finite numbers of seconds",
    ]
    assert validate_turns([TURNS[1], TURNS[0]], 10.0)[0]["speaker"] == "A", "stored sorted by start"


def test_a_save_with_words_outside_their_turn_is_refused_and_stores_nothing(review_store: ReviewStore) -> None:
    """The editor keeps a turn's words inside it when a boundary moves; a save that does not is refused whole."""
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    with review_store.store.session() as session:
        view = open_task(session, ann1, review_store.store.blobs, task_pk)
    first = view.turns[0]
    moved = [dict(first, end=round(first["words"][-2]["start"], 3)), *view.turns[1:]]  # the last two words now past it
    last = first["words"][-1]
    with review_store.store.session() as session, pytest.raises(TurnValidationError) as caught:
        save_draft(session, ann1, task_pk, view.version, moved, realigner=Realigner.of(review_store.store))
    assert f"turn 0 word {len(first['words']) - 1}: {last['text']!r} at {last['start']:.3f}-{last['end']:.3f} s lies outside " \
        f"its turn ({first['start']:.3f}-{moved[0]['end']:.3f} s)" in caught.value.problems
    with review_store.store.session() as session:
        task = session.get(models.Task, task_pk)
        assert (task.version, task.head_revision_pk) == (view.version, None), "nothing stored"
        assert session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.task_pk == task_pk)).all() == []


# -- opening, saving, conflicts, history (SQLite and PostgreSQL) ---------------------------------

def test_open_task_only_for_the_assignee_and_never_reveals_gold(review_store: ReviewStore) -> None:
    ann1, ann2 = review_store.add_user("ann1", "annotator"), review_store.add_user("ann2", "annotator")
    reviewer = review_store.add_user("rev1", "reviewer")
    gold = make_task(review_store, "ann1", kind="gold", details={"gold_revision": 1})
    blind = make_task(review_store, "ann1", 1, blind=True)
    with review_store.store.session() as session:
        view = open_task(session, ann1, review_store.store.blobs, gold)
        model = session.get(models.TranscriptRevision, review_store.model_revision_pks[review_store.recording_pks[0]])
        assert view.turns == model.turns and view.editable and view.audio_path.exists()
        assert not {"kind", "details", "blind", "pair_key"} & set(vars(view)), "nothing in the view tells gold apart"
        assert open_task(session, ann1, review_store.store.blobs, blind).turns == []
        for intruder in (ann2, reviewer):
            with pytest.raises(PermissionDenied):
                open_task(session, intruder, review_store.store.blobs, gold)


def test_saves_append_revisions_and_a_stale_save_gets_a_conflict_with_both_versions(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    with review_store.store.session() as session:
        view = open_task(session, ann1, review_store.store.blobs, task_pk)
    first = relabel(view.turns, 0, "spk-first")
    second = relabel(view.turns, 0, "spk-second")
    with review_store.store.session() as session:
        saved = save_draft(session, ann1, task_pk, view.version, first, realigner=Realigner.of(review_store.store))
    with review_store.store.session() as session, pytest.raises(SaveConflict) as caught:
        save_draft(session, ann1, task_pk, view.version, second, realigner=Realigner.of(review_store.store))
    conflict = caught.value
    assert conflict.theirs_revision_pk == saved.pk and conflict.theirs_version == view.version + 1
    assert conflict.theirs_turns[0]["speaker"] == "spk-first" and conflict.yours_turns[0]["speaker"] == "spk-second"
    with review_store.store.session() as session:
        task = session.get(models.Task, task_pk)
        stored = session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.task_pk == task_pk)).all()
        assert [r.pk for r in stored] == [saved.pk] and stored[0].turns[0]["speaker"] == "spk-first", "the first save is intact"
        assert stored[0].parent_pk == review_store.model_revision_pks[review_store.recording_pks[0]]
        assert (task.version, task.head_revision_pk, task.state) == (view.version + 1, saved.pk, "in_progress")
        actions = session.scalars(select(models.AuditEvent.action).where(models.AuditEvent.subject == f"task:{task_pk}")).all()
        assert actions == ["draft_saved", "save_conflict"]
        assert session.scalars(select(models.WorkInterval).where(models.WorkInterval.task_pk == task_pk)).one().username == "ann1"
    with review_store.store.session() as session:
        kept = save_draft(session, ann1, task_pk, conflict.theirs_version, conflict.yours_turns, realigner=Realigner.of(review_store.store))
        assert kept.parent_pk == saved.pk, "keeping yours after a conflict builds on theirs, visibly"


def test_concurrent_saves_on_one_base_exactly_one_wins(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    with review_store.store.session() as session:
        view = open_task(session, ann1, review_store.store.blobs, task_pk)
    barrier, outcomes = threading.Barrier(4), []

    def save(label: str) -> None:
        barrier.wait()
        with review_store.store.session() as session:
            try:
                outcomes.append(("saved", save_draft(session, ann1, task_pk, view.version, relabel(view.turns, 0, label), realigner=Realigner.of(review_store.store)).pk))
            except SaveConflict as conflict:
                outcomes.append(("conflict", conflict.theirs_revision_pk))

    threads = [threading.Thread(target=save, args=(f"who-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [pk for kind, pk in outcomes if kind == "saved"]
    assert len(winners) == 1 and sorted(kind for kind, _ in outcomes) == ["conflict"] * 3 + ["saved"]
    assert {pk for kind, pk in outcomes if kind == "conflict"} == set(winners), "every loser is shown the winner's version"


def test_bad_turns_and_other_peoples_tasks_store_nothing(review_store: ReviewStore) -> None:
    ann1, ann2 = review_store.add_user("ann1", "annotator"), review_store.add_user("ann2", "annotator")
    task_pk = make_task(review_store, "ann1")
    with review_store.store.session() as session:
        view = open_task(session, ann1, review_store.store.blobs, task_pk)
        with pytest.raises(TurnValidationError, match="past the end of the audio"):
            save_draft(session, ann1, task_pk, view.version, [*view.turns[:-1], {**view.turns[-1], "end": view.turns[-1]["end"] + 500.0}], realigner=Realigner.of(review_store.store))
        session.rollback()
        with pytest.raises(PermissionDenied, match="not assigned to ann2"):
            save_draft(session, ann2, task_pk, view.version, view.turns, realigner=Realigner.of(review_store.store))
        session.rollback()
        assert session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.task_pk == task_pk)).all() == []
        assert session.get(models.Task, task_pk).version == view.version


def test_history_diffs_each_revision_against_the_model(review_store: ReviewStore) -> None:
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    with review_store.store.session() as session:
        view = open_task(session, ann1, review_store.store.blobs, task_pk)
        edited = relabel(view.turns, 0, "spk-x")
        edited[1] = {**edited[1], "text": "something else entirely", "words": []}
        save_draft(session, ann1, task_pk, view.version, edited, realigner=Realigner.of(review_store.store))
        save_draft(session, ann1, task_pk, view.version + 1, edited[:2] + edited[3:], realigner=Realigner.of(review_store.store))
        entries = history(session, ann1, task_pk)
    assert [(e.stage, e.author, e.changed_lines) for e in entries] == [("draft", "ann1", 4), ("draft", "ann1", 5)]
    assert any(line.startswith("+spk-x [") for line in entries[0].diff)
    assert any(line.startswith("+") and "something else entirely" in line for line in entries[0].diff)


def test_an_old_draft_opens_as_saved_and_a_save_asks_for_a_well_formed_label(review_store: ReviewStore) -> None:
    """A draft the editor saved before the turn type (label with a space, text with inner whitespace)."""
    ann1 = review_store.add_user("ann1", "annotator")
    task_pk = make_task(review_store, "ann1")
    old = [{"speaker": "Speaker 2", "start": 1.0, "end": 2.0, "text": "well  then", "words": []}]
    with review_store.store.session() as session:
        task = session.get(models.Task, task_pk)
        draft = models.TranscriptRevision(recording_pk=task.recording_pk, author_kind="person", author="ann1", turns=old,
                                          stage="draft", task_pk=task_pk)
        session.add(draft)
        session.flush()
        task.head_revision_pk, task.version, task.state = draft.pk, 1, "in_progress"
        session.commit()
    with review_store.store.session() as session:
        view = open_task(session, ann1, review_store.store.blobs, task_pk)
        assert view.turns == old and view.speakers == ["Speaker 2"]
        with pytest.raises(TurnValidationError, match="speaker label 'Speaker 2' may not contain whitespace"):
            save_draft(session, ann1, task_pk, view.version, view.turns, realigner=Realigner.of(review_store.store))
        session.rollback()
        saved = save_draft(session, ann1, task_pk, view.version, relabel(view.turns, 0, "Speaker_2"), realigner=Realigner.of(review_store.store))
        assert saved.turns == [{**old[0], "speaker": "Speaker_2", "text": "well then"}], \
            "a turn whose text and bounds did not change is not aligned (its words stay as they were)"
