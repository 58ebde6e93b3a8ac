"""Review: a reviewer accepts submitted work, or sends it back with a comment pinned to a turn.

Every function checks rights on the server side (`store.accounts.require`): reviewing
needs the ``review`` permission, nobody reviews their own work or a session they have a
conflict of interest with, and a review task assigned to one reviewer may only be taken
over by a manager. The `task_pk` given may be the review task's or the production task's.

Accepting a whole-dialogue task writes the recording's ``approved`` revision (what
releases take): the submitted turns, parent = the submitted revision, author = the
reviewer. A chunk is merged into the recording's newest accepted turns (the model's at
first): the result is ``approved`` when it completes the recording (every chunk
accepted), else ``accepted`` (a partial, never released).

A reviewer may edit the work before deciding (`editing.save_draft` on the review task
stores a ``review_edit`` revision by the reviewer on the production task): accepting or
sending back then takes the newest edit, and accepting names the version the reviewer saw,
so an edit saved in between is never accepted unseen. A comment is pinned to a turn of the
revision it was made on; `comment_pins` follows that turn's stable id to where it is now.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from store import models
from store.accounts import PermissionDenied, Principal, require
from store.audit import record_event
from store.clock import utcnow
from store.turns import TurnJson
from review_ui import comparison
from review_ui.assignment import conflicts, participants
from review_ui.calibration import submitted_revision
from review_ui.realign import Realigner
from review_ui.tasks import (
    ACCEPTED, DONE, OPEN, PRODUCTION, REVIEW, SUBMITTED, SENT_BACK, aware, model_revision, span_of, title_of,
)
from review_ui.submission import review_tasks_of


class ReviewStateError(ValueError):
    """The task is not waiting for review (already accepted, sent back, or not submitted)."""


@dataclass(frozen=True)
class ReviewItem:
    """One line of a reviewer's queue (the first six fields are a QueueItem's)."""

    task_pk: int  # the review task
    title: str
    audio_s: float
    due_at: dt.datetime | None
    state: str
    overdue: bool
    annotate_task_pk: int
    annotator: str | None
    revision_pk: int | None
    round: int
    assigned_to: str | None


def review_queue(session: Session, principal: Principal, *, now: dt.datetime | None = None) -> list[ReviewItem]:
    """Open review tasks assigned to the principal (a manager also sees the unassigned ones)."""
    require(principal, "review")
    now = now or utcnow()
    task, rec = models.Task, models.Recording
    mine = task.assignee == principal.username
    if "manager" in principal.roles:
        mine = or_(mine, task.assignee.is_(None))
    rows = session.execute(
        select(task, rec).join(rec, rec.pk == task.recording_pk).where(task.kind == REVIEW, task.state == OPEN, mine)
    ).all()
    items = []
    for t, recording in rows:
        annotate = session.get(models.Task, (t.details or {}).get("annotate_task"))
        start, end = span_of(t, recording)
        due = aware(t.due_at)
        items.append(ReviewItem(
            task_pk=t.pk, title=title_of(t, recording), audio_s=round(end - start, 3), due_at=due, state=t.state,
            overdue=due is not None and due < now, annotate_task_pk=annotate.pk if annotate else 0,
            annotator=annotate.assignee if annotate else None, revision_pk=(t.details or {}).get("revision"),
            round=int((t.details or {}).get("round", 1)), assigned_to=t.assignee,
        ))
    return sorted(items, key=lambda i: (i.due_at or dt.datetime.max.replace(tzinfo=dt.timezone.utc), i.task_pk))


def _resolve(session: Session, task_pk: int) -> tuple[models.Task | None, models.Task]:
    """(open review task or None, production task) for a review task's or a production task's pk."""
    t = session.get(models.Task, task_pk)
    if t is None:
        raise LookupError(f"no task {task_pk}")
    if t.kind == REVIEW:
        annotate = session.get(models.Task, (t.details or {}).get("annotate_task"))
        if annotate is None:
            raise LookupError(f"review task {task_pk} names no production task")
        return t, annotate
    if t.kind == PRODUCTION:
        reviews = [r for r in review_tasks_of(session, t) if r.state == OPEN]
        return (reviews[-1] if reviews else None), t
    raise LookupError(f"task {task_pk} is not a reviewable task")


def _check_reviewer(session: Session, principal: Principal, review: models.Task | None, annotate: models.Task) -> None:
    require(principal, "review")
    if principal.username == annotate.assignee:
        raise PermissionDenied(f"{principal.username} may not review their own work")
    if review is not None and review.assignee not in (None, principal.username) and "manager" not in principal.roles:
        raise PermissionDenied(f"task {review.pk} is assigned to another reviewer")
    user = session.get(models.User, principal.username)
    recording = session.get(models.Recording, annotate.recording_pk)
    if user is not None and conflicts(user, recording, participants(session, recording)):
        raise PermissionDenied(f"{principal.username} has a conflict of interest with this session")


def _waiting(review: models.Task | None, annotate: models.Task) -> models.Task:
    if review is None or review.state != OPEN or annotate.state != SUBMITTED:
        raise ReviewStateError(f"task {annotate.pk} is {annotate.state}, not waiting for review")
    return review


def reviewable_work(session: Session, principal: Principal, task_pk: int) -> models.Task:
    """The production task a reviewer may edit now (the reviewer's checks, and the work still waiting for review)."""
    review, annotate = _resolve(session, task_pk)
    _check_reviewer(session, principal, review, annotate)
    try:
        _waiting(review, annotate)
    except ReviewStateError as not_waiting:
        raise PermissionDenied(str(not_waiting)) from not_waiting
    return annotate


def _submitted(session: Session, review: models.Task, annotate: models.Task) -> models.TranscriptRevision:
    """The work under review: the reviewer's newest edit of it, else the submitted revision."""
    from review_ui.editing import REVIEW_EDIT

    head = session.get(models.TranscriptRevision, annotate.head_revision_pk) if annotate.head_revision_pk else None
    if head is not None and head.stage == REVIEW_EDIT:
        return head
    revision = session.get(models.TranscriptRevision, (review.details or {}).get("revision") or -1)
    revision = revision or submitted_revision(session, annotate.pk)
    if revision is None:
        raise ReviewStateError(f"task {annotate.pk} has no submitted revision")
    return revision


def merge_span(base: list[TurnJson], part: list[TurnJson], start: float, end: float) -> list[TurnJson]:
    """`base` with its turns in [start, end) (by midpoint) replaced by `part`'s turns there."""
    keep = [t for t in base if not start <= (float(t["start"]) + float(t["end"])) / 2 < end]
    return sorted(keep + comparison.in_span(part, start, end), key=lambda t: (float(t["start"]), float(t["end"])))


def _recording_complete(session: Session, recording_pk: int) -> bool:
    task = models.Task
    production = session.scalars(select(task).where(task.recording_pk == recording_pk, task.kind == PRODUCTION)).all()
    counted = [t for t in production if (t.details or {}).get("pair_role") != "secondary"]
    return bool(counted) and all(t.state == ACCEPTED for t in counted)


def accept(session: Session, principal: Principal, task_pk: int, *, realigner: Realigner,
           version: int | None = None) -> models.TranscriptRevision:
    """Accept submitted work: a new revision (stage ``approved``, or ``accepted`` for a partial chunk).

    `version`: the production task's version the reviewer saw; a newer one (an edit saved since) is refused.
    `realigner` aligns the words of turns the reviewer's edits left spread (their autosaves do not run the
    model, see `review_ui.realign`); work accepted as submitted was aligned at submission and costs nothing.
    """
    review, annotate = _resolve(session, task_pk)
    _check_reviewer(session, principal, review, annotate)
    review = _waiting(review, annotate)
    if version is not None and annotate.version != version:
        raise ReviewStateError(f"task {annotate.pk} is at version {annotate.version}, not the version {version} you "
                               "reviewed: look at the newest edits before accepting")
    submitted = _submitted(session, review, annotate)
    now = utcnow()
    annotate.state, annotate.updated_at = ACCEPTED, now
    review.state, review.updated_at = DONE, now
    review.assignee = review.assignee or principal.username
    review.details = {**(review.details or {}), "outcome": "accepted", "by": principal.username}
    session.flush()
    rev = models.TranscriptRevision
    recording = session.get(models.Recording, annotate.recording_pk)
    if annotate.start_s is None and annotate.end_s is None:
        turns, stage = submitted.as_turn_json(), "approved"
    else:
        start, end = span_of(annotate, recording)
        base = session.scalars(
            select(rev).where(rev.recording_pk == annotate.recording_pk, rev.stage.in_(("accepted", "approved")))
            .order_by(rev.pk.desc())
        ).first() or model_revision(session, annotate.recording_pk)
        turns = merge_span(base.as_turn_json() if base else [], submitted.as_turn_json(), start, end)
        stage = "approved" if _recording_complete(session, annotate.recording_pk) else "accepted"
    turns, timing = realigner.retime(session, recording, submitted.as_turn_json(), turns, align_now=True)
    approved = rev(
        recording_pk=annotate.recording_pk, parent_pk=submitted.pk, author_kind="person", author=principal.username,
        author_params={"review_task": review.pk, "task": annotate.pk, "annotator": annotate.assignee,
                       "span": [annotate.start_s, annotate.end_s] if annotate.start_s is not None else None,
                       "word_timing": timing.to_json()},
        turns=turns, stage=stage, task_pk=annotate.pk,
    )
    session.add(approved)
    session.flush()
    record_event(session, principal.username, "review_accepted", f"task:{annotate.pk}",
                 {"revision": approved.pk, "stage": stage, "submitted": submitted.pk, "review_task": review.pk})
    return approved


def send_back(session: Session, principal: Principal, task_pk: int, turn_index: int | None, comment: str) -> models.ReviewComment:
    """Return work to its annotator with a comment pinned to one turn (0-based index into the work under
    review, see `_submitted`; or to the whole transcript)."""
    review, annotate = _resolve(session, task_pk)
    _check_reviewer(session, principal, review, annotate)
    review = _waiting(review, annotate)
    if not comment or not comment.strip():
        raise ValueError("a send-back needs a comment saying what to fix")
    submitted = _submitted(session, review, annotate)
    if turn_index is not None and not 0 <= turn_index < len(submitted.turns):
        raise ValueError(f"turn {turn_index} does not exist (the transcript has {len(submitted.turns)} turns)")
    now = utcnow()
    note = models.ReviewComment(task_pk=annotate.pk, revision_pk=submitted.pk, turn_index=turn_index,
                                author=principal.username, text=comment.strip())
    session.add(note)
    annotate.state, annotate.updated_at = SENT_BACK, now
    review.state, review.updated_at = DONE, now
    review.assignee = review.assignee or principal.username
    review.details = {**(review.details or {}), "outcome": "sent_back", "by": principal.username}
    session.flush()
    record_event(session, principal.username, "review_sent_back", f"task:{annotate.pk}",
                 {"comment": note.pk, "turn": turn_index, "revision": submitted.pk, "review_task": review.pk})
    return note


def comments_for(session: Session, principal: Principal, task_pk: int) -> list[models.ReviewComment]:
    """The comments on a production task, for its annotator, reviewers and managers."""
    t = session.get(models.Task, task_pk)
    if t is None:
        raise LookupError(f"no task {task_pk}")
    annotate = session.get(models.Task, (t.details or {}).get("annotate_task")) if t.kind == REVIEW else t
    if annotate is None:
        raise LookupError(f"task {task_pk} names no production task")
    if not principal.can("review"):
        require(principal, "annotate")
        if annotate.assignee != principal.username:
            raise PermissionDenied(f"task {task_pk} is not assigned to {principal.username}")
    rc = models.ReviewComment
    return list(session.scalars(select(rc).where(rc.task_pk == annotate.pk).order_by(rc.pk)))


@dataclass(frozen=True)
class CommentPin:
    """A comment as the editor shows it: the stable id of the turn it was pinned to (None: the whole
    transcript) and that turn's start, where it is looked for once its id is gone (merged away)."""

    author: str
    text: str
    turn_id: str | None
    at: float | None

    def to_json(self) -> dict[str, object]:
        return {"author": self.author, "text": self.text, "turn_id": self.turn_id, "at": self.at}


def comment_pins(session: Session, comments: list[models.ReviewComment]) -> list[CommentPin]:
    """Each comment with the stable id of its turn in the revision it was made on."""
    from review_ui.editing import turn_ids_of

    pins = []
    for c in comments:
        revision = session.get(models.TranscriptRevision, c.revision_pk)
        turns = (revision.turns or []) if revision is not None else []
        if c.turn_index is None or revision is None or not 0 <= c.turn_index < len(turns):
            pins.append(CommentPin(c.author, c.text, None, None))
        else:
            pins.append(CommentPin(c.author, c.text, turn_ids_of(revision)[c.turn_index], float(turns[c.turn_index]["start"])))
    return pins


def pinned_turn(pin: CommentPin, turn_ids: list[str], turns: list[TurnJson]) -> int | None:
    """Where a pinned comment's turn is now (0-based): the turn with its id, else (merged away) the turn holding
    its start time; None for a comment on the whole transcript or when there are no turns."""
    if pin.turn_id is None or not turns:
        return None
    if pin.turn_id in turn_ids:
        return turn_ids.index(pin.turn_id)
    at = pin.at or 0.0
    holding = [i for i, t in enumerate(turns) if float(t["start"]) <= at < float(t["end"])]
    return holding[0] if holding else min(range(len(turns)), key=lambda i: abs(float(turns[i]["start"]) - at))
