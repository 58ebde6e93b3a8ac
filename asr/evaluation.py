"""Scoring pre-annotations against reference transcripts with the field's tools.

- WER: jiwer, over each recording's words in time order regardless of speaker.
  Normalisation (applied to both sides): lower case, punctuation removed except
  apostrophes inside words, whitespace collapsed. Numbers are not verbalised, so
  "6.30" against "six thirty" counts as errors.
- DER and JER: pyannote.metrics, no collar, overlapping speech scored; DER also split
  into its false alarm, missed speech and speaker confusion (each over the reference
  speech time, so the three add up to DER).
- Turn-boundary error: speakers mapped as DER maps them, each reference turn is paired
  with the hypothesis turn of its speaker that overlaps it most; the error is |start
  difference| and |end difference| (two per pair), reported as a median. Reference
  turns no hypothesis turn of theirs overlaps are counted as unmatched.
- cpWER: meeteval, concatenated minimum-permutation WER over speakers.
Totals are micro-averages (summed errors over summed reference length).
"""

from __future__ import annotations

import json
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from store.rttm_stm_ctm import read_rttm, read_stm
from store.turns import Turn, turns_from_json

_PUNCT = re.compile(r"[^\w\s']|(?<!\w)'|'(?!\w)")


def normalize(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


@dataclass
class WordCounts:
    """Alignment counts of a hypothesis against a reference (errors = S + D + I): the one WER accumulator.

    Figures over many items add the counts first (a corpus WER, not a mean of WERs).
    """

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def reference_words(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float | None:
        return self.errors / self.reference_words if self.reference_words else None

    @property
    def kept(self) -> float | None:
        """Share of the reference's words found unchanged in the hypothesis (hits / reference words)."""
        return self.hits / self.reference_words if self.reference_words else None

    def __add__(self, other: WordCounts) -> WordCounts:
        return WordCounts(self.hits + other.hits, self.substitutions + other.substitutions,
                          self.deletions + other.deletions, self.insertions + other.insertions)


def word_counts(reference: str, hypothesis: str) -> WordCounts:
    """jiwer's alignment of two normalised texts; empty sides handled (jiwer refuses an empty reference)."""
    import jiwer

    reference, hypothesis = normalize(reference), normalize(hypothesis)
    if not reference:
        return WordCounts(insertions=len(hypothesis.split()))
    if not hypothesis:
        return WordCounts(deletions=len(reference.split()))
    out = jiwer.process_words(reference, hypothesis)
    return WordCounts(out.hits, out.substitutions, out.deletions, out.insertions)


@dataclass
class Score:
    """Error counts that add up across recordings (WER over recordings with reference text)."""

    words: WordCounts = field(default_factory=WordCounts)
    cp_errors: int = 0
    cp_words: int = 0
    der_error: float = 0.0
    der_total: float = 0.0
    der_false_alarm: float = 0.0  # the three parts of der_error, in seconds
    der_miss: float = 0.0
    der_confusion: float = 0.0
    jer_sum: float = 0.0
    files: int = 0
    boundary_errors: list[float] = field(default_factory=list)  # seconds, two per matched reference turn
    reference_turns: int = 0
    unmatched_turns: int = 0

    def add(self, other: Score) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self) -> dict[str, float | int | None]:
        return {
            "files": self.files,
            "wer": self.words.wer,
            "cpwer": self.cp_errors / self.cp_words if self.cp_words else None,
            "der": self.der_error / self.der_total if self.der_total else None,
            "der_false_alarm": self.der_false_alarm / self.der_total if self.der_total else None,
            "der_miss": self.der_miss / self.der_total if self.der_total else None,
            "der_confusion": self.der_confusion / self.der_total if self.der_total else None,
            "jer": self.jer_sum / self.files if self.files else None,
            "boundary_median_s": round(statistics.median(self.boundary_errors), 3) if self.boundary_errors else None,
            "reference_turns": self.reference_turns, "unmatched_turns": self.unmatched_turns,
            "reference_words": self.words.reference_words, "reference_speech_s": round(self.der_total, 3),
        }


def _annotation(turns: list[Turn], uri: str):  # type: ignore[no-untyped-def]
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for i, t in enumerate(turns):
        if t.end > t.start:
            annotation[Segment(t.start, t.end), i] = t.speaker
    return annotation


def _speaker_texts(turns: list[Turn]) -> dict[str, str]:
    texts: dict[str, list[str]] = defaultdict(list)
    for t in sorted(turns, key=lambda t: t.start):
        if normalize(t.text):
            texts[t.speaker].append(normalize(t.text))
    return {speaker: " ".join(parts) for speaker, parts in texts.items()}


def boundary_errors(hypothesis: list[Turn], reference: list[Turn], mapping: dict[Any, Any]) -> tuple[list[float], int]:
    """|start| and |end| differences (s) of each reference turn and the hypothesis turn of its speaker
    (`mapping`: hypothesis label to reference label) that overlaps it most; and how many had none."""
    errors: list[float] = []
    unmatched = 0
    for ref in reference:
        if ref.end <= ref.start:
            continue
        overlaps = [(min(ref.end, hyp.end) - max(ref.start, hyp.start), hyp) for hyp in hypothesis
                    if mapping.get(hyp.speaker) == ref.speaker]
        best = max(overlaps, key=lambda pair: pair[0], default=None)
        if best is None or best[0] <= 0:
            unmatched += 1
            continue
        errors += [abs(best[1].start - ref.start), abs(best[1].end - ref.end)]
    return errors, unmatched


def score_recording(hypothesis: list[Turn], reference: list[Turn], uri: str) -> Score:
    """WER, cpWER, DER and JER of one recording's turns against its reference turns."""
    from meeteval.wer import cp_word_error_rate
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    ref_text = normalize(" ".join(t.text for t in sorted(reference, key=lambda t: t.start)))
    hyp_text = normalize(" ".join(t.text for t in sorted(hypothesis, key=lambda t: t.start)))
    score = Score(files=1)
    if ref_text:  # without reference text there are no words to score (DER still counts)
        score.words = word_counts(ref_text, hyp_text)
        cp = cp_word_error_rate(_speaker_texts(reference), _speaker_texts(hypothesis) or {"none": ""})
        score.cp_errors, score.cp_words = int(cp.errors), int(cp.length)
    from pyannote.core import Segment, Timeline

    ref_ann, hyp_ann = _annotation(reference, uri), _annotation(hypothesis, uri)
    extent = max([t.end for t in [*reference, *hypothesis]], default=0.0)
    uem = Timeline([Segment(0.0, extent)], uri=uri)
    der = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    components = der(ref_ann, hyp_ann, uem=uem, detailed=True)
    score.der_false_alarm = components["false alarm"]
    score.der_miss = components["missed detection"]
    score.der_confusion = components["confusion"]
    score.der_error = score.der_confusion + score.der_false_alarm + score.der_miss
    score.der_total = components["total"]
    mapping = der.optimal_mapping(ref_ann, hyp_ann, uem=uem) if len(hyp_ann) else {}
    score.boundary_errors, score.unmatched_turns = boundary_errors(hypothesis, reference, mapping)
    score.reference_turns = sum(1 for t in reference if t.end > t.start)
    score.jer_sum = float(JaccardErrorRate(collar=0.0, skip_overlap=False)(ref_ann, hyp_ann, uem=uem))
    return score


def load_reference(directory: Path, stem: str) -> list[Turn] | None:
    """Reference turns for `stem`: `<stem>.turns.json`, else `<stem>.stm` (text) with `<stem>.rttm` ignored for text."""
    turns_json = directory / f"{stem}.turns.json"
    if turns_json.is_file():
        data = json.loads(turns_json.read_text())
        return turns_from_json(data["turns"] if isinstance(data, dict) else data)
    for suffix, read in ((".stm", read_stm), (".rttm", read_rttm)):
        path = directory / f"{stem}{suffix}"
        if path.is_file():  # every file id in it: the file is named after the recording
            return [turn for turns in read(path.read_text()).values() for turn in turns]
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
        score = score_recording(revision.as_turns(), reference, stem)
        report.per_file[stem] = score
        report.overall.add(score)
        keys = {("noise_condition", sess.noise_condition), ("device", sess.device), *demographics[str(sess.pk)]}
        for key in sorted(keys):
            report.groups[key].add(score)
    return report
