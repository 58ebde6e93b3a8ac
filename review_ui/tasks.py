"""Cutting recordings into review tasks, and an annotator's queue.

A task covers a whole dialogue, or a chunk of at most `max_chunk_s` seconds cut in the
pause nearest to the limit (never inside a model turn when a pause exists), with
`context_s` seconds of audio either side to listen to (``details["context_start_s"]``
and ``details["context_end_s"]``). Only accepted recordings with a model revision, no
approved reference (gold recordings are not production work) and no task yet are cut,
so cutting is idempotent and picks up recordings ingested later.

Shares are exact over the protocol's whole backlog, not per call: after any number of
cuts, ``round(double_share × units)`` units are double-annotated (two tasks sharing a
`pair_key`; the first is the *primary*, reviewed and approved; the second only measures
agreement) and ``round(blind_share × units)`` are blind (shown without pre-annotation).
Which units is decided by a seeded hash of the unit, so a re-run picks the same ones.

Task kinds: ``annotate`` (production), ``gold`` (a gold item mixed into a production
queue), ``calibration`` (a gold item in a calibration set) and ``review``. States:
``open`` → ``in_progress`` → ``submitted`` → ``accepted`` | ``sent_back`` (→ ``in_progress``
…); a secondary of a pair and a review task end ``done``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from store import models
from store.accounts import Principal, require, users_with_role
from store.audit import record_event
from store.clock import utcnow
from store.turns import TurnJson

PRODUCTION = "annotate"
GOLD = "gold"
CALIBRATION = "calibration"
REVIEW = "review"
ANNOTATION_KINDS = (PRODUCTION, GOLD, CALIBRATION)  # what an annotator's queue holds

OPEN, IN_PROGRESS, SUBMITTED, SENT_BACK, ACCEPTED, DONE = "open", "in_progress", "submitted", "sent_back", "accepted", "done"
QUEUE_STATES = (OPEN, IN_PROGRESS, SENT_BACK)
FINISHED_STATES = (SUBMITTED, ACCEPTED, DONE)

CUT_EVENT = "review_tasks_cut"


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def unit_hash(seed: int, what: str, recording_pk: int, index: int) -> float:
    digest = hashlib.sha256(f"{seed}:{what}:{recording_pk}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def model_revision(session: Session, recording_pk: int) -> models.TranscriptRevision | None:
    """The newest model-authored revision of a recording (the pre-annotation)."""
    rev = models.TranscriptRevision
    return session.scalars(
        select(rev).where(rev.recording_pk == recording_pk, rev.author_kind == "model").order_by(rev.pk.desc())
    ).first()


def chunk_bounds(duration: float, turns: list[TurnJson], max_chunk_s: float | None) -> list[tuple[float, float]]:
    """Chunks of at most `max_chunk_s`, each cut in the longest pause of its last third (else at the limit)."""
    if not max_chunk_s or duration <= max_chunk_s:
        return [(0.0, round(duration, 3))]
    spans = sorted((float(t["start"]), float(t["end"])) for t in turns)
    pauses: list[tuple[float, float]] = []  # (start, end) of silences between speech
    reach = 0.0
    for start, end in spans:
        if start > reach:
            pauses.append((reach, start))
        reach = max(reach, end)
    out, at = [], 0.0
    while duration - at > max_chunk_s:
        limit = at + max_chunk_s
        window = [(max(s, at + max_chunk_s * 2 / 3), min(e, limit)) for s, e in pauses if e > at + max_chunk_s * 2 / 3 and s < limit]
        window = [(s, e) for s, e in window if e > s]
        cut = round((lambda p: (p[0] + p[1]) / 2)(max(window, key=lambda p: p[1] - p[0])), 3) if window else round(limit, 3)
        out.append((round(at, 3), cut))
        at = cut
    out.append((round(at, 3), round(duration, 3)))
    return out


def _gold_recording_pks(session: Session, protocol_pk: int) -> set[int]:
    rec, rev = models.Recording, models.TranscriptRevision
    return set(session.scalars(
        select(rec.pk).join(rev, rev.recording_pk == rec.pk).where(rec.protocol_pk == protocol_pk, rev.stage == "reference")
    ))


def last_cut_settings(session: Session, protocol_pk: int) -> dict[str, Any]:
    """The settings of the protocol's last cut (gold items are cut the same way, so they look alike)."""
    event = session.scalars(
        select(models.AuditEvent).where(models.AuditEvent.action == CUT_EVENT, models.AuditEvent.subject == f"protocol:{protocol_pk}")
        .order_by(models.AuditEvent.pk.desc())
    ).first()
    return dict(event.details) if event is not None else {}


def context_details(start: float, end: float, duration: float, context_s: float) -> dict[str, Any]:
    return {"context_start_s": round(max(0.0, start - context_s), 3), "context_end_s": round(min(duration, end + context_s), 3)}


def cut_tasks(
    session: Session, protocol_pk: int, *, max_chunk_s: float | None = None, context_s: float = 5.0,
    double_share: float = 0.10, blind_share: float = 0.05, seed: int = 0, actor: str, gold_share: float = 0.10,
) -> list[models.Task]:
    """Production tasks for every accepted, pre-annotated, non-gold recording that has none yet.

    With gold recordings in the store, ``ceil(gold_share × new units)`` plus one per active
    annotator (assignment rounds each person's gold up) unassigned gold tasks are cut too
    and created in among the production tasks (their ids and creation times interleave, so
    an id seen in a queue says nothing); assignment hands them out, re-pointing a pool
    task at whichever gold recording a person needs.
    Returns the production tasks.
    """
    if max_chunk_s is not None and max_chunk_s <= 0:
        raise ValueError("max_chunk_s must be positive")
    for name, share in (("double_share", double_share), ("blind_share", blind_share), ("gold_share", gold_share)):
        if not 0 <= share <= 1:
            raise ValueError(f"{name} must lie between 0 and 1")
    rec, rev, task = models.Recording, models.TranscriptRevision, models.Task
    has_model = exists().where(rev.recording_pk == rec.pk, rev.author_kind == "model")
    has_task = exists().where(task.recording_pk == rec.pk, task.kind == PRODUCTION)
    gold = _gold_recording_pks(session, protocol_pk)
    recordings = [r for r in session.scalars(
        select(rec).where(rec.protocol_pk == protocol_pk, rec.status == "accepted", has_model, ~has_task).order_by(rec.pk)
    ) if r.pk not in gold]
    units: list[tuple[models.Recording, int, float, float]] = []
    for recording in recordings:
        model = model_revision(session, recording.pk)
        duration = float(recording.duration_s or 0.0)
        for i, (start, end) in enumerate(chunk_bounds(duration, model.as_turn_json() if model else [], max_chunk_s)):
            units.append((recording, i, start, end))

    existing = _existing_units(session, protocol_pk)
    total = existing["units"] + len(units)
    n_double = max(0, round(double_share * total) - existing["double"])
    n_blind = max(0, round(blind_share * total) - existing["blind"])
    by_double = sorted(range(len(units)), key=lambda k: unit_hash(seed, "double", units[k][0].pk, units[k][1]))
    by_blind = sorted(range(len(units)), key=lambda k: unit_hash(seed, "blind", units[k][0].pk, units[k][1]))
    doubled, blind = set(by_double[:n_double]), set(by_blind[:n_blind])

    created: list[models.Task] = []
    for k, (recording, i, start, end) in enumerate(units):
        duration = float(recording.duration_s or 0.0)
        chunked = not (start == 0.0 and end >= round(duration, 3))
        details: dict[str, Any] = {"chunk": i} if chunked else {}
        details.update(context_details(start, end, duration, context_s) if chunked else {})
        pair_key = f"pair-{recording.pk}-{i}" if k in doubled else None
        roles = ("primary", "secondary") if pair_key else (None,)
        for role in roles:
            t = task(
                kind=PRODUCTION, recording_pk=recording.pk, assignee=None, state=OPEN,
                details={**details, **({"pair_role": role} if role else {})},
                start_s=start if chunked else None, end_s=end if chunked else None,
                pair_key=pair_key, blind=k in blind, version=0,
            )
            created.append(t)
    reserve = math.ceil(gold_share * len(units)) + len(users_with_role(session, "annotator")) if units and gold_share else 0
    pool = _gold_pool(session, protocol_pk, reserve, max_chunk_s, context_s, seed,
                      blind_share)
    order = [(float(i), t) for i, t in enumerate(created)]
    order += [(unit_hash(seed, "gold-at", t.recording_pk, j) * len(created), t) for j, t in enumerate(pool)]
    session.add_all([t for _, t in sorted(order, key=lambda kt: kt[0])])  # rows are inserted, and numbered, in this order
    session.flush()
    record_event(session, actor, CUT_EVENT, f"protocol:{protocol_pk}", {
        "max_chunk_s": max_chunk_s, "context_s": context_s, "double_share": double_share, "blind_share": blind_share,
        "seed": seed, "recordings": len(recordings), "tasks": len(created), "gold_tasks": len(pool),
    })
    return created


def gold_task(session: Session, kind: str, recording: models.Recording, reference_turns: list[TurnJson],
              max_chunk_s: float | None, context_s: float, pick: float, blind: bool = False) -> models.Task:
    """An unassigned gold or calibration task on a gold recording, cut like production work (`pick` in [0, 1) picks the chunk).

    Gold items are blind (no pre-annotation shown) as often as production work, so a blind task says nothing either.
    """
    duration = float(recording.duration_s or 0.0)
    bounds = chunk_bounds(duration, reference_turns, max_chunk_s)
    start, end = bounds[min(len(bounds) - 1, int(pick * len(bounds)))]
    chunked = len(bounds) > 1
    details = {"chunk": bounds.index((start, end)), **context_details(start, end, duration, context_s)} if chunked else {}
    return models.Task(kind=kind, recording_pk=recording.pk, assignee=None, state=OPEN, details=details,
                       start_s=start if chunked else None, end_s=end if chunked else None, blind=blind, version=0)


def _gold_pool(session: Session, protocol_pk: int, n: int, max_chunk_s: float | None, context_s: float, seed: int,
               blind_share: float) -> list[models.Task]:
    rev = models.TranscriptRevision
    golds = sorted(_gold_recording_pks(session, protocol_pk))
    out: list[models.Task] = []
    for j in range(n if golds else 0):
        recording = session.get(models.Recording, golds[j % len(golds)])
        reference = session.scalars(select(rev).where(rev.recording_pk == recording.pk, rev.stage == "reference")
                                    .order_by(rev.pk.desc())).first()
        out.append(gold_task(session, GOLD, recording, reference.as_turn_json() if reference else [], max_chunk_s, context_s,
                             unit_hash(seed, "gold-chunk", recording.pk, j),
                             blind=unit_hash(seed, "gold-blind", recording.pk, j) < blind_share))
    return out


def _existing_units(session: Session, protocol_pk: int) -> dict[str, int]:
    task, rec = models.Task, models.Recording
    rows = session.execute(
        select(task.pair_key, task.blind, task.details).join(rec, rec.pk == task.recording_pk)
        .where(rec.protocol_pk == protocol_pk, task.kind == PRODUCTION)
    ).all()
    units = sum(1 for pair_key, _, details in rows if not pair_key or (details or {}).get("pair_role") == "primary")
    double = len({pair_key for pair_key, _, _ in rows if pair_key})
    blind = sum(1 for pair_key, b, details in rows if b and (not pair_key or (details or {}).get("pair_role") == "primary"))
    return {"units": units, "double": double, "blind": blind}


def fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def span_of(task: models.Task, recording: models.Recording) -> tuple[float, float]:
    """The part of the recording a task covers, in seconds."""
    start = task.start_s if task.start_s is not None else 0.0
    end = task.end_s if task.end_s is not None else float(recording.duration_s or 0.0)
    return float(start), float(end)


def title_of(task: models.Task, recording: models.Recording) -> str:
    """Source name and time range: the same shape for every kind, so a gold item reads like any other."""
    start, end = span_of(task, recording)
    return f"{recording.source_name} {fmt_time(start)}–{fmt_time(end)}"


@dataclass(frozen=True)
class QueueItem:
    """One line of an annotator's queue. Nothing in it tells a gold item from production work."""

    task_pk: int
    title: str
    audio_s: float
    due_at: dt.datetime | None
    state: str
    overdue: bool


def _queue_order(task: models.Task) -> tuple[int, dt.datetime, str]:
    """Sent-back work first, then by due date; ties by a hash of the pk (creation order would give gold away)."""
    due = aware(task.due_at) or dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    return (0 if task.state == SENT_BACK else 1, due, hashlib.sha256(str(task.pk).encode()).hexdigest())


def queue_for(session: Session, principal: Principal, *, now: dt.datetime | None = None) -> list[QueueItem]:
    """The signed-in annotator's open, in-progress and sent-back tasks, gold items mixed in unmarked."""
    require(principal, "annotate")
    now = now or utcnow()
    task, rec = models.Task, models.Recording
    rows = session.execute(
        select(task, rec).join(rec, rec.pk == task.recording_pk)
        .where(task.assignee == principal.username, task.kind.in_(ANNOTATION_KINDS), task.state.in_(QUEUE_STATES))
    ).all()
    items = []
    for t, recording in sorted(rows, key=lambda row: _queue_order(row[0])):
        start, end = span_of(t, recording)
        due = aware(t.due_at)
        items.append(QueueItem(task_pk=t.pk, title=title_of(t, recording), audio_s=round(end - start, 3), due_at=due,
                               state=t.state, overdue=due is not None and due < now))
    return items


def task_counts(session: Session, protocol_pk: int) -> dict[tuple[str, str], int]:
    """(kind, state) -> how many tasks of the protocol."""
    task, rec = models.Task, models.Recording
    rows = session.execute(
        select(task.kind, task.state, func.count(task.pk)).join(rec, rec.pk == task.recording_pk)
        .where(rec.protocol_pk == protocol_pk).group_by(task.kind, task.state)
    ).all()
    return {(kind, state): int(n) for kind, state, n in rows}
