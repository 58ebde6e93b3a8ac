"""Generate synthetic two-speaker dialogues with exact ground truth.

Speech comes from espeak-ng (several English accents, voice variants, speeds and
pitches), is laid out on a timeline with gaps, overlaps and backchannels, run through
a device channel, mixed with generated noise at a known SNR and written as 16 kHz mono
16-bit FLAC. Next to each dialogue: RTTM, STM and a turns JSON; for the whole set: the
intake manifest (JSONL and CSV), the consent table and ``truth.json`` (the voices, the
deliberate duplicate registration and the real SNRs).

Everything is deterministic for a given seed: espeak-ng output is deterministic and
every random choice comes from one ``numpy.random.Generator``.

Run ``python -m collection.synthetic.generator --out DIR --count N --seed S``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

from collection.synthetic import DIALOGUES_DIR
from collection.synthetic.word_times import TimedToken, token_spans, word_starts
from collection.synthetic.conditions import (
    DEVICE_CHANNELS,
    NOISE_CONDITIONS,
    STATIONARY_NOISES,
    Room,
    band_filter,
    draw_room,
    pink_noise,
    reverberate,
    room_impulse_responses,
    speech_babble,
    telephone_line,
)
from store.rttm_stm_ctm import turns_to_rttm, turns_to_stm
from store.turns import Turn, Word

SAMPLE_RATE = 16000
ESPEAK = "espeak-ng"

#: Declared accent -> espeak-ng voice (all present in espeak-ng 1.51's ``--voices``).
ACCENT_VOICES: dict[str, str] = {
    "us_general": "en-us",
    "british_rp": "en-gb-x-rp",
    "scottish": "en-gb-scotland",
    "caribbean": "en-029",
    "new_york": "en-us-nyc",
    "west_midlands": "en-gb-x-gbcwmd",
    "northern_english": "en-gb-x-gbclan",
}

#: Accents a generated set draws from: six, leaving out ``new_york``, whose espeak
#: voice is the closest to ``us_general`` (both are built on en-us).
PLAN_ACCENTS: tuple[str, ...] = (
    "us_general",
    "british_rp",
    "scottish",
    "caribbean",
    "west_midlands",
    "northern_english",
)

GENDER_VARIANTS: dict[str, tuple[str, ...]] = {
    "female": ("f1", "f2", "f3", "f4", "f5"),
    "male": ("m1", "m2", "m3", "m4", "m5", "m6", "m7"),
}
AGE_BANDS: tuple[str, ...] = ("18-29", "30-44", "45-59", "60+")
DEVICES: tuple[str, ...] = ("headset", "phone", "laptop")
SCENARIOS: tuple[str, ...] = ("booking", "directions", "appointment", "travel_planning")
NOISE_TYPES: tuple[str, ...] = ("pink", "babble")
QUIET_SNR_DB = 30.0
NOISY_SNR_RANGE_DB = (8.0, 12.0)
MISMATCH_SNR_RANGE_DB = (9.5, 10.5)
PEAK_DBFS = -3.0
# Realistic sets only (``realistic=True``):
LEVEL_DIFFERENCE_DB = (3.0, 9.0)  # one speaker this much louder than the other (a far, quiet caller)
LOUD_BACKCHANNEL_GAIN = 10 ** (4 / 20)  # the added backchannels are 4 dB louder: as loud as a main turn
BABBLE_TALKERS = 5
REALISM_STREAM = 0x5EA1  # the realistic conditions' generator is seeded with (seed, REALISM_STREAM)

# "mm hmm" is left out: espeak-ng spells it ("em em hum"), so the audio would not say
# the transcript.
BACKCHANNELS: tuple[str, ...] = ("Yeah.", "Right.", "Uh huh.", "Okay.", "I see.")

CONSENT_FORM_VERSION = "v3"
CONSENT_PERMITTED_USES = "model_training;evaluation"
CONSENT_GRANTED_ON = "2026-09-01"
CONSENT_EXPIRES_ON = "2031-09-01"
FIRST_RECORDING_DAY = dt.date(2026, 10, 1)

MANIFEST_CSV_COLUMNS: tuple[str, ...] = (
    "path",
    "session_id",
    "device",
    "noise_condition",
    "scenario",
    "language",
    "recorded_on",
    "speaker_id",
    "consent_ref",
    "age_band",
    "gender",
    "accent",
    "native_language",
)
CONSENT_CSV_COLUMNS: tuple[str, ...] = (
    "consent_id",
    "speaker_id",
    "form_version",
    "permitted_uses",
    "granted_on",
    "expires_on",
    "withdrawn_on",
)

# Scripts: speaker A opens; lines alternate A, B. A dialogue is the opening pair, some
# middle pairs (in order) and the closing pair, plus ``closing_extra`` (A) when the
# turn count is odd. Numbers are written as words so the audio says the transcript.
SCRIPTS: dict[str, dict] = {
    "booking": {
        "opening": ("Hello, I'd like to book a table for {party}, please.",
                    "Of course. Which day would that be for?"),
        "middle": (
            ("{day} evening, around {time}, if possible.", "Let me check. Yes, {time} is free."),
            ("Could we sit by the window?", "I'll make a note, but I can't promise."),
            ("Do you have vegetarian options?", "We do, about half the menu is vegetarian."),
            ("Is there parking near the restaurant?", "There's a car park just behind us."),
            ("My dad uses a wheelchair, is that okay?", "Yes, everything is on the ground floor."),
        ),
        "closing": ("Lovely. The booking is under {name}.", "Thank you. See you on {day}."),
        "closing_extra": "Thanks very much, bye.",
    },
    "directions": {
        "opening": ("Excuse me, do you know where {place} is?",
                    "Yes, it's not far from here actually."),
        "middle": (
            ("Can I walk there, or should I get a bus?", "You can walk, it's about {minutes} minutes."),
            ("Which way do I go from here?", "Go straight on, then left at the lights."),
            ("Is that past the {landmark}?", "Yes, just after it, on the right."),
            ("Is there a cash machine on the way?", "There's one outside the {landmark}."),
            ("Will it be open on a {day}?", "I think so, until about six."),
        ),
        "closing": ("Brilliant, thank you so much for your help.", "No problem at all. Enjoy your day."),
        "closing_extra": "You too, bye.",
    },
    "appointment": {
        "opening": ("Hi, I need to move my appointment with Doctor {doctor}.",
                    "Sure, can I take your name, please?"),
        "middle": (
            ("It's {name}, and it was booked for {day}.", "I can see it, {day} at {time}."),
            ("Is there anything later in the week?", "We have {day2} morning at half past nine."),
            ("Could I come in the afternoon instead?", "The only afternoon slot is at four."),
            ("Do I need to bring anything with me?", "Just your prescription, if you have one."),
            ("Will it be a phone call or in person?", "In person, at the main surgery."),
        ),
        "closing": ("That's great, thanks for sorting it out.", "You're welcome. We'll send a reminder."),
        "closing_extra": "Perfect, goodbye.",
    },
    "travel_planning": {
        "opening": ("So, are we still going to {city} in {month}?",
                    "Definitely. I've been looking at trains."),
        "middle": (
            ("How long does the train take?", "About {hours} hours, if we change at {hub}."),
            ("Should we book a hotel or an apartment?", "An apartment is cheaper if we share."),
            ("What do you want to see there?", "The old town, and maybe a museum."),
            ("How much should we budget for food?", "Maybe thirty pounds a day each."),
            ("Do you want to hire bikes?", "Yes, if the weather is good."),
        ),
        "closing": ("Okay, I'll send you some links tonight.", "Great, let's book it this weekend."),
        "closing_extra": "Deal, talk soon.",
    },
}

SLOT_VALUES: dict[str, tuple[str, ...]] = {
    "party": ("two", "three", "four", "five", "six"),
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
    "time": ("seven", "half past seven", "eight", "quarter past eight", "six thirty"),
    "name": ("Patel", "Morrison", "Okafor", "Campbell", "Hughes", "Brennan", "Kowalski"),
    "place": ("the train station", "the public library", "the town hall", "the post office"),
    "minutes": ("five", "ten", "fifteen"),
    "landmark": ("church", "supermarket", "fire station", "cinema"),
    "doctor": ("Shah", "Murray", "Evans", "Clarke"),
    "city": ("Edinburgh", "Amsterdam", "Paris", "York", "Bristol"),
    "month": ("May", "June", "September", "October"),
    "hours": ("two", "three", "four"),
    "hub": ("London", "Leeds", "Birmingham"),
}

MIN_TURNS = 4
MAX_TURNS = 4 + 2 * min(len(s["middle"]) for s in SCRIPTS.values()) + 1


@dataclass(frozen=True)
class Voice:
    """One espeak-ng voice: base voice, variant, speed (-s) and pitch (-p)."""

    base: str
    variant: str
    speed: int
    pitch: int

    @property
    def name(self) -> str:
        """The ``VOICE+VARIANT`` string passed to ``espeak-ng -v``."""
        return f"{self.base}+{self.variant}"


@dataclass(frozen=True)
class Person:
    """A simulated contributor: a voice and the demographics they declare."""

    voice: Voice
    gender: str
    accent: str
    age_band: str
    level_db: float


@dataclass
class DialoguePlan:
    """Everything decided about one dialogue before any audio is made."""

    dialogue_id: str
    scenario: str
    device: str
    noise_condition: str
    snr_db: float
    noise_type: str
    recorded_on: str
    registrations: list[tuple[int, int]]  # (person index, registration number), A then B
    speaker_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlacedTurn:
    """A placed turn; ``start`` and ``end`` are sample indices at 16 kHz."""

    speaker: str
    start: int
    end: int
    text: str
    words: tuple[TimedToken, ...] = ()  # each token's span in samples from the turn's start


# --------------------------------------------------------------------------- speech


def synthesize(voice: Voice, text: str, workdir: Path) -> tuple[np.ndarray, tuple[TimedToken, ...]]:
    """Say ``text`` with espeak-ng; return trimmed float32 audio at 16 kHz and each word's span in it."""
    wav = workdir / "utterance.wav"
    cmd = [ESPEAK, "-v", voice.name, "-s", str(voice.speed), "-p", str(voice.pitch), "-w", str(wav), text]
    subprocess.run(cmd, check=True, capture_output=True)
    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    starts = word_starts(voice.name, voice.speed, voice.pitch, text, audio, rate)
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype(np.float32)
    lo, hi = speech_span(audio)
    words = tuple(TimedToken(t.text, min(max(t.start - lo, 0), hi - lo), min(max(t.end - lo, 0), hi - lo))
                  for t in token_spans(text, starts, audio, SAMPLE_RATE))
    return audio[lo:hi], words


def speech_span(audio: np.ndarray, threshold_db: float = -40.0, frame: int = 80) -> tuple[int, int]:
    """The samples between the first and last frame louder than ``threshold_db`` below the loudest."""
    n_frames = len(audio) // frame
    if n_frames == 0:
        return 0, len(audio)
    rms = np.sqrt(np.mean(audio[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (threshold_db / 20))
    return int(loud[0]) * frame, (int(loud[-1]) + 1) * frame


def set_level(audio: np.ndarray, level_db: float) -> np.ndarray:
    """Scale ``audio`` to an RMS of ``level_db`` dBFS."""
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
    return (audio * (10 ** (level_db / 20) / max(rms, 1e-9))).astype(np.float32)


# --------------------------------------------------------------------------- noise and channel


def babble_noise(n: int, rng: np.random.Generator, talkers: int = 6) -> np.ndarray:
    """Babble-like noise: several speech-band noises, each with a syllable-rate envelope."""
    band = signal.butter(4, (150, 4000), btype="bandpass", fs=SAMPLE_RATE, output="sos")
    syllables = signal.butter(2, 5, btype="lowpass", fs=SAMPLE_RATE, output="sos")
    out = np.zeros(n)
    for _ in range(talkers):
        carrier = signal.sosfilt(band, pink_noise(n, rng))
        envelope = signal.sosfiltfilt(syllables, np.abs(rng.standard_normal(n)))
        envelope = np.clip(envelope / envelope.mean() - 0.6, 0.0, None)
        out += carrier * envelope
    return out


def device_channel(audio: np.ndarray, device: str) -> np.ndarray:
    """Apply the device's frequency response (zero phase, so timing is unchanged)."""
    if device == "phone":
        sos = signal.butter(6, (300, 3400), btype="bandpass", fs=SAMPLE_RATE, output="sos")
    elif device == "laptop":
        sos = np.vstack([
            signal.butter(2, 150, btype="highpass", fs=SAMPLE_RATE, output="sos"),
            signal.butter(2, 6000, btype="lowpass", fs=SAMPLE_RATE, output="sos"),
        ])
    elif device == "headset":
        sos = signal.butter(1, 50, btype="highpass", fs=SAMPLE_RATE, output="sos")
    else:
        raise ValueError(f"unknown device {device!r}")
    return signal.sosfiltfilt(sos, audio)


def active_mask(turns: Sequence[PlacedTurn], n: int) -> np.ndarray:
    """True on samples inside any turn."""
    mask = np.zeros(n, dtype=bool)
    for turn in turns:
        mask[turn.start : turn.end] = True
    return mask


def snr_db(speech: np.ndarray, noise: np.ndarray, mask: np.ndarray) -> float:
    """Speech power over the active-speech samples against noise power over all samples."""
    return float(10 * np.log10(np.mean(speech[mask] ** 2) / np.mean(noise**2)))


# --------------------------------------------------------------------------- planning


def plan_set(count: int, rng: np.random.Generator) -> tuple[list[Person], list[DialoguePlan]]:
    """Decide the contributors and each dialogue's speakers, conditions and dates.

    With two or more dialogues one contributor takes part in two dialogues under one
    speaker id, and one contributor is registered twice: the same voice appears in two
    dialogues under two speaker ids.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    n_persons = 2 if count == 1 else 2 * count - 2

    genders = ["female"] * (n_persons // 2) + ["male"] * (n_persons - n_persons // 2)
    genders = [genders[i] for i in rng.permutation(n_persons)]
    accents = _spread(PLAN_ACCENTS, n_persons, rng)
    ages = _spread(AGE_BANDS, n_persons, rng)
    persons: list[Person] = []
    used: set[str] = set()
    for gender, accent, age in zip(genders, accents, ages):
        # A variant fixes the voice's formants: two people sharing one sound like one
        # speaker with two accents, which no diarizer (or listener) can tell apart.
        variants = [v for v in GENDER_VARIANTS[gender] if v not in used]
        variants = variants or list(GENDER_VARIANTS[gender])
        variant = str(rng.choice(variants))
        used.add(variant)
        pitch = int(rng.integers(40, 76)) if gender == "female" else int(rng.integers(25, 61))
        voice = Voice(ACCENT_VOICES[accent], variant, int(rng.integers(150, 176)), pitch)
        persons.append(Person(voice, gender, accent, age, float(rng.uniform(-2.0, 2.0))))

    # Seat the contributors: person 0 comes back under one id, person 1 registered twice.
    seats: list[list[tuple[int, int]]] = [[] for _ in range(count)]
    fresh = iter(range(n_persons))
    if count >= 2:
        next(fresh), next(fresh)
        order = [int(i) for i in rng.permutation(count)]
        returning = order[:2]
        twice = order[2:4] if count >= 4 else order[-2:]
        for d in returning:
            seats[d].append((0, 0))
        for registration, d in enumerate(sorted(twice)):
            seats[d].append((1, registration))
    for d in range(count):
        while len(seats[d]) < 2:
            seats[d].append((next(fresh), 0))
        if rng.random() < 0.5:
            seats[d].reverse()

    scenarios = _spread(SCENARIOS, count, rng)
    devices = _spread(DEVICES, count, rng)
    n_quiet = (count + 1) // 2
    conditions = ["quiet"] * n_quiet + ["noisy"] * (count - n_quiet)
    conditions = [conditions[i] for i in rng.permutation(count)]
    quiet = [d for d, c in enumerate(conditions) if c == "quiet"]
    mismatched = int(rng.choice(quiet)) if len(quiet) >= 2 else None

    plans: list[DialoguePlan] = []
    day = FIRST_RECORDING_DAY
    for d in range(count):
        if d == mismatched:
            snr = round(float(rng.uniform(*MISMATCH_SNR_RANGE_DB)), 1)
        elif conditions[d] == "quiet":
            snr = QUIET_SNR_DB
        else:
            snr = round(float(rng.uniform(*NOISY_SNR_RANGE_DB)), 1)
        plans.append(DialoguePlan(
            dialogue_id=f"dlg{d + 1:03d}",
            scenario=scenarios[d],
            device=devices[d],
            noise_condition=conditions[d],
            snr_db=snr,
            noise_type=str(rng.choice(NOISE_TYPES)),
            recorded_on=day.isoformat(),
            registrations=seats[d],
        ))
        day += dt.timedelta(days=int(rng.integers(1, 4)))

    ids: dict[tuple[int, int], str] = {}
    for plan in plans:
        for key in plan.registrations:
            ids.setdefault(key, f"spk-{len(ids) + 1:04d}")
        plan.speaker_ids = [ids[key] for key in plan.registrations]
    return persons, plans


def _spread(values: Sequence[str], n: int, rng: np.random.Generator) -> list[str]:
    """``n`` values covering all of ``values`` as evenly as possible, in random order."""
    tiled = [values[i] for i in rng.permutation(len(values))] * (n // len(values) + 1)
    tiled = tiled[:n]
    return [tiled[i] for i in rng.permutation(n)]


def script_lines(scenario: str, turn_count: int, rng: np.random.Generator,
                 slot_values: dict[str, tuple[str, ...]] = SLOT_VALUES) -> list[str]:
    """Pick and fill ``turn_count`` alternating lines (A first) for ``scenario``."""
    script = SCRIPTS[scenario]
    n_middle = (turn_count - 4) // 2
    chosen = sorted(rng.choice(len(script["middle"]), size=n_middle, replace=False).tolist())
    lines = list(script["opening"])
    for i in chosen:
        lines.extend(script["middle"][i])
    lines.extend(script["closing"])
    if turn_count % 2:
        lines.append(script["closing_extra"])
    slots = {key: str(rng.choice(values)) for key, values in slot_values.items()}
    slots["day2"] = str(rng.choice([d for d in slot_values["day"] if d != slots["day"]] or slot_values["day"]))
    return [line.format(**slots) for line in lines]


# --------------------------------------------------------------------------- one dialogue


def layout(
    main: list[tuple[str, np.ndarray, str, tuple[TimedToken, ...]]],
    backchannels: dict[str, list[tuple[np.ndarray, str, tuple[TimedToken, ...]]]],
    rng: np.random.Generator,
    extra: tuple[int, dict[str, list[tuple[np.ndarray, str, tuple[TimedToken, ...]]]], np.random.Generator] | None = None,
) -> list[tuple[PlacedTurn, np.ndarray]]:
    """Place the main turns (gaps and a few overlaps) and then some backchannels.

    ``main`` holds (speaker, audio, text, word spans) in speaking order; ``backchannels``
    maps each speaker to candidate (audio, text, word spans). ``extra`` (count, candidates,
    generator) adds more backchannels after those, drawn from their own generator so that
    the main layout stays what it is without them.
    """
    sr = SAMPLE_RATE
    eligible = [i for i in range(1, len(main)) if len(main[i - 1][1]) >= 1.2 * sr]
    n_overlaps = min(len(eligible), int(rng.integers(1, 4)))
    overlapping = set(rng.choice(eligible, size=n_overlaps, replace=False).tolist()) if eligible else set()

    placed: list[tuple[PlacedTurn, np.ndarray]] = []
    cursor = int(rng.uniform(0.5, 1.0) * sr)
    for i, (speaker, audio, text, words) in enumerate(main):
        if i == 0:
            start = cursor
        elif i in overlapping:
            start = cursor - int(rng.uniform(0.2, 0.5) * sr)
        else:
            start = cursor + int(rng.uniform(0.1, 0.6) * sr)
        placed.append((PlacedTurn(speaker, start, start + len(audio), text, words), audio))
        cursor = start + len(audio)

    place_backchannels(placed, main, backchannels, int(rng.integers(1, 3)), rng)
    if extra is not None:
        count, loud, extra_rng = extra
        place_backchannels(placed, main, loud, count, extra_rng)
    placed.sort(key=lambda item: (item[0].start, item[0].end))
    return placed


def place_backchannels(
    placed: list[tuple[PlacedTurn, np.ndarray]],
    main: list[tuple[str, np.ndarray, str, tuple[TimedToken, ...]]],
    backchannels: dict[str, list[tuple[np.ndarray, str, tuple[TimedToken, ...]]]],
    n_backchannels: int,
    rng: np.random.Generator,
) -> None:
    """Add up to ``n_backchannels`` backchannels inside main turns of 2 s or more (the first
    ``len(main)`` items of ``placed``), each by the listener, 0.3 s clear of their own turns."""
    sr = SAMPLE_RATE
    candidates = [int(i) for i in rng.permutation(len(main))]
    added = 0
    for i in candidates:
        if added == n_backchannels:
            break
        host = placed[i][0]
        if host.end - host.start < 2.0 * sr:
            continue
        listener = next(s for s, _, _, _ in main if s != host.speaker)
        audio, text, words = backchannels[listener][int(rng.integers(len(backchannels[listener])))]
        own = [t for t, _ in placed if t.speaker == listener]
        earliest = max([host.start + int(0.35 * (host.end - host.start))]
                       + [t.end + int(0.3 * sr) for t in own if t.start < host.start])
        latest = min([host.end - int(0.3 * sr)]
                     + [t.start - int(0.3 * sr) for t in own if t.start > host.start]) - len(audio)
        if latest <= earliest:
            continue
        start = int(rng.integers(earliest, latest))
        placed.append((PlacedTurn(listener, start, start + len(audio), text, words), audio))
        added += 1


@dataclass(frozen=True)
class Realism:
    """One dialogue's real-world conditions (see `collection.synthetic.conditions`)."""

    noise_kind: str
    snr_db: float
    room: Room | None
    level_offset_db: tuple[float, float]  # added to speaker A's and B's level
    extra_backchannels: int

    def as_json(self, device: str) -> dict:
        """What ``truth.json`` ``conditions`` records for the dialogue."""
        return {
            "noise": self.noise_kind, "snr_db": self.snr_db, "telephone_line": DEVICE_CHANNELS[device].telephone,
            "band_hz": list(DEVICE_CHANNELS[device].band_hz), "rt60_s": self.room.rt60_s if self.room else None,
            "level_offset_db": list(self.level_offset_db), "extra_backchannels": self.extra_backchannels,
        }


def draw_realism(plan: DialoguePlan, rng: np.random.Generator) -> Realism:
    """Draw the conditions that ``plan``'s device and noise condition stand for.

    The SNR is drawn in the condition's range, except for a dialogue whose SNR was planned
    to contradict its declared condition (``truth.json`` ``noise_mismatch``), which keeps it.
    """
    channel = DEVICE_CHANNELS[plan.device]
    noise = NOISE_CONDITIONS[plan.noise_condition]
    kind = str(rng.choice(noise.kinds))
    snr = round(float(rng.uniform(*noise.snr_db)), 1)
    if plan.noise_condition == "quiet" and plan.snr_db < QUIET_SNR_DB - 5:
        snr = plan.snr_db
    room = draw_room(rng, channel.rt60_range_s, channel.distance_range_m) if channel.rt60_range_s else None
    difference = float(rng.uniform(*LEVEL_DIFFERENCE_DB)) * float(rng.choice([-1.0, 1.0]))
    offsets = (round(difference / 2, 1), round(-difference / 2, 1))
    return Realism(kind, snr, room, offsets, int(rng.integers(1, 4)))


def render_dialogue(
    plan: DialoguePlan,
    persons: Sequence[Person],
    turn_count: int,
    rng: np.random.Generator,
    workdir: Path,
    realism: Realism | None = None,
    realism_rng: np.random.Generator | None = None,
    slot_values: dict[str, tuple[str, ...]] = SLOT_VALUES,
) -> tuple[np.ndarray, list[PlacedTurn], float]:
    """Synthesize, lay out, channel and mix one dialogue; return audio, turns, real SNR.

    With ``realism`` (and its own ``realism_rng``) the dialogue gets those conditions;
    ``rng`` is drawn from exactly as without, so the words, voices and main-turn timing
    are those of the plain dialogue.
    """
    speakers = {sid: persons[p] for sid, (p, _) in zip(plan.speaker_ids, plan.registrations)}
    offsets = dict(zip(plan.speaker_ids, realism.level_offset_db if realism else (0.0, 0.0)))
    lines = script_lines(plan.scenario, turn_count, rng, slot_values)
    main = []
    for i, text in enumerate(lines):
        sid = plan.speaker_ids[i % 2]
        audio, words = synthesize(speakers[sid].voice, text, workdir)
        main.append((sid, set_level(audio, -20.0 + speakers[sid].level_db + offsets[sid]), text, words))
    backchannels = {}
    for sid, person in speakers.items():
        picks = rng.choice(len(BACKCHANNELS), size=2, replace=False)
        backchannels[sid] = []
        for k in picks:
            audio, words = synthesize(person.voice, BACKCHANNELS[k], workdir)
            backchannels[sid].append((set_level(audio, -24.0 + person.level_db + offsets[sid]), BACKCHANNELS[k], words))
    extra = None
    if realism is not None:
        loud = {sid: [(audio * LOUD_BACKCHANNEL_GAIN, text, words) for audio, text, words in pairs]
                for sid, pairs in backchannels.items()}
        extra = (realism.extra_backchannels, loud, realism_rng)
    placed = layout(main, backchannels, rng, extra)

    n = max(turn.end for turn, _ in placed) + int(rng.uniform(0.5, 1.0) * SAMPLE_RATE)
    turns = [turn for turn, _ in placed]
    mask = active_mask(turns, n)
    tracks = {sid: np.zeros(n) for sid in plan.speaker_ids}
    for turn, audio in placed:
        tracks[turn.speaker][turn.start : turn.end] += audio
    # drawn even when realism replaces it, so that ``rng`` stays in step with the plain set
    noise = pink_noise(n, rng) if plan.noise_type == "pink" else babble_noise(n, rng)
    if realism is None:
        speech = device_channel(sum(tracks.values()), plan.device)
        noise = device_channel(noise, plan.device)
        noise *= 10 ** ((snr_db(speech, noise, mask) - plan.snr_db) / 20)
        mixed = speech + noise
        measured = snr_db(speech, noise, mask)
    else:
        mixed, measured = _realistic_mix(plan, realism, list(tracks.values()), mask, speakers, realism_rng, workdir)
    gain = 10 ** (PEAK_DBFS / 20) / np.max(np.abs(mixed))
    return (mixed * gain).astype(np.float32), turns, measured


def _realistic_mix(plan: DialoguePlan, realism: Realism, tracks: list[np.ndarray], mask: np.ndarray,
                   speakers: dict[str, Person], rng: np.random.Generator, workdir: Path) -> tuple[np.ndarray, float]:
    """Room, device band, real noise at the SNR, then the telephone line; returns the mix and
    the SNR measured before the line (the codec adds its own quantisation noise)."""
    channel = DEVICE_CHANNELS[plan.device]
    n = len(mask)
    if realism.room is not None:
        responses = room_impulse_responses(realism.room)
        tracks = [reverberate(track, rir) for track, rir in zip(tracks, responses)]
    speech = band_filter(sum(tracks), channel.band_hz)
    if realism.noise_kind == "babble":
        noise = speech_babble(n, _babble_talkers(speakers, rng, workdir), rng)
        if realism.room is not None:  # the café is in the room too
            noise = reverberate(noise, room_impulse_responses(draw_room(rng, (realism.room.rt60_s,) * 2, (2.0, 3.0), 1))[0])
    else:
        noise = STATIONARY_NOISES[realism.noise_kind](n, rng)
    noise = band_filter(noise, channel.band_hz)
    noise *= 10 ** ((snr_db(speech, noise, mask) - realism.snr_db) / 20)
    measured = snr_db(speech, noise, mask)
    mixed = speech + noise
    return (telephone_line(mixed) if channel.telephone else mixed), measured


def _babble_talkers(speakers: dict[str, Person], rng: np.random.Generator, workdir: Path) -> list[np.ndarray]:
    """Speech of ``BABBLE_TALKERS`` other voices (none of the dialogue's own), three lines each."""
    own = {person.voice.name for person in speakers.values()}
    lines = [line for script in SCRIPTS.values() for pair in script["middle"] for line in pair if "{" not in line]
    talkers = []
    while len(talkers) < BABBLE_TALKERS:
        gender = str(rng.choice(list(GENDER_VARIANTS)))
        voice = Voice(str(rng.choice(list(ACCENT_VOICES.values()))), str(rng.choice(GENDER_VARIANTS[gender])),
                      int(rng.integers(150, 190)), int(rng.integers(25, 76)))
        if voice.name in own:
            continue
        said = [synthesize(voice, str(rng.choice(lines)), workdir)[0] for _ in range(3)]
        talkers.append(np.concatenate([np.concatenate([s, np.zeros(int(0.2 * SAMPLE_RATE))]) for s in said]))
    return talkers


# --------------------------------------------------------------------------- writing


def scoring_text(text: str) -> str:
    """Lower-case words without punctuation (apostrophes inside words are kept)."""
    words = re.sub(r"[^a-z0-9']+", " ", text.lower()).split()
    return " ".join(w.strip("'") for w in words if w.strip("'"))


def _seconds(samples: int) -> float:
    return round(samples / SAMPLE_RATE, 3)


def write_ground_truth(out_dir: Path, dialogue_id: str, placed: Sequence[PlacedTurn]) -> None:
    """Write ``<id>.rttm``, ``<id>.stm`` (normalised text) and ``<id>.turns.json`` (turns in start order, with
    each word's true span: `word_times`)."""
    turns = [Turn(p.speaker, _seconds(p.start), _seconds(p.end), p.text,
                  tuple(Word(w.text, _seconds(p.start + w.start), _seconds(p.start + w.end)) for w in p.words))
             for p in placed]
    (out_dir / f"{dialogue_id}.rttm").write_text(turns_to_rttm(turns, dialogue_id))
    (out_dir / f"{dialogue_id}.stm").write_text(turns_to_stm([replace(t, text=scoring_text(t.text)) for t in turns], dialogue_id))
    (out_dir / f"{dialogue_id}.turns.json").write_text(json.dumps([t.to_json() for t in turns], indent=1) + "\n")


def write_set_files(
    out_dir: Path,
    persons: Sequence[Person],
    plans: Sequence[DialoguePlan],
    measured_snr: dict[str, float],
    conditions: dict[str, dict] | None = None,
) -> None:
    """Write manifest.jsonl, manifest.csv, consent.csv and truth.json (with ``conditions``
    per dialogue for a realistic set)."""
    registrations: dict[str, tuple[int, int]] = {}
    entries = []
    for plan in plans:
        speakers = []
        for sid, key in zip(plan.speaker_ids, plan.registrations):
            registrations[sid] = key
            person = persons[key[0]]
            speakers.append({
                "speaker_id": sid,
                "consent_ref": f"c-{sid}",
                "demographics": {
                    "age_band": person.age_band,
                    "gender": person.gender,
                    "accent": person.accent,
                    "native_language": "en",
                },
            })
        entries.append({
            "path": f"{plan.dialogue_id}.flac",
            "session_id": plan.dialogue_id,
            "device": plan.device,
            "noise_condition": plan.noise_condition,
            "scenario": plan.scenario,
            "language": "en",
            "recorded_on": plan.recorded_on,
            "speakers": speakers,
        })
    with open(out_dir / "manifest.jsonl", "w") as fh:
        for entry in entries:
            fh.write(json.dumps(entry) + "\n")
    with open(out_dir / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(MANIFEST_CSV_COLUMNS)
        for entry in entries:
            recording = [entry[k] for k in MANIFEST_CSV_COLUMNS[:7]]
            for spk in entry["speakers"]:
                demo = spk["demographics"]
                writer.writerow(recording + [spk["speaker_id"], spk["consent_ref"], demo["age_band"],
                                             demo["gender"], demo["accent"], demo["native_language"]])
    speaker_ids = sorted(registrations)
    with open(out_dir / "consent.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CONSENT_CSV_COLUMNS)
        for sid in speaker_ids:
            writer.writerow([f"c-{sid}", sid, CONSENT_FORM_VERSION, CONSENT_PERMITTED_USES,
                             CONSENT_GRANTED_ON, CONSENT_EXPIRES_ON, ""])

    by_person: dict[int, list[str]] = {}
    for sid in speaker_ids:
        by_person.setdefault(registrations[sid][0], []).append(sid)
    truth = {
        "voices": {sid: persons[registrations[sid][0]].voice.name for sid in speaker_ids},
        "duplicates": [ids for ids in by_person.values() if len(ids) > 1],
        "snr_db": measured_snr,
        "voice_params": {
            sid: {"voice": v.name, "speed": v.speed, "pitch": v.pitch}
            for sid in speaker_ids
            for v in [persons[registrations[sid][0]].voice]
        },
        "noise_type": {plan.dialogue_id: plan.noise_type for plan in plans},
        "noise_mismatch": [
            plan.dialogue_id for plan in plans
            if plan.noise_condition == "quiet" and plan.snr_db < QUIET_SNR_DB - 5
        ],
    }
    if conditions:
        truth["conditions"] = conditions
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")


def slot_words(overrides: dict[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """``SLOT_VALUES`` with some slots' words replaced (e.g. the names a protocol's vocabulary lists)."""
    unknown = sorted(set(overrides) - set(SLOT_VALUES))
    if unknown:
        raise ValueError(f"unknown slot(s) {', '.join(unknown)} (slots: {', '.join(SLOT_VALUES)})")
    empty = sorted(k for k, words in overrides.items() if not [w for w in words if w.strip()])
    if empty:
        raise ValueError(f"slot(s) {', '.join(empty)} given no words")
    return {**SLOT_VALUES, **{k: tuple(w.strip() for w in words if w.strip()) for k, words in overrides.items()}}


def generate_dialogues(out_dir: Path, count: int = 6, seed: int = 0, turn_count: int = 10,
                       realistic: bool = False, slots: dict[str, Sequence[str]] | None = None) -> list[Path]:
    """Generate ``count`` dialogues and their ground truth into ``out_dir``.

    Returns the FLAC paths in dialogue order. The same ``seed`` gives byte-identical
    files (on the same espeak-ng, libsndfile, soxr and pyroomacoustics versions).
    ``realistic`` gives each dialogue the real-world conditions its device and noise
    condition stand for (`collection.synthetic.conditions`), drawn from a generator of
    their own: the speakers, words and main turns are those of the plain set of the seed.
    ``slots`` replaces the words some script slots are filled from (see ``slot_words``).
    """
    if not MIN_TURNS <= turn_count <= MAX_TURNS:
        raise ValueError(f"turn_count must be between {MIN_TURNS} and {MAX_TURNS}")
    slot_values = slot_words(slots or {})
    if shutil.which(ESPEAK) is None:
        raise RuntimeError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    realism_rng = np.random.default_rng([seed, REALISM_STREAM])
    persons, plans = plan_set(count, rng)
    paths: list[Path] = []
    measured: dict[str, float] = {}
    conditions: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="turnscribe-synth-") as tmp:
        for plan in plans:
            realism = draw_realism(plan, realism_rng) if realistic else None
            audio, turns, snr = render_dialogue(plan, persons, turn_count, rng, Path(tmp), realism, realism_rng, slot_values)
            if realism is not None:  # after rendering: the plain draws must not see it
                plan.snr_db, plan.noise_type = realism.snr_db, realism.noise_kind
                conditions[plan.dialogue_id] = realism.as_json(plan.device)
            path = out_dir / f"{plan.dialogue_id}.flac"
            sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
            write_ground_truth(out_dir, plan.dialogue_id, turns)
            measured[plan.dialogue_id] = round(snr, 2)
            paths.append(path)
    write_set_files(out_dir, persons, plans, measured, conditions)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DIALOGUES_DIR, help="output folder (default: committed set)")
    parser.add_argument("--count", type=int, default=6, help="number of dialogues (default 6)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--turns", type=int, default=10, help=f"main turns per dialogue ({MIN_TURNS}-{MAX_TURNS})")
    parser.add_argument("--realistic", action="store_true",
                        help="telephone line, rooms, real noise types, level differences, more backchannels")
    parser.add_argument("--slot", action="append", default=[], metavar="SLOT=WORD,WORD",
                        help=f"fill a script slot from these words (slots: {', '.join(SLOT_VALUES)}); repeatable")
    args = parser.parse_args(argv)
    slots: dict[str, list[str]] = {}
    for given in args.slot:
        key, sep, words = given.partition("=")
        if not sep:
            parser.error(f"--slot {given!r}: write SLOT=WORD,WORD")
        slots[key.strip()] = words.split(",")
    try:
        slot_words(slots)
    except ValueError as exc:
        parser.error(f"--slot: {exc}")
    if args.count < 1:
        parser.error("--count must be at least 1")
    if not MIN_TURNS <= args.turns <= MAX_TURNS:
        parser.error(f"--turns must be between {MIN_TURNS} and {MAX_TURNS}")
    for path in generate_dialogues(args.out, count=args.count, seed=args.seed, turn_count=args.turns,
                                   realistic=args.realistic, slots=slots):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
