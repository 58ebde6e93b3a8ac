"""Accounts, queues and approvals for `turnscribe demo` (which has no people to do the work).

The demo passwords are printed by the demo and meant for a throwaway local home only.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.accounts import add_user, load_principal
from store.audit import record_event
from store.clock import utcnow
from review_ui.assignment import AssignmentRules, assign_tasks
from review_ui.calibration import PASSED, skills
from review_ui.realign import Realigner
from review_ui.review import accept
from review_ui.tasks import ACCEPTED, DONE, OPEN, PRODUCTION, SUBMITTED, cut_tasks, model_revision
from review_ui.submission import after_submit, review_tasks_of

DEMO_ACCOUNTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("admin", "harbour-lantern-27", ("admin",)),
    ("mgr1", "copper-meadow-58", ("manager",)),
    ("ann1", "silver-canyon-14", ("annotator",)),
    ("ann2", "quiet-orchard-63", ("annotator",)),
    ("rev1", "amber-river-91", ("reviewer",)),
    ("ml1", "north-pebble-35", ("consumer",)),
)
DEMO_ADMIN = "admin"
DEMO_MANAGER = "mgr1"  # the demo's intake, pre-annotation, queueing and release run in this account's name
DEMO_REVIEWER = "rev1"


def _demo_languages(session: Session) -> list[str]:
    languages: set[str] = set()
    for spec in session.scalars(select(models.Protocol.spec)):
        languages.update((spec or {}).get("languages") or [])
    return sorted(languages) or ["en"]


def foreign_accounts(session: Session) -> list[str]:
    """Accounts the demo did not create: their presence means a real store, where the demo must not run."""
    demo_names = {username for username, _, _ in DEMO_ACCOUNTS}
    return [u for u in session.scalars(select(models.User.username).order_by(models.User.username)) if u not in demo_names]


def seed_demo_accounts(session: Session) -> list[tuple[str, str, str]]:
    """The demo's accounts, created once by the demo admin (who creates itself first).

    Returns (username, password, role) for each; an account that already existed keeps its password.
    """
    out = []
    for username, password, roles in DEMO_ACCOUNTS:
        if session.get(models.User, username) is None:
            add_user(session, username, password, list(roles), display_name=username, actor=DEMO_ADMIN)
            session.flush()
        out.append((username, password, roles[0]))
    return out


def calibrate_demo_people(session: Session) -> None:
    """Annotators and the reviewer calibrated for every registered language (the demo has no calibration sets)."""
    for username, _, roles in DEMO_ACCOUNTS:
        if {"annotator", "reviewer"} & set(roles):
            current = skills(session, username)
            for language in _demo_languages(session):
                row = current.get((language, ""))
                if row is None or row.state != PASSED:
                    session.add(models.Calibration(username=username, language=language, accent="", state=PASSED,
                                                   reason="demo account: calibrated by fiat"))
    session.flush()


def queue_demo(session: Session, protocol_pk: int, actor: str) -> list[models.Task]:
    """Cut the protocol's pre-annotated recordings into tasks and hand them out."""
    cut_tasks(session, protocol_pk, actor=actor)
    return assign_tasks(session, protocol_pk, AssignmentRules(), actor=actor)


def approve_for_demo(session: Session, protocol_pk: int, realigner: Realigner, actor: str = DEMO_REVIEWER, *,
                     recording_pks: set[int] | None = None) -> int:
    """Approve each recording's current pre-annotation through the ordinary submit and accept path.

    For a demo without people: every production task not yet accepted (of `recording_pks`
    only, when given) is submitted with the model's turns by its assignee (a demo
    annotator when it has none) and accepted by `actor` (a reviewer or a manager).
    Returns how many recordings got an approved revision now.
    """
    principal = load_principal(session, actor)
    cut_tasks(session, protocol_pk, actor=actor)
    task, rec = models.Task, models.Recording
    pending = session.scalars(
        select(task).join(rec, rec.pk == task.recording_pk)
        .where(rec.protocol_pk == protocol_pk, task.kind == PRODUCTION, task.state.not_in((ACCEPTED, DONE)))
        .order_by(task.recording_pk, task.start_s, task.pk)
    ).all()
    if recording_pks is not None:
        pending = [t for t in pending if t.recording_pk in recording_pks]
    approved: set[int] = set()
    for t in pending:
        if t.assignee is None or t.assignee == actor:
            t.assignee = next((u for u, _, r in DEMO_ACCOUNTS if r == ("annotator",) and u != actor), "ann1")
        if t.state != SUBMITTED:
            model = model_revision(session, t.recording_pk)
            revision = models.TranscriptRevision(
                recording_pk=t.recording_pk, parent_pk=model.pk if model else None, author_kind="person",
                author=t.assignee, author_params={"demo": True}, turns=list(model.turns if model else []),
                stage="submitted", task_pk=t.pk,
            )
            session.add(revision)
            session.flush()
            t.head_revision_pk, t.version = revision.pk, (t.version or 0) + 1
            after_submit(session, t, revision, actor)
        if t.state == DONE:  # the secondary of a pair
            continue
        review = next((r for r in reversed(review_tasks_of(session, t)) if r.state == OPEN), None)
        if review is not None and review.assignee != actor:
            review.assignee = actor
        result = accept(session, principal, review.pk if review is not None else t.pk, realigner=realigner)
        if result.stage == "approved":
            approved.add(t.recording_pk)
    record_event(session, actor, "demo_approved", f"protocol:{protocol_pk}", {"recordings": len(approved), "at": utcnow().isoformat()})
    session.flush()
    return len(approved)



