"""Opening a task for editing, saving drafts without lost updates, submitting, and the history.

Every save is a new TranscriptRevision (nothing is rewritten). Saves are guarded by
optimistic concurrency on `Task.version`: a save names the version it was based on and
`UPDATE tasks ... WHERE version = base` decides who wins; the loser gets `SaveConflict`
with both versions and nothing of theirs or ours is dropped. The same code path runs on
SQLite and PostgreSQL (a single conditional UPDATE, no locking hints). Before it is
stored, every turn whose text changed gets its words aligned to its audio (`realign`).

A reviewer edits through the same path before accepting: the save goes to the production
task under review (its version, its head) as a ``review_edit`` revision by the reviewer.
Each saved revision may carry its turns' stable ids (`author_params["turn_ids"]`, parallel
to the turns; a split's second half gets a new id, a merge keeps the first turn's), so a
reviewer's comment stays on its turn however the numbering shifts (`turn_ids_of`).

A save may name itself (`save_id`, the editor's tab and message number): it is stored with
the revision, and a save whose id is already the head's (past background alignments) is
answered with that revision instead of being stored again or meeting a conflict with itself.
The editor repeats a message the server has not answered in 5 s; the repeat may arrive while
the first is still being handled (Streamlit starts a new script run at once), or after the
server was restarted and forgot what it answered: the store is what both can ask.
"""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from store import models
from store.accounts import Principal, PermissionDenied
from store.audit import record_event
from store.blobs import BlobStore
from store.clock import utcnow
from store.turns import TurnJson, TurnValidationError, turns_from_json
from review_ui.edit_limits import check_size, check_word_order
from review_ui.realign import Realigner
from review_ui.tasks import PRODUCTION, QUEUE_STATES, REVIEW, model_revision, span_of, title_of

EDITABLE_STATES = QUEUE_STATES  # open, in progress, sent back: the task is with the annotator
REVIEW_EDIT = "review_edit"  # the stage of a reviewer's edit of the work under review


@dataclass
class SaveConflict(Exception):
    """Someone saved this task after the version this save was based on; both versions are kept here."""

    task_pk: int
    base_version: int
    theirs_version: int
    theirs_author: str
    theirs_revision_pk: int | None
    theirs_turns: list[TurnJson]
    yours_turns: list[TurnJson]

    def __str__(self) -> str:
        return (f"task {self.task_pk} was saved by {self.theirs_author} (version {self.theirs_version}) after "
                f"your version {self.base_version}; your changes were not stored: keep yours on top of theirs, or take theirs")


@dataclass(frozen=True)
class TaskView:
    """What the editor shows for one task; deliberately nothing that tells a gold item apart."""

    task_pk: int
    title: str
    audio_path: Path
    duration_s: float
    start_s: float
    end_s: float
    context_start_s: float  # audio around the chunk to listen to; equal to start/end for whole dialogues
    context_end_s: float
    turns: list[TurnJson]
    version: int
    state: str
    editable: bool
    reviewable: bool  # only ever true for a reviewer: the accept / send back panel is shown
    guidelines: str
    language: str
    speakers: list[str] = field(default_factory=list)
    turn_ids: list[str] = field(default_factory=list)  # stable per turn, parallel to `turns`
    revision_pk: int | None = None  # the saved revision the turns are (None: the model's turns, nothing saved yet)
    reviewing: bool = False  # editable as the reviewer of submitted work (saves are review edits; no submit)


@dataclass(frozen=True)
class HistoryEntry:
    revision_pk: int
    stage: str
    author: str
    author_kind: str
    created_at: dt.datetime
    diff: list[str]  # unified diff of turn lines against the model pre-annotation
    changed_lines: int


def _task(session: Session, task_pk: int) -> models.Task:
    """The task as stored now (re-read even when the session holds it: sessions do not expire on commit)."""
    task = session.get(models.Task, task_pk, populate_existing=True)
    if task is None:
        raise LookupError(f"task {task_pk} does not exist")
    return task


def _is_editor(principal: Principal, task: models.Task) -> bool:
    return task.assignee == principal.username and principal.can("annotate") and task.kind != REVIEW


def check_may_edit(principal: Principal, task: models.Task) -> None:
    """Only the assigned annotator edits, and only while the task is with them."""
    if not _is_editor(principal, task):
        raise PermissionDenied(f"task {task.pk} is not assigned to {principal.username}")
    if task.state not in EDITABLE_STATES:
        raise PermissionDenied(f"task {task.pk} is {task.state}; it can no longer be edited")


def edit_target(session: Session, principal: Principal, task: models.Task) -> tuple[models.Task, bool]:
    """(the task a save changes, whether it is a reviewer's edit): the annotator's own task, or for a
    reviewer the submitted production task under review (the reviewer's checks: right, no own work,
    no conflict of interest, still waiting)."""
    if _is_editor(principal, task) or not principal.can("review"):
        check_may_edit(principal, task)
        return task, False
    from review_ui.review import reviewable_work

    return reviewable_work(session, principal, task.pk), True


def _may_review(principal: Principal, task: models.Task) -> bool:
    """A reviewer's own (or, for a manager, any) open review task, or production work waiting for review."""
    if not principal.can("review") or (task.assignee == principal.username and task.kind != REVIEW):
        return False  # nobody reviews their own work
    if task.kind == REVIEW:
        return task.state == "open" and (task.assignee == principal.username or "manager" in principal.roles)
    return task.kind == PRODUCTION and task.state == "submitted"


def check_may_view(principal: Principal, task: models.Task) -> None:
    """The assignee, or a reviewer for work waiting for review (nobody else, whatever the URL says)."""
    if _is_editor(principal, task) or _may_review(principal, task):
        return
    raise PermissionDenied(f"{principal.username} may not open task {task.pk}")


def in_window(turns: list[TurnJson], start_s: float, end_s: float) -> list[TurnJson]:
    """Turns overlapping a chunk task's window (a whole-dialogue task's window is the whole file)."""
    return [t for t in turns if t["end"] > start_s and t["start"] < end_s]


def _window(task: models.Task, recording: models.Recording) -> tuple[float, float]:
    start, end = span_of(task, recording)
    duration = float(recording.duration_s or 0.0)
    return start, min(end, duration) if duration else end


def turn_ids_of(revision: models.TranscriptRevision) -> list[str]:
    """The revision's stable turn ids: those saved with it, else ids derived from the revision and the index."""
    ids = (revision.author_params or {}).get("turn_ids")
    turns = revision.turns or []
    if isinstance(ids, list) and len(ids) == len(turns) and all(isinstance(i, str) and i for i in ids):
        return list(ids)
    return [f"r{revision.pk}.{i}" for i in range(len(turns))]


def _head(session: Session, task: models.Task) -> models.TranscriptRevision | None:
    """A review task's head is the work under review (a reviewer's edit of it once there is one)."""
    if task.kind == REVIEW:
        work = session.get(models.Task, (task.details or {}).get("annotate_task") or -1)
        head = session.get(models.TranscriptRevision, work.head_revision_pk) if work is not None and work.head_revision_pk else None
        if head is not None and head.stage == REVIEW_EDIT:
            return head
        revision_pk = (task.details or {}).get("revision") or (head.pk if head is not None else None)
        return session.get(models.TranscriptRevision, revision_pk) if revision_pk else None
    return session.get(models.TranscriptRevision, task.head_revision_pk) if task.head_revision_pk is not None else None


def _head_turns(session: Session, task: models.Task, recording: models.Recording) -> tuple[list[TurnJson], list[str], int | None]:
    """(turns, turn ids, revision): a review task shows the work under review; an annotation task its newest
    draft, else the model's turns."""
    head = _head(session, task)
    if head is not None:
        return head.as_turn_json(), turn_ids_of(head), head.pk
    if task.kind == REVIEW or task.blind:
        return [], [], None
    model = model_revision(session, recording.pk)
    if model is None:
        return [], [], None
    turns = in_window(model.as_turn_json(), *_window(task, recording))
    return turns, [f"t{task.pk}.{i}" for i in range(len(turns))], None


def open_task(session: Session, principal: Principal, blobs: BlobStore, task_pk: int) -> TaskView:
    """Load a task for the editor, after checking the principal may see it."""
    task = _task(session, task_pk)
    check_may_view(principal, task)
    recording = session.get(models.Recording, task.recording_pk)
    if recording is None or recording.working_sha256 is None:
        raise LookupError(f"task {task_pk}: its recording has no working copy")
    protocol = session.get(models.Protocol, recording.protocol_pk)
    spec = protocol.spec if protocol is not None else {}
    dialogue = session.get(models.Session, recording.session_pk) if recording.session_pk else None
    language = (dialogue.language if dialogue is not None and dialogue.language else "") or (spec.get("languages") or [""])[0]
    start, end = _window(task, recording)
    turns, ids, revision_pk = _head_turns(session, task, recording)
    editable = _is_editor(principal, task) and task.state in EDITABLE_STATES
    reviewable = _may_review(principal, task)
    version = task.version
    if reviewable:  # the reviewer edits the work under review while it waits (the same checks a save makes)
        from review_ui.review import reviewable_work

        try:
            work = reviewable_work(session, principal, task.pk)
            editable, version = True, work.version
        except (PermissionDenied, LookupError):
            editable = False
    return TaskView(task_pk=task.pk, title=title_of(task, recording), audio_path=blobs.path_for(recording.working_sha256),
                    duration_s=float(recording.duration_s or 0.0), start_s=start, end_s=end, turns=turns,
                    context_start_s=float(task.details.get("context_start_s", start)) if task.details else start,
                    context_end_s=float(task.details.get("context_end_s", end)) if task.details else end,
                    version=version, state=task.state, editable=editable, reviewable=reviewable, guidelines=spec.get("guidelines", "") or "",
                    language=language, speakers=sorted({t["speaker"] for t in turns}), turn_ids=ids, revision_pk=revision_pk,
                    reviewing=reviewable and editable)


def view_after_save(view: TaskView, revision: models.TranscriptRevision, task_state: str) -> TaskView:
    """What `open_task` would show right after this person's save stored `revision` (the task's head now)."""
    turns = revision.as_turn_json()
    return replace(view, version=int((revision.author_params or {})["task_version"]), turns=turns,
                   turn_ids=turn_ids_of(revision), revision_pk=revision.pk, state=task_state,
                   speakers=sorted({t["speaker"] for t in turns}))


def refresh_view(session: Session, principal: Principal, blobs: BlobStore, view: TaskView) -> TaskView:
    """`view` while the task's row still matches it (version, head, state) and this person's rights to it are the
    same; else `open_task` again. A save's rerun reads one row instead of the whole task (head, recording, protocol).

    A reviewer's view always reads the whole task (its version is the reviewed work's, another row).
    """
    task = _task(session, view.task_pk)
    check_may_view(principal, task)
    same = (not view.reviewable and not view.reviewing and task.version == view.version
            and task.head_revision_pk == view.revision_pk and task.state == view.state
            and (_is_editor(principal, task) and task.state in EDITABLE_STATES) == view.editable
            and not _may_review(principal, task))
    return view if same else open_task(session, principal, blobs, view.task_pk)


def _clean(turns: Any, duration_s: float) -> list[TurnJson]:
    check_size(turns)  # before parsing: megabytes of text or 100k turns cost nothing to refuse
    clean = [{**t.to_json(), "start": round(t.start, 3), "end": round(t.end, 3)}
             for t in turns_from_json(turns, duration_s=duration_s, positive_length=True, words_inside=True)]
    check_word_order(clean)
    return clean


def validate_turns(turns: Any, duration_s: float) -> list[TurnJson]:
    """A person's turns as the one turn type, inside the audio, each of positive length and holding its words
    (a word outside its turn is refused, nothing is stored: the editor keeps words inside when a boundary moves),
    within `edit_limits` (size, no control characters, words in order); JSON copies sorted by start.

    Turn times are kept to the millisecond (what the editor shows and nudges by).
    """
    return sorted(_clean(turns, duration_s), key=lambda t: (t["start"], t["end"]))


def validate_with_ids(turns: Any, duration_s: float, turn_ids: Any) -> tuple[list[TurnJson], list[str] | None]:
    """`validate_turns`, and the turns' ids (when given: one distinct non-empty string per turn) in the same order."""
    if turn_ids is None:
        return validate_turns(turns, duration_s), None
    clean = _clean(turns, duration_s)
    if (not isinstance(turn_ids, list) or len(turn_ids) != len(clean) or len(set(turn_ids)) != len(turn_ids)
            or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in turn_ids)):
        raise TurnValidationError([f"turn_ids must be {len(clean)} distinct non-empty strings (one per turn)"])
    order = sorted(range(len(clean)), key=lambda k: (clean[k]["start"], clean[k]["end"]))
    return [clean[k] for k in order], [turn_ids[k] for k in order]


def _conflict(session: Session, task_pk: int, base_version: int, yours: list[TurnJson]) -> SaveConflict:
    task = _task(session, task_pk)
    head = session.get(models.TranscriptRevision, task.head_revision_pk) if task.head_revision_pk else None
    author = head
    while author is not None and author.author_kind == "aligner" and author.parent_pk is not None:
        author = session.get(models.TranscriptRevision, author.parent_pk)  # words aligned in the background: whose draft
    return SaveConflict(task_pk=task_pk, base_version=base_version, theirs_version=task.version,
                        theirs_author=author.author if author is not None else "?", theirs_revision_pk=task.head_revision_pk,
                        theirs_turns=head.as_turn_json() if head is not None else [], yours_turns=yours)


def stored_save(session: Session, principal: Principal, task_pk: int, save_id: str | None) -> models.TranscriptRevision | None:
    """The revision this person's save `save_id` stored, while it is still the task's head (or under the head's
    background alignments); None when there is none (a save never stored, or saved over since)."""
    if not save_id:
        return None
    revision = _head(session, _task(session, task_pk))
    while revision is not None and revision.author_kind == "aligner" and revision.parent_pk is not None:
        revision = session.get(models.TranscriptRevision, revision.parent_pk)
    if revision is None or revision.author_kind != "person" or revision.author != principal.username:
        return None
    return revision if (revision.author_params or {}).get("save_id") == save_id else None


def _store_revision(session: Session, principal: Principal, task_pk: int, base_version: int, turns: Any, *, stage: str,
                    realigner: Realigner, started_at: dt.datetime | None, turn_ids: Any = None,
                    save_id: str | None = None) -> tuple[models.Task, models.TranscriptRevision, bool]:
    """Validate, time the words of changed turns, win the version race or raise SaveConflict, then append the
    revision (caller commits); (task, revision, whether it is new). A repeat of save `save_id` gets what it stored.

    Everything that only reads (alignment included) happens before the compare-and-set, so the
    write lock (SQLite) or row lock (PostgreSQL) is held for the few inserts only. The head read
    before the compare-and-set is still the parent: any save in between would have bumped the version.
    A repeat is looked for first and again after a lost race: the first of two copies handled at once wins.
    """
    repeat = stored_save(session, principal, task_pk, save_id)
    if repeat is not None:
        return _task(session, task_pk), repeat, False
    task, reviewing = edit_target(session, principal, _task(session, task_pk))
    if reviewing:
        if stage != "draft":
            raise PermissionDenied(f"a reviewer saves edits of task {task.pk}; accepting or sending back ends the review")
        stage = REVIEW_EDIT
    task_pk = task.pk
    recording = session.get(models.Recording, task.recording_pk)
    clean, ids = validate_with_ids(turns, float(recording.duration_s or 0.0), turn_ids)
    parent = task.head_revision_pk
    if parent is None:
        model = model_revision(session, task.recording_pk)
        parent = model.pk if model is not None else None
    parent_revision = session.get(models.TranscriptRevision, parent) if parent is not None else None
    clean, timing = realigner.retime(session, recording, parent_revision.as_turn_json() if parent_revision else [], clean,
                                     align_now=stage == "submitted")  # autosaves stay fast; submit and accept align
    now = utcnow()
    won = task.version == base_version and session.execute(
        update(models.Task).where(models.Task.pk == task_pk, models.Task.version == base_version)
        .values(version=models.Task.version + 1, updated_at=now).execution_options(synchronize_session=False)
    ).rowcount == 1
    if not won:
        session.rollback()
        repeat = stored_save(session, principal, task_pk, save_id)
        if repeat is not None:
            return task, repeat, False
        conflict = _conflict(session, task_pk, base_version, clean)
        record_event(session, principal.username, "save_conflict", f"task:{task_pk}",
                     {"base_version": base_version, "current_version": conflict.theirs_version})
        session.commit()
        raise conflict
    set_committed_value(task, "version", base_version + 1)  # what the UPDATE wrote; nothing to flush
    set_committed_value(task, "updated_at", now)
    revision = models.TranscriptRevision(recording_pk=task.recording_pk, parent_pk=parent, author_kind="person",
                                         author=principal.username,
                                         author_params={"task_version": task.version, "word_timing": timing.to_json(),
                                                        **({"turn_ids": ids} if ids else {}),
                                                        **({"save_id": save_id} if save_id else {})},
                                         turns=clean, stage=stage, task_pk=task.pk)
    session.add(revision)
    session.flush()
    task.head_revision_pk = revision.pk
    if stage == "draft" and task.state in ("open", "sent_back"):
        task.state = "in_progress"
    session.add(models.WorkInterval(username=principal.username, task_pk=task.pk, started_at=started_at or now, ended_at=now))
    record_event(session, principal.username, f"{stage}_saved", f"task:{task.pk}",
                 {"revision": revision.pk, "version": task.version, "turns": len(clean)})
    return task, revision, True


def save_draft(session: Session, principal: Principal, task_pk: int, base_version: int, turns: Any, *,
               realigner: Realigner, started_at: dt.datetime | None = None, turn_ids: Any = None,
               save_id: str | None = None) -> models.TranscriptRevision:
    """Store the editor's turns as a new draft revision (a reviewer's: a review edit), or raise
    SaveConflict/TurnValidationError; a repeat of save `save_id` gets the revision it stored.

    `realigner` times the words of turns whose text changed (`Realigner.of(store)`).
    `started_at` is when this stretch of work began (the work interval feeds throughput and
    the break reminder).
    """
    _, revision, _ = _store_revision(session, principal, task_pk, base_version, turns, stage="draft", realigner=realigner,
                                     started_at=started_at, turn_ids=turn_ids, save_id=save_id)
    session.commit()
    return revision


def submit(session: Session, principal: Principal, task_pk: int, base_version: int, turns: Any, *,
           realigner: Realigner, started_at: dt.datetime | None = None, turn_ids: Any = None,
           save_id: str | None = None) -> models.TranscriptRevision:
    """Save as "submitted", end the task, and hand it to the workflow (review or scoring) in one transaction; a
    repeat of submit `save_id` gets the revision it stored (the task was handed on then)."""
    from review_ui.submission import after_submit

    task, revision, new = _store_revision(session, principal, task_pk, base_version, turns, stage="submitted",
                                          realigner=realigner, started_at=started_at, turn_ids=turn_ids, save_id=save_id)
    if new:
        task.state = "submitted"
        after_submit(session, task, revision, principal.username)
    session.commit()
    return revision


def marking_revision(session: Session, principal: Principal, task_pk: int, base_version: int, turns: Any, *,
                     realigner: Realigner, turn_ids: Any = None, started_at: dt.datetime | None = None,
                     save_id: str | None = None) -> models.TranscriptRevision:
    """The saved revision whose words a person marks personal data in: the head when the tab holds it (the same
    speakers, bounds and texts: marks index the text's words), else the tab's turns saved first (as a save
    would, named `save_id`). A tab on an older version gets SaveConflict, except the repeat of this very mark
    whose save is still the head (`stored_save`): it gets the head again, so the mark is made once."""
    if stored_save(session, principal, task_pk, save_id) is not None:
        head = _head(session, _task(session, task_pk))
        assert head is not None  # stored_save found the head's own save
        return head
    opened = _task(session, task_pk)
    task, _ = edit_target(session, principal, opened)
    if task.version != base_version:
        raise _conflict(session, task.pk, base_version, [])
    head = session.get(models.TranscriptRevision, task.head_revision_pk) if task.head_revision_pk else None
    recording = session.get(models.Recording, task.recording_pk)
    clean, ids = validate_with_ids(turns, float(recording.duration_s or 0.0), turn_ids)
    shape = lambda ts: [(t["speaker"], t["start"], t["end"], t["text"]) for t in ts]  # noqa: E731
    if head is not None and shape(head.as_turn_json()) == shape(clean) and (ids is None or turn_ids_of(head) == ids):
        return head
    _, revision, _ = _store_revision(session, principal, task_pk, base_version, turns, stage="draft", realigner=realigner,
                                     started_at=started_at, turn_ids=turn_ids, save_id=save_id)
    return revision


def turn_lines(turns: list[TurnJson]) -> list[str]:
    """One readable line per turn: what the history diff compares."""
    return [f"{t['speaker']} [{t['start']:.2f}-{t['end']:.2f}] {t['text']}" for t in turns]


def history(session: Session, principal: Principal, task_pk: int) -> list[HistoryEntry]:
    """The task's revisions, oldest first, each with who saved it, when, and its diff against the model."""
    task = _task(session, task_pk)
    if not principal.can("review") and not principal.can("see_quality"):
        check_may_view(principal, task)
    if task.kind == REVIEW:  # a review task's history is the reviewed work's
        task = _task(session, (task.details or {}).get("annotate_task") or -1)
    recording = session.get(models.Recording, task.recording_pk)
    model = model_revision(session, task.recording_pk)
    base = [] if model is None or task.blind else in_window(model.as_turn_json(), *_window(task, recording))
    base_lines = turn_lines(base)
    entries = []
    revisions = session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.task_pk == task.pk)
                                .order_by(models.TranscriptRevision.pk)).all()
    for revision in revisions:
        diff = list(difflib.unified_diff(base_lines, turn_lines(revision.as_turn_json()), "model", f"revision {revision.pk}", lineterm="", n=0))
        changed = sum(1 for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---")))
        entries.append(HistoryEntry(revision.pk, revision.stage, revision.author, revision.author_kind, revision.created_at, diff, changed))
    return entries
