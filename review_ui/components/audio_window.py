"""Read only the part of a working copy that is in view: a one-hour file is never loaded whole.

The working copy is 16 kHz mono PCM WAV, so soundfile can seek straight to a frame; the
player gets a short WAV of the selected turn and a few seconds around it, and the
waveform gets a min/max envelope of the visible window only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from collection.decoding import wav_bytes

MAX_VIEW_S = 300.0  # the widest window drawn at once (about 10 MB of samples)


@dataclass(frozen=True)
class Envelope:
    """Per-column minimum and maximum of the samples between `start_s` and `end_s`."""

    start_s: float
    end_s: float
    mins: np.ndarray
    maxs: np.ndarray


def read_window(path: Path, start_s: float, end_s: float) -> tuple[np.ndarray, int]:
    """Samples of [start_s, end_s) clamped to the file, read by seeking (never the whole file)."""
    with sf.SoundFile(path) as handle:
        rate = handle.samplerate
        first = min(max(0, int(start_s * rate)), handle.frames)
        last = min(max(first, int(math.ceil(end_s * rate))), handle.frames)
        handle.seek(first)
        samples = handle.read(last - first, dtype="float32", always_2d=False)
    return (samples.mean(axis=1) if samples.ndim == 2 else samples), rate


def clip_wav(path: Path, start_s: float, end_s: float) -> bytes:
    """A short WAV of one stretch, for the player."""
    samples, rate = read_window(path, start_s, end_s)
    return wav_bytes(samples, rate)


def envelope(path: Path, start_s: float, end_s: float, columns: int = 2000) -> Envelope:
    """Min/max per column over the window (at most MAX_VIEW_S long), for drawing."""
    if end_s - start_s > MAX_VIEW_S:
        raise ValueError(f"a view of {end_s - start_s:.0f} s is wider than the {MAX_VIEW_S:.0f} s the editor draws at once")
    samples, rate = read_window(path, start_s, end_s)
    covered_end = start_s + samples.size / rate  # shorter than asked at the end of the file
    if samples.size == 0:
        return Envelope(start_s, covered_end, np.zeros(0, np.float32), np.zeros(0, np.float32))
    edges = np.linspace(0, samples.size, max(1, min(columns, samples.size)) + 1).astype(int)[:-1]
    return Envelope(start_s, covered_end, np.minimum.reduceat(samples, edges), np.maximum.reduceat(samples, edges))
