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


@dataclass(frozen=True)
class Decoded:
    """What decoding gives the checks: the measurements and the transforms applied, or why the file was refused."""

    measured: Measurements | None = None
    container: str | None = None
    transforms: tuple[str, ...] = ()
    reasons: tuple[Reason, ...] = ()


@dataclass
class Prepared:
    """An item on its way in: the file-level work (hash, decode, measure) is done outside any transaction."""

    item: ManifestItem
    path: Path | None = None
    sha256: str | None = None
    reasons: list[Reason] = field(default_factory=list)  # found before decoding: path, missing or unreadable file
    previous: tuple[int, list[dict[str, str]]] | None = None  # an earlier rejection of the same audio: (pk, reasons)
    decoded: Decoded | None = None
    working: Path | None = None  # the 16 kHz mono working copy, a scratch file until stored

    @property
    def needs_decoding(self) -> bool:
        return self.sha256 is not None and self.decoded is None


def prepare(item: ManifestItem, manifest_dir: Path, allow_absolute: bool) -> Prepared:
    """Resolve and hash the item's file; a path outside the manifest's folder is refused here, before anything reads it."""
    prepared = Prepared(item)
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


def scratch_file(folder: Path) -> Path:
    """An empty scratch file for a working copy, in `folder` (the blob folder: the blob store moves it in cheaply)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".working-", suffix=".wav")
    os.close(fd)
    return Path(name)


def decode_checked(source: Path, working: Path, max_duration_s: float | None) -> Decoded:
    """Header first (an over-long file is refused undecoded), then measure and write the working copy in blocks.

    A file that cannot be decoded, or is too long, is a refusal; an OSError (disk full) is raised: a fault.
    """
    try:
        measured, header = measure_file(source, working, max_duration_s)
    except TooLong as exc:
        return Decoded(reasons=(Reason("duration", str(exc)),))
    except AudioDecodeError as exc:
        return Decoded(reasons=(Reason("decode", str(exc)),))
    transforms = [f"decode:{header.decoder}:{header.container}/{header.subtype}"]
    if header.note:
        transforms.append(f"length:{header.note}")
    if header.channels > 1:
        transforms.append(f"downmix:mean:{header.channels}->1")
    if header.sample_rate != WORKING_RATE:
        transforms.append(f"resample:soxr-hq:{header.sample_rate}->{WORKING_RATE}")
    transforms.append("encode:wav/pcm16")
    return Decoded(measured, header.container, tuple(transforms))


def _previous(session: Session, sha256: str) -> models.Recording | None:
    return session.scalars(
        select(models.Recording).where(models.Recording.sha256 == sha256).order_by(models.Recording.pk.desc())
    ).first()


def _store_accepted(session: Session, store: Store, protocol_row: models.Protocol, prepared: Prepared,
                    written: set[str]) -> models.Recording:
    """Blobs first (each one this call creates goes into `written`, for the clean-up on failure), then the rows."""
    item, decoded = prepared.item, prepared.decoded
    assert decoded is not None and decoded.measured is not None and prepared.path is not None
    assert prepared.working is not None and prepared.sha256
    measured = decoded.measured
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
        container_format=decoded.container, sample_rate=measured.sample_rate, channels=measured.channels,
        num_samples=measured.num_samples, duration_s=measured.duration_s, n_speakers=len(item.speakers),
        peak_dbfs=measured.peak_dbfs, clipping_ratio=measured.clipping_ratio, speech_ratio=measured.speech_ratio,
        snr_db=measured.snr_db, noise_mismatch=None, declared=item.declared(),
    )
    session.add(recording)
    session.flush()
    return recording


def _store_rejected(session: Session, protocol_row: models.Protocol, prepared: Prepared,
                    reasons: list[Reason]) -> models.Recording:
    decoded = prepared.decoded or Decoded()
    measured = decoded.measured
    recording = models.Recording(
        protocol_pk=protocol_row.pk, session_pk=None, status=REJECTED,
        reasons=[r.as_dict() for r in reasons], sha256=prepared.sha256, source_name=prepared.item.path,
        container_format=decoded.container, n_speakers=len(prepared.item.speakers), declared=prepared.item.declared(),
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
    """Check and store one recording, decoded in this process; never raises for bad input or an environment fault."""
    prepared = prepare(item, manifest_dir, allow_absolute)
    outcome = screen(store, prepared, blocked, actor)
    if outcome is not None:
        return outcome
    if prepared.needs_decoding:
        assert prepared.path is not None
        try:
            prepared.working = scratch_file(store.blobs.root)
            prepared.decoded = decode_checked(prepared.path, prepared.working, duration_ceiling(protocol))
        except OSError as exc:
            discard_working(prepared)
            return fault(store, item, fault_text(exc), set(), actor)
    return settle(store, protocol_row, protocol, prepared, actor=actor, today=today)


def screen(store: Store, prepared: Prepared, blocked: DoNotCollect, actor: str) -> Outcome | None:
    """Before decoding: a row erased on request is refused (only audited), audio already accepted is skipped.

    None: the row goes on (decoding, then `settle`); an earlier rejection of the same audio is
    noted on `prepared`, so that the same reasons again are a skip.
    """
    item = prepared.item
    try:
        with store.session() as session:
            if _erased_on_request(session, blocked, item, prepared.sha256):
                record_event(session, actor, "ingest_refused", f"manifest_line:{item.line}",
                             {"manifest_line": item.line, "reasons": [DO_NOT_COLLECT.as_dict()]})
                session.commit()
                return Outcome(item.line, item.path, REJECTED, (DO_NOT_COLLECT,))
            previous = _previous(session, prepared.sha256) if prepared.sha256 is not None else None
            if previous is not None and previous.status == ACCEPTED:
                return Outcome(item.line, item.path, SKIPPED, recording_pk=previous.pk, duration_s=previous.duration_s,
                               note=f"already ingested as recording {previous.pk}; nothing changed")
            prepared.previous = (previous.pk, list(previous.reasons)) if previous is not None else None
    except (OSError, SQLAlchemyError) as exc:
        return fault(store, item, fault_text(exc), set(), actor)
    return None


def discard_working(prepared: Prepared) -> None:
    if prepared.working is not None:
        prepared.working.unlink(missing_ok=True)
        prepared.working = None


def settle(store: Store, protocol_row: models.Protocol, protocol: Protocol, prepared: Prepared, *, actor: str,
           today: dt.date | None = None) -> Outcome:
    """After decoding (wherever it ran): the remaining checks, then the row stored; the scratch working copy removed.

    A unique-key conflict means another process stored something this row needs at the
    same moment: the same audio (then this row is skipped), or a shared speaker or
    session (then the row is tried once more, and those rows are found stored).
    """
    written: set[str] = set()
    item = prepared.item
    try:
        for attempt in (1, 2):
            try:
                return _settle(store, protocol_row, protocol, prepared, actor, today or dt.date.today(), written)
            except IntegrityError as exc:
                if prepared.sha256 is not None and _accepted(store, prepared.sha256):
                    _clean_up(store, written)  # keeps the blobs the other process's row refers to
                    return Outcome(item.line, item.path, SKIPPED, note="ingested concurrently by another process")
                if attempt == 2:
                    return fault(store, item, fault_text(exc), written, actor)
            except (OSError, SQLAlchemyError) as exc:
                return fault(store, item, fault_text(exc), written, actor)
    finally:
        discard_working(prepared)
    raise AssertionError("unreachable")


def _settle(store: Store, protocol_row: models.Protocol, protocol: Protocol, prepared: Prepared, actor: str,
            today: dt.date, written: set[str]) -> Outcome:
    item, decoded = prepared.item, prepared.decoded or Decoded()
    with store.session() as session:
        reasons = [*prepared.reasons, *decoded.reasons, *metadata_reasons(session, item, protocol),
                   *consent_reasons(session, item, protocol, today)]
        if decoded.measured is not None:
            reasons += gate_reasons(decoded.measured, protocol)
        if reasons and prepared.previous is not None and prepared.previous[1] == [r.as_dict() for r in reasons]:
            return Outcome(item.line, item.path, SKIPPED, tuple(reasons), prepared.previous[0],
                           note=f"already rejected as recording {prepared.previous[0]} for the same reasons")
        if reasons:
            recording = _store_rejected(session, protocol_row, prepared, reasons)
            status = REJECTED
        else:
            recording = _store_accepted(session, store, protocol_row, prepared, written)
            recording.noise_mismatch = noise_mismatch(decoded.measured, item.noise_condition, protocol)  # type: ignore[arg-type]
            status = ACCEPTED
        record_event(session, actor, f"ingest_{status}", f"recording:{recording.pk}", {
            "source": item.path, "manifest_line": item.line, "sha256": prepared.sha256,
            "working_sha256": recording.working_sha256, "protocol": f"{protocol.id}@{protocol.version}",
            "transforms": list(decoded.transforms), "reasons": recording.reasons,
        })
        session.commit()
    return Outcome(item.line, item.path, status, tuple(reasons), recording.pk, recording.duration_s,
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


def fault(store: Store, item: ManifestItem, message: str, written: set[str], actor: str) -> Outcome:
    """The row's fault outcome (`message`: what failed), its new blobs cleaned up, audited when the store lets us."""
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


@dataclass
class ManifestRun:
    """A manifest read under its protocol, its malformed rows already refused (and audited) in `report`."""

    protocol_row: models.Protocol
    protocol: Protocol
    blocked: DoNotCollect
    items: list[ManifestItem]
    report: IngestReport


def open_manifest(store: Store, protocol_id: str, manifest: Path, *, version: int | None = None,
                  actor: str) -> ManifestRun:
    """The protocol, the do-not-collect list and the manifest's rows; every malformed row becomes a refusal."""
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
        unaudited = Reason("fault", f"not in the audit log: {fault_text(exc)}")
        refused = [Outcome(o.line, o.path, FAULT, (*o.reasons, unaudited)) for o in refused]
    report.outcomes += refused
    return ManifestRun(protocol_row, protocol, blocked, items, report)


def ingest_manifest(
    store: Store, protocol_id: str, manifest: Path, *, version: int | None = None, allow_absolute: bool = False,
    actor: str, on_item: Callable[[Outcome], None] | None = None,
) -> IngestReport:
    """Ingest every row of `manifest` under a registered protocol, in this process; problems become outcomes."""
    run = open_manifest(store, protocol_id, manifest, version=version, actor=actor)
    for item in run.items:
        outcome = ingest_item(store, run.protocol_row, run.protocol, item, manifest.parent, run.blocked,
                              allow_absolute=allow_absolute, actor=actor)
        run.report.outcomes.append(outcome)
        if on_item is not None:
            on_item(outcome)
    run.report.outcomes.sort(key=lambda o: o.line)
    return run.report
