"""One WER accumulator: counts add up over recordings and items (a corpus WER, not a mean of WERs)."""

from __future__ import annotations

import pytest

from asr.evaluation import Score, WordCounts, score_recording
from review_ui import comparison
from store.turns import Turn


def test_scores_add_word_counts_across_recordings() -> None:
    first = score_recording([Turn("A", 0.0, 2.0, "a x c")], [Turn("A", 0.0, 2.0, "a b c d")], "r1")
    second = score_recording([Turn("A", 0.0, 2.0, "e f g h")], [Turn("A", 0.0, 2.0, "E, f.")], "r2")
    assert first.words == WordCounts(hits=2, substitutions=1, deletions=1) and first.summary()["wer"] == 0.5
    assert second.words == WordCounts(hits=2, insertions=2) and second.summary()["wer"] == 1.0
    total = Score()
    total.add(first)
    total.add(second)
    assert total.summary()["wer"] == pytest.approx(4 / 6) and total.summary()["reference_words"] == 6 and total.files == 2


def test_a_reference_without_text_scores_no_words() -> None:
    score = score_recording([Turn("A", 0.0, 1.0, "hello")], [Turn("A", 0.0, 1.0, "")], "r")
    assert score.words == WordCounts() and score.summary()["wer"] is None and score.summary()["der"] == 0.0


def test_comparisons_add_up_to_corpus_figures() -> None:
    def one(hypothesis: str, reference: str, speaker: str) -> comparison.Comparison:
        turn = {"start": 0.0, "end": 1.0, "words": []}
        return comparison.compare([{**turn, "speaker": "A", "text": reference}], [{**turn, "speaker": speaker, "text": hypothesis}],
                                  0.0, 2.0, frame_s=0.5)

    summed = comparison.total([one("a x c", "a b c d", "A"), one("e f g h", "e f", "B")])
    assert summed.items == 2 and summed.wer == pytest.approx(4 / 6)
    assert (summed.speaker_frames_wrong, summed.speaker_frames) == (0, 4), "B is renamed onto A in its own item"
    assert summed.boundary_s == 0.0 and summed.figures()["items"] == 2
    assert comparison.total([]) == comparison.Comparison.nothing() and comparison.total([]).wer is None
