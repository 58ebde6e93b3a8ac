"""Word timings that survive a correction: what a save does to turns whose text a person changed.

The editor drops a turn's timed words once they no longer spell its text. When the work
is handed on (submitted, or a reviewer's edit), each such turn is aligned to its own audio
by the Whisper model that pre-annotated the recording (`asr.alignment`), so every revision
that review, scoring or a release can take has word timings and word-level exports (CTM,
Lhotse alignments) of corrected turns are true. Drafts, saved every few seconds while a
person types, do not wait for the model (about 0.5 s of CPU per changed turn, times every
annotator saving at once): their changed turns get evenly spread words marked `spread`,
and the submission aligns every turn whose words are all still spread. A word that keeps its
spelling keeps the probability (and the typed mark) it had in the revision the person
started from; a word they typed is marked `typed` (probability 1.0, as the turn type
says). Only changed turns cost an alignment: a turn whose text and bounds are as in that
revision gets its words back from it (untimed ones too: an old draft or an import is not
aligned as a whole on its next save), even when the browser sends it without them. When alignment cannot run (a turn longer than one
Whisper window or too short for its words, no model, unreadable audio) the words are
spread evenly over the turn and marked `spread`; a save never fails for this and never
loses text.
"""

from __future__ import annotations

import difflib
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from asr.alignment import AlignedWord, AlignmentFailed, WordAligner, align_turn, spread
from asr.models import ModelDirectory, ModelUnavailable, check_model_dir, resolve_model
from store import models
from store.blobs import BlobStore
from store.db import Store
from store.turns import TurnJson, Word, normalise_text
from review_ui.tasks import model_revision

log = logging.getLogger(__name__)


def words_match_text(turn: TurnJson) -> bool:
    """Whether the timed words still spell the turn's text (false once a person retyped it)."""
    words = turn.get("words") or []
    return bool(words) and [w["text"].strip() for w in words] == turn.get("text", "").split()

DEFAULT_MODEL = "tiny.en"  # what pre-annotates by default; used when no Whisper model's revision names one

Aligner = Callable[[float, float, str], list[AlignedWord]]
"""(turn start, turn end, text) -> the text's words timed in that turn; raises AlignmentFailed."""


@dataclass
class WordTiming:
    """What one save did to word timings; stored in the revision's `author_params["word_timing"]`."""

    model: str | None = None
    aligned: int = 0  # turns aligned by the model
    spread: int = 0  # turns whose words were spread evenly because alignment could not run
    reused: int = 0  # unchanged turns whose words came back from the revision the save started from
    deferred: int = 0  # changed turns of a draft, spread until the submission aligns them
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "aligned": self.aligned, "spread": self.spread, "reused": self.reused,
                "deferred": self.deferred, "problems": self.problems[:5]}


@functools.lru_cache(maxsize=2)
def _loaded(path: Path, name: str) -> WordAligner:
    """One loaded model per directory for the whole process (a model load costs seconds; alignment a fraction)."""
    return WordAligner(ModelDirectory(name, path))


@dataclass(frozen=True)
class Realigner:
    """Where a save finds a recording's audio and the Whisper models (the Turnscribe home's blobs and models)."""

    blobs: BlobStore
    models_dir: Path

    @classmethod
    def of(cls, store: Store) -> Realigner:
        return cls(store.blobs, store.settings.models_dir)

    def model_for(self, session: Session, recording: models.Recording) -> WordAligner:
        """The Whisper model of the recording's pre-annotation (its stored path, else its name), else the default."""
        model = model_revision(session, recording.pk)
        asr = ((model.author_params or {}).get("asr") or {}) if model is not None else {}
        path = Path(asr["model_path"]) if isinstance(asr.get("model_path"), str) else None
        if path is not None:
            try:
                check_model_dir(path)
                return _loaded(path, str(asr.get("model") or path.name))
            except ModelUnavailable:
                log.warning("the pre-annotation's model %s is not there any more; resolving %r", path, asr.get("model"))
        directory = resolve_model(str(asr.get("model") or DEFAULT_MODEL), self.models_dir)
        return _loaded(directory.path, directory.name)

    def retime(self, session: Session, recording: models.Recording, parent: Sequence[TurnJson],
               turns: list[TurnJson], *, align_now: bool = True) -> tuple[list[TurnJson], WordTiming]:
        """`turns` with word timings for every turn with text (see the module); `parent` is the revision edited;
        `align_now` False (a draft) spreads changed turns' words instead of aligning them."""
        timing = WordTiming()
        state: dict[str, Any] = {}

        def align(start: float, end: float, text: str) -> list[AlignedWord]:
            if "aligner" not in state:
                try:
                    state["aligner"] = self.model_for(session, recording)
                    timing.model = state["aligner"].model_dir.name
                except ModelUnavailable as exc:
                    state["aligner"] = None
                    timing.problems.append(str(exc))
            if state["aligner"] is None or recording.working_sha256 is None:
                raise AlignmentFailed("no Whisper model or no working copy to align with")
            try:
                return align_turn(state["aligner"], self.blobs.path_for(recording.working_sha256), start, end, text)
            except (OSError, RuntimeError) as exc:  # unreadable audio
                raise AlignmentFailed(str(exc)) from exc

        return retime_turns(turns, parent, align, timing, align_now=align_now), timing


def _key(word: dict[str, Any]) -> tuple[str, float, float]:
    return (word["text"], round(float(word["start"]), 3), round(float(word["end"]), 3))


def _overlapping_words(turn: TurnJson, parent: Sequence[TurnJson]) -> list[dict[str, Any]]:
    """The parent revision's words inside the turn's span, from its own speaker's turns when it has any there."""
    def inside(t: TurnJson) -> list[dict[str, Any]]:
        return [w for w in t.get("words") or [] if turn["start"] <= (w["start"] + w["end"]) / 2 <= turn["end"]]

    same = [w for t in parent if t["speaker"] == turn["speaker"] for w in inside(t)]
    found = same or [w for t in parent for w in inside(t)]
    return sorted(found, key=lambda w: (w["start"], w["end"]))


def marked(timed: list[AlignedWord], reference: list[dict[str, Any]], *, spread_times: bool) -> list[dict[str, Any]]:
    """Timed words as the turn type's JSON: a word matched (same spelling, in order) in `reference` keeps its
    probability and typed mark, any other word is typed by the person."""
    out = [Word(w.text, w.start, w.end, 1.0, typed=True, spread=spread_times).to_json() for w in timed]
    matcher = difflib.SequenceMatcher(a=[w["text"] for w in reference], b=[w.text for w in timed], autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            ref, word = reference[block.a + k], timed[block.b + k]
            out[block.b + k] = Word(word.text, word.start, word.end, float(ref.get("probability", 1.0)),
                                    typed=bool(ref.get("typed", False)), spread=spread_times).to_json()
    return out


def _pending(words: list[dict[str, Any]]) -> bool:
    """Words a draft spread over their turn (or an alignment that could not run): the submission aligns them."""
    return bool(words) and all(w.get("spread") for w in words)


def retime_turns(turns: list[TurnJson], parent: Sequence[TurnJson], align: Aligner,
                 timing: WordTiming | None = None, *, align_now: bool = True) -> list[TurnJson]:
    """Each changed turn with words that spell its text, aligned (spread in a draft: `align_now` False);
    unchanged ones as they were, unless their words are still spread and `align_now` (see the module)."""
    timing = timing if timing is not None else WordTiming()
    parent_words = {_key(w): w for t in parent for w in t.get("words") or []}
    unchanged = {(normalise_text(t["text"]), round(t["start"], 3), round(t["end"], 3)): t.get("words") or []
                 for t in parent}
    out = []
    for turn in turns:
        turn = dict(turn)
        kept: list[dict[str, Any]] | None = None
        from_parent = False
        if not turn["text"]:
            kept = []
        elif words_match_text(turn):  # the browser keeps words as they were; their marks come from the parent
            kept = [dict(parent_words.get(_key(w), w)) for w in turn["words"]]
        elif (before := unchanged.get((normalise_text(turn["text"]), round(turn["start"], 3), round(turn["end"], 3)))) is not None:
            kept, from_parent = [dict(w) for w in before], True
        if kept is not None and not (align_now and _pending(kept)):
            turn["words"] = kept
            timing.reused += from_parent
        elif not align_now:
            turn["words"] = marked(spread(turn["text"], turn["start"], turn["end"]), _overlapping_words(turn, parent),
                                   spread_times=True)
            timing.deferred += 1
        else:
            reference = _overlapping_words(turn, parent)
            try:
                turn["words"] = marked(align(turn["start"], turn["end"], turn["text"]), reference, spread_times=False)
                timing.aligned += 1
            except AlignmentFailed as exc:
                turn["words"] = marked(spread(turn["text"], turn["start"], turn["end"]), reference, spread_times=True)
                timing.spread += 1
                timing.problems.append(f"{turn['start']:.2f}-{turn['end']:.2f} s: {exc}")
        out.append(turn)
    return out
