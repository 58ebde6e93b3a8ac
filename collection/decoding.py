"""Decoding contributors' files (WAV, FLAC, MP3, OGG/Opus, M4A) and the 16 kHz mono working copy.

libsndfile (through soundfile) decodes WAV, FLAC, MP3 and OGG in process; anything it
cannot open (M4A/AAC) goes through FFmpeg. A WAV whose header promises more audio
than the file holds is refused rather than silently shortened.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

WORKING_RATE = 16000


class AudioDecodeError(ValueError):
    """The file cannot be decoded into trustworthy audio; the message says why."""


@dataclass(frozen=True)
class DecodedAudio:
    """Samples as float32, shape (frames, channels), with what the container said."""

    samples: np.ndarray
    sample_rate: int
    container: str
    subtype: str
    decoder: str

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.num_samples / self.sample_rate


def check_wav_header(path: Path) -> None:
    """Refuse a RIFF/WAVE file whose data chunk claims more bytes than the file holds."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        offset = 12
        block_align = 0
        while offset + 8 <= size:
            handle.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
            if chunk_id == b"fmt ":
                fmt = handle.read(min(chunk_size, 16))
                if len(fmt) >= 14:
                    block_align = struct.unpack("<H", fmt[12:14])[0]
            if chunk_id == b"data":
                available = size - offset - 8
                if chunk_size in (0, 0xFFFFFFFF) or chunk_size > available:
                    claimed = "an unknown amount" if chunk_size in (0, 0xFFFFFFFF) else f"{chunk_size} bytes"
                    frames = f" ({available // block_align} frames present)" if block_align else ""
                    raise AudioDecodeError(
                        f"WAV header declares {claimed} of audio but the file holds {available} bytes after "
                        f"the data header{frames}: the file is truncated or its header is wrong"
                    )
                return
            offset += 8 + chunk_size + (chunk_size & 1)
        raise AudioDecodeError("WAV file has no data chunk")


def decode(path: Path) -> DecodedAudio:
    """Decode a file completely, or raise `AudioDecodeError` with a precise reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioDecodeError(f"cannot read file: {exc.strerror}") from exc
    if size == 0:
        raise AudioDecodeError("empty file (0 bytes)")
    check_wav_header(path)
    try:
        with sf.SoundFile(path) as handle:
            container, subtype, rate = handle.format, handle.subtype, handle.samplerate
            samples = handle.read(dtype="float32", always_2d=True)
        decoded = DecodedAudio(samples, rate, container, subtype, "libsndfile")
    except (sf.LibsndfileError, RuntimeError) as exc:
        if shutil.which("ffmpeg") is None:
            raise AudioDecodeError(f"not decodable by libsndfile ({exc}) and FFmpeg is not installed") from exc
        decoded = _decode_ffmpeg(path)
    if decoded.num_samples == 0:
        raise AudioDecodeError("the file decodes to zero samples")
    if not np.isfinite(decoded.samples).all():
        raise AudioDecodeError("the file holds NaN or infinite sample values")
    return decoded


def _decode_ffmpeg(path: Path) -> DecodedAudio:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
         "stream=sample_rate,channels,codec_name:format=format_name", "-of", "json", str(path)],
        capture_output=True, text=True, check=False,
    )
    try:
        info = json.loads(probe.stdout or "{}")
        stream = info["streams"][0]
        rate, channels = int(stream["sample_rate"]), int(stream["channels"])
    except (KeyError, IndexError, ValueError) as exc:
        detail = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else "no audio stream found"
        detail = detail.replace(f"{path}: ", "")
        raise AudioDecodeError(f"not a decodable audio file: {detail}") from exc
    result = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le",
         "-acodec", "pcm_f32le", "-"],
        capture_output=True, check=False,
    )
    errors = result.stderr.decode(errors="replace").strip()
    if result.returncode != 0 or errors:
        raise AudioDecodeError(f"FFmpeg could not decode it cleanly: {errors.splitlines()[-1] if errors else result.returncode}")
    samples = np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)
    samples = samples[: len(samples) - len(samples) % channels].reshape(-1, channels)
    return DecodedAudio(samples, rate, info.get("format", {}).get("format_name", "unknown"),
                        stream.get("codec_name", ""), "ffmpeg")


def to_working_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Down-mix to mono and resample to 16 kHz (soxr, high quality)."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    if sample_rate != WORKING_RATE:
        mono = soxr.resample(mono, sample_rate, WORKING_RATE, quality="HQ")
    return np.clip(mono, -1.0, 1.0).astype(np.float32)


def wav_bytes(mono: np.ndarray, sample_rate: int = WORKING_RATE) -> bytes:
    """16-bit PCM WAV bytes: the stored working copy format."""
    buffer = io.BytesIO()
    sf.write(buffer, mono, sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def load_working_copy(path: Path) -> np.ndarray:
    """Read a stored working copy back as float32 mono at 16 kHz."""
    samples, rate = sf.read(path, dtype="float32")
    if rate != WORKING_RATE:
        raise AudioDecodeError(f"working copy {path} is {rate} Hz, expected {WORKING_RATE}")
    return samples
