"""Ingest a manifest: check every file against the protocol and consent, store what passes.

One bad row never stops the batch. Accepted files are stored content-addressed with a
16 kHz mono working copy; rejected files are recorded with every reason (their audio
is not copied in: it may lack consent) and never counted. A fault of the environment
(disk full, read-only blobs or database, a write the database refuses) becomes that
row's outcome, `fault`, with the reason; the blobs the row wrote are removed again
unless a committed row refers to them, so no failure leaves an orphan blob. A row
naming a speaker, a consent id or audio erased on request (the do-not-collect list) is
refused before anything is decoded, and nothing about it is stored: no recording row,
only an audit event with the manifest line and the reason.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from collection.decoding import WORKING_RATE, AudioDecodeError
from collection.checks import Reason, consent_reasons, duration_ceiling, gate_reasons, metadata_reasons, noise_mismatch
from collection.manifest import ManifestItem, UnsafePath, read_manifest, resolve_audio_path
from collection.measurements import Measurements, TooLong, measure_file
from store import models
from store.audit import record_event
from store.blob_refs import remove_unreferenced
from store.blobs import sha256_file
from store.console import fault_text
from store.db import Store
from store.do_not_collect import AUDIO, CONSENT, SPEAKER, DoNotCollect
from protocols.registry import get_protocol
from protocols.schema import Protocol

ACCEPTED, REJECTED, SKIPPED, FAULT = "accepted", "rejected", "skipped", "fault"
DO_NOT_COLLECT = Reason("do_not_collect", "refused: a speaker, consent id or the audio of this row was erased on request "
                                          "(do-not-collect list); nothing about it was stored")


@dataclass(frozen=True)
class Outcome:
    """What happened to one manifest row."""

    line: int
    path: str
    status: str  # accepted | rejected | skipped | fault
    reasons: tuple[Reason, ...] = ()
    recording_pk: int | None = None
    duration_s: float | None = None
    note: str = ""


@dataclass
class IngestReport:
    protocol_id: str
    protocol_version: int
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        """Nothing refused and nothing failed."""
        return self.count(REJECTED) == 0 and self.count(FAULT) == 0


@dataclass
class _Prepared:
    """An item after the file-level work (hash, decode, measure) done outside any transaction."""

    item: ManifestItem
    path: Path | None = None
    sha256: str | None = None
    measured: Measurements | None = None
    working: Path | None = None  # the 16 kHz mono working copy, a scratch file until stored
    container: str | None = None
    transforms: list[str] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)


def _prepare(item: ManifestItem, manifest_dir: Path, allow_absolute: bool) -> _Prepared:
    prepared = _Prepared(item)
    try:
        prepared.path = resolve_audio_path(manifest_dir, item.path, allow_absolute)
    except UnsafePath as exc:
        prepared.reasons.append(Reason("unsafe_path", str(exc)))
        return prepared
    if not prepared.path.is_file():
        prepared.reasons.append(Reason("missing_file", f"no such file: {item.path}"))
        return prepared
    try:
        prepared.sha256 = sha256_file(prepared.path)
    except OSError as exc:
        prepared.reasons.append(Reason("unreadable", f"cannot read {item.path}: {exc.strerror}"))
    return prepared


def _decode_and_measure(prepared: _Prepared, protocol: Protocol, scratch: Path) -> None:
    """Header first (an over-long file is refused undecoded), then measure and write the working copy in blocks."""
    assert prepared.path is not None
    scratch.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=scratch, prefix=".working-", suffix=".wav")
    os.close(fd)
    prepared.working = Path(name)
    try:
        measured, header = measure_file(prepared.path, prepared.working, duration_ceiling(protocol))
    except TooLong as exc:
        prepared.reasons.append(Reason("duration", str(exc)))
        return
    except AudioDecodeError as exc:
        prepared.reasons.append(Reason("decode", str(exc)))
        return
    prepared.measured = measured
    prepared.container = header.container
    prepared.transforms = [f"decode:{header.decoder}:{header.container}/{header.subtype}"]
    if header.note:
        prepared.transforms.append(f"length:{header.note}")
    if header.channels > 1:
        prepared.transforms.append(f"downmix:mean:{header.channels}->1")
    if header.sample_rate != WORKING_RATE:
        prepared.transforms.append(f"resample:soxr-hq:{header.sample_rate}->{WORKING_RATE}")
    prepared.transforms.append("encode:wav/pcm16")


def _previous(session: Session, sha256: str) -> models.Recording | None:
    return session.scalars(
        select(models.Recording).where(models.Recording.sha256 == sha256).order_by(models.Recording.pk.desc())
    ).first()


def _store_accepted(session: Session, store: Store, protocol_row: models.Protocol, prepared: _Prepared,
                    written: set[str]) -> models.Recording:
    """Blobs first (each one this call creates goes into `written`, for the clean-up on failure), then the rows."""
    item, measured = prepared.item, prepared.measured
    assert measured is not None and prepared.path is not None and prepared.working is not None and prepared.sha256
    if not store.blobs.exists(prepared.sha256):
        written.add(prepared.sha256)
        store.blobs.put_file(prepared.path, prepared.sha256)
    working_sha = sha256_file(prepared.working)
    if not store.blobs.exists(working_sha):
        written.add(working_sha)
        store.blobs.put_file(prepared.working, working_sha)
    session_row = session.scalar(select(models.Session).where(models.Session.session_id == item.session_id))
    if session_row is None:
        session_row = models.Session(
            session_id=item.session_id, protocol_pk=protocol_row.pk, device=item.device,
            noise_condition=item.noise_condition, scenario=item.scenario, language=item.language,
            recorded_on=item.recorded_on,
        )
        session.add(session_row)
        session.flush()
        for speaker in item.speakers:
            if session.get(models.Speaker, speaker.speaker_id) is None:
                session.add(models.Speaker(id=speaker.speaker_id))
                session.flush()
            for dim, value in speaker.demographics.items():
                if session.get(models.SpeakerDemographic, (speaker.speaker_id, dim)) is None:
                    session.add(models.SpeakerDemographic(speaker_id=speaker.speaker_id, dimension=dim, value=value))
            session.add(models.SessionParticipant(
                session_pk=session_row.pk, speaker_id=speaker.speaker_id,
                consent_id=speaker.consent_ref, channel=speaker.channel,
            ))
    recording = models.Recording(
        protocol_pk=protocol_row.pk, session_pk=session_row.pk, status=ACCEPTED, reasons=[],
        sha256=prepared.sha256, working_sha256=working_sha, source_name=item.path,
        container_format=prepared.container, sample_rate=measured.sample_rate, channels=measured.channels,
        num_samples=measured.num_samples, duration_s=measured.duration_s, n_speakers=len(item.speakers),
        peak_dbfs=measured.peak_dbfs, clipping_ratio=measured.clipping_ratio, speech_ratio=measured.speech_ratio,
        snr_db=measured.snr_db, noise_mismatch=None, declared=item.declared(),
    )
    session.add(recording)
    session.flush()
    return recording


def _store_rejected(session: Session, protocol_row: models.Protocol, prepared: _Prepared) -> models.Recording:
    measured = prepared.measured
    recording = models.Recording(
        protocol_pk=protocol_row.pk, session_pk=None, status=REJECTED,
        reasons=[r.as_dict() for r in prepared.reasons], sha256=prepared.sha256, source_name=prepared.item.path,
        container_format=prepared.container, n_speakers=len(prepared.item.speakers), declared=prepared.item.declared(),
        **(measured.as_dict() if measured else {}),
    )
    session.add(recording)
    session.flush()
    return recording


def _erased_on_request(session: Session, blocked: DoNotCollect, item: ManifestItem, sha256: str | None) -> bool:
    names = [(SPEAKER, s.speaker_id) for s in item.speakers] + [(CONSENT, s.consent_ref) for s in item.speakers]
    return blocked.any_listed(session, names + ([(AUDIO, sha256)] if sha256 else []))


def ingest_item(
    store: Store, protocol_row: models.Protocol, protocol: Protocol, item: ManifestItem, manifest_dir: Path,
    blocked: DoNotCollect, *, allow_absolute: bool = False, actor: str, today: dt.date | None = None,
) -> Outcome:
    """Check and store one recording in its own transaction; never raises for bad input or an environment fault.

    A unique-key conflict means another process stored something this row needs at the
    same moment: the same audio (then this row is skipped), or a shared speaker or
    session (then the row is tried once more, and those rows are found stored).
    """
    written: set[str] = set()
    for attempt in (1, 2):
        prepared = _prepare(item, manifest_dir, allow_absolute)
        try:
            return _ingest(store, protocol_row, protocol, prepared, blocked, actor, today or dt.date.today(), written)
        except IntegrityError as exc:
            if prepared.sha256 is not None and _accepted(store, prepared.sha256):
                _clean_up(store, written)  # keeps the blobs the other process's row refers to
                return Outcome(item.line, item.path, SKIPPED, note="ingested concurrently by another process")
            if attempt == 2:
                return _fault(store, item, exc, written, actor)
        except (OSError, SQLAlchemyError) as exc:
            return _fault(store, item, exc, written, actor)
        finally:
            if prepared.working is not None:
                prepared.working.unlink(missing_ok=True)
    raise AssertionError("unreachable")


def _ingest(store: Store, protocol_row: models.Protocol, protocol: Protocol, prepared: _Prepared, blocked: DoNotCollect,
            actor: str, today: dt.date, written: set[str]) -> Outcome:
    item = prepared.item
    previous: models.Recording | None = None
    with store.session() as session:
        if _erased_on_request(session, blocked, item, prepared.sha256):
            record_event(session, actor, "ingest_refused", f"manifest_line:{item.line}",
                         {"manifest_line": item.line, "reasons": [DO_NOT_COLLECT.as_dict()]})
            session.commit()
            return Outcome(item.line, item.path, REJECTED, (DO_NOT_COLLECT,))
        if prepared.sha256 is not None:
            previous = _previous(session, prepared.sha256)
            if previous is not None and previous.status == ACCEPTED:
                return Outcome(item.line, item.path, SKIPPED, recording_pk=previous.pk, duration_s=previous.duration_s,
                               note=f"already ingested as recording {previous.pk}; nothing changed")
            _decode_and_measure(prepared, protocol, store.blobs.root)
        prepared.reasons += metadata_reasons(session, item, protocol)
        prepared.reasons += consent_reasons(session, item, protocol, today)
        if prepared.measured is not None:
            prepared.reasons += gate_reasons(prepared.measured, protocol)
        if prepared.reasons and previous is not None:
            if previous.reasons == [r.as_dict() for r in prepared.reasons]:
                return Outcome(item.line, item.path, SKIPPED, tuple(prepared.reasons), previous.pk,
                               note=f"already rejected as recording {previous.pk} for the same reasons")
        if prepared.reasons:
            recording = _store_rejected(session, protocol_row, prepared)
            status = REJECTED
        else:
            recording = _store_accepted(session, store, protocol_row, prepared, written)
            recording.noise_mismatch = noise_mismatch(prepared.measured, item.noise_condition, protocol)  # type: ignore[arg-type]
            status = ACCEPTED
        record_event(session, actor, f"ingest_{status}", f"recording:{recording.pk}", {
            "source": item.path, "manifest_line": item.line, "sha256": prepared.sha256,
            "working_sha256": recording.working_sha256, "protocol": f"{protocol.id}@{protocol.version}",
            "transforms": prepared.transforms, "reasons": recording.reasons,
        })
        session.commit()
    return Outcome(item.line, item.path, status, tuple(prepared.reasons), recording.pk, recording.duration_s,
                   note=recording.noise_mismatch or "")


def _accepted(store: Store, sha256: str) -> bool:
    try:
        with store.session() as session:
            return session.scalar(select(models.Recording.pk).where(
                models.Recording.sha256 == sha256, models.Recording.status == ACCEPTED)) is not None
    except SQLAlchemyError:
        return False


def _clean_up(store: Store, written: set[str]) -> set[str]:
    """Remove the blobs this row wrote that no committed row refers to; the ones left behind."""
    try:
        with store.session() as session:
            return written - remove_unreferenced(store.blobs, session, written).removed
    except (OSError, SQLAlchemyError):
        return {d for d in written if store.blobs.exists(d)}


def _fault(store: Store, item: ManifestItem, exc: BaseException, written: set[str], actor: str) -> Outcome:
    """The row's fault outcome, its new blobs cleaned up, audited when the store lets us."""
    message = fault_text(exc)
    notes = []
    kept = _clean_up(store, written)
    if kept:
        notes.append(f"{len(kept)} new blob(s) kept: the store could not be asked whether a row refers to them")
    try:
        with store.session() as session:
            record_event(session, actor, "ingest_fault", f"manifest_line:{item.line}", {"source": item.path, "fault": message})
            session.commit()
    except (OSError, SQLAlchemyError) as follow_up:
        notes.append(f"not in the audit log: {fault_text(follow_up)}")
    return Outcome(item.line, item.path, FAULT, (Reason("fault", message),), note="; ".join(notes))


def ingest_manifest(
    store: Store, protocol_id: str, manifest: Path, *, version: int | None = None, allow_absolute: bool = False,
    actor: str, on_item: Callable[[Outcome], None] | None = None,
) -> IngestReport:
    """Ingest every row of `manifest` under a registered protocol; problems become outcomes."""
    with store.session() as session:
        protocol_row, protocol = get_protocol(session, protocol_id, version)
    blocked = DoNotCollect.for_store(store)
    items, problems = read_manifest(manifest, protocol.session.session_attributes())
    report = IngestReport(protocol.id, protocol.version)
    refused = [Outcome(p.line, p.path, REJECTED, (Reason("manifest", p.message),)) for p in problems]
    try:
        with store.session() as session:
            for problem in problems:
                record_event(session, actor, "ingest_manifest_problem", f"{manifest.name}:{problem.line}",
                             {"path": problem.path, "message": problem.message})
            session.commit()
    except (OSError, SQLAlchemyError) as exc:  # the refusals could not be audited: a fault, said per row
        fault = Reason("fault", f"not in the audit log: {fault_text(exc)}")
        refused = [Outcome(o.line, o.path, FAULT, (*o.reasons, fault)) for o in refused]
    report.outcomes += refused
    for item in items:
        outcome = ingest_item(store, protocol_row, protocol, item, manifest.parent, blocked,
                              allow_absolute=allow_absolute, actor=actor)
        report.outcomes.append(outcome)
        if on_item is not None:
            on_item(outcome)
    report.outcomes.sort(key=lambda o: o.line)
    return report
