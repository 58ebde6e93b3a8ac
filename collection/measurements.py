"""Measurements that decide whether a recording is usable: level, clipping, speech, SNR.

They are accumulated a block at a time (`Meter`), so measuring a three-hour file holds
one block of samples plus two numbers per 30 ms frame, and `measure_file` writes the
16 kHz mono working copy to disk as it goes. `measure` (whole arrays) runs the same
code on one block. The header is read first: a file whose header already says it is
longer than allowed is refused before a sample is decoded, and one whose header does
not say is refused as soon as decoding passes the limit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import webrtcvad

from collection.decoding import WORKING_RATE, AudioDecodeError, AudioHeader, DecodedAudio, WorkingRate, blocks, probe

FRAME_MS = 30
FRAME = WORKING_RATE * FRAME_MS // 1000
VAD_MODE = 2
CLIP_LEVEL = 0.999


@dataclass(frozen=True)
class Measurements:
    duration_s: float
    sample_rate: int
    channels: int
    num_samples: int
    peak_dbfs: float
    clipping_ratio: float
    speech_ratio: float
    snr_db: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


class TooLong(Exception):
    """The file is longer than the protocol allows; `from_header` when no sample was decoded to know it."""

    def __init__(self, seconds: float, limit: float, from_header: bool) -> None:
        how = "its header says" if from_header else "decoding stopped at"
        super().__init__(f"{how} {seconds:.1f} s, longer than the maximum {limit:g} s")
        self.seconds, self.limit, self.from_header = seconds, limit, from_header


def _frame_power(frames: np.ndarray) -> np.ndarray:
    return (frames.astype(np.float64) ** 2).mean(axis=1) + 1e-12


def speech_frames(mono16k: np.ndarray, mode: int = VAD_MODE) -> np.ndarray:
    """webrtcvad decisions for consecutive 30 ms frames of 16 kHz mono audio."""
    meter = Meter(mode)
    meter.working(mono16k)
    return meter.speech()


def snr_from_frames(power: np.ndarray, is_speech: np.ndarray) -> float | None:
    """Speech-vs-non-speech energy: 10·log10((P_speech − P_noise) / P_noise), from per-frame power.

    The noise floor is the mean power of the frames the VAD calls non-speech; when it
    finds almost none (dense dialogue), the quietest 10% of frames stand in for it.
    """
    if not is_speech.any():
        return None
    speech_power = power[is_speech].mean()
    quiet = power[~is_speech]
    if len(quiet) < max(3, 0.1 * len(power)):
        quiet = np.sort(power)[: max(1, len(power) // 10)]
    noise_power = quiet.mean()
    return 10 * math.log10(max(speech_power - noise_power, 1e-12) / noise_power)


def estimate_snr(mono16k: np.ndarray, is_speech: np.ndarray) -> float | None:
    """`snr_from_frames` on whole 16 kHz mono audio."""
    frames = mono16k[: len(is_speech) * FRAME].reshape(len(is_speech), FRAME)
    return snr_from_frames(_frame_power(frames), is_speech)


class Meter:
    """Level and clipping of the original samples, speech and SNR of the 16 kHz mono copy, a block at a time."""

    def __init__(self, vad_mode: int = VAD_MODE) -> None:
        self.frames = 0
        self._values = 0
        self._peak = 0.0
        self._clipped = 0
        self._vad = webrtcvad.Vad(vad_mode)  # one detector across blocks: it adapts as it goes, as on a whole file
        self._carry = np.zeros(0, np.float32)
        self._speech: list[np.ndarray] = []
        self._power: list[np.ndarray] = []

    def original(self, block: np.ndarray) -> None:
        magnitude = np.abs(block)
        self.frames += len(block)
        self._values += magnitude.size
        if magnitude.size:
            self._peak = max(self._peak, float(magnitude.max()))
        self._clipped += int((magnitude >= CLIP_LEVEL).sum())

    def working(self, mono16k: np.ndarray) -> None:
        pending = np.concatenate([self._carry, mono16k]) if len(self._carry) else mono16k
        count = len(pending) // FRAME
        frames = pending[: count * FRAME].reshape(count, FRAME)
        self._carry = pending[count * FRAME :].copy()
        raw = (np.clip(frames, -1, 1) * 32767).astype("<i2").tobytes()
        step = FRAME * 2
        self._speech.append(np.fromiter((self._vad.is_speech(raw[i * step : (i + 1) * step], WORKING_RATE)
                                         for i in range(count)), bool, count))
        self._power.append(_frame_power(frames))

    def speech(self) -> np.ndarray:
        return np.concatenate(self._speech) if self._speech else np.zeros(0, bool)

    def result(self, sample_rate: int, channels: int) -> Measurements:
        is_speech = self.speech()
        power = np.concatenate(self._power) if self._power else np.zeros(0)
        return Measurements(
            duration_s=self.frames / sample_rate,
            sample_rate=sample_rate,
            channels=channels,
            num_samples=self.frames,
            peak_dbfs=20 * math.log10(max(self._peak, 1e-6)),
            clipping_ratio=self._clipped / self._values if self._values else 0.0,
            speech_ratio=float(is_speech.mean()) if len(is_speech) else 0.0,
            snr_db=snr_from_frames(power, is_speech),
        )


def measure(decoded: DecodedAudio, mono16k: np.ndarray) -> Measurements:
    """All measurements for one decoded file and its 16 kHz mono working copy (held whole)."""
    meter = Meter()
    meter.original(decoded.samples)
    meter.working(mono16k)
    return meter.result(decoded.sample_rate, decoded.channels)


def measure_file(path: Path, working_copy: Path, max_duration_s: float | None = None) -> tuple[Measurements, AudioHeader]:
    """Header first, then decode, measure and write the 16 kHz mono PCM-16 working copy a block at a time.

    Raises `TooLong` (before decoding when the header tells) or `AudioDecodeError`.
    """
    header = probe(path)
    if max_duration_s is not None and header.duration_s is not None and header.duration_s > max_duration_s:
        raise TooLong(header.duration_s, max_duration_s, from_header=True)
    meter, converter = Meter(), WorkingRate(header.sample_rate)
    with sf.SoundFile(working_copy, "w", samplerate=WORKING_RATE, channels=1, format="WAV", subtype="PCM_16") as out:
        for block in blocks(path, header):
            meter.original(block)
            if max_duration_s is not None and meter.frames / header.sample_rate > max_duration_s:
                raise TooLong(meter.frames / header.sample_rate, max_duration_s, from_header=False)
            mono = converter.push(block)
            meter.working(mono)
            out.write(mono)
        mono = converter.finish()
        meter.working(mono)
        out.write(mono)
    if meter.frames == 0:
        raise AudioDecodeError("the file decodes to zero samples")
    return meter.result(header.sample_rate, header.channels), header
