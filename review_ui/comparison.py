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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from asr.evaluation import WordCounts, normalize, word_counts  # people and models are scored by the same rules
from store.turns import TurnJson


def in_span(turns: list[TurnJson], start: float | None, end: float | None) -> list[TurnJson]:
    """The turns whose midpoint lies in [start, end) (all of them when no span is given), by start time."""
    if start is None and end is None:
        chosen = list(turns)
    else:
        lo = start if start is not None else float("-inf")
        hi = end if end is not None else float("inf")
        chosen = [t for t in turns if lo <= (float(t["start"]) + float(t["end"])) / 2 < hi]
    return sorted(chosen, key=lambda t: (float(t["start"]), float(t["end"])))


def text_of(turns: list[TurnJson]) -> str:
    return normalize(" ".join(str(t.get("text") or "") for t in sorted(turns, key=lambda t: float(t["start"]))))


@dataclass
class Activity:
    """Who speaks in each frame: `active[frame, k]` is True while `names[k]` speaks."""

    names: list[str]
    active: np.ndarray  # bool, frames x speakers

    def labels(self) -> list[str]:
        """One nominal label per frame: the speaker, "" for silence, sorted "a+b" for overlap."""
        order = sorted(range(len(self.names)), key=lambda k: self.names[k])
        out = []
        for row in self.active[:, order] if self.names else np.zeros((len(self.active), 0), dtype=bool):
            out.append("+".join(self.names[order[k]] for k in np.flatnonzero(row)))
        return out


def activity(turns: list[TurnJson], start: float, end: float, frame_s: float = 0.01) -> Activity:
    """Frames of `frame_s` seconds over [start, end); a frame belongs to a turn when its centre does."""
    n = max(0, int(round((end - start) / frame_s)))
    names = sorted({str(t["speaker"]) for t in turns})
    index = {name: k for k, name in enumerate(names)}
    edges = np.zeros((n + 1, len(names)), dtype=np.int64)
    centres = start + (np.arange(n) + 0.5) * frame_s
    for turn in turns:
        lo = int(np.searchsorted(centres, float(turn["start"]), side="left"))
        hi = int(np.searchsorted(centres, float(turn["end"]), side="left"))
        if hi > lo:
            k = index[str(turn["speaker"])]
            edges[lo, k] += 1
            edges[hi, k] -= 1
    return Activity(names, np.cumsum(edges, axis=0)[:n] > 0)


def frame_labels(turns: list[TurnJson], start: float, end: float, frame_s: float = 0.01) -> list[str]:
    """One nominal label per frame of [start, end): speaker, "" for silence, "a+b" for overlap."""
    return activity(turns, start, end, frame_s).labels()


def _activity_of_labels(labels: list[str]) -> Activity:
    names = sorted({s for label in labels for s in label.split("+") if s})
    index = {name: k for k, name in enumerate(names)}
    active = np.zeros((len(labels), len(names)), dtype=bool)
    for i, label in enumerate(labels):
        for s in label.split("+") if label else ():
            active[i, index[s]] = True
    return Activity(names, active)


def map_speakers(reference: Activity, hypothesis: Activity) -> dict[str, str]:
    """Hypothesis speaker -> reference speaker, one to one, maximising frames spoken by both.

    A hypothesis speaker left unmatched keeps its name (with "?" added should that name
    belong to a reference speaker), so it never counts as right.
    """
    from scipy.optimize import linear_sum_assignment

    mapping: dict[str, str] = {}
    if reference.names and hypothesis.names:
        overlap = hypothesis.active.T.astype(np.int64) @ reference.active.astype(np.int64)
        rows, cols = linear_sum_assignment(-overlap)
        mapping = {hypothesis.names[i]: reference.names[j] for i, j in zip(rows, cols) if overlap[i, j] > 0}
    taken = set(reference.names)
    for name in hypothesis.names:
        if name not in mapping:
            mapping[name] = name if name not in taken else f"{name}?"
    return mapping


def renamed(hypothesis: Activity, mapping: dict[str, str], onto: Activity) -> Activity:
    """`hypothesis` with its speakers renamed, in `onto`'s speaker columns (plus columns for unmatched ones)."""
    names = list(onto.names) + sorted({mapping.get(n, n) for n in hypothesis.names} - set(onto.names))
    index = {name: k for k, name in enumerate(names)}
    active = np.zeros((len(hypothesis.active), len(names)), dtype=bool)
    for k, name in enumerate(hypothesis.names):
        active[:, index[mapping.get(name, name)]] |= hypothesis.active[:, k]
    return Activity(names, active)


def same_frames(reference: Activity, hypothesis: Activity) -> np.ndarray:
    """Per frame, whether both have exactly the same speakers (after `renamed` put them in the same columns)."""
    width = len(hypothesis.names)
    ref = np.zeros((len(reference.active), width), dtype=bool)
    ref[:, : len(reference.names)] = reference.active
    return np.all(ref == hypothesis.active, axis=1)


def speaker_mapping(reference: list[str], hypothesis: list[str]) -> dict[str, str]:
    """`map_speakers` for frame labels (see `frame_labels`)."""
    return map_speakers(_activity_of_labels(reference), _activity_of_labels(hypothesis))


def relabel(labels: list[str], mapping: dict[str, str]) -> list[str]:
    return ["+".join(sorted(mapping.get(s, s) for s in label.split("+"))) if label else "" for label in labels]


def speaker_error(reference: list[str], hypothesis: list[str]) -> tuple[int, int]:
    """(frames wrong, reference speech frames) after mapping the hypothesis's speakers."""
    return _speaker_error(_activity_of_labels(reference), _activity_of_labels(hypothesis))[:2]


def _speaker_error(reference: Activity, hypothesis: Activity) -> tuple[int, int, dict[str, str]]:
    mapping = map_speakers(reference, hypothesis)
    same = same_frames(reference, renamed(hypothesis, mapping, reference))
    speech = reference.active.any(axis=1) if reference.names else np.zeros(len(reference.active), dtype=bool)
    return int(np.count_nonzero(speech & ~same)), int(np.count_nonzero(speech)), mapping


def nominal_codes(reference: Activity, hypothesis: Activity) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' frame labels as integer codes (the hypothesis renamed onto the reference first): alpha's input."""
    mapped = renamed(hypothesis, map_speakers(reference, hypothesis), reference)
    weights = np.left_shift(np.int64(1), np.arange(len(mapped.names), dtype=np.int64)) if mapped.names else np.zeros(0, dtype=np.int64)
    ref = np.zeros((len(reference.active), len(mapped.names)), dtype=bool)
    ref[:, : len(reference.names)] = reference.active
    return ref.astype(np.int64) @ weights, mapped.active.astype(np.int64) @ weights


def boundary_deviations(reference: list[TurnJson], hypothesis: list[TurnJson], mapping: dict[str, str]) -> list[float]:
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
    """One transcript against a reference over one span, or (added up with `+`) over several items.

    Words and frames add up, boundary deviations are pooled: the sum's figures are corpus
    figures, not means of per-item figures.
    """

    words: WordCounts
    speaker_frames_wrong: int
    speaker_frames: int
    boundary_deviations: list[float]
    items: int = 1

    @classmethod
    def nothing(cls) -> Comparison:
        """The sum of no comparisons (what a total starts from)."""
        return cls(WordCounts(), 0, 0, [], items=0)

    def __add__(self, other: Comparison) -> Comparison:
        return Comparison(self.words + other.words, self.speaker_frames_wrong + other.speaker_frames_wrong,
                          self.speaker_frames + other.speaker_frames, self.boundary_deviations + other.boundary_deviations,
                          self.items + other.items)

    @property
    def wer(self) -> float | None:
        return self.words.wer

    @property
    def speaker_error(self) -> float | None:
        return self.speaker_frames_wrong / self.speaker_frames if self.speaker_frames else None

    @property
    def speaker_kept(self) -> float | None:
        """Share of the reference's speech frames the other transcript reproduces (1 - speaker error)."""
        return (self.speaker_frames - self.speaker_frames_wrong) / self.speaker_frames if self.speaker_frames else None

    @property
    def boundary_s(self) -> float | None:
        return sum(self.boundary_deviations) / len(self.boundary_deviations) if self.boundary_deviations else None

    def figures(self) -> dict[str, Any]:
        return {"items": self.items, "wer": self.wer, "speaker_error": self.speaker_error, "boundary_s": self.boundary_s}


def total(comparisons: Iterable[Comparison]) -> Comparison:
    """The comparisons added up (`Comparison.nothing()` when there are none)."""
    return sum(comparisons, Comparison.nothing())


def compare(reference: list[TurnJson], hypothesis: list[TurnJson], start: float, end: float, frame_s: float = 0.01) -> Comparison:
    """Words, speakers and boundaries of `hypothesis` against `reference` over [start, end)."""
    ref, hyp = in_span(reference, start, end), in_span(hypothesis, start, end)
    wrong, frames, mapping = _speaker_error(activity(reference, start, end, frame_s), activity(hypothesis, start, end, frame_s))
    return Comparison(word_counts(text_of(ref), text_of(hyp)), wrong, frames, boundary_deviations(ref, hyp, mapping))
