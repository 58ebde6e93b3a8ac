"""From words and speaker segments to dialogue turns (the one turn shape, ARCHITECTURE.md).

Each word goes to the speaker whose exclusive segment overlaps it most (the nearest one
if none does), and into that speaker's diarized run of speech: a turn is one run of one
speaker's speech and the words said in it. A turn's bounds are the diarizer's, measured
speech activity on a 10 ms grid, never Whisper's word times: those start 0.4-0.9 s early
and end late, and a turn stretched to cover them held the other speaker's audio (in the
RTTM, the Kaldi segments, the Lhotse supervisions and the editor). Words are snapped into
their turn instead. Speech the diarizer found but Whisper did not transcribe (typically a
backchannel under the other speaker) stays a turn with empty text, so overlapping speech
stays visible to the reviewer as overlapping turns.
"""

from __future__ import annotations

import bisect
from typing import Any

from diarization.types import SpeakerSegment
from store.turns import Turn, TurnJson, Word


def assign_speaker(word: dict[str, Any], exclusive: list[SpeakerSegment], starts: list[float] | None = None) -> str | None:
    """The speaker of the exclusive segment overlapping `word` most, else the nearest one.

    `exclusive` is sorted and non-overlapping, so only the segments around the word's
    position are looked at (`starts` is their start times, for bisection).
    """
    if not exclusive:
        return None
    starts = starts if starts is not None else [s.start for s in exclusive]
    i = bisect.bisect_right(starts, word["end"])
    window = exclusive[max(0, i - 4) : i + 1]
    best, best_overlap, nearest, nearest_gap = None, 0.0, None, float("inf")
    for seg in window:
        overlap = min(word["end"], seg.end) - max(word["start"], seg.start)
        if overlap > best_overlap:
            best, best_overlap = seg.speaker, overlap
        gap = max(seg.start - word["end"], word["start"] - seg.end, 0.0)
        if gap < nearest_gap:
            nearest, nearest_gap = seg.speaker, gap
    return best or nearest


def _nearest_turn(word: dict[str, Any], turns: list[TurnJson]) -> TurnJson:
    def closeness(turn: TurnJson) -> tuple[float, float]:
        overlap = min(word["end"], turn["end"]) - max(word["start"], turn["start"])
        gap = max(turn["start"] - word["end"], word["start"] - turn["end"], 0.0)
        return (-overlap, gap)

    return min(turns, key=closeness)


def snap_word(word: dict[str, Any], start: float, end: float) -> dict[str, Any]:
    """`word` with its bounds clipped into [start, end] (a word wholly outside becomes an instant at the nearer edge)."""
    a = min(max(word["start"], start), end)
    b = min(max(word["end"], a), end)
    return {**word, "start": round(a, 3), "end": round(b, 3)}


def build_turns(words: list[dict[str, Any]], segments: list[SpeakerSegment], exclusive: list[SpeakerSegment],
                min_untranscribed: float = 0.3) -> list[TurnJson]:
    """Turns in the one JSON form (each checked as a `store.turns.Turn`), sorted by start (overlaps allowed).

    A turn is one diarized segment, with the segment's bounds; its words are those the
    exclusive view gives to its speaker and that fall closest to it, snapped into it.
    Words only make a turn of their own where the diarizer found no speaker at all.
    """
    turns: list[TurnJson] = [
        {"speaker": seg.speaker, "start": round(seg.start, 3), "end": round(seg.end, 3), "words": []}
        for seg in sorted(segments, key=lambda s: (s.start, s.speaker))
    ]
    by_speaker: dict[str, list[TurnJson]] = {}
    for turn in turns:
        by_speaker.setdefault(turn["speaker"], []).append(turn)
    exclusive = sorted(exclusive, key=lambda s: s.start)
    starts = [s.start for s in exclusive]
    unmeasured: list[TurnJson] = []
    for word in sorted(words, key=lambda w: w["start"]):
        speaker = assign_speaker(word, exclusive, starts)
        if speaker is None or speaker not in by_speaker:  # no measured speech to snap to: the words' own span
            turn = unmeasured[-1] if unmeasured and unmeasured[-1]["speaker"] == (speaker or "SPEAKER_00") else None
            if turn is None:
                turn = {"speaker": speaker or "SPEAKER_00", "start": word["start"], "end": word["end"], "words": []}
                unmeasured.append(turn)
            turn["end"] = max(turn["end"], word["end"])
            turn["words"].append(word)
            continue
        candidates = by_speaker[speaker]
        i = bisect.bisect_right([t["start"] for t in candidates], word["end"])
        turn = _nearest_turn(word, candidates[max(0, i - 3) : i + 2])
        turn["words"].append(snap_word(word, turn["start"], turn["end"]))
    out = []
    for turn in sorted(turns + unmeasured, key=lambda t: (t["start"], t["speaker"])):
        if not turn["words"] and turn["end"] - turn["start"] < min_untranscribed:
            continue
        words = tuple(Word.from_json(w) for w in turn["words"])
        out.append(Turn(turn["speaker"], turn["start"], turn["end"], " ".join(w.text for w in words), words).to_json())
    return out
