"""Measurements that decide whether a recording is usable: level, clipping, speech, SNR."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import webrtcvad

from collection.decoding import WORKING_RATE, DecodedAudio

FRAME_MS = 30
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


def speech_frames(mono16k: np.ndarray, mode: int = VAD_MODE) -> np.ndarray:
    """webrtcvad decisions for consecutive 30 ms frames of 16 kHz mono audio."""
    frame = WORKING_RATE * FRAME_MS // 1000
    count = len(mono16k) // frame
    pcm = (np.clip(mono16k[: count * frame], -1, 1) * 32767).astype("<i2")
    vad = webrtcvad.Vad(mode)
    raw = pcm.tobytes()
    step = frame * 2
    return np.fromiter((vad.is_speech(raw[i * step : (i + 1) * step], WORKING_RATE) for i in range(count)), bool, count)


def estimate_snr(mono16k: np.ndarray, is_speech: np.ndarray) -> float | None:
    """Speech-vs-non-speech energy: 10·log10((P_speech − P_noise) / P_noise).

    The noise floor is the mean power of the frames the VAD calls non-speech; when it
    finds almost none (dense dialogue), the quietest 10% of frames stand in for it.
    """
    frame = WORKING_RATE * FRAME_MS // 1000
    frames = mono16k[: len(is_speech) * frame].reshape(len(is_speech), frame).astype(np.float64)
    power = (frames**2).mean(axis=1) + 1e-12
    if not is_speech.any():
        return None
    speech_power = power[is_speech].mean()
    quiet = power[~is_speech]
    if len(quiet) < max(3, 0.1 * len(power)):
        quiet = np.sort(power)[: max(1, len(power) // 10)]
    noise_power = quiet.mean()
    return 10 * math.log10(max(speech_power - noise_power, 1e-12) / noise_power)


def measure(decoded: DecodedAudio, mono16k: np.ndarray) -> Measurements:
    """All measurements for one decoded file and its 16 kHz mono working copy."""
    magnitude = np.abs(decoded.samples)
    peak = float(magnitude.max())
    is_speech = speech_frames(mono16k)
    return Measurements(
        duration_s=decoded.duration_s,
        sample_rate=decoded.sample_rate,
        channels=decoded.channels,
        num_samples=decoded.num_samples,
        peak_dbfs=20 * math.log10(max(peak, 1e-6)),
        clipping_ratio=float((magnitude >= CLIP_LEVEL).mean()),
        speech_ratio=float(is_speech.mean()) if len(is_speech) else 0.0,
        snr_db=estimate_snr(mono16k, is_speech),
    )
