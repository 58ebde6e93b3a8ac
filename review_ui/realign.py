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
aligned as a whole on its next save), even when the browser sends it without them, and spread words the
browser sends back give way to aligned ones the revision holds for the same text and bounds (aligned in the
background meanwhile: `review_ui.draft_alignment`). Alignments are remembered per process by what was
aligned (audio, model, bounds, text), so a submission after the background worker has aligned a
turn does not align it again. When alignment cannot run (a turn longer than one
Whisper window or too short for its words, no model, unreadable audio) the words are
spread evenly over the turn and marked `spread`; a save never fails for this and never
loses text.
"""

from __future__ import annotations

import difflib
import functools
import logging
import threading
from collections import OrderedDict
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


@functools.lru_cache(maxsize=4)
def _loaded(path: Path, name: str, background: bool = False) -> WordAligner:
    """One loaded model per directory (and per foreground / background use) for the whole process (a model load
    costs seconds; alignment a fraction). The background worker's own copy runs on one thread, and is loaded by
    that low-priority thread so the model's compute threads inherit its priority."""
    return WordAligner(ModelDirectory(name, path), cpu_threads=1 if background else 2)


AlignmentKey = tuple[str, str, float, float, str]  # (working copy sha256, model path, start, end, text)
_REMEMBERED = 4096  # alignments kept per process (a few KB each)
_alignments: OrderedDict[AlignmentKey, list[AlignedWord] | str] = OrderedDict()
_alignments_lock = threading.Lock()


def remembered_alignment(key: AlignmentKey) -> list[AlignedWord] | str | None:
    """The words (or the AlignmentFailed message) this process already found for `key`, else None."""
    with _alignments_lock:
        found = _alignments.get(key)
        if found is not None:
            _alignments.move_to_end(key)
        return found


def remember_alignment(key: AlignmentKey, result: list[AlignedWord] | str) -> None:
    with _alignments_lock:
        _alignments[key] = result
        _alignments.move_to_end(key)
        while len(_alignments) > _REMEMBERED:
            _alignments.popitem(last=False)


def align_remembered(aligner: WordAligner, working: Path, sha256: str, start: float, end: float,
                     text: str) -> list[AlignedWord]:
    """`align_turn`, once per (audio, model, bounds, text) per process; raises AlignmentFailed as it did."""
    key = (sha256, str(aligner.model_dir.path), round(start, 3), round(end, 3), normalise_text(text))
    found = remembered_alignment(key)
    if found is None:
        try:
            found = align_turn(aligner, working, start, end, text)
        except AlignmentFailed as exc:
            found = str(exc)
        except (OSError, RuntimeError) as exc:  # unreadable audio: not remembered (it may come back)
            raise AlignmentFailed(str(exc)) from exc
        remember_alignment(key, found)
    if isinstance(found, str):
        raise AlignmentFailed(found)
    return found


@dataclass(frozen=True)
class Realigner:
    """Where a save finds a recording's audio and the Whisper models (the Turnscribe home's blobs and models)."""

    blobs: BlobStore
    models_dir: Path
    background: bool = False  # the background worker's own low-priority model copy (`_loaded`)

    @classmethod
    def of(cls, store: Store, *, background: bool = False) -> Realigner:
        return cls(store.blobs, store.settings.models_dir, background)

    def model_for(self, session: Session, recording: models.Recording) -> WordAligner:
        """The Whisper model of the recording's pre-annotation (its stored path, else its name), else the default."""
        model = model_revision(session, recording.pk)
        asr = ((model.author_params or {}).get("asr") or {}) if model is not None else {}
        path = Path(asr["model_path"]) if isinstance(asr.get("model_path"), str) else None
        if path is not None:
            try:
                check_model_dir(path)
                return _loaded(path, str(asr.get("model") or path.name), self.background)
            except ModelUnavailable:
                log.warning("the pre-annotation's model %s is not there any more; resolving %r", path, asr.get("model"))
        directory = resolve_model(str(asr.get("model") or DEFAULT_MODEL), self.models_dir)
        return _loaded(directory.path, directory.name, self.background)

    def retime(self, session: Session, recording: models.Recording, parent: Sequence[TurnJson],
               turns: list[TurnJson], *, align_now: bool = True) -> tuple[list[TurnJson], WordTiming]:
        """`turns` with word timings for every turn with text (see the module); `parent` is the revision edited;
        `align_now` False (a draft) spreads changed turns' words instead of aligning them."""
        timing = WordTiming()
        state: dict[str, Any] = {}

        def align(start: float, end: float, text: str) -> list[AlignedWord]:
            if "aligner" not in state:
                state["aligner"] = self.aligner_for(session, recording, timing)
            return state["aligner"](start, end, text)

        return retime_turns(turns, parent, align, timing, align_now=align_now), timing

    def aligner_for(self, session: Session, recording: models.Recording, timing: WordTiming) -> Aligner:
        """An `Aligner` for the recording's turns (its model loaded now; `timing` notes the model or why none)."""
        try:
            model = self.model_for(session, recording)
            timing.model = model.model_dir.name
        except ModelUnavailable as exc:
            timing.problems.append(str(exc))
            model = None
        sha256 = recording.working_sha256

        def align(start: float, end: float, text: str) -> list[AlignedWord]:
            if model is None or sha256 is None:
                raise AlignmentFailed("no Whisper model or no working copy to align with")
            return align_remembered(model, self.blobs.path_for(sha256), sha256, start, end, text)

        return align


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


def pending(words: list[dict[str, Any]]) -> bool:
    """Words a draft spread over their turn (or an alignment that could not run): the submission aligns them."""
    return bool(words) and all(w.get("spread") for w in words)


def spread_as_sent(turn: TurnJson) -> bool:
    """Whether the turn's words are exactly `spread`'s times for its text (the browser drops the `spread` mark)."""
    laid = spread(turn["text"], turn["start"], turn["end"])
    words = turn.get("words") or []
    return len(words) == len(laid) and all(round(float(w["start"]), 3) == s.start and round(float(w["end"]), 3) == s.end
                                           for w, s in zip(words, laid))


def _turn_key(turn: TurnJson) -> tuple[str, float, float]:
    return (normalise_text(turn["text"]), round(turn["start"], 3), round(turn["end"], 3))


def _aligned_in(unchanged: dict[tuple[str, float, float], list[dict[str, Any]]], turn: TurnJson) -> bool:
    """Whether the parent holds this turn (text and bounds) with words that are not spread."""
    before = unchanged.get(_turn_key(turn))
    return bool(before) and not pending(before)  # type: ignore[arg-type]


def retime_turns(turns: list[TurnJson], parent: Sequence[TurnJson], align: Aligner,
                 timing: WordTiming | None = None, *, align_now: bool = True) -> list[TurnJson]:
    """Each changed turn with words that spell its text, aligned (spread in a draft: `align_now` False);
    unchanged ones as they were, unless their words are still spread and `align_now` (see the module)."""
    timing = timing if timing is not None else WordTiming()
    parent_words = {_key(w): w for t in parent for w in t.get("words") or []}
    unchanged = {_turn_key(t): t.get("words") or [] for t in parent}
    out = []
    for turn in turns:
        turn = dict(turn)
        kept: list[dict[str, Any]] | None = None
        from_parent = False
        if not turn["text"]:
            kept = []
        elif words_match_text(turn) and not (spread_as_sent(turn) and _aligned_in(unchanged, turn)):
            kept = [dict(parent_words.get(_key(w), w)) for w in turn["words"]]  # their marks come from the parent
        elif (before := unchanged.get(_turn_key(turn))) is not None:
            kept, from_parent = [dict(w) for w in before], True
        if kept is not None and not (align_now and pending(kept)):
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
