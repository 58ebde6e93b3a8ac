"""Words to turns: speaker by overlap, runs of one speaker, overlap kept as overlapping turns."""

from __future__ import annotations

from asr.turns import build_turns
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


def test_turn_boundaries_come_from_the_diarizer_and_stretch_to_cover_words() -> None:
    seg = [SpeakerSegment(1.0, 2.0, "A"), SpeakerSegment(4.0, 5.0, "A")]
    turns = build_turns([w("one", 0.9, 1.2), w("two", 1.5, 2.2), w("three", 4.1, 4.5)], seg, seg)
    assert [(t["start"], t["end"], t["text"]) for t in turns] == [(0.9, 2.2, "one two"), (4.0, 5.0, "three")]
    assert build_turns([w("alone", 0.0, 0.4)], [], [])[0]["speaker"] == "SPEAKER_00"


def test_rttm_and_stm_lines() -> None:
    turns = turns_from_json([{"speaker": "A", "start": 0.5, "end": 1.25, "text": "hi there", "words": []},
                             {"speaker": "B", "start": 1.0, "end": 1.4, "text": "", "words": []}])
    assert turns_to_rttm(turns, "f").splitlines() == [
        "SPEAKER f 1 0.500 0.750 <NA> <NA> A <NA> <NA>", "SPEAKER f 1 1.000 0.400 <NA> <NA> B <NA> <NA>"]
    assert turns_to_stm(turns, "f") == "f 1 A 0.500 1.250 hi there\n"
