"""Pre-annotating a protocol's backlog in the store: resumable, one failure never stops the batch.

A recording is pending while it has no model-authored revision. Each result is committed
on its own, so a crash or Ctrl-C loses at most the recording in progress; the next run
picks up where this one stopped. Failures are stored as audit events and shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import exists, select

from asr.preannotate import Preannotator
from collection.decoding import load_working_copy
from store import models
from store.audit import record_event
from store.db import Store
from protocols.schema import Protocol

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    done: list[tuple[int, float, float]] = field(default_factory=list)  # (recording, audio s, compute s)
    failed: list[tuple[int, str]] = field(default_factory=list)
    flags: list[tuple[int, str]] = field(default_factory=list)

    @property
    def audio_seconds(self) -> float:
        return sum(d for _, d, _ in self.done)

    @property
    def real_time_factor(self) -> float:
        audio = self.audio_seconds
        return sum(c for _, _, c in self.done) / audio if audio else 0.0


def pending_recordings(store: Store, protocol_row: models.Protocol) -> list[models.Recording]:
    rec, rev = models.Recording, models.TranscriptRevision
    has_model_revision = exists().where(rev.recording_pk == rec.pk, rev.author_kind == "model")
    with store.session() as session:
        return list(session.scalars(
            select(rec).where(rec.protocol_pk == protocol_row.pk, rec.status == "accepted", ~has_model_revision)
            .order_by(rec.pk)
        ))


def speaker_count(protocol: Protocol) -> int | None:
    """A fixed count from the session design (a dialogue has 2); None lets the diarizer estimate."""
    return protocol.session.speakers_per_session if protocol.session.kind in ("dialogue", "monologue") else None


def pretranscribe(
    store: Store, protocol_row: models.Protocol, protocol: Protocol, preannotator: Preannotator,
    on_done: Callable[[models.Recording, float], None] | None = None, actor: str = "cli",
) -> BatchReport:
    """Pre-annotate every pending accepted recording of a protocol version."""
    report = BatchReport()
    language = protocol.languages[0] if len(protocol.languages) == 1 else None
    for recording in pending_recordings(store, protocol_row):
        declared = recording.declared.get("language") or None
        try:
            audio = load_working_copy(store.blobs.path_for(recording.working_sha256 or ""))
            result = preannotator(audio, num_speakers=speaker_count(protocol), language=language,
                                  declared_languages=[declared] if declared else list(protocol.languages))
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - one failing file never stops the batch
            message = f"{type(exc).__name__}: {exc}"
            log.error("recording %s (%s) failed: %s", recording.pk, recording.source_name, message)
            with store.session() as session:
                record_event(session, actor, "pretranscribe_failed", f"recording:{recording.pk}", {"error": message})
                session.commit()
            report.failed.append((recording.pk, message))
        else:
            with store.session() as session:
                revision = models.TranscriptRevision(
                    recording_pk=recording.pk, parent_pk=None, author_kind="model", author=preannotator.author,
                    author_params={**result.params, "flags": result.flags, "seconds": round(result.seconds, 3)},
                    turns=result.turns,
                )
                session.add(revision)
                session.flush()
                record_event(session, actor, "pretranscribe", f"recording:{recording.pk}",
                             {"revision": revision.pk, "author": preannotator.author, "flags": result.flags})
                session.commit()
            report.done.append((recording.pk, result.duration, result.seconds))
            report.flags += [(recording.pk, f) for f in result.flags]
        if on_done is not None:
            on_done(recording, recording.duration_s or 0.0)
    return report
