"""Scoring pre-annotations against reference transcripts with the field's tools.

- WER: jiwer, over each recording's words in time order regardless of speaker.
  Normalisation (applied to both sides): lower case, punctuation removed except
  apostrophes inside words, whitespace collapsed. Numbers are not verbalised, so
  "6.30" against "six thirty" counts as errors.
- DER and JER: pyannote.metrics, no collar, overlapping speech scored.
- cpWER: meeteval, concatenated minimum-permutation WER over speakers.
Totals are micro-averages (summed errors over summed reference length).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.turns import Turn

_PUNCT = re.compile(r"[^\w\s']|(?<!\w)'|'(?!\w)")


def normalize(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


@dataclass
class Score:
    """Error counts that add up across recordings."""

    wer_errors: int = 0
    wer_words: int = 0
    cp_errors: int = 0
    cp_words: int = 0
    der_error: float = 0.0
    der_total: float = 0.0
    jer_sum: float = 0.0
    files: int = 0

    def add(self, other: Score) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> dict[str, float | int | None]:
        return {
            "files": self.files,
            "wer": self.wer_errors / self.wer_words if self.wer_words else None,
            "cpwer": self.cp_errors / self.cp_words if self.cp_words else None,
            "der": self.der_error / self.der_total if self.der_total else None,
            "jer": self.jer_sum / self.files if self.files else None,
            "reference_words": self.wer_words, "reference_speech_s": round(self.der_total, 3),
        }


def _annotation(turns: list[Turn], uri: str):  # type: ignore[no-untyped-def]
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for i, t in enumerate(turns):
        if t["end"] > t["start"]:
            annotation[Segment(t["start"], t["end"]), i] = t["speaker"]
    return annotation


def _speaker_texts(turns: list[Turn]) -> dict[str, str]:
    texts: dict[str, list[str]] = defaultdict(list)
    for t in sorted(turns, key=lambda t: t["start"]):
        if normalize(t["text"]):
            texts[t["speaker"]].append(normalize(t["text"]))
    return {speaker: " ".join(parts) for speaker, parts in texts.items()}


def score_recording(hypothesis: list[Turn], reference: list[Turn], uri: str) -> Score:
    """WER, cpWER, DER and JER of one recording's turns against its reference turns."""
    import jiwer
    from meeteval.wer import cp_word_error_rate
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    ref_text = normalize(" ".join(t["text"] for t in sorted(reference, key=lambda t: t["start"])))
    hyp_text = normalize(" ".join(t["text"] for t in sorted(hypothesis, key=lambda t: t["start"])))
    score = Score(files=1)
    if ref_text:
        out = jiwer.process_words(ref_text, hyp_text or "")
        score.wer_errors = out.substitutions + out.deletions + out.insertions
        score.wer_words = len(ref_text.split())
        cp = cp_word_error_rate(_speaker_texts(reference), _speaker_texts(hypothesis) or {"none": ""})
        score.cp_errors, score.cp_words = int(cp.errors), int(cp.length)
    from pyannote.core import Segment, Timeline

    ref_ann, hyp_ann = _annotation(reference, uri), _annotation(hypothesis, uri)
    extent = max([t["end"] for t in reference + hypothesis], default=0.0)
    uem = Timeline([Segment(0.0, extent)], uri=uri)
    der = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    components = der(ref_ann, hyp_ann, uem=uem, detailed=True)
    score.der_error = components["confusion"] + components["false alarm"] + components["missed detection"]
    score.der_total = components["total"]
    score.jer_sum = float(JaccardErrorRate(collar=0.0, skip_overlap=False)(ref_ann, hyp_ann, uem=uem))
    return score


def load_reference(directory: Path, stem: str) -> list[Turn] | None:
    """Reference turns for `stem`: `<stem>.turns.json`, else `<stem>.stm` (text) with `<stem>.rttm` ignored for text."""
    turns_json = directory / f"{stem}.turns.json"
    if turns_json.is_file():
        data = json.loads(turns_json.read_text())
        return data["turns"] if isinstance(data, dict) else data
    stm = directory / f"{stem}.stm"
    if stm.is_file():
        turns = []
        for line in stm.read_text().splitlines():
            parts = line.split(maxsplit=5)
            if len(parts) >= 5 and not line.startswith(";;"):
                turns.append({"speaker": parts[2], "start": float(parts[3]), "end": float(parts[4]),
                              "text": parts[5] if len(parts) > 5 else ""})
        return turns
    rttm = directory / f"{stem}.rttm"
    if rttm.is_file():
        return [{"speaker": p[7], "start": float(p[3]), "end": float(p[3]) + float(p[4]), "text": ""}
                for p in (line.split() for line in rttm.read_text().splitlines()) if len(p) >= 8 and p[0] == "SPEAKER"]
    return None


@dataclass
class EvaluationReport:
    overall: Score = field(default_factory=Score)
    groups: dict[tuple[str, str], Score] = field(default_factory=lambda: defaultdict(Score))
    per_file: dict[str, Score] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def evaluate_store(store: Any, protocol_row: Any, reference_dir: Path, author_kind: str = "model") -> EvaluationReport:
    """Score each recording's first revision by `author_kind` ('model' or 'person') against references.

    Groups: the session's noise condition and device, and each participant's demographic
    values (a dialogue counts towards each of its participants' values).
    """
    from sqlalchemy import select

    from store import models

    report = EvaluationReport()
    rec, rev, se = models.Recording, models.TranscriptRevision, models.Session
    with store.session() as session:
        rows = session.execute(
            select(rec, rev, se).join(rev, rev.recording_pk == rec.pk).join(se, se.pk == rec.session_pk)
            .where(rec.protocol_pk == protocol_row.pk, rev.author_kind == author_kind).order_by(rec.pk, rev.pk)
        ).all()
        demographics: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for speaker_id, dim, value in session.execute(
            select(models.SessionParticipant.session_pk, models.SpeakerDemographic.dimension, models.SpeakerDemographic.value)
            .join(models.SpeakerDemographic, models.SpeakerDemographic.speaker_id == models.SessionParticipant.speaker_id)
        ):
            demographics[str(speaker_id)].append((dim, value))
    seen: set[int] = set()
    for recording, revision, sess in rows:
        if recording.pk in seen:
            continue
        seen.add(recording.pk)
        stem = Path(recording.source_name).stem
        reference = load_reference(reference_dir, stem) or load_reference(reference_dir, sess.session_id)
        if reference is None:
            report.missing.append(stem)
            continue
        score = score_recording(revision.turns, reference, stem)
        report.per_file[stem] = score
        report.overall.add(score)
        keys = {("noise_condition", sess.noise_condition), ("device", sess.device), *demographics[str(sess.pk)]}
        for key in sorted(keys):
            report.groups[key].add(score)
    return report
