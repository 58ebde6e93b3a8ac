"""Decoding contributors' files (WAV, FLAC, MP3, OGG/Opus, M4A) a block at a time, and the 16 kHz mono working copy.

libsndfile (through soundfile) decodes WAV, FLAC, MP3 and OGG in process; anything it
cannot open (M4A/AAC) goes through FFmpeg, read from its pipe. `probe` reads only the
header, so intake can refuse an over-long file before decoding any of it; `blocks`
yields bounded blocks, so memory does not grow with the file's length.

A WAV's data size is checked against the file: a header promising more than the file
holds is refused (truncated); a streamed WAV (size unknown: 0 or 0xFFFFFFFF, as
`ffmpeg -f wav -` writes) and a header claiming less than the file holds (with audio,
not further chunks, after the declared end) are read to the true end of the file, and
the header's claim is noted. The length every later step sees is that true length.
"""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

WORKING_RATE = 16000
BLOCK_S = 10.0  # seconds decoded at a time: 48 kHz stereo float32 is 3.8 MB
UNKNOWN_SIZES = (0, 0xFFFFFFFF)  # what a WAV writer that cannot seek back leaves in the size fields


class AudioDecodeError(ValueError):
    """The file cannot be decoded into trustworthy audio; the message says why."""


@dataclass(frozen=True)
class WavLayout:
    """Where a WAV's samples really are, when its header's data size is wrong or unknown."""

    fmt: bytes  # the fmt chunk's payload, copied into the corrected header
    data_offset: int
    data_bytes: int  # to the end of the file, whole frames only
    declared: int | None  # the header's data size; None when unknown

    def corrected_header(self) -> bytes:
        fmt = self.fmt + (b"\0" if len(self.fmt) & 1 else b"")
        body = b"WAVE" + b"fmt " + struct.pack("<I", len(self.fmt)) + fmt + b"data" + struct.pack("<I", self.data_bytes)
        return b"RIFF" + struct.pack("<I", len(body) + self.data_bytes) + body


@dataclass(frozen=True)
class AudioHeader:
    """What the container says before any sample is decoded."""

    container: str
    subtype: str
    sample_rate: int
    channels: int
    frames: int | None  # None: the container does not say (a streamed FLAC or M4A)
    decoder: str  # "libsndfile" or "ffmpeg"
    layout: WavLayout | None = None  # set when a WAV is read past or without its header's data size
    note: str = ""  # what the header claimed when it was wrong

    @property
    def duration_s(self) -> float | None:
        return None if self.frames is None else self.frames / self.sample_rate


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


def _is_chunk(head: bytes, room: int) -> bool:
    """Whether 8 bytes look like a RIFF chunk header whose body fits in `room` bytes (metadata, not audio)."""
    return len(head) == 8 and all(32 <= c < 127 for c in head[:4]) and struct.unpack("<I", head[4:])[0] <= room - 8


def wav_layout(path: Path) -> WavLayout | None:
    """Check a RIFF/WAVE file's data size against the file; the true layout when the header is wrong or unknown.

    None for other files and for a WAV whose header is right (trailing chunks after the
    data are metadata); `AudioDecodeError` for a data size larger than the file holds.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        offset, fmt = 12, b""
        while offset + 8 <= size:
            handle.seek(offset)
            chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
            if chunk_id == b"fmt ":
                fmt = handle.read(min(chunk_size, 64))
            if chunk_id == b"data":
                return _data_layout(handle, fmt, offset + 8, chunk_size, size)
            offset += 8 + chunk_size + (chunk_size & 1)
    raise AudioDecodeError("WAV file has no data chunk")


def _data_layout(handle: io.BufferedReader, fmt: bytes, start: int, declared: int, size: int) -> WavLayout | None:
    available = size - start
    block_align = _block_align(fmt)
    whole = available - available % block_align if block_align else available
    unknown = declared in UNKNOWN_SIZES and available > 0
    if not unknown and declared > available:
        frames = f" ({available // block_align} frames present)" if block_align else ""
        raise AudioDecodeError(
            f"WAV header declares {declared} bytes of audio but the file holds {available} bytes after "
            f"the data header{frames}: the file is truncated or its header is wrong"
        )
    if unknown:
        return WavLayout(fmt, start, whole, None) if block_align else None
    end = start + declared + (declared & 1)
    handle.seek(end)
    if end >= size or _is_chunk(handle.read(8), size - end) or not block_align:
        return None  # the header is right; anything after the data is further chunks
    return WavLayout(fmt, start, whole, declared)


class _Spliced(io.RawIOBase):
    """A corrected WAV header followed by a window of the real file, as one read-only file for libsndfile."""

    def __init__(self, path: Path, layout: WavLayout) -> None:
        self._head = layout.corrected_header()
        self._file = open(path, "rb")
        self._start, self._length = layout.data_offset, layout.data_bytes
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        total = len(self._head) + self._length
        self._pos = max(0, {io.SEEK_SET: offset, io.SEEK_CUR: self._pos + offset, io.SEEK_END: total + offset}[whence])
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        view = memoryview(buffer).cast("B")
        done = 0
        if self._pos < len(self._head):
            part = self._head[self._pos : self._pos + len(view)]
            view[: len(part)] = part
            done = len(part)
            self._pos += done
        left = min(len(view) - done, len(self._head) + self._length - self._pos)
        if left > 0:
            self._file.seek(self._start + self._pos - len(self._head))
            got = self._file.readinto(view[done : done + left])
            done += got or 0
            self._pos += got or 0
        return done

    def close(self) -> None:
        self._file.close()
        super().close()


def _open_sndfile(path: Path, layout: WavLayout | None) -> sf.SoundFile:
    return sf.SoundFile(_Spliced(path, layout)) if layout is not None else sf.SoundFile(path)


def probe(path: Path) -> AudioHeader:
    """Read the header only (no samples), or raise `AudioDecodeError` with a precise reason."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioDecodeError(f"cannot read file: {exc.strerror}") from exc
    if size == 0:
        raise AudioDecodeError("empty file (0 bytes)")
    layout = wav_layout(path)
    try:
        with _open_sndfile(path, layout) as handle:
            frames = int(handle.frames) if handle.frames > 0 else None
            header = AudioHeader(handle.format, handle.subtype, int(handle.samplerate), int(handle.channels), frames, "libsndfile", layout)
    except (sf.LibsndfileError, RuntimeError) as exc:
        if shutil.which("ffmpeg") is None:
            raise AudioDecodeError(f"not decodable by libsndfile ({exc}) and FFmpeg is not installed") from exc
        return _probe_ffmpeg(path)
    if layout is not None and header.frames is not None:
        claimed = "an unknown length" if layout.declared is None else f"{layout.declared // _block_align(layout.fmt)} frames"
        note = f"WAV header declares {claimed}; the file holds {header.frames} frames: measured the file"
        header = replace(header, note=note)
    return header


def _block_align(fmt: bytes) -> int:
    """Bytes per frame (all channels) from a fmt chunk; 0 when the chunk is too short to say."""
    return struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else 0


def _probe_ffmpeg(path: Path) -> AudioHeader:
    probe_run = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
         "stream=sample_rate,channels,codec_name,duration:format=format_name,duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=False,
    )
    try:
        info = json.loads(probe_run.stdout or "{}")
        stream = info["streams"][0]
        rate, channels = int(stream["sample_rate"]), int(stream["channels"])
    except (KeyError, IndexError, ValueError) as exc:
        detail = probe_run.stderr.strip().splitlines()[-1] if probe_run.stderr.strip() else "no audio stream found"
        detail = detail.replace(f"{path}: ", "")
        raise AudioDecodeError(f"not a decodable audio file: {detail}") from exc
    if rate <= 0 or channels <= 0:  # FFmpeg guessed a codec from the file name alone (text named .flac)
        raise AudioDecodeError(f"not a decodable audio file: FFmpeg finds no sample rate or channels "
                               f"({stream.get('codec_name', 'no codec')} stream, {rate} Hz, {channels} channel(s))")
    duration = stream.get("duration") or info.get("format", {}).get("duration")
    try:
        frames = round(float(duration) * rate) if duration not in (None, "N/A") else None
    except ValueError:
        frames = None
    return AudioHeader(info.get("format", {}).get("format_name", "unknown"), stream.get("codec_name", ""), rate, channels,
                       frames, "ffmpeg")


def blocks(path: Path, header: AudioHeader, block_s: float = BLOCK_S) -> Iterator[np.ndarray]:
    """Float32 blocks of shape (frames, channels), at most `block_s` seconds each; errors are `AudioDecodeError`."""
    size = max(1, int(block_s * header.sample_rate))
    source = _sndfile_blocks(path, header, size) if header.decoder == "libsndfile" else _ffmpeg_blocks(path, header, size)
    for block in source:
        if not np.isfinite(block).all():
            raise AudioDecodeError("the file holds NaN or infinite sample values")
        yield block


def _sndfile_blocks(path: Path, header: AudioHeader, size: int) -> Iterator[np.ndarray]:
    try:
        with _open_sndfile(path, header.layout) as handle:
            while True:
                block = handle.read(size, dtype="float32", always_2d=True)
                if not len(block):
                    return
                yield block
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioDecodeError(f"decoding failed part way: {exc}") from exc


def _ffmpeg_blocks(path: Path, header: AudioHeader, size: int) -> Iterator[np.ndarray]:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-acodec", "pcm_f32le", "-"]
    frame_bytes = 4 * header.channels
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as run:
        assert run.stdout is not None and run.stderr is not None
        try:
            while chunk := run.stdout.read(size * frame_bytes):
                usable = len(chunk) - len(chunk) % frame_bytes
                yield np.frombuffer(chunk[:usable], dtype="<f4").astype(np.float32).reshape(-1, header.channels)
        finally:
            run.stdout.close()
            errors = run.stderr.read().decode(errors="replace").strip()
            run.wait()
    if run.returncode != 0 or errors:
        raise AudioDecodeError(f"FFmpeg could not decode it cleanly: {errors.splitlines()[-1] if errors else run.returncode}")


def decode(path: Path) -> DecodedAudio:
    """Decode a file completely (loose files, tests), or raise `AudioDecodeError` with a precise reason."""
    header = probe(path)
    parts = list(blocks(path, header))
    samples = np.concatenate(parts) if parts else np.zeros((0, header.channels), np.float32)
    if len(samples) == 0:
        raise AudioDecodeError("the file decodes to zero samples")
    return DecodedAudio(samples, header.sample_rate, header.container, header.subtype, header.decoder)


class WorkingRate:
    """Down-mix to mono and resample to 16 kHz (soxr, high quality) a block at a time; same output as all at once."""

    def __init__(self, sample_rate: int) -> None:
        self._stream = soxr.ResampleStream(sample_rate, WORKING_RATE, 1, dtype="float32", quality="HQ") \
            if sample_rate != WORKING_RATE else None

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        mono = (samples.mean(axis=1) if samples.ndim == 2 else samples).astype(np.float32)
        if self._stream is not None:
            mono = self._stream.resample_chunk(mono, last=last)
        return np.clip(mono, -1.0, 1.0).astype(np.float32)

    def finish(self) -> np.ndarray:
        return self.push(np.zeros((0, 1), np.float32), last=True)


def to_working_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Down-mix to mono and resample to 16 kHz (soxr, high quality)."""
    converter = WorkingRate(sample_rate)
    return np.concatenate([converter.push(samples), converter.finish()])


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
