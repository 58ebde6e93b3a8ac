"""The telephone line: 300-3400 Hz, 8 kHz, G.711 μ-law, the narrowest channel a protocol allows.

Two users need it: the synthetic generator, which makes its phone dialogues with it
(`collection.synthetic.conditions`), and the voice profiles (`collection.voices`), which
put every recording through it so that voices heard on a headset, a laptop and a phone
are compared through one common channel.
"""

from __future__ import annotations

import numpy as np
import soxr
from scipy import signal

SAMPLE_RATE = 16000
TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)

_MULAW_BIAS = 0x84  # G.711: 132 added to the magnitude (33 on the 14-bit scale the encoder works on)
_MULAW_CLIP_14 = 8159


def mulaw_encode(pcm16: np.ndarray) -> np.ndarray:
    """G.711 μ-law bytes (uint8) of 16-bit linear samples, bit for bit as the ITU reference
    coder (Sun's g711.c, which CPython's audioop also follows): 14-bit magnitude, segment,
    4-bit mantissa, inverted."""
    x = pcm16.astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(x), _MULAW_CLIP_14) + (_MULAW_BIAS >> 2)
    segment = np.floor(np.log2(magnitude)).astype(np.int32) - 5
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def mulaw_decode(codes: np.ndarray) -> np.ndarray:
    """16-bit linear samples (int16) of G.711 μ-law bytes."""
    byte = (~codes.astype(np.int32)) & 0xFF
    exponent = (byte >> 4) & 0x07
    magnitude = (((byte & 0x0F) << 3) + _MULAW_BIAS << exponent) - _MULAW_BIAS
    return np.where(byte & 0x80, -magnitude, magnitude).astype(np.int16)


def telephone_line(audio: np.ndarray) -> np.ndarray:
    """A call as the far end records it: 300-3400 Hz, resampled to 8 kHz, μ-law coded and
    decoded, and back at 16 kHz (so nothing is left above 4 kHz). ``audio`` is float in
    [-1, 1] at 16 kHz; the level is kept."""
    band = signal.butter(6, TELEPHONE_BAND_HZ, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    narrow = soxr.resample(signal.sosfiltfilt(band, np.asarray(audio, dtype=np.float64)), SAMPLE_RATE, TELEPHONE_RATE,
                           quality="HQ")
    peak = max(float(np.max(np.abs(narrow))), 1e-9) if len(narrow) else 1e-9
    scale = 0.9 * 32767 / peak  # the line's own gain: use the codec's range, undo it after
    pcm = np.clip(np.round(narrow * scale), -32768, 32767).astype(np.int16)
    decoded = mulaw_decode(mulaw_encode(pcm)).astype(np.float64) / scale
    wide = soxr.resample(decoded, TELEPHONE_RATE, SAMPLE_RATE, quality="HQ")
    return np.pad(wide, (0, max(0, len(audio) - len(wide))))[: len(audio)]
