"""Words to turns: speaker by overlap, runs of one speaker, overlap kept as overlapping turns."""

from __future__ import annotations

import numpy as np

from asr.turns import build_turns
from diarization.embedded import FRAME_S, _merge_pieces, _second_voices
from diarization.types import SpeakerSegment, exclusive_from
from store.rttm_stm_ctm import turns_to_rttm, turns_to_stm
from store.turns import turns_from_json


def w(text: str, start: float, end: float) -> dict:
    return {"text": text, "start": start, "end": end, "probability": 0.9}


SEGMENTS = [SpeakerSegment(0.0, 3.0, "A"), SpeakerSegment(2.5, 2.9, "B"), SpeakerSegment(3.2, 6.0, "B")]


def test_exclusive_view_gives_overlap_to_the_interrupter() -> None:
    assert exclusive_from(SEGMENTS) == [
        SpeakerSegment(0.0, 2.5, "A"), SpeakerSegment(2.5, 2.9, "B"), SpeakerSegment(2.9, 3.0, "A"),
        SpeakerSegment(3.2, 6.0, "B"),
    ]


def test_turns_from_words_and_an_untranscribed_backchannel() -> None:
    words = [w("hello", 0.1, 0.5), w("there", 0.6, 1.0), w("friend", 1.1, 2.0), w("hi", 3.3, 3.6), w("you", 3.7, 4.0)]
    turns = build_turns(words, SEGMENTS, exclusive_from(SEGMENTS))
    assert [(t["speaker"], t["text"]) for t in turns] == [("A", "hello there friend"), ("B", ""), ("B", "hi you")]
    backchannel = turns[1]
    assert (backchannel["start"], backchannel["end"]) == (2.5, 2.9) and backchannel["start"] < turns[0]["end"] + 1
    assert turns[0]["words"][0] == words[0] and set(turns[0]) == {"speaker", "start", "end", "text", "words"}


def test_turn_bounds_are_the_measured_speech_and_words_are_snapped_into_them() -> None:
    """Whisper's word times run early and late; the turn keeps the diarizer's bounds and the words move in."""
    seg = [SpeakerSegment(1.0, 2.0, "A"), SpeakerSegment(4.0, 5.0, "A")]
    turns = build_turns([w("one", 0.5, 1.2), w("two", 1.5, 2.4), w("three", 4.1, 4.5)], seg, seg)
    assert [(t["start"], t["end"], t["text"]) for t in turns] == [(1.0, 2.0, "one two"), (4.0, 5.0, "three")]
    assert [(x["start"], x["end"]) for x in turns[0]["words"]] == [(1.0, 1.2), (1.5, 2.0)]
    assert turns[1]["words"][0] == w("three", 4.1, 4.5), "a word inside its turn is left as it is"
    outside = build_turns([w("early", 0.6, 0.9)], seg, seg)[0]
    assert (outside["start"], outside["end"], outside["words"][0]["start"], outside["words"][0]["end"]) == (1.0, 2.0, 1.0, 1.0)


def test_words_without_any_measured_speech_make_their_own_turn() -> None:
    turns = build_turns([w("alone", 0.0, 0.4), w("again", 0.5, 0.9)], [], [])
    assert [(t["speaker"], t["start"], t["end"], t["text"]) for t in turns] == [("SPEAKER_00", 0.0, 0.9, "alone again")]


def test_an_overlapped_backchannel_becomes_its_own_overlapping_turn() -> None:
    """The embedded diarizer's segmentation of a second voice found inside another's speech (step 5b)."""
    labels = np.full(600, -1)
    labels[100:500] = 0  # A speaks 1.0-5.0 s
    overlapped = np.zeros(600, bool)
    overlapped[250:290] = True  # B says "yeah" under A, 2.5-2.9 s
    segments = [SpeakerSegment(a * FRAME_S, b * FRAME_S, f"SPEAKER_{j:02d}")
                for a, b, j in _merge_pieces([(100, 500, 0), *_second_voices(labels, overlapped, None, 2)])]
    assert segments == [SpeakerSegment(1.0, 5.0, "SPEAKER_00"), SpeakerSegment(2.5, 2.9, "SPEAKER_01")]
    words = [w("so", 1.1, 1.4), w("we", 2.0, 2.3), w("yeah", 2.55, 2.85), w("went", 3.0, 3.4), w("home", 4.2, 4.8)]
    host_view = exclusive_from(segments[:1])  # the embedded diarizer's exclusive view: the dominant voice
    turns = build_turns(words, segments, host_view)
    assert [(t["speaker"], t["start"], t["end"], t["text"]) for t in turns] == [
        ("SPEAKER_00", 1.0, 5.0, "so we yeah went home"), ("SPEAKER_01", 2.5, 2.9, "")]
    turns = build_turns(words, segments, exclusive_from(segments))  # a view that gives overlap to the interrupter
    assert [(t["speaker"], t["start"], t["end"], t["text"]) for t in turns] == [
        ("SPEAKER_00", 1.0, 5.0, "so we went home"), ("SPEAKER_01", 2.5, 2.9, "yeah")]
    three = _second_voices(labels, overlapped, np.tile([0.9, 0.1, 0.5], (600, 1)), 3)
    assert three == [(250, 290, 2)], "with three voices the second is the best-scoring other one"


def test_rttm_and_stm_lines() -> None:
    turns = turns_from_json([{"speaker": "A", "start": 0.5, "end": 1.25, "text": "hi there", "words": []},
                             {"speaker": "B", "start": 1.0, "end": 1.4, "text": "", "words": []}])
    assert turns_to_rttm(turns, "f").splitlines() == [
        "SPEAKER f 1 0.500 0.750 <NA> <NA> A <NA> <NA>", "SPEAKER f 1 1.000 0.400 <NA> <NA> B <NA> <NA>"]
    assert turns_to_stm(turns, "f") == "f 1 A 0.500 1.250 hi there\n"
