"""How two transcripts of the same audio are compared: words, speakers, boundaries.

Every figure is computed from turn lists (the one turn shape) restricted to a time span:

- word errors with jiwer over the span's turns in time order, after lower-casing and
  dropping punctuation (``Hello,`` = ``hello``); WER = errors / reference words, and
  figures over many items add errors and words first (a corpus WER, not a mean of WERs);
- frame labels every `frame_s` seconds (default 10 ms): the speaker speaking, ``""`` in
  silence, and the sorted ``+``-joined speakers in overlap;
- speaker-attribution error: the share of the reference's speech frames whose label the
  other transcript does not reproduce, after renaming its speakers onto the reference's
  (a one-to-one mapping maximising shared frames, so ``SPEAKER_00`` vs ``spk-0001`` is no error);
- boundary deviation: for each reference turn, the other transcript's turn of the mapped
  speaker overlapping it most; the mean of ``(|Δstart| + |Δend|) / 2`` over matched turns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

Turn = dict[str, Any]
_PUNCT = re.compile(r"[^\w\s'<>\[\]-]+")


def normalise(text: str) -> str:
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def in_span(turns: list[Turn], start: float | None, end: float | None) -> list[Turn]:
    """The turns whose midpoint lies in [start, end) (all of them when no span is given), by start time."""
    if start is None and end is None:
        chosen = list(turns)
    else:
        lo = start if start is not None else float("-inf")
        hi = end if end is not None else float("inf")
        chosen = [t for t in turns if lo <= (float(t["start"]) + float(t["end"])) / 2 < hi]
    return sorted(chosen, key=lambda t: (float(t["start"]), float(t["end"])))


def text_of(turns: list[Turn]) -> str:
    return normalise(" ".join(str(t.get("text") or "") for t in sorted(turns, key=lambda t: float(t["start"]))))


@dataclass
class WordCounts:
    """Alignment counts of a hypothesis against a reference (errors = S + D + I)."""

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

    reference, hypothesis = normalise(reference), normalise(hypothesis)
    if not reference:
        return WordCounts(insertions=len(hypothesis.split()))
    if not hypothesis:
        return WordCounts(deletions=len(reference.split()))
    out = jiwer.process_words(reference, hypothesis)
    return WordCounts(out.hits, out.substitutions, out.deletions, out.insertions)


def frame_labels(turns: list[Turn], start: float, end: float, frame_s: float = 0.01) -> list[str]:
    """One nominal label per frame of [start, end): speaker, "" for silence, "a+b" for overlap."""
    n = max(0, int(round((end - start) / frame_s)))
    centres = start + (np.arange(n) + 0.5) * frame_s
    active: list[set[str]] = [set() for _ in range(n)]
    for turn in turns:
        lo = int(np.searchsorted(centres, float(turn["start"]), side="left"))
        hi = int(np.searchsorted(centres, float(turn["end"]), side="left"))
        for i in range(lo, hi):
            active[i].add(str(turn["speaker"]))
    return ["+".join(sorted(a)) for a in active]


def speaker_mapping(reference: list[str], hypothesis: list[str]) -> dict[str, str]:
    """Hypothesis speaker -> reference speaker, one to one, maximising frames spoken by both."""
    from scipy.optimize import linear_sum_assignment

    ref_names = sorted({s for label in reference for s in label.split("+") if s})
    hyp_names = sorted({s for label in hypothesis for s in label.split("+") if s})
    if not ref_names or not hyp_names:
        return {}
    overlap = np.zeros((len(hyp_names), len(ref_names)))
    hi, ri = {n: i for i, n in enumerate(hyp_names)}, {n: i for i, n in enumerate(ref_names)}
    for r, h in zip(reference, hypothesis):
        if r and h:
            for hs in h.split("+"):
                for rs in r.split("+"):
                    overlap[hi[hs], ri[rs]] += 1
    rows, cols = linear_sum_assignment(-overlap)
    mapping = {hyp_names[i]: ref_names[j] for i, j in zip(rows, cols) if overlap[i, j] > 0}
    taken = set(mapping.values())
    for name in hyp_names:  # unmatched speakers keep their name unless it would collide with a reference one
        if name not in mapping:
            mapping[name] = name if name not in taken else f"{name}?"
    return mapping


def relabel(labels: list[str], mapping: dict[str, str]) -> list[str]:
    return ["+".join(sorted(mapping.get(s, s) for s in label.split("+"))) if label else "" for label in labels]


def speaker_error(reference: list[str], hypothesis: list[str]) -> tuple[int, int]:
    """(frames wrong, reference speech frames) after mapping the hypothesis's speakers."""
    mapped = relabel(hypothesis, speaker_mapping(reference, hypothesis))
    speech = [(r, h) for r, h in zip(reference, mapped) if r]
    return sum(1 for r, h in speech if r != h), len(speech)


def boundary_deviations(reference: list[Turn], hypothesis: list[Turn], mapping: dict[str, str]) -> list[float]:
    """Per matched reference turn, (|Δstart| + |Δend|) / 2 in seconds."""
    out = []
    for ref in reference:
        rs, re_ = float(ref["start"]), float(ref["end"])
        best, best_overlap = None, 0.0
        for hyp in hypothesis:
            if mapping.get(str(hyp["speaker"]), str(hyp["speaker"])) != str(ref["speaker"]):
                continue
            overlap = min(re_, float(hyp["end"])) - max(rs, float(hyp["start"]))
            if overlap > best_overlap:
                best, best_overlap = hyp, overlap
        if best is not None:
            out.append((abs(float(best["start"]) - rs) + abs(float(best["end"]) - re_)) / 2)
    return out


@dataclass
class Comparison:
    """One transcript against a reference over one span."""

    words: WordCounts
    speaker_frames_wrong: int
    speaker_frames: int
    boundary_deviations: list[float]

    @property
    def wer(self) -> float | None:
        return self.words.wer

    @property
    def speaker_error(self) -> float | None:
        return self.speaker_frames_wrong / self.speaker_frames if self.speaker_frames else None

    @property
    def boundary_s(self) -> float | None:
        return sum(self.boundary_deviations) / len(self.boundary_deviations) if self.boundary_deviations else None


def compare(reference: list[Turn], hypothesis: list[Turn], start: float, end: float, frame_s: float = 0.01) -> Comparison:
    """Words, speakers and boundaries of `hypothesis` against `reference` over [start, end)."""
    ref, hyp = in_span(reference, start, end), in_span(hypothesis, start, end)
    ref_labels, hyp_labels = frame_labels(reference, start, end, frame_s), frame_labels(hypothesis, start, end, frame_s)
    wrong, frames = speaker_error(ref_labels, hyp_labels)
    mapping = speaker_mapping(ref_labels, hyp_labels)
    return Comparison(word_counts(text_of(ref), text_of(hyp)), wrong, frames, boundary_deviations(ref, hyp, mapping))
