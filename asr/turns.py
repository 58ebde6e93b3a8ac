"""From words and speaker segments to dialogue turns (the one turn shape, ARCHITECTURE.md).

Each word goes to the speaker whose exclusive segment overlaps it most (the nearest one
if none does); a turn is a run of one speaker's words, split at pauses longer than
`max_pause`. Speech the diarizer found but Whisper did not transcribe (typically a
backchannel under the other speaker) is kept as a turn with empty text, so overlapping
speech stays visible to the reviewer as overlapping turns.
"""

from __future__ import annotations

import bisect
from typing import Any

from diarization.types import SpeakerSegment

Turn = dict[str, Any]


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


def build_turns(words: list[dict[str, Any]], segments: list[SpeakerSegment], exclusive: list[SpeakerSegment],
                max_pause: float = 1.5, min_untranscribed: float = 0.3) -> list[Turn]:
    """Turns `{speaker, start, end, text, words}` sorted by start (overlaps allowed)."""
    turns: list[Turn] = []
    exclusive = sorted(exclusive, key=lambda s: s.start)
    starts = [s.start for s in exclusive]
    for word in sorted(words, key=lambda w: w["start"]):
        speaker = assign_speaker(word, exclusive, starts) or "SPEAKER_00"
        last = turns[-1] if turns else None
        if last is not None and last["speaker"] == speaker and word["start"] - last["end"] <= max_pause:
            last["words"].append(word)
            last["end"] = max(last["end"], word["end"])
        else:
            turns.append({"speaker": speaker, "start": word["start"], "end": word["end"], "words": [word]})
    for seg in segments:
        if seg.end - seg.start < min_untranscribed:
            continue
        covered = any(t["speaker"] == seg.speaker and t["start"] < seg.end and seg.start < t["end"] for t in turns)
        if not covered:
            turns.append({"speaker": seg.speaker, "start": round(seg.start, 3), "end": round(seg.end, 3), "words": []})
    for turn in turns:
        turn["text"] = " ".join(w["text"] for w in turn["words"]).strip()
    return [{k: t[k] for k in ("speaker", "start", "end", "text", "words")} for t in sorted(turns, key=lambda t: (t["start"], t["speaker"]))]
