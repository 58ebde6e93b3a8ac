"""Real speech that ships inside installed packages, for calibrating thresholds offline.

Searched in the project's virtualenv (every audio file under site-packages):

- ``pyannote/audio/sample/sample.wav`` (pyannote.audio): 30 s, 16 kHz mono, a real
  two-speaker conversation with its ``sample.rttm`` (speaker90, speaker91; 10 turns,
  one overlap). The only real two-speaker speech found.
- scipy's ``io/tests/data/*.wav`` and IPython's ``lib/tests/test.wav``: format test
  files (tones, noise, fractions of a second), no speech.
- Resemblyzer, silero-vad, faster-whisper: weights only; librosa's example data is
  downloaded on demand and is not cached here.

`real_conversations()` gives the sample as it is and under the realistic conditions of
`collection.synthetic.conditions` (telephone line, room, traffic and office noise), so
that a threshold meets real voices in the conditions a protocol declares;
`one_voice()` cuts one speaker's own speech out of a conversation (one real voice, for
"one voice registered as two").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from collection.synthetic.conditions import (
    SAMPLE_RATE,
    Room,
    office_noise,
    reverberate,
    room_impulse_responses,
    telephone_line,
    traffic_noise,
)


@dataclass(frozen=True)
class Conversation:
    """A recording with its reference turns (speaker, start s, end s)."""

    name: str
    audio: np.ndarray
    turns: tuple[tuple[str, float, float], ...]

    @property
    def speakers(self) -> list[str]:
        return sorted({speaker for speaker, _, _ in self.turns})


def pyannote_sample() -> Conversation:
    """pyannote.audio's bundled sample.wav and sample.rttm (real speech, two speakers)."""
    import pyannote.audio
    import soundfile as sf

    folder = Path(pyannote.audio.__file__).parent / "sample"
    audio, rate = sf.read(folder / "sample.wav", dtype="float32")
    if rate != SAMPLE_RATE:
        raise ValueError(f"{folder / 'sample.wav'}: {rate} Hz, expected {SAMPLE_RATE}")
    turns = []
    for line in (folder / "sample.rttm").read_text().splitlines():
        fields = line.split()
        turns.append((fields[7], float(fields[3]), float(fields[3]) + float(fields[4])))
    return Conversation("pyannote-sample", audio, tuple(sorted(turns, key=lambda t: t[1])))


def _with_noise(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``noise`` added at ``snr_db`` against the whole recording's power."""
    noise = noise * np.sqrt(np.mean(audio.astype(np.float64) ** 2) / np.mean(noise**2)) * 10 ** (-snr_db / 20)
    return audio + noise


def under_conditions(conversation: Conversation) -> list[Conversation]:
    """The conversation on a telephone line, in a reverberant room (RT60 0.5 s, 1.5 m), in
    street traffic at 5 dB and in an office at 15 dB (fixed seeds: the same every time)."""
    audio = conversation.audio.astype(np.float64)
    rng = np.random.default_rng(20261130)
    room = Room((5.0, 4.0, 2.8), 0.5, (2.5, 2.0, 1.0), ((3.7, 2.9, 1.4),))
    variants = {
        "telephone": telephone_line(audio),
        "room-rt60-0.5": reverberate(audio, room_impulse_responses(room)[0]),
        "traffic-5dB": _with_noise(audio, traffic_noise(len(audio), rng), 5.0),
        "office-15dB": _with_noise(audio, office_noise(len(audio), rng), 15.0),
    }
    return [Conversation(f"{conversation.name}+{name}", (v / np.max(np.abs(v)) * 0.7).astype(np.float32),
                         conversation.turns) for name, v in variants.items()]


def real_conversations() -> list[Conversation]:
    """Every real two-speaker recording available offline, as it is and under conditions."""
    sample = pyannote_sample()
    return [sample, *under_conditions(sample)]


def synthetic_conversations(folder: Path) -> list[Conversation]:
    """The dialogues of a generated set (``<id>.flac`` and ``<id>.turns.json``)."""
    import json

    import soundfile as sf

    out = []
    for flac in sorted(Path(folder).glob("*.flac")):
        audio, _ = sf.read(flac, dtype="float32")
        turns = json.loads(flac.with_suffix(".turns.json").read_text())
        out.append(Conversation(flac.stem, audio, tuple((t["speaker"], t["start"], t["end"]) for t in turns)))
    return out


def one_voice(conversation: Conversation, speaker: str) -> np.ndarray:
    """``speaker``'s speech with every stretch another speaker talks in removed, concatenated."""
    turns = conversation.turns
    keep = np.zeros(len(conversation.audio), dtype=bool)
    for who, start, end in turns:
        if who == speaker:
            keep[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)] = True
    for who, start, end in turns:
        if who != speaker:
            keep[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)] = False
    return conversation.audio[keep]
