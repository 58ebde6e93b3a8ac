"""Real-world recording conditions for the synthetic dialogues.

The plain generator applies a filter and one stationary noise; real recordings differ in
ways that move diarization and ASR scores: the telephone line (300-3400 Hz, 8 kHz G.711
μ-law), the room (reverberation from pyroomacoustics image-source rooms), the kind of
noise (real speech babble, traffic, office hum and keys), speakers at different levels
and backchannels spoken over the other speaker. This module holds those conditions and
the map from a protocol's device and noise-condition names to them
(`DEVICE_CHANNELS`, `NOISE_CONDITIONS`); `generator.generate_dialogues(...,
realistic=True)` uses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import soxr
from scipy import signal

SAMPLE_RATE = 16000
TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
SPEED_OF_SOUND = 343.0

# --------------------------------------------------------------------------- telephone line

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
    [-1, 1]; the level is kept."""
    band = signal.butter(6, TELEPHONE_BAND_HZ, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    narrow = soxr.resample(signal.sosfiltfilt(band, audio), SAMPLE_RATE, TELEPHONE_RATE, quality="HQ")
    peak = max(float(np.max(np.abs(narrow))), 1e-9)
    scale = 0.9 * 32767 / peak  # the line's own gain: use the codec's range, undo it after
    pcm = np.clip(np.round(narrow * scale), -32768, 32767).astype(np.int16)
    decoded = mulaw_decode(mulaw_encode(pcm)).astype(np.float64) / scale
    wide = soxr.resample(decoded, TELEPHONE_RATE, SAMPLE_RATE, quality="HQ")
    return _fit(wide, len(audio))


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    return np.pad(audio, (0, max(0, n - len(audio))))[:n]


# --------------------------------------------------------------------------- rooms


@dataclass(frozen=True)
class Room:
    """A shoebox room (metres), its reverberation time and where the microphone and each talker are."""

    dims: tuple[float, float, float]
    rt60_s: float
    mic: tuple[float, float, float]
    talkers: tuple[tuple[float, float, float], ...]


def draw_room(rng: np.random.Generator, rt60_range: tuple[float, float], distance_range: tuple[float, float],
              talkers: int = 2) -> Room:
    """A random room with ``talkers`` positions ``distance_range`` metres from the microphone."""
    dims = (float(rng.uniform(3.5, 7.0)), float(rng.uniform(3.0, 5.5)), float(rng.uniform(2.4, 3.2)))
    mic = (dims[0] / 2 + float(rng.uniform(-0.5, 0.5)), dims[1] / 2 + float(rng.uniform(-0.5, 0.5)), 1.0)
    positions = []
    for _ in range(talkers):
        distance = float(rng.uniform(*distance_range))
        angle = float(rng.uniform(0, 2 * np.pi))
        x = min(max(mic[0] + distance * np.cos(angle), 0.3), dims[0] - 0.3)
        y = min(max(mic[1] + distance * np.sin(angle), 0.3), dims[1] - 0.3)
        positions.append((x, y, float(rng.uniform(1.1, 1.7))))
    return Room(dims, round(float(rng.uniform(*rt60_range)), 2), mic, tuple(positions))


def room_impulse_responses(room: Room) -> list[np.ndarray]:
    """One impulse response per talker (pyroomacoustics image-source method, absorption by
    inverse Sabine for the room's RT60), with the propagation delay up to the direct path
    removed so that turn times stay exact, scaled to a direct path of 1."""
    import pyroomacoustics as pra

    absorption, max_order = pra.inverse_sabine(room.rt60_s, list(room.dims))
    shoebox = pra.ShoeBox(list(room.dims), fs=SAMPLE_RATE, materials=pra.Material(absorption),
                          max_order=min(max_order, 24))
    for talker in room.talkers:
        shoebox.add_source(list(talker))
    shoebox.add_microphone(list(room.mic))
    shoebox.compute_rir()
    responses = []
    for rir in shoebox.rir[0]:
        rir = np.asarray(rir, dtype=np.float64)
        direct = int(np.argmax(np.abs(rir)))
        responses.append(rir[max(0, direct - 8):] / np.abs(rir[direct]))
    return responses


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``audio`` in the room (same length; the tail past the end is cut)."""
    return signal.fftconvolve(audio, rir)[: len(audio)]


# --------------------------------------------------------------------------- noises


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Stationary 1/f noise (power falls 3 dB per octave above 20 Hz)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    spectrum /= np.sqrt(np.maximum(freqs, 20.0))
    spectrum[0] = 0.0
    return np.fft.irfft(spectrum, n)


def traffic_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Street: a low rumble (brown noise under 800 Hz) with cars passing (swells of 2-6 s)."""
    rumble = np.cumsum(rng.standard_normal(n))
    rumble = signal.sosfiltfilt(signal.butter(2, (30, 800), btype="bandpass", fs=SAMPLE_RATE, output="sos"), rumble)
    t = np.arange(n) / SAMPLE_RATE
    envelope = np.full(n, 0.4)
    for _ in range(max(1, int(n / SAMPLE_RATE / 5))):
        centre, width = rng.uniform(0, n / SAMPLE_RATE), rng.uniform(1.0, 3.0)
        envelope += rng.uniform(0.5, 1.5) * np.exp(-0.5 * ((t - centre) / width) ** 2)
    hiss = signal.sosfilt(signal.butter(2, 2000, btype="highpass", fs=SAMPLE_RATE, output="sos"), rng.standard_normal(n))
    return rumble / np.std(rumble) * envelope + 0.15 * hiss * envelope


def office_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Office or home: ventilation (low-passed pink noise), 50 Hz mains hum with harmonics,
    and key clicks (short decaying bursts, 2-6 a second in bouts)."""
    hvac = signal.sosfilt(signal.butter(2, 400, btype="lowpass", fs=SAMPLE_RATE, output="sos"), pink_noise(n, rng))
    t = np.arange(n) / SAMPLE_RATE
    hum = sum(np.sin(2 * np.pi * 50 * h * t + rng.uniform(0, 2 * np.pi)) / h for h in (1, 2, 3, 5))
    clicks = np.zeros(n)
    click = rng.standard_normal(160) * np.exp(-np.arange(160) / 25)
    at = 0.0
    while at < n / SAMPLE_RATE:
        at += rng.exponential(1 / 4) if rng.random() < 0.7 else rng.uniform(1, 3)
        i = int(at * SAMPLE_RATE)
        if i + len(click) < n:
            clicks[i: i + len(click)] += click * rng.uniform(0.5, 1.5)
    return hvac / np.std(hvac) + 0.3 * hum / np.std(hum) + 0.6 * clicks / max(float(np.std(clicks)), 1e-9)


def speech_babble(n: int, talkers: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Café babble: real (espeak) speech of other people, each looped from a random offset,
    summed; ``talkers`` holds each background talker's speech."""
    out = np.zeros(n)
    for speech in talkers:
        loop = np.tile(speech, n // len(speech) + 2)
        offset = int(rng.integers(len(speech)))
        out += loop[offset: offset + n] / max(float(np.std(speech)), 1e-9)
    return out


# --------------------------------------------------------------------------- protocol conditions


@dataclass(frozen=True)
class DeviceChannel:
    """How a protocol device records: band, line codec and room (RT60 and talker distance)."""

    band_hz: tuple[float, float]
    telephone: bool = False
    rt60_range_s: tuple[float, float] | None = None
    distance_range_m: tuple[float, float] = (0.5, 1.0)


#: Protocol device name -> channel (both shipped protocols: en_dialogue_accents and multilingual_dialogue).
DEVICE_CHANNELS: dict[str, DeviceChannel] = {
    "headset": DeviceChannel((50.0, 7800.0)),                                      # close talk, no room
    "phone": DeviceChannel(TELEPHONE_BAND_HZ, telephone=True),                     # a call: 8 kHz μ-law line
    "laptop": DeviceChannel((150.0, 6000.0), rt60_range_s=(0.3, 0.6), distance_range_m=(0.6, 1.2)),
    "smartphone": DeviceChannel((100.0, 7500.0), rt60_range_s=(0.2, 0.5), distance_range_m=(0.3, 0.8)),
    "smart_speaker": DeviceChannel((80.0, 7500.0), rt60_range_s=(0.4, 0.8), distance_range_m=(1.5, 3.0)),
}

NOISE_KINDS: tuple[str, ...] = ("babble", "traffic", "office", "pink")


@dataclass(frozen=True)
class NoiseCondition:
    """The noises a protocol noise condition may have (drawn at random) and the SNR range."""

    kinds: tuple[str, ...]
    snr_db: tuple[float, float]


#: Protocol noise-condition name -> noises and SNR (inside each protocol's own ``snr_db`` range).
NOISE_CONDITIONS: dict[str, NoiseCondition] = {
    "quiet": NoiseCondition(("office", "pink"), (25.0, 35.0)),           # "a closed room", >= 20 dB
    "noisy": NoiseCondition(("babble", "traffic", "office"), (5.0, 15.0)),  # "cafe, street or open office"
    "studio": NoiseCondition(("pink",), (32.0, 40.0)),                   # >= 30 dB
    "home": NoiseCondition(("office", "babble"), (17.0, 28.0)),          # 15-30 dB
    "street": NoiseCondition(("traffic", "babble"), (3.0, 13.0)),        # 0-15 dB
}

NoiseMaker = Callable[[int, np.random.Generator], np.ndarray]
STATIONARY_NOISES: dict[str, NoiseMaker] = {"pink": pink_noise, "traffic": traffic_noise, "office": office_noise}


def band_filter(audio: np.ndarray, band_hz: tuple[float, float]) -> np.ndarray:
    """The device's frequency response (zero phase, so timing is unchanged)."""
    sos = signal.butter(4, band_hz, btype="bandpass", fs=SAMPLE_RATE, output="sos")
    return signal.sosfiltfilt(sos, audio)
