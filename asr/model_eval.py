"""Choosing models on evidence: candidate models re-run on a protocol's human-approved transcripts.

The gold is the newest approved revision of each accepted recording (what a release
takes): people's corrections, not the synthetic ground truth the defaults were tuned
on. Every candidate pre-annotates the same recordings from their stored working copies,
and each result is scored by `asr.evaluation.score_recording` (the one scoring code:
jiwer WER, meeteval cpWER, pyannote.metrics DER split into false alarm, miss and
confusion, and JER) and summed per condition, demographic value and crossed cell.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from asr.evaluation import EvaluationReport, score_recording
from asr.group_scores import CONDITIONS, group_keys
from asr.model_bundles import EMBEDDED_DIARIZER, PYANNOTE, BundleError, diarizer_choice, find_bundle
from protocols.schema import Protocol
from store import models
from store.turns import Turn, turns_from_json


@dataclass(frozen=True)
class Candidate:
    """One ASR model with one diarizer, both named as bundles (or 'embedded')."""

    asr: str
    diarizer: str

    @property
    def label(self) -> str:
        return f"{self.asr}+{self.diarizer}"


def parse_candidates(specs: list[str], default_asr: str, default_diarizer: str, models_dir: Path) -> list[Candidate]:
    """`ASR`, `DIARIZER` or `ASR+DIARIZER` per spec; the side not named is the protocol's default."""
    out: list[Candidate] = []
    for spec in specs or [f"{default_asr}+{default_diarizer}"]:
        if "+" in spec:
            asr, diarizer = spec.split("+", 1)
        elif spec == EMBEDDED_DIARIZER or find_bundle(spec, models_dir).kind == PYANNOTE:
            asr, diarizer = default_asr, spec
        else:
            asr, diarizer = spec, default_diarizer
        if find_bundle(asr, models_dir).role != "asr":
            raise BundleError(f"{asr!r} in {spec!r} is not a speech-recognition model")
        diarizer_choice(diarizer, models_dir)  # refuses an unknown name or an ASR bundle in the diarizer's place
        candidate = Candidate(asr, diarizer)
        if candidate not in out:
            out.append(candidate)
    return out


@dataclass
class Gold:
    """One recording's approved transcript and the groups its scores count towards."""

    recording_pk: int
    name: str
    working_sha256: str
    language: str | None
    turns: list[Turn]
    groups: set[tuple[str, str]]
    repeats_model: str | None = None
    """The author of a pre-annotation whose words and speakers this approved transcript repeats unchanged: it
    is that model's output approved without a correction, not a person's transcript, and scores that model
    (and its relatives) as perfect on this recording."""


def _said(turns: list[Any]) -> list[tuple[str, str]]:
    """What a transcript says, and who says it: what a correction changes (bounds may move by re-alignment)."""
    return [(str(t.get("speaker", "")), " ".join(str(t.get("text", "")).split())) for t in turns]


def approved_gold(session: Any, protocol_row: models.Protocol, protocol: Protocol, limit: int | None = None) -> list[Gold]:
    """The newest approved revision of each accepted recording of this protocol version, oldest recording first."""
    rec, rev, se = models.Recording, models.TranscriptRevision, models.Session
    newest = (select(func.max(rev.pk)).join(rec, rec.pk == rev.recording_pk)
              .where(rec.protocol_pk == protocol_row.pk, rec.status == "accepted", rev.stage == "approved")
              .group_by(rev.recording_pk))
    query = (select(rec, rev, se).join(rev, rev.recording_pk == rec.pk).join(se, se.pk == rec.session_pk)
             .where(rev.pk.in_(newest)).order_by(rec.pk))
    if limit is not None:
        query = query.limit(limit)
    rows = session.execute(query).all()
    participants: dict[int, list[dict[str, str]]] = defaultdict(list)
    session_pks = [s.pk for _, _, s in rows]
    if session_pks:
        demographics: dict[str, dict[str, str]] = defaultdict(dict)
        for speaker_id, dim, value in session.execute(
                select(models.SpeakerDemographic.speaker_id, models.SpeakerDemographic.dimension, models.SpeakerDemographic.value)
                .join(models.SessionParticipant, models.SessionParticipant.speaker_id == models.SpeakerDemographic.speaker_id)
                .where(models.SessionParticipant.session_pk.in_(session_pks))):
            demographics[speaker_id][dim] = value
        for session_pk, speaker_id in session.execute(
                select(models.SessionParticipant.session_pk, models.SessionParticipant.speaker_id)
                .where(models.SessionParticipant.session_pk.in_(session_pks)).order_by(models.SessionParticipant.speaker_id)):
            participants[session_pk].append(demographics[speaker_id])
    cell_dims = list(protocol.targets.cells.dimensions) if protocol.targets.cells else []
    model_said: dict[int, list[tuple[str, list[tuple[str, str]]]]] = defaultdict(list)
    for recording_pk, author, turns in session.execute(
            select(rev.recording_pk, rev.author, rev.turns)
            .where(rev.recording_pk.in_([r.pk for r, _, _ in rows]), rev.stage == "model").order_by(rev.pk)):
        model_said[recording_pk].append((author, _said(turns)))
    gold = []
    for recording, revision, sess in rows:
        conditions = {d: getattr(sess, d) for d in CONDITIONS}
        said = _said(revision.turns)
        repeats = next((author for author, model in model_said[recording.pk] if model == said), None)
        gold.append(Gold(recording.pk, Path(recording.source_name).stem, recording.working_sha256 or "",
                         recording.declared.get("language") or None, revision.as_turns(),
                         group_keys(conditions, participants[sess.pk], cell_dims), repeats))
    return gold


@dataclass
class CandidateResult:
    candidate: Candidate
    bundles: dict[str, dict[str, str]]
    report: EvaluationReport = field(default_factory=EvaluationReport)
    seconds: float = 0.0
    audio_seconds: float = 0.0


def evaluate_candidates(
    candidates: list[Candidate], gold: list[Gold], load_audio: Callable[[Gold], Any],
    make_preannotator: Callable[[Candidate], Any], *, num_speakers: int | None, language: str | None,
    on_progress: Callable[[Candidate, Gold], None] | None = None,
) -> list[CandidateResult]:
    """Pre-annotate every gold recording with every candidate (one model loaded at a time) and score it."""
    results = []
    for candidate in candidates:
        preannotator = make_preannotator(candidate)
        result = CandidateResult(candidate, preannotator.bundles)
        started = time.perf_counter()
        for item in gold:
            audio = load_audio(item)
            out = preannotator(audio, num_speakers=num_speakers, language=language or item.language)
            score = score_recording(turns_from_json(out.turns), item.turns, item.name)
            result.report.per_file[item.name] = score
            result.report.overall.add(score)
            for key in item.groups:
                result.report.groups[key].add(score)
            result.audio_seconds += out.duration
            if on_progress is not None:
                on_progress(candidate, item)
        result.seconds = time.perf_counter() - started
        results.append(result)
        del preannotator
    return results
