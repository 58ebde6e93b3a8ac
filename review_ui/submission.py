"""What happens when an annotator submits: production work goes to review, gold work to scoring.

`after_submit` runs inside the submitting transaction (the editor calls it after writing
the ``submitted`` revision). The annotator's task ends ``submitted`` whatever its kind, so
nothing they see tells a gold item apart: a production task gets a review task (a
reviewer chosen by `assignment.choose_reviewer`, the same one again after a send-back),
the secondary task of a double-annotated pair is finished (it only measures agreement),
and a gold or calibration task is scored against its reference in silence.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.accounts import users_with_role
from store.audit import record_event
from store.clock import utcnow
from review_ui.assignment import choose_reviewer
from review_ui.calibration import notify_manager, record_gold_result
from review_ui.tasks import CALIBRATION, DONE, GOLD, OPEN, PRODUCTION, REVIEW, SUBMITTED

REVIEW_DUE = dt.timedelta(days=2)


def review_tasks_of(session: Session, annotate_task: models.Task) -> list[models.Task]:
    """Every review task opened for one production task, oldest first."""
    task = models.Task
    candidates = session.scalars(
        select(task).where(task.kind == REVIEW, task.recording_pk == annotate_task.recording_pk).order_by(task.pk)
    )
    return [t for t in candidates if (t.details or {}).get("annotate_task") == annotate_task.pk]


def after_submit(session: Session, task: models.Task, revision: models.TranscriptRevision, actor: str) -> None:
    """Route a submitted task: production to review, secondary of a pair to done, gold/calibration to scoring."""
    now = utcnow()
    if revision.task_pk is None:
        revision.task_pk = task.pk
    session.flush()
    task.updated_at = now
    if task.kind in (GOLD, CALIBRATION):
        task.state = SUBMITTED
        session.flush()
        record_event(session, actor, "task_submitted", f"task:{task.pk}", {"revision": revision.pk})
        record_gold_result(session, task, revision, actor)
        return
    if task.kind != PRODUCTION:
        raise ValueError(f"task {task.pk} is a {task.kind} task; only annotation work is submitted")
    if (task.details or {}).get("pair_role") == "secondary":
        task.state = DONE
        record_event(session, actor, "task_submitted", f"task:{task.pk}", {"revision": revision.pk, "pair": task.pair_key})
        return
    task.state = SUBMITTED
    earlier = review_tasks_of(session, task)
    for open_review in (t for t in earlier if t.state == OPEN):  # a stale review of an older submission
        open_review.state = DONE
        open_review.details = {**(open_review.details or {}), "outcome": "superseded"}
    recording = session.get(models.Recording, task.recording_pk)
    exclude = {name for name in (task.assignee, revision.author) if name}
    previous = next((t.assignee for t in reversed(earlier) if t.assignee), None)
    active_reviewers = {u.username for u in users_with_role(session, "reviewer")}
    reviewer = previous if previous in active_reviewers and previous not in exclude else None
    reviewer = reviewer or choose_reviewer(session, recording, exclude=exclude)
    review = models.Task(
        kind=REVIEW, recording_pk=task.recording_pk, assignee=reviewer, state=OPEN,
        details={"annotate_task": task.pk, "revision": revision.pk, "round": len(earlier) + 1},
        start_s=task.start_s, end_s=task.end_s, pair_key=None, blind=False, version=0,
        due_at=now + REVIEW_DUE, created_at=now, updated_at=now,
    )
    session.add(review)
    session.flush()
    record_event(session, actor, "task_submitted", f"task:{task.pk}", {"revision": revision.pk, "review_task": review.pk,
                                                                       "reviewer": reviewer})
    if reviewer is None:
        notify_manager(session, actor, f"task:{review.pk}", f"no reviewer free of conflicts for task {task.pk}; "
                       "review it yourself or add a reviewer", {"annotate_task": task.pk})
