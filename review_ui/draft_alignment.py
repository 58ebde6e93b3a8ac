"""Aligning a draft's spread words after the save, off the request path, without touching what the person typed.

A draft here is any head a person is still changing: an annotator's autosave (stage "draft", also
the one a personal-data mark saves first) while the task is with them, or a reviewer's edit
(stage "review_edit") of submitted work while it waits for review. A review task names the work it
reviews, so the tab's task (annotation or review) is resolved to that work (`_alignable_head`).

A draft (autosave) spreads the words of each changed turn (`realign`): the model costs about
0.5 s of CPU per turn, too much to wait for on every save. This module aligns them later: it
reads the task's head draft, aligns its spread turns with no transaction open (`plan_alignment`),
and appends a revision with those words in place, by the aligner (author_kind "aligner", the
model's name), that becomes the task's head (`apply_alignment`). Revisions stay append-only.

Nothing typed can be lost and nobody is bumped into a conflict:
- the task's version is not changed (the optimistic check is the person's: their next save,
  based on the version they hold, still wins, and a tab on an older version still conflicts);
- the new head is set by one conditional UPDATE that holds only while the head is still the
  draft that was aligned (and the version the same): if the person saved meanwhile, nothing is
  written and the next try starts from their newer draft, where a turn only takes the
  alignment found for exactly its text and bounds (`align_pending_draft`);
- only words of turns that are still spread change; text, bounds, speakers and turn ids are the
  draft's own.

`aligned_for_tab` answers the browser: the aligned words the head holds for the turns the tab
still shows without true word times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from asr.alignment import AlignmentFailed
from store import models
from store.accounts import Principal
from store.db import Store
from store.turns import TurnJson, normalise_text
from review_ui.editing import EDITABLE_STATES, REVIEW_EDIT, check_may_view, turn_ids_of
from review_ui.realign import Realigner, WordTiming, marked, pending
from review_ui.tasks import REVIEW, SUBMITTED

ALIGNER_KIND = "aligner"  # author_kind of a revision whose only change is aligned words (author: the model's name)
TRIES = 3  # plans made again after the person saved meanwhile (each later one mostly from remembered alignments)

TurnSpec = tuple[float, float, str]  # a turn as the tab and the server both name it: (start, end, normalised text)


@dataclass(frozen=True)
class DraftAlignment:
    """The head draft's turns with aligned words in place of spread ones, and what it was made from."""

    task_pk: int
    recording_pk: int
    head_pk: int  # the draft aligned: the result is stored only while it is still the task's head
    version: int  # the task's version then (not changed by storing the result)
    state: str  # the task's state then (an accepted or submitted task's head is not changed)
    stage: str  # the draft's stage ("draft" or "review_edit"): the aligned revision's too
    turns: list[TurnJson]
    turn_ids: list[str]
    aligned: list[int]  # indices of the turns whose words were aligned
    timing: WordTiming


def spec_of(turn: TurnJson) -> TurnSpec:
    return (round(float(turn["start"]), 3), round(float(turn["end"]), 3), normalise_text(turn["text"]))


def _alignable_head(session: Any, task_pk: int,
                    principal: Principal | None = None) -> tuple[models.Task, models.TranscriptRevision] | None:
    """The work task (a review task's: the work it reviews) and its head, while a person is still changing that
    head: an annotator's draft while the task is with them, a reviewer's edit while the work waits; else None.
    `principal`: who asks, checked first (PermissionDenied when they may not open the task)."""
    task = session.get(models.Task, task_pk, populate_existing=True)
    if principal is not None:
        if task is None:
            raise LookupError(f"task {task_pk} does not exist")
        check_may_view(principal, task)
    if task is not None and task.kind == REVIEW:
        task = session.get(models.Task, (task.details or {}).get("annotate_task") or -1, populate_existing=True)
    if task is None or task.kind == REVIEW or task.head_revision_pk is None:
        return None
    head = session.get(models.TranscriptRevision, task.head_revision_pk)
    if head is None:
        return None
    drafting = task.state in EDITABLE_STATES and head.stage == "draft"
    reviewing = task.state == SUBMITTED and head.stage == REVIEW_EDIT
    return (task, head) if drafting or reviewing else None


def plan_alignment(store: Store, task_pk: int, realigner: Realigner) -> DraftAlignment | None:
    """The head draft with its spread turns aligned, or None when it has none (or none could be aligned).

    Only reads: the model runs after the reading transaction ended, so no lock or snapshot is held meanwhile.
    """
    timing = WordTiming()
    with store.session() as session:
        found = _alignable_head(session, task_pk)
        if found is None:
            return None
        task, head = found
        turns = head.as_turn_json()
        todo = [i for i, t in enumerate(turns) if t["text"] and pending(t.get("words") or [])]
        if not todo:
            return None
        recording = session.get(models.Recording, task.recording_pk)
        align = realigner.aligner_for(session, recording, timing)
        plan = dict(task_pk=task.pk, recording_pk=task.recording_pk, head_pk=head.pk, version=task.version,
                    state=task.state, stage=head.stage, turn_ids=turn_ids_of(head))
    done = []
    for i in todo:
        turn = turns[i]
        try:
            timed = align(turn["start"], turn["end"], turn["text"])
        except AlignmentFailed as exc:
            timing.problems.append(f"{turn['start']:.2f}-{turn['end']:.2f} s: {exc}")
            continue
        turns[i] = {**turn, "words": marked(timed, turn["words"], spread_times=False)}  # the spread words hold the marks
        done.append(i)
    if not done:
        return None
    timing.aligned = len(done)
    return DraftAlignment(turns=turns, aligned=done, timing=timing, **plan)  # type: ignore[arg-type]


def apply_alignment(store: Store, plan: DraftAlignment) -> bool:
    """Store the plan as the task's new head, unless the person saved after the draft it aligned, or the task
    moved on (submitted, accepted, sent back) meanwhile: then False."""
    with store.session() as session:
        revision = models.TranscriptRevision(
            recording_pk=plan.recording_pk, parent_pk=plan.head_pk, author_kind=ALIGNER_KIND,
            author=plan.timing.model or "aligner", stage=plan.stage, task_pk=plan.task_pk, turns=plan.turns,
            author_params={"task_version": plan.version, "turn_ids": plan.turn_ids, "aligned_turns": plan.aligned,
                           "word_timing": {**plan.timing.to_json(), "background": True}})
        session.add(revision)
        session.flush()
        won = session.execute(
            update(models.Task).where(models.Task.pk == plan.task_pk, models.Task.head_revision_pk == plan.head_pk,
                                      models.Task.version == plan.version, models.Task.state == plan.state)
            .values(head_revision_pk=revision.pk).execution_options(synchronize_session=False)
        ).rowcount == 1
        if not won:
            session.rollback()
            return False
        session.commit()
        return True


def align_pending_draft(store: Store, task_pk: int, realigner: Realigner) -> int:
    """Align the head draft's spread turns and store them (see the module); the number of turns aligned."""
    for _ in range(TRIES):
        plan = plan_alignment(store, task_pk, realigner)
        if plan is None:
            return 0
        if apply_alignment(store, plan):
            return len(plan.aligned)
    return 0


def aligned_for_tab(store: Store, task_pk: int, wanted: list[TurnSpec],
                    principal: Principal | None = None) -> tuple[list[TurnJson], bool]:
    """(the head's turns among `wanted` whose words are aligned, whether any of `wanted` is still spread there);
    `principal`: only while they may still open the task (PermissionDenied, LookupError otherwise)."""
    if not wanted:
        return [], False
    with store.session() as session:
        found = _alignable_head(session, task_pk, principal)
        if found is None:
            return [], False
        head_turns = found[1].as_turn_json()
    return aligned_among(head_turns, wanted)


def aligned_among(head_turns: list[TurnJson], wanted: list[TurnSpec]) -> tuple[list[TurnJson], bool]:
    """`aligned_for_tab` over head turns already in hand (a save's rerun holds the draft it just stored)."""
    heads = {spec_of(t): t for t in head_turns}
    out, waiting = [], False
    for spec in dict.fromkeys(wanted):
        turn = heads.get(spec)
        if turn is None or not turn.get("words"):
            continue
        if pending(turn["words"]):
            waiting = True
        else:
            out.append({"start": turn["start"], "end": turn["end"], "text": turn["text"], "words": turn["words"]})
    return out, waiting
