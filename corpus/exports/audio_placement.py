"""Placing a recording's audio in an export: linked, copied, or cut per turn; PII silenced in copies only.

The source is always the stored 16 kHz mono working copy (read-only, content-addressed):
links point at it, copies and cuts are new files, and redaction writes a redacted copy
even in link mode, so no export ever exposes a redacted span and no original changes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.turns import Turn

from corpus.exports.base import AUDIO_MODES


def audio_dir(out: Path, split: str) -> Path:
    return out / "audio" / split


def _write(path: Path, samples: np.ndarray, rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, subtype="PCM_16")
    return path


def _silenced(source: Path, intervals: list[tuple[float, float]], pii_audio: str) -> tuple[np.ndarray, int]:
    from corpus.governance.pii import silence_spans

    samples, rate = sf.read(source, dtype="float32")
    return silence_spans(samples, rate, intervals, pii_audio), rate


def place_whole(source: Path, out: Path, split: str, key: str, mode: str,
                redact: list[tuple[float, float]] | None = None, pii_audio: str = "silence") -> Path:
    """The recording's WAV in the output: a symlink to the blob ("link") or a copy ("include")."""
    if mode not in AUDIO_MODES or mode == "cut":
        raise ValueError(f"not a whole-recording audio mode: {mode!r}")
    target = audio_dir(out, split) / f"{key}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    if redact:
        samples, rate = _silenced(source, redact, pii_audio)
        return _write(target, samples, rate)
    if mode == "link":
        os.symlink(source.resolve(), target)
    else:
        shutil.copyfile(source, target)
        os.chmod(target, 0o644)
    return target


def place_cuts(source: Path, out: Path, split: str, key: str, turns: list[Turn],
               redact: list[tuple[float, float]] | None = None, pii_audio: str = "silence") -> list[Path | None]:
    """One WAV per turn (`<key>/<key>_<index>.wav`), reading only that turn's frames unless redacting."""
    folder = audio_dir(out, split) / key
    whole: tuple[np.ndarray, int] | None = _silenced(source, redact, pii_audio) if redact else None
    info = sf.info(source)
    paths: list[Path | None] = []
    for i, turn in enumerate(turns):
        start = max(0, int(round(turn["start"] * info.samplerate)))
        stop = min(info.frames, int(round(turn["end"] * info.samplerate)))
        if stop <= start:
            paths.append(None)
            continue
        if whole is not None:
            samples = whole[0][start:stop]
        else:
            samples, _ = sf.read(source, start=start, stop=stop, dtype="float32")
        paths.append(_write(folder / f"{key}_{i:04d}.wav", samples, info.samplerate))
    return paths
