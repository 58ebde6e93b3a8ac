"""The one turn type: who spoke when and what, from the ASR output through the editor to every export.

A turn's JSON form is exactly ARCHITECTURE.md's
``{speaker, start, end, text, words: [{text, start, end, probability}]}``, times in
seconds, where a word may also say ``"typed": true`` (a person typed it: the model did
not hear it) and ``"spread": true`` (its times are an even share of the turn, not an
alignment); both are left out when false, so older JSON reads and writes unchanged; it is what ``TranscriptRevision.turns`` holds. `Turn.from_json` is the only way
in (it checks and names every problem), `Turn.to_json` the only way out.

Rules a new turn meets: times finite, ``0 <= start <= end`` (a model's turn may be an
instant; the editor asks more of a person's), text (a turn's and each word's) with its
whitespace normalised, a speaker label that is non-empty (ends stripped) and has no
whitespace, control character or slash inside (it becomes a field of RTTM/STM/Kaldi
lines and a path part of some exports).

Revisions stored before these rules load unchanged: ``stored=True`` keeps a label and
a text exactly as the editor used to save them (it only stripped their ends), while
the numbers and the shape are checked as for any turn.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TurnJson = dict[str, Any]
"""A turn in its JSON form (what the store, the browser and the turn-edit functions hold)."""

TURN_FIELDS = ("speaker", "start", "end", "text", "words")
WORD_FIELDS = ("text", "start", "end", "probability", "typed", "spread")
REQUIRED_TURN_FIELDS = ("speaker", "start", "end", "text")
REQUIRED_WORD_FIELDS = ("text", "start", "end")
_WORD_KEYS, _REQUIRED_WORD_KEYS = frozenset(WORD_FIELDS), frozenset(REQUIRED_WORD_FIELDS)
TIME_TOLERANCE_S = 0.05  # a turn may end this far past the audio (rounding of model output)
WORD_TOLERANCE_S = 0.0005  # a person's word may pass its turn's edge by rounding to the millisecond only


class TurnValidationError(ValueError):
    """Turns that cannot be taken in; `problems` names each bad turn and field."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def normalise_text(text: str) -> str:
    """Runs of whitespace (newlines and tabs too) become one space; the ends are stripped."""
    return " ".join(text.split())


def label_problem(label: str) -> str | None:
    """Why `label` is not a well-formed speaker label, or None when it is."""
    if not label:
        return "speaker must be a non-empty label"
    bad = sorted({c for c in label if c.isspace() or unicodedata.category(c).startswith("C") or c in "/\\"})
    if bad:
        return f"speaker label {label!r} may not contain whitespace, control characters or slashes (found {''.join(bad)!r})"
    return None


def _seconds(value: Any) -> float | None:
    """A finite number of seconds, or None (booleans and numeric strings are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True)
class Word:
    """One timed word of a turn with the model's confidence in it (1.0 when a person typed it).

    `typed`: a person typed the word (it was not in the model's or an earlier revision's
    words), so its probability says nothing. `spread`: its times are an even share of the
    turn because alignment could not run; exports carry them, but they are not measured.
    """

    text: str
    start: float
    end: float
    probability: float = 1.0
    typed: bool = False
    spread: bool = False

    def __post_init__(self) -> None:
        start, end, probability = _seconds(self.start), _seconds(self.end), _seconds(self.probability)
        if (not isinstance(self.text, str) or start is None or end is None or probability is None
                or not 0.0 <= start <= end or not 0.0 <= probability <= 1.0
                or not isinstance(self.typed, bool) or not isinstance(self.spread, bool)):
            problems = _word_problems(self.text, self.start, self.end, self.probability)
            problems += [f"{name} must be true or false, not {value!r}" for name, value in
                         (("typed", self.typed), ("spread", self.spread)) if not isinstance(value, bool)]
            raise TurnValidationError(problems)
        object.__setattr__(self, "text", normalise_text(self.text))
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "probability", probability)

    @classmethod
    def from_json(cls, data: Any) -> Word:
        """A word from its JSON form; `probability` may be left out (a person's word), `typed`/`spread` too (false)."""
        if not isinstance(data, Mapping) or not _REQUIRED_WORD_KEYS <= data.keys() or not data.keys() <= _WORD_KEYS:
            raise TurnValidationError(["needs text, start, end (and optionally probability, typed, spread), nothing else"])
        return cls(data["text"], data["start"], data["end"], data.get("probability", 1.0), data.get("typed", False),
                   data.get("spread", False))

    def to_json(self) -> dict[str, Any]:
        """The JSON form; `typed` and `spread` only when true (older readers and stored JSON stay as they were)."""
        out: dict[str, Any] = {"text": self.text, "start": self.start, "end": self.end, "probability": self.probability}
        if self.typed:
            out["typed"] = True
        if self.spread:
            out["spread"] = True
        return out


@dataclass(frozen=True)
class Turn:
    """One speaker's stretch of speech: its bounds hold the speech, not padding (they feed playback and exports)."""

    speaker: str
    start: float
    end: float
    text: str = ""
    words: tuple[Word, ...] = ()
    stored: bool = field(default=False, compare=False, repr=False)  # loaded from a revision saved before the label/text rules

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", tuple(self.words))
        if not self.stored:
            if isinstance(self.text, str):
                object.__setattr__(self, "text", normalise_text(self.text))
            if isinstance(self.speaker, str):
                object.__setattr__(self, "speaker", self.speaker.strip())
        problems = _turn_problems(self.speaker, self.start, self.end, self.text, stored=self.stored)
        if problems:
            raise TurnValidationError(problems)

    @classmethod
    def from_json(cls, data: Any, *, duration_s: float | None = None, stored: bool = False) -> Turn:
        """A turn from its JSON form, checked; `words` may be missing (reference files, old revisions)."""
        return turns_from_json([data], duration_s=duration_s, stored=stored)[0]

    def to_json(self) -> TurnJson:
        """The one JSON form, keys in ARCHITECTURE.md's order."""
        return {"speaker": self.speaker, "start": self.start, "end": self.end, "text": self.text,
                "words": [w.to_json() for w in self.words]}

    @property
    def duration(self) -> float:
        return self.end - self.start


def _word_problems(text: Any, start: Any, end: Any, probability: Any) -> list[str]:
    problems = []
    if not isinstance(text, str):
        problems.append("word text must be a string")
    s, e, p = _seconds(start), _seconds(end), _seconds(probability)
    if s is None or e is None or s < 0 or s > e:
        problems.append("start/end must be numbers with start <= end")
    if p is None or not 0.0 <= p <= 1.0:
        problems.append(f"probability must be a number from 0 to 1, not {probability!r}")
    return problems


def _turn_problems(speaker: Any, start: Any, end: Any, text: Any, *, stored: bool, positive_length: bool = False,
                   duration_s: float | None = None) -> list[str]:
    problems = []
    if not isinstance(speaker, str):
        problems.append("speaker must be a non-empty label")
    elif stored:
        if not speaker.strip():
            problems.append("speaker must be a non-empty label")
    elif (problem := label_problem(speaker)) is not None:
        problems.append(problem)
    if not isinstance(text, str):
        problems.append("text must be a string")
    s, e = _seconds(start), _seconds(end)
    if s is None or e is None:
        problems.append("start and end must be finite numbers of seconds")
        return problems
    if s < 0 or s > e or (positive_length and s == e):
        problems.append(f"start {s:.3f} s must be >= 0 and {'before' if positive_length else 'not after'} end {e:.3f} s")
    if duration_s is not None and e > duration_s + TIME_TOLERANCE_S:
        problems.append(f"end {e:.3f} s is past the end of the audio ({duration_s:.3f} s)")
    return problems


def turns_from_json(data: Any, *, duration_s: float | None = None, stored: bool = False,
                    positive_length: bool = False, words_inside: bool = False) -> list[Turn]:
    """Turns from their JSON form, in the given order; every problem of every turn is named at once.

    `duration_s`: the recording's length, which no turn may end past (beyond rounding).
    `positive_length`: refuse instants (a person's turn must last). `words_inside`: refuse a word
    that lies (even partly) outside its turn, beyond rounding to the millisecond: a person's turn
    holds its words (the editor clips or respreads them when a boundary moves; the pre-annotation
    snaps them in), so exports never put a word in a segment that does not say it. `stored`: see the module.
    """
    if not isinstance(data, Sequence) or isinstance(data, (str, bytes)):
        raise TurnValidationError([f"turns must be a list, not {type(data).__name__}"])
    problems: list[str] = []
    turns: list[Turn] = []
    for i, item in enumerate(data):
        if not isinstance(item, Mapping):
            problems.append(f"turn {i}: must be an object, not {type(item).__name__}")
            continue
        unknown = sorted(set(item) - set(TURN_FIELDS))
        missing = [f for f in REQUIRED_TURN_FIELDS if f not in item]
        if unknown or missing:
            problems.append(f"turn {i}: " + "; ".join(
                ([f"unknown field(s) {', '.join(unknown)}"] if unknown else []) + ([f"missing {', '.join(missing)}"] if missing else [])))
            continue
        speaker, text = item["speaker"], item["text"]
        if not stored:
            speaker = speaker.strip() if isinstance(speaker, str) else speaker
            text = normalise_text(text) if isinstance(text, str) else text
        found = [f"turn {i}: {p}" for p in _turn_problems(speaker, item["start"], item["end"], text, stored=stored,
                                                          positive_length=positive_length, duration_s=duration_s)]
        words_json = item.get("words", [])
        words: list[Word] = []
        if not isinstance(words_json, list):
            found.append(f"turn {i}: 'words' must be a list")
        else:
            for j, word in enumerate(words_json):
                try:
                    words.append(Word.from_json(word))
                except TurnValidationError as bad:
                    found += [f"turn {i} word {j}: {p}" for p in bad.problems]
        if words_inside and not found:
            found += [f"turn {i} word {j}: {w.text!r} at {w.start:.3f}-{w.end:.3f} s lies outside its turn "
                      f"({float(item['start']):.3f}-{float(item['end']):.3f} s)" for j, w in enumerate(words)
                      if w.start < float(item["start"]) - WORD_TOLERANCE_S or w.end > float(item["end"]) + WORD_TOLERANCE_S]
        problems += found
        if not found:
            turns.append(Turn(speaker, float(item["start"]), float(item["end"]), text, tuple(words), stored=stored))
    if problems:
        raise TurnValidationError(problems)
    return turns


def turns_to_json(turns: Sequence[Turn]) -> list[TurnJson]:
    return [t.to_json() for t in turns]


def load_stored(data: Any) -> list[Turn]:
    """The turns of a stored revision (`TranscriptRevision.turns`), exactly as they were saved."""
    return turns_from_json(data, stored=True)
