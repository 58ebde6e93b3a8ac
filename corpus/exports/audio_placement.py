"""Placing a recording's audio in an export: linked, copied, or cut per turn; PII silenced in copies only.

The source is always the stored 16 kHz mono working copy (read-only, content-addressed):
links point at it, copies and cuts are new files, and redaction writes a redacted copy
even in link mode, so no export ever exposes a redacted span and no original changes.
Every placement hashes the bytes it reads (a copy as it copies) and refuses a blob
whose SHA-256 is not the released one: a pull never exports audio other than the
audio released, even when the blob changed on disk after `corpus verify` last ran.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from store.turns import Turn

from corpus.exports.base import AUDIO_MODES


CHUNK = 1 << 20


class AudioMismatch(ValueError):
    """The stored audio no longer hashes to what the release lists."""


def _require(digest: str, expected: str, source: Path) -> None:
    if digest != expected:
        raise AudioMismatch(f"audio blob {source.name[:12]}… hashes to {digest[:12]}…, not the released "
                            f"{expected[:12]}…: the stored working copy changed; run `turnscribe corpus verify`")


def _verified(source: Path, expected: str) -> None:
    """Hash the blob (streamed) and refuse a mismatch."""
    digest = hashlib.sha256()
    with open(source, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    _require(digest.hexdigest(), expected, source)


def _verified_bytes(source: Path, expected: str) -> io.BytesIO:
    """The blob's bytes once, checked (redaction decodes the whole recording anyway)."""
    data = source.read_bytes()
    _require(hashlib.sha256(data).hexdigest(), expected, source)
    return io.BytesIO(data)


def _copy_verified(source: Path, target: Path, expected: str) -> None:
    """Copy and hash in one pass; a mismatching copy is removed before the refusal."""
    digest = hashlib.sha256()
    with open(source, "rb") as src, open(target, "wb") as dst:
        for block in iter(lambda: src.read(CHUNK), b""):
            digest.update(block)
            dst.write(block)
    try:
        _require(digest.hexdigest(), expected, source)
    except AudioMismatch:
        target.unlink()
        raise
    os.chmod(target, 0o644)


def audio_dir(out: Path, split: str) -> Path:
    return out / "audio" / split


def _write(path: Path, samples: np.ndarray, rate: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, samples, rate, subtype="PCM_16")
    return path


def _silenced(source: Path, expected: str, intervals: list[tuple[float, float]], pii_audio: str) -> tuple[np.ndarray, int]:
    from corpus.governance.pii import silence_spans

    samples, rate = sf.read(_verified_bytes(source, expected), dtype="float32")
    return silence_spans(samples, rate, intervals, pii_audio), rate


def place_whole(source: Path, expected_sha256: str, out: Path, split: str, key: str, mode: str,
                redact: list[tuple[float, float]] | None = None, pii_audio: str = "silence") -> Path:
    """The recording's WAV in the output: a symlink to the blob ("link") or a copy ("include"), its hash checked."""
    if mode not in AUDIO_MODES or mode == "cut":
        raise ValueError(f"not a whole-recording audio mode: {mode!r}")
    target = audio_dir(out, split) / f"{key}.wav"
    target.parent.mkdir(parents=True, exist_ok=True)
    if redact:
        samples, rate = _silenced(source, expected_sha256, redact, pii_audio)
        return _write(target, samples, rate)
    if mode == "link":
        _verified(source, expected_sha256)
        os.symlink(source.resolve(), target)
    else:
        _copy_verified(source, target, expected_sha256)
    return target


def place_cuts(source: Path, expected_sha256: str, out: Path, split: str, key: str, turns: list[Turn],
               redact: list[tuple[float, float]] | None = None, pii_audio: str = "silence") -> list[Path | None]:
    """One WAV per turn (`<key>/<key>_<index>.wav`), the blob hashed first, then only each turn's frames read."""
    folder = audio_dir(out, split) / key
    whole: tuple[np.ndarray, int] | None = _silenced(source, expected_sha256, redact, pii_audio) if redact else None
    if whole is None:
        _verified(source, expected_sha256)
    info = sf.info(source)
    paths: list[Path | None] = []
    for i, turn in enumerate(turns):
        start = max(0, int(round(turn.start * info.samplerate)))
        stop = min(info.frames, int(round(turn.end * info.samplerate)))
        if stop <= start:
            paths.append(None)
            continue
        if whole is not None:
            samples = whole[0][start:stop]
        else:
            samples, _ = sf.read(source, start=start, stop=stop, dtype="float32")
        paths.append(_write(folder / f"{key}_{i:04d}.wav", samples, info.samplerate))
    return paths
