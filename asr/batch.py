"""Pre-annotating a protocol's backlog in the store: resumable, shared, one failure never stops the batch.

A recording is pending while it has no model-authored revision. Each result is committed
on its own, so a crash or Ctrl-C loses at most the recording in progress; the next run
picks up where this one stopped. Failures are stored as audit events and shown.

Runs at once (two shells, several machines) share the backlog: each claims one pending
recording at a time with a lease row (`recording_leases`, primary key = recording) that
expires after `LEASE_S`. On PostgreSQL the candidate is picked `FOR UPDATE SKIP LOCKED`,
so claimers pass each other instead of colliding; on SQLite the database's single writer
orders the claims. Either way the lease row's primary key refuses a second live lease,
the result is stored and the lease dropped in one transaction, and a crashed run's
leases expire, so its recordings are taken up again. A lease must outlast the
pre-annotation of one recording (`--lease-minutes`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.exc import IntegrityError

from asr.preannotate import Preannotation, Preannotator
from collection.decoding import load_working_copy
from store import models
from store.audit import record_event
from store.clock import utcnow
from store.db import Store
from protocols.schema import Protocol

log = logging.getLogger(__name__)

LEASE_S = 30 * 60.0
CLAIM_TRIES = 20  # conflicts with other claimers before giving up on this round


@dataclass
class BatchReport:
    done: list[tuple[int, float, float]] = field(default_factory=list)  # (recording, audio s, compute s)
    failed: list[tuple[int, str]] = field(default_factory=list)
    flags: list[tuple[int, str]] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)  # leases that expired while working; another run stored the result

    @property
    def audio_seconds(self) -> float:
        return sum(d for _, d, _ in self.done)

    @property
    def real_time_factor(self) -> float:
        audio = self.audio_seconds
        return sum(c for _, _, c in self.done) / audio if audio else 0.0


def _pending(protocol_row: models.Protocol):  # type: ignore[no-untyped-def]
    rec, rev = models.Recording, models.TranscriptRevision
    has_model_revision = exists().where(rev.recording_pk == rec.pk, rev.author_kind == "model")
    return select(rec).where(rec.protocol_pk == protocol_row.pk, rec.status == "accepted", ~has_model_revision)


def pending_recordings(store: Store, protocol_row: models.Protocol) -> list[models.Recording]:
    with store.session() as session:
        return list(session.scalars(_pending(protocol_row).order_by(models.Recording.pk)))


def new_holder() -> str:
    """Who holds a lease: host, process and a random part (one process may run several batches)."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim_recording(store: Store, protocol_row: models.Protocol, holder: str, *, lease_s: float = LEASE_S,
                    skip: frozenset[int] = frozenset()) -> models.Recording | None:
    """Lease the next pending recording no live lease covers (and not in `skip`); None when none is left."""
    rec, lease = models.Recording, models.RecordingLease
    for _ in range(CLAIM_TRIES):
        now = utcnow()
        live = exists().where(lease.recording_pk == rec.pk, lease.expires_at > now)
        query = _pending(protocol_row).where(~live).order_by(rec.pk).limit(1)
        if skip:
            query = query.where(rec.pk.notin_(skip))
        with store.session() as session:
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=rec)
            recording = session.scalars(query).first()
            if recording is None:
                return None
            session.execute(delete(lease).where(lease.recording_pk == recording.pk, lease.expires_at <= now))
            session.add(lease(recording_pk=recording.pk, holder=holder, expires_at=now + dt.timedelta(seconds=lease_s)))
            try:
                session.commit()
            except IntegrityError:  # another run leased it between our read and our write: take the next one
                session.rollback()
                continue
            return recording
    log.warning("could not claim a recording after %d conflicts; stopping this run", CLAIM_TRIES)
    return None


def release_lease(store: Store, recording_pk: int, holder: str) -> None:
    with store.session() as session:
        session.execute(delete(models.RecordingLease).where(
            models.RecordingLease.recording_pk == recording_pk, models.RecordingLease.holder == holder))
        session.commit()


def speaker_count(protocol: Protocol) -> int | None:
    """A fixed count from the session design (a dialogue has 2); None lets the diarizer estimate."""
    return protocol.session.speakers_per_session if protocol.session.kind in ("dialogue", "monologue") else None


def call_arguments(protocol: Protocol, recording: models.Recording) -> dict[str, Any]:
    """What the pre-annotator is told about one recording: every engine passes exactly this."""
    declared = recording.declared.get("language") or None
    return {"num_speakers": speaker_count(protocol),
            "language": protocol.languages[0] if len(protocol.languages) == 1 else None,
            "declared_languages": [declared] if declared else list(protocol.languages),
            "vocabulary": protocol.vocabulary}


def pretranscribe(
    store: Store, protocol_row: models.Protocol, protocol: Protocol, preannotator: Preannotator,
    on_done: Callable[[models.Recording, float], None] | None = None, *, actor: str, lease_s: float = LEASE_S,
) -> BatchReport:
    """Pre-annotate pending accepted recordings of a protocol version until none is left unleased."""
    report = BatchReport()
    holder = new_holder()
    tried: set[int] = set()  # failures are retried by the next run, not in a loop by this one
    while (recording := claim_recording(store, protocol_row, holder, lease_s=lease_s, skip=frozenset(tried))) is not None:
        tried.add(recording.pk)
        try:
            audio = load_working_copy(store.blobs.path_for(recording.working_sha256 or ""))
            result = preannotator(audio, **call_arguments(protocol, recording))
        except BaseException as exc:
            release_lease(store, recording.pk, holder)
            if not isinstance(exc, Exception):  # Ctrl-C: the lease is handed back, finished work is stored
                raise
            message = f"{type(exc).__name__}: {exc}"
            record_failure(store, recording, message, actor)
            report.failed.append((recording.pk, message))
        else:
            if not store_results(store, [Finished(recording.pk, preannotator.author, result, preannotator.bundles)], holder, actor)[0]:
                report.lost.append(recording.pk)
            else:
                report.done.append((recording.pk, result.duration, result.seconds))
                report.flags += [(recording.pk, f) for f in result.flags]
        if on_done is not None:
            on_done(recording, recording.duration_s or 0.0)
    return report


def record_failure(store: Store, recording: models.Recording, message: str, actor: str) -> None:
    """A recording that could not be pre-annotated: logged and kept as an audit event (its lease is the caller's)."""
    log.error("recording %s (%s) failed: %s", recording.pk, recording.source_name, message)
    with store.session() as session:
        record_event(session, actor, "pretranscribe_failed", f"recording:{recording.pk}", {"error": message})
        session.commit()


@dataclass(frozen=True)
class Finished:
    """One recording's pre-annotation, ready to be stored under the lease `holder` took for it."""

    recording_pk: int
    author: str
    result: Preannotation
    bundles: dict[str, Any]  # the checksummed model bundles that made it (Preannotator.bundles)


def store_results(store: Store, finished: list[Finished], holder: str, actor: str) -> list[bool]:
    """Store several results in one transaction, each revision with its lease dropped.

    Per result: False (and nothing written for it) if its lease expired and another run stored
    its own pre-annotation first; the other results of the batch are stored regardless.
    """
    rec, rev, lease = models.Recording, models.TranscriptRevision, models.RecordingLease
    stored: list[bool] = []
    with store.session() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        for item in finished:
            if postgres:  # serialise with a run that took over an expired lease
                session.execute(select(rec.pk).where(rec.pk == item.recording_pk).with_for_update())
            held = session.execute(delete(lease).where(lease.recording_pk == item.recording_pk, lease.holder == holder)).rowcount
            if not held and session.scalar(select(rev.pk).where(rev.recording_pk == item.recording_pk, rev.author_kind == "model")):
                log.warning("recording %s: the lease expired and another run stored its pre-annotation; dropping ours",
                            item.recording_pk)
                stored.append(False)
                continue
            result = item.result
            revision = rev(
                recording_pk=item.recording_pk, parent_pk=None, author_kind="model", author=item.author,
                author_params={**result.params, "flags": result.flags, "seconds": round(result.seconds, 3)},
                turns=result.turns, asr_bundle_sha256=item.bundles["asr"]["checksum"],
                diarizer_bundle_sha256=item.bundles["diarization"]["checksum"],
            )
            session.add(revision)
            session.flush()
            record_event(session, actor, "pretranscribe", f"recording:{item.recording_pk}",
                         {"revision": revision.pk, "author": item.author, "flags": result.flags,
                          "bundles": {role: b["checksum"] for role, b in item.bundles.items()}})
            stored.append(True)
        session.commit()
    return stored
