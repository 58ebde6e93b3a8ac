"""What every diarization backend returns, and the hook it reports progress through."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from store.rttm_stm_ctm import rttm_line

SAMPLE_RATE = 16000
ProgressHook = Callable[[str, float], None]
"""Called as hook(step_name, fraction_done in [0, 1]); the CLI and the UI pass their own."""


@dataclass(frozen=True)
class SpeakerSegment:
    """A stretch of one speaker's speech, in seconds from the start of the recording."""

    start: float
    end: float
    speaker: str


@dataclass
class DiarizationResult:
    """Speaker segments (overlap kept) plus an exclusive view (one speaker at a time) for word assignment.

    `params` echoes the backend, model names and versions, device and every option used,
    so a stored pre-annotation says exactly how it was made.
    """

    segments: list[SpeakerSegment]
    exclusive: list[SpeakerSegment]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def speakers(self) -> list[str]:
        return sorted({s.speaker for s in self.segments})

    def to_rttm(self, uri: str) -> str:
        """RTTM lines (10 fields, channel 1), by start time."""
        return "".join(rttm_line(uri, s.start, s.end, s.speaker) for s in sorted(self.segments, key=lambda s: (s.start, s.speaker)))


class Diarizer(Protocol):
    """A loaded backend; calling it on one recording's audio is free of global state."""

    name: str

    def __call__(
        self,
        audio: np.ndarray,
        *,
        num_speakers: int | None = None,
        min_speakers: int | None = None,
        max_speakers: int | None = None,
        hook: ProgressHook | None = None,
    ) -> DiarizationResult:
        """Diarize 16 kHz mono float32 audio; `num_speakers` fixes the count when known."""
        ...


def exclusive_from(segments: list[SpeakerSegment]) -> list[SpeakerSegment]:
    """Resolve overlaps so exactly one speaker holds each instant: where two overlap, the
    one whose segment started later (the interrupter) takes the overlapped span, matching
    how dialogue transcripts attribute overlapped words."""
    ordered = sorted(segments, key=lambda s: s.start)
    events = sorted({t for s in ordered for t in (s.start, s.end)})
    out: list[SpeakerSegment] = []
    active: list[SpeakerSegment] = []
    k = 0
    for left, right in zip(events, events[1:]):
        while k < len(ordered) and ordered[k].start <= left:
            active.append(ordered[k])
            k += 1
        active = [s for s in active if s.end > left]
        covering = [s for s in active if s.end >= right]
        if not covering:
            continue
        speaker = max(covering, key=lambda s: s.start).speaker
        if out and out[-1].speaker == speaker and abs(out[-1].end - left) < 1e-9:
            out[-1] = SpeakerSegment(out[-1].start, right, speaker)
        else:
            out.append(SpeakerSegment(left, right, speaker))
    return out
