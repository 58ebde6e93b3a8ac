"""Gold items and calibration: who may take production work in which language and accent.

- A *gold item* is a recording with an approved reference transcript (a revision with
  stage ``reference``, made from an approved one by `make_gold`). Gold recordings are
  never cut into production tasks; they are handed out as ``gold`` tasks mixed unmarked
  into production queues, or as ``calibration`` tasks to people still calibrating.
- A *skill* is a (language, accent) pair; a person's Calibration rows are its history
  and the newest row per pair is in force: ``calibrating`` (a manager started it, or a
  failed set asks for another), ``passed`` (may take production work), ``returned``
  (gold accuracy fell below the threshold: back to calibration). Accent ``""`` stands for
  every accent of the language. A recording's accents are its speakers' ``accent``
  demographic values (none declared: ``""``); a person is skilled for a recording when
  every one of its accents is passed, directly or through the language-wide ``""``.
- Scoring happens at submission (`record_gold_result`, called by `workflow.after_submit`)
  and is never shown to the annotator: the task goes ``submitted`` like any other. The
  scores go to the audit log (``gold_scored``, readable by managers) and to the
  Calibration rows' details; decisions that need a person are *manager notices*
  (``manager_notice`` audit events, `manager_notices`).
- Gold running short is never silent: when a calibration set cannot be drawn in full,
  when a person's skill has no gold at all, when fewer unseen gold recordings are left
  than a set needs, or when someone with production work gets no gold, the managers get
  a notice naming the skill to add gold for (`gold_shortage`; once per person, skill and
  reason until new gold is made).
- Returning someone to calibration pauses their production work (`pause_unskilled_work`):
  every open, in-progress or sent-back production or gold task they are no longer
  skilled for goes back to the pool, unassigned, to start again from the pre-annotation;
  their drafts stay in the task's history (revisions are append-only) and the manager's
  notice says how many tasks went back.

Thresholds (`GoldThresholds`) come from the protocol's stored spec, ``review.gold`` when
present, else the defaults below.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.accounts import Principal, require
from store.audit import pending_events, record_event
from review_ui import comparison
from review_ui.tasks import CALIBRATION, FINISHED_STATES, GOLD, OPEN, PRODUCTION, QUEUE_STATES, aware, span_of, utcnow

CALIBRATING, PASSED, RETURNED = "calibrating", "passed", "returned"
NOTICE = "manager_notice"


@dataclass(frozen=True)
class GoldThresholds:
    """When a calibration set passes, and when ongoing gold accuracy sends someone back."""

    max_wer: float = 0.15
    max_speaker_error: float = 0.10
    max_boundary_s: float = 0.5
    calibration_items: int = 3  # gold items in a calibration set
    window: int = 5  # ongoing accuracy: the person's last `window` gold items of the skill
    min_items: int = 3  # ... judged once at least this many are scored
    queues_per_recording: int = 1  # queues that may hold one gold recording at a time (gold and calibration tasks)


def thresholds_for(protocol_row: models.Protocol | None) -> GoldThresholds:
    spec = (protocol_row.spec or {}) if protocol_row is not None else {}
    given = ((spec.get("review") or {}).get("gold") or {}) if isinstance(spec, dict) else {}
    known = {f.name for f in fields(GoldThresholds)}
    return GoldThresholds(**{k: v for k, v in given.items() if k in known})


# --- gold recordings ---------------------------------------------------------------------------

def reference_revision(session: Session, recording_pk: int) -> models.TranscriptRevision | None:
    rev = models.TranscriptRevision
    return session.scalars(
        select(rev).where(rev.recording_pk == recording_pk, rev.stage == "reference").order_by(rev.pk.desc())
    ).first()


def gold_recordings(session: Session, protocol_pk: int) -> list[models.Recording]:
    rec, rev = models.Recording, models.TranscriptRevision
    pks = select(rev.recording_pk).where(rev.stage == "reference")
    return list(session.scalars(
        select(rec).where(rec.protocol_pk == protocol_pk, rec.status == "accepted", rec.pk.in_(pks)).order_by(rec.pk)
    ))


def make_gold(session: Session, principal: Principal, recording_pk: int, *, revision_pk: int | None = None) -> models.TranscriptRevision:
    """Make a recording a gold item: its approved transcript (or the given revision) becomes the reference."""
    require(principal, "assign")
    rev = models.TranscriptRevision
    if revision_pk is not None:
        source = session.get(rev, revision_pk)
        if source is None or source.recording_pk != recording_pk:
            raise ValueError(f"revision {revision_pk} is not a revision of recording {recording_pk}")
    else:
        source = session.scalars(
            select(rev).where(rev.recording_pk == recording_pk, rev.stage == "approved").order_by(rev.pk.desc())
        ).first()
        if source is None:
            raise ValueError(f"recording {recording_pk} has no approved transcript to make a reference from")
    reference = rev(recording_pk=recording_pk, parent_pk=source.pk, author_kind="person", author=principal.username,
                    author_params={"made_gold_from": source.pk}, turns=source.turns, stage="reference")
    session.add(reference)
    session.flush()
    record_event(session, principal.username, "gold_made", f"recording:{recording_pk}", {"revision": reference.pk, "from": source.pk})
    return reference


# --- skills ----------------------------------------------------------------------------------------

def recording_language(session: Session, recording: models.Recording) -> str:
    sess = session.get(models.Session, recording.session_pk) if recording.session_pk is not None else None
    language = (sess.language if sess is not None else "") or (recording.declared or {}).get("language") or ""
    if not language:
        protocol = session.get(models.Protocol, recording.protocol_pk)
        languages = (protocol.spec or {}).get("languages") or [""] if protocol is not None else [""]
        language = languages[0]
    return str(language)


def recording_accents(session: Session, recording: models.Recording) -> set[str]:
    """The accents of the recording's speakers (``{""}`` when none is declared)."""
    sp, sd = models.SessionParticipant, models.SpeakerDemographic
    accents = set(session.scalars(
        select(sd.value).join(sp, sp.speaker_id == sd.speaker_id)
        .where(sp.session_pk == recording.session_pk, sd.dimension == "accent")
    ))
    return accents or {""}


def skills(session: Session, username: str) -> dict[tuple[str, str], models.Calibration]:
    """(language, accent) -> the person's newest Calibration row for it."""
    out: dict[tuple[str, str], models.Calibration] = {}
    for row in session.scalars(select(models.Calibration).where(models.Calibration.username == username).order_by(models.Calibration.pk)):
        out[(row.language, row.accent or "")] = row
    return out


def is_skilled(person_skills: dict[tuple[str, str], models.Calibration], language: str, accents: set[str]) -> bool:
    def passed(key: tuple[str, str]) -> bool:
        row = person_skills.get(key)
        return row is not None and row.state == PASSED

    return all(passed((language, accent)) or passed((language, "")) for accent in accents)


def covers(key: tuple[str, str], language: str, accents: set[str]) -> bool:
    """Whether a recording (language, accents) exercises the skill `key`."""
    return key[0] == language and (key[1] == "" or key[1] in accents)


def start_calibration(session: Session, principal: Principal, username: str, language: str, accent: str = "",
                      reason: str = "") -> models.Calibration:
    """A manager puts a person into calibration for a language (and accent): calibration tasks follow."""
    require(principal, "assign")
    if session.get(models.User, username) is None:
        raise ValueError(f"no user {username!r}")
    row = models.Calibration(username=username, language=language, accent=accent, state=CALIBRATING,
                             reason=reason or f"started by {principal.username}")
    session.add(row)
    session.flush()
    record_event(session, principal.username, "calibration_started", f"user:{username}", {"language": language, "accent": accent})
    return row


# --- scoring -----------------------------------------------------------------------------------------

def submitted_revision(session: Session, task_pk: int) -> models.TranscriptRevision | None:
    rev = models.TranscriptRevision
    return session.scalars(
        select(rev).where(rev.task_pk == task_pk, rev.stage == "submitted").order_by(rev.pk.desc())
    ).first()


def score_task(session: Session, task: models.Task, revision: models.TranscriptRevision | None = None,
               frame_s: float = 0.01) -> comparison.Comparison | None:
    """A gold or calibration task's submitted transcript against the recording's reference, over the task's span."""
    revision = revision or submitted_revision(session, task.pk)
    reference = reference_revision(session, task.recording_pk)
    recording = session.get(models.Recording, task.recording_pk)
    if revision is None or reference is None or recording is None:
        return None
    start, end = span_of(task, recording)
    return comparison.compare(reference.as_turn_json(), revision.as_turn_json(), start, end, frame_s)


def failures(accuracy: comparison.Comparison, limits: GoldThresholds) -> list[str]:
    """What in a person's summed gold or calibration scores is past the protocol's limits."""
    out = []
    if accuracy.wer is not None and accuracy.wer > limits.max_wer:
        out.append(f"WER {accuracy.wer:.3f} > {limits.max_wer}")
    if accuracy.speaker_error is not None and accuracy.speaker_error > limits.max_speaker_error:
        out.append(f"speaker error {accuracy.speaker_error:.3f} > {limits.max_speaker_error}")
    if accuracy.boundary_s is not None and accuracy.boundary_s > limits.max_boundary_s:
        out.append(f"boundary deviation {accuracy.boundary_s:.3f} s > {limits.max_boundary_s} s")
    return out


def notify_manager(session: Session, actor: str, subject: str, message: str, details: dict[str, Any]) -> None:
    record_event(session, actor, NOTICE, subject, {"message": message, **details})


def skill_name(key: tuple[str, str]) -> str:
    return f"{key[0]}/{key[1] or '*'}"


def scored_recording_pk(session: Session, username: str) -> int | None:
    """The recording of the person's newest calibration task (whose protocol a new set is drawn from)."""
    task = models.Task
    return session.scalar(select(task.recording_pk).where(task.assignee == username, task.kind == CALIBRATION)
                          .order_by(task.pk.desc()).limit(1))


def seen_recordings(session: Session, username: str) -> set[int]:
    """Recordings the person ever had a task on (nobody gets a gold recording twice)."""
    return set(session.scalars(select(models.Task.recording_pk).where(models.Task.assignee == username).distinct()))


def covering_gold(session: Session, protocol_pk: int, key: tuple[str, str]) -> list[int]:
    """The protocol's gold recordings that exercise the skill `key`."""
    return [g.pk for g in gold_recordings(session, protocol_pk)
            if covers(key, recording_language(session, g), recording_accents(session, g))]


def unseen_gold(session: Session, protocol_pk: int, username: str, key: tuple[str, str]) -> list[int]:
    """Gold recordings exercising `key` that the person never had a task on."""
    seen = seen_recordings(session, username)
    return [pk for pk in covering_gold(session, protocol_pk, key) if pk not in seen]


GOLD_SHORTAGE = "gold_shortage"


def notify_gold_shortage(session: Session, actor: str, username: str, key: tuple[str, str], reason: str, message: str,
                         details: dict[str, Any] | None = None) -> bool:
    """Tell the managers what gold to add; once per (person, skill, reason) until new gold is made. True if sent."""
    ev = models.AuditEvent
    last_gold = session.scalar(select(ev.pk).where(ev.action == "gold_made").order_by(ev.pk.desc()).limit(1)) or 0
    since = list(session.scalars(select(ev).where(ev.action == NOTICE, ev.subject == f"user:{username}", ev.pk > last_gold)))
    for event in pending_events(session):  # this transaction's events, not stored yet
        if event.action == "gold_made":
            since = []
        elif event.action == NOTICE and event.subject == f"user:{username}":
            since.append(event)
    for event in since:
        d = event.details or {}
        if d.get("kind") == GOLD_SHORTAGE and d.get("skill") == skill_name(key) and d.get("reason") == reason:
            return False
    notify_manager(session, actor, f"user:{username}", message, {"kind": GOLD_SHORTAGE, "username": username,
                                                                 "skill": skill_name(key), "reason": reason, **(details or {})})
    return True


def manager_notices(session: Session, principal: Principal, limit: int = 50) -> list[dict[str, Any]]:
    """The newest notices for managers (calibration failed, returned to calibration, ...)."""
    require(principal, "see_quality")
    ev = models.AuditEvent
    rows = session.scalars(select(ev).where(ev.action == NOTICE).order_by(ev.pk.desc()).limit(limit))
    return [{"at": e.at, "subject": e.subject, **(e.details or {})} for e in rows]


def _finished_tasks(session: Session, username: str, kind: str) -> list[models.Task]:
    task = models.Task
    query = select(task).where(task.assignee == username, task.kind == kind, task.state.in_(FINISHED_STATES))
    return list(session.scalars(query.order_by(task.updated_at, task.pk)))


def record_gold_result(session: Session, task: models.Task, revision: models.TranscriptRevision, actor: str) -> comparison.Comparison | None:
    """Score a submitted gold or calibration task and act on the person's calibration (silently for them)."""
    scored = score_task(session, task, revision)
    username = task.assignee or revision.author
    if scored is None:
        return None
    record_event(session, actor, "gold_scored", f"task:{task.pk}", {
        "username": username, "kind": task.kind, "recording": task.recording_pk, "revision": revision.pk,
        "wer": scored.wer, "speaker_error": scored.speaker_error, "boundary_s": scored.boundary_s,
    })
    recording = session.get(models.Recording, task.recording_pk)
    protocol_row = session.get(models.Protocol, recording.protocol_pk)
    limits = thresholds_for(protocol_row)
    language, accents = recording_language(session, recording), recording_accents(session, recording)
    person = skills(session, username)
    session.flush()
    for key, row in person.items():
        if not covers(key, language, accents):
            continue
        if task.kind == CALIBRATION and row.state in (CALIBRATING, RETURNED):
            _judge_calibration_set(session, username, key, row, limits, actor)
        elif task.kind == GOLD and row.state == PASSED:
            _judge_ongoing(session, username, key, row, limits, actor)
    return scored


def _scored_since(session: Session, username: str, kind: str, key: tuple[str, str], since: models.Calibration) -> list[comparison.Comparison]:
    out = []
    for t in _finished_tasks(session, username, kind):
        updated, created = aware(t.updated_at), aware(since.created_at)
        if updated is not None and created is not None and updated < created:
            continue
        recording = session.get(models.Recording, t.recording_pk)
        if not covers(key, recording_language(session, recording), recording_accents(session, recording)):
            continue
        scored = score_task(session, t)
        if scored is not None:
            out.append(scored)
    return out


def _judge_calibration_set(session: Session, username: str, key: tuple[str, str], row: models.Calibration,
                           limits: GoldThresholds, actor: str) -> None:
    scored = _scored_since(session, username, CALIBRATION, key, row)
    if len(scored) < limits.calibration_items:
        return
    accuracy = comparison.total(scored[-limits.calibration_items:])
    problems = failures(accuracy, limits)
    language, accent = key
    if problems:
        session.add(models.Calibration(username=username, language=language, accent=accent, state=CALIBRATING,
                                       reason="calibration set failed: " + "; ".join(problems), details=accuracy.figures()))
        recording = session.get(models.Recording, scored_recording_pk(session, username))
        left = len(unseen_gold(session, recording.protocol_pk, username, key)) if recording is not None else 0
        follow = (" (a new calibration set follows)" if left >= limits.calibration_items else
                  f"; only {left} unseen gold recording(s) of {skill_name(key)} are left and a set needs "
                  f"{limits.calibration_items}: add gold recordings of {skill_name(key)} for a new set")
        notify_manager(session, actor, f"user:{username}", f"{username} failed calibration for {language}/{accent or '*'}: "
                       + "; ".join(problems) + follow, {"username": username, "unseen_gold_left": left, **accuracy.figures()})
    else:
        session.add(models.Calibration(username=username, language=language, accent=accent, state=PASSED,
                                       reason="calibration set passed", details=accuracy.figures()))
        record_event(session, actor, "calibration_passed", f"user:{username}", {"language": language, "accent": accent, **accuracy.figures()})
    session.flush()


def _judge_ongoing(session: Session, username: str, key: tuple[str, str], row: models.Calibration,
                   limits: GoldThresholds, actor: str) -> None:
    scored = _scored_since(session, username, GOLD, key, row)[-limits.window:]
    if len(scored) < limits.min_items:
        return
    accuracy = comparison.total(scored)
    problems = failures(accuracy, limits)
    if not problems:
        return
    language, accent = key
    session.add(models.Calibration(username=username, language=language, accent=accent, state=RETURNED,
                                   reason="gold accuracy below threshold: " + "; ".join(problems), details=accuracy.figures()))
    session.flush()
    paused = pause_unskilled_work(session, username, actor)
    notify_manager(session, actor, f"user:{username}", f"{username} returned to calibration for {language}/{accent or '*'}: "
                   + "; ".join(problems) + f"; {len(paused)} open task(s) went back to the pool"
                   + (f" (tasks {', '.join(map(str, paused))}; their drafts stay in the history)" if paused else ""),
                   {"username": username, "tasks_returned_to_pool": paused, **accuracy.figures()})
    session.flush()


def pause_unskilled_work(session: Session, username: str, actor: str) -> list[int]:
    """Put the person's open production and gold tasks they are no longer skilled for back in the pool; their pks.

    The task loses its assignee, due date and head revision (the next person starts from
    the pre-annotation) and its version moves on, so an editor still open on the old
    version can neither save nor submit; the drafts keep their task_pk in the history.
    """
    task = models.Task
    person = skills(session, username)
    held = session.scalars(select(task).where(task.assignee == username, task.kind.in_((PRODUCTION, GOLD)),
                                              task.state.in_(QUEUE_STATES)).order_by(task.pk)).all()
    now = utcnow()
    paused = []
    for t in held:
        recording = session.get(models.Recording, t.recording_pk)
        if is_skilled(person, recording_language(session, recording), recording_accents(session, recording)):
            continue
        was = t.state
        t.assignee, t.state, t.due_at, t.head_revision_pk = None, OPEN, None, None
        t.version, t.updated_at = (t.version or 0) + 1, now
        t.details = {**(t.details or {}), "paused_from": [*(t.details or {}).get("paused_from", []), username]}
        record_event(session, actor, "task_returned_to_pool", f"task:{t.pk}", {"from": username, "state_was": was,
                                                                               "reason": "returned to calibration"})
        paused.append(t.pk)
    session.flush()
    return paused

