"""Word alignment of a known text with tiny.en, measured against the synthetic dialogues' true word times.

The true times come from espeak-ng's own word events (collection/synthetic/word_times.py),
not from any model. `WHISPER_LAG_S` was measured on dlg001, dlg003 and dlg005; the bound
test uses dlg004, which took no part in that.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from asr.alignment import MAX_SPAN_S, AlignmentFailed, WordAligner, align_turn, read_span, spread
from asr.models import resolve_model
from collection.synthetic import DIALOGUES_DIR


@pytest.fixture(scope="module")
def aligner(tmp_path_factory: pytest.TempPathFactory) -> WordAligner:
    return WordAligner(resolve_model("tiny.en", tmp_path_factory.mktemp("models")), device="cpu")


def _errors(words, truth) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for word, true in zip(words, truth, strict=True):
        assert word.text == true["text"]
        out += [abs(word.start - true["start"]), abs(word.end - true["end"])]
    return out


def test_aligned_boundaries_beat_spreading_the_words_over_the_turn(aligner: WordAligner) -> None:
    """The bound comes from the data: the boundary error of the best spread (shares by length, which on
    evenly paced synthetic speech is a strong guess) on the same turns; alignment must cut it by a third
    and stay under a quarter of the median true word length."""
    truth = json.loads((DIALOGUES_DIR / "dlg004.turns.json").read_text())
    path = DIALOGUES_DIR / "dlg004.flac"
    aligned, spread_out, lengths = [], [], []
    for turn in truth:
        words = align_turn(aligner, path, turn["start"], turn["end"], turn["text"])
        assert words[0].start == turn["start"] and words[-1].end == turn["end"], "fitted to the turn's bounds"
        assert all(a.end <= b.start + 1e-9 for a, b in zip(words, words[1:])), "in order, not overlapping"
        aligned += _errors(words, turn["words"])
        spread_out += _errors(spread(turn["text"], turn["start"], turn["end"]), turn["words"])
        lengths += [w["end"] - w["start"] for w in turn["words"]]
    after, spread_median, word_median = statistics.median(aligned), statistics.median(spread_out), statistics.median(lengths)
    assert after < (2 / 3) * spread_median, (after, spread_median)
    assert after < word_median / 4, (after, word_median)


def test_what_cannot_be_aligned_says_why(aligner: WordAligner) -> None:
    audio = read_span(DIALOGUES_DIR / "dlg001.flac", 1.0, 1.06)
    with pytest.raises(AlignmentFailed, match="no text"):
        aligner.align(audio, "   ")
    with pytest.raises(AlignmentFailed, match="too short for 9 word"):
        aligner.align(audio, "a whole sentence typed into a tiny stretch here")
    with pytest.raises(AlignmentFailed, match="longer than one Whisper window"):
        align_turn(aligner, DIALOGUES_DIR / "dlg001.flac", 0.0, MAX_SPAN_S + 1, "hello")


def test_spread_lays_words_end_to_end_over_the_turn_by_length() -> None:
    words = spread("a bb cccc", 1.0, 2.0)
    assert [w.text for w in words] == ["a", "bb", "cccc"]
    assert words[0].start == 1.0 and words[-1].end == 2.0
    assert [round(w.end - w.start, 3) for w in words] == [0.2, 0.3, 0.5]
    assert all(w.probability == 0.0 for w in words)


def test_read_span_seeks_to_the_turn(tmp_path: Path) -> None:
    audio = read_span(DIALOGUES_DIR / "dlg001.flac", 2.0, 2.5)
    assert len(audio) == 8000
