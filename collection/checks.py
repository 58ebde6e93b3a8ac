"""The protocol's checks on one manifest item: metadata, consent and the quality gates.

Each check returns reasons (code + message); an item is accepted only with none.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from collection.consent import consent_histories, judge_consent
from collection.manifest import ManifestItem
from collection.measurements import Measurements
from store import models
from protocols.schema import Protocol


@dataclass(frozen=True)
class Reason:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def metadata_reasons(session: Session, item: ManifestItem, protocol: Protocol) -> list[Reason]:
    """Declared values the protocol does not know, and contradictions with what is stored."""
    reasons: list[Reason] = []
    allowed = protocol.allowed_values()
    for name in ("device", "noise_condition"):
        value = getattr(item, name)
        if value not in allowed[name]:
            reasons.append(Reason("unknown_value", f"{name} '{value}' is not in the protocol ({', '.join(allowed[name])})"))
    if protocol.session.scenarios and item.scenario and item.scenario not in protocol.session.scenarios:
        reasons.append(Reason("unknown_value", f"scenario '{item.scenario}' is not in the protocol ({', '.join(protocol.session.scenarios)})"))
    if item.language and item.language not in protocol.languages:
        reasons.append(Reason("unknown_value", f"language '{item.language}' is not in the protocol ({', '.join(protocol.languages)})"))
    expected = protocol.session.speakers_per_session
    if len(item.speakers) != expected:
        reasons.append(Reason("speakers", f"{len(item.speakers)} speaker(s) declared; the protocol's sessions have {expected}"))
    dimensions = {d.name: d.values for d in protocol.demographics}
    for speaker in item.speakers:
        for dim, value in speaker.demographics.items():
            if dim not in dimensions:
                reasons.append(Reason("unknown_dimension", f"speaker {speaker.speaker_id}: '{dim}' is not a demographic dimension of the protocol ({', '.join(dimensions)})"))
            elif value not in dimensions[dim]:
                reasons.append(Reason("unknown_value", f"speaker {speaker.speaker_id}: {dim} '{value}' is not allowed ({', '.join(dimensions[dim])})"))
        missing = [d for d in dimensions if d not in speaker.demographics]
        if missing:
            reasons.append(Reason("missing_demographics", f"speaker {speaker.speaker_id}: no value for {', '.join(missing)}"))
        stored: dict[str, str] = dict(session.execute(  # type: ignore[arg-type]
            select(models.SpeakerDemographic.dimension, models.SpeakerDemographic.value)
            .where(models.SpeakerDemographic.speaker_id == speaker.speaker_id)
        ).all())
        for dim, value in speaker.demographics.items():
            if dim in stored and stored[dim] != value:
                reasons.append(Reason("speaker_conflict", f"speaker {speaker.speaker_id} was registered with {dim} '{stored[dim]}', not '{value}'"))
    reasons += _session_reasons(session, item)
    return reasons


def _session_reasons(session: Session, item: ManifestItem) -> list[Reason]:
    existing = session.scalar(select(models.Session).where(models.Session.session_id == item.session_id))
    if existing is None:
        return []
    stored = sorted(p.speaker_id for p in existing.participants)
    declared = sorted(s.speaker_id for s in item.speakers)
    if stored != declared or existing.device != item.device or existing.noise_condition != item.noise_condition:
        return [Reason("session_conflict", f"session {item.session_id} is stored with speakers {stored}, device "
                       f"{existing.device}, {existing.noise_condition}; this row declares {declared}, {item.device}, {item.noise_condition}")]
    return []


def consent_reasons(session: Session, item: ManifestItem, protocol: Protocol, today: dt.date) -> list[Reason]:
    """Each speaker's consent must cover the recording on its date and still be in force at intake (`today`)."""
    reasons = []
    refs = [s.consent_ref for s in item.speakers if s.consent_ref]
    histories = consent_histories(session, refs) if refs else {}
    for speaker in item.speakers:
        if not speaker.consent_ref:
            reasons.append(Reason("consent", f"speaker {speaker.speaker_id} has no consent reference"))
            continue
        verdict = judge_consent(histories.get(speaker.consent_ref, []), speaker.consent_ref, speaker.speaker_id,
                                on=today, protocol=protocol, recorded_on=item.recorded_on or today)
        reasons += [Reason("consent", p.message) for p in verdict.problems]
    return reasons


def duration_ceiling(protocol: Protocol) -> float | None:
    """The longest recording the protocol accepts (the stricter of its gate and its session design), if any."""
    highs = [h for h in (protocol.quality_gates.max_duration_s, protocol.session.max_duration_s) if h is not None]
    return min(highs) if highs else None


def gate_reasons(measured: Measurements, protocol: Protocol) -> list[Reason]:
    """The protocol's quality gates and session duration bounds against the measurements."""
    gates, design = protocol.quality_gates, protocol.session
    reasons = []
    if measured.sample_rate < gates.min_sample_rate:
        reasons.append(Reason("sample_rate", f"sample rate {measured.sample_rate} Hz is below the protocol's minimum {gates.min_sample_rate} Hz"))
    if measured.clipping_ratio > gates.max_clipping_ratio:
        reasons.append(Reason("clipping", f"{measured.clipping_ratio:.2%} of samples are clipped (maximum {gates.max_clipping_ratio:.2%})"))
    if measured.snr_db is None:
        reasons.append(Reason("no_speech", "no speech detected"))
    elif gates.min_snr_db is not None and measured.snr_db < gates.min_snr_db:
        reasons.append(Reason("snr", f"estimated SNR {measured.snr_db:.1f} dB is below the minimum {gates.min_snr_db:g} dB"))
    silence = 1 - measured.speech_ratio
    if silence > gates.max_silence_ratio:
        reasons.append(Reason("silence", f"{silence:.0%} of the file is non-speech (maximum {gates.max_silence_ratio:.0%})"))
    low, high = max(gates.min_duration_s, design.min_duration_s), duration_ceiling(protocol)
    if measured.duration_s < low:
        reasons.append(Reason("duration", f"{measured.duration_s:.1f} s is shorter than the minimum {low:g} s"))
    if high is not None and measured.duration_s > high:
        reasons.append(Reason("duration", f"{measured.duration_s:.1f} s is longer than the maximum {high:g} s"))
    return reasons


def noise_mismatch(measured: Measurements, declared: str, protocol: Protocol) -> str | None:
    """A declared noise condition the measured SNR contradicts (flagged, not rejected)."""
    if measured.snr_db is None or declared not in protocol.allowed_values()["noise_condition"]:
        return None
    condition = protocol.noise_condition(declared)
    if condition.snr_db.contains(measured.snr_db):
        return None
    bounds = condition.snr_db
    span = f"{bounds.min if bounds.min is not None else '-inf'}..{bounds.max if bounds.max is not None else 'inf'} dB"
    return f"declared '{declared}' ({span}) but measured SNR is {measured.snr_db:.1f} dB"
