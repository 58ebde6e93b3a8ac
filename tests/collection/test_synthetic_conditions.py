"""The realistic conditions of the synthetic generator do what they claim, measured on the audio."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from collection.synthetic.conditions import (
    DEVICE_CHANNELS,
    NOISE_CONDITIONS,
    SAMPLE_RATE,
    Room,
    mulaw_decode,
    mulaw_encode,
    office_noise,
    reverberate,
    room_impulse_responses,
    telephone_line,
    traffic_noise,
)
from collection.synthetic.generator import generate_dialogues
from protocols.loader import load_protocol

PROTOCOLS = sorted((Path(__file__).resolve().parents[2] / "protocols").glob("*.yaml"))
RATE = SAMPLE_RATE


def _band_power(audio: np.ndarray, lo: float, hi: float) -> float:
    freqs, power = signal.welch(audio, fs=RATE, nperseg=2048)
    return float(power[(freqs >= lo) & (freqs < hi)].sum())


def _schroeder_rt60(rir: np.ndarray) -> float:
    """RT60 from the -5 to -25 dB slope of the backward-integrated energy (T20 x 3)."""
    energy = np.cumsum(rir[::-1] ** 2)[::-1]
    db = 10 * np.log10(energy / energy[0])
    i5, i25 = int(np.argmax(db <= -5)), int(np.argmax(db <= -25))
    return 3 * (i25 - i5) / RATE


def test_mulaw_is_g711_bit_for_bit() -> None:
    """Every 16-bit sample codes to the byte, and every byte decodes to the sample, that audioop (the C reference) gives."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop
    pcm = np.arange(-32768, 32768, dtype=np.int16)
    assert mulaw_encode(pcm).tobytes() == audioop.lin2ulaw(pcm.tobytes(), 2)
    codes = np.arange(256, dtype=np.uint8)
    assert mulaw_decode(codes).tobytes() == audioop.ulaw2lin(codes.tobytes(), 2)


def test_the_telephone_line_is_band_limited_and_coded_at_8_khz() -> None:
    noise = np.random.default_rng(1).standard_normal(RATE * 4) * 0.1
    line = telephone_line(noise)
    in_band = _band_power(line, 300, 3400)
    assert _band_power(line, 4000, 8000) < 1e-5 * in_band, "nothing above the 8 kHz line's Nyquist"
    assert _band_power(line, 20, 150) < 1e-3 * in_band, "the line starts at 300 Hz"
    # The same band without the codec: what is left is μ-law's quantisation noise, about 38 dB down.
    import soxr
    band = signal.sosfiltfilt(signal.butter(6, (300, 3400), btype="bandpass", fs=RATE, output="sos"), noise)
    clean = soxr.resample(soxr.resample(band, RATE, 8000, quality="HQ"), 8000, RATE, quality="HQ")[: len(line)]
    codec_snr = 10 * np.log10(np.mean(clean**2) / np.mean((line - clean) ** 2))
    assert 30 < codec_snr < 45, codec_snr


def test_a_room_lengthens_the_decay_as_its_rt60_says() -> None:
    rooms = [Room((6.0, 4.5, 3.0), rt60, (3.0, 2.2, 1.0), ((4.2, 3.0, 1.5),)) for rt60 in (0.3, 0.7)]
    short, long = (room_impulse_responses(room)[0] for room in rooms)
    assert _schroeder_rt60(short) == pytest.approx(0.3, rel=0.35)
    assert _schroeder_rt60(long) == pytest.approx(0.7, rel=0.35)
    assert int(np.argmax(np.abs(long))) <= 8, "the propagation delay is removed: turn times stay exact"
    burst = np.zeros(RATE)
    burst[: RATE // 4] = np.random.default_rng(2).standard_normal(RATE // 4)
    wet = reverberate(burst, long)
    tail = slice(RATE // 4 + RATE // 10, RATE // 4 + RATE // 5)  # 100-200 ms after the burst ends
    assert np.mean(wet[tail] ** 2) > 1e-3 * np.mean(wet[: RATE // 4] ** 2) and not burst[tail].any()


def test_noise_types_sound_like_what_they_are_named() -> None:
    rng = np.random.default_rng(3)
    traffic = traffic_noise(RATE * 10, rng)
    assert _band_power(traffic, 20, 800) > 10 * _band_power(traffic, 800, 8000), "street noise is a low rumble"
    office = office_noise(RATE * 10, rng)
    freqs, power = signal.welch(office, fs=RATE, nperseg=RATE)  # 1 Hz bins
    assert power[50] > 5 * np.median(power[40:61]), "mains hum at 50 Hz"


@pytest.mark.parametrize("path", PROTOCOLS, ids=lambda p: p.stem)
def test_every_protocol_device_and_noise_condition_has_a_realistic_condition(path: Path) -> None:
    protocol = load_protocol(path)
    assert set(protocol.devices) <= set(DEVICE_CHANNELS)
    for condition in protocol.noise_conditions:
        lo, hi = NOISE_CONDITIONS[condition.name].snr_db
        assert condition.snr_db.contains(lo) and condition.snr_db.contains(hi), condition.name


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    plain, real = tmp_path_factory.mktemp("plain"), tmp_path_factory.mktemp("realistic")
    generate_dialogues(plain, count=3, seed=7, turn_count=8)
    generate_dialogues(real, count=3, seed=7, turn_count=8, realistic=True)
    return plain, real


def _manifest(folder: Path) -> dict[str, dict]:
    return {json.loads(line)["session_id"]: json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()}


def test_a_realistic_set_keeps_the_plain_sets_turns_and_adds_overlapping_backchannels(sets) -> None:
    plain, real = sets
    assert _manifest(plain).keys() == _manifest(real).keys()
    truth = json.loads((real / "truth.json").read_text())
    for session in _manifest(plain):
        before = json.loads((plain / f"{session}.turns.json").read_text())
        after = json.loads((real / f"{session}.turns.json").read_text())
        added = [t for t in after if t not in before]
        assert len(after) == len(before) + len(added), "every plain turn is kept, at the same times"
        assert 1 <= len(added) <= truth["conditions"][session]["extra_backchannels"]
        for turn in added:
            assert turn["text"] in BACKCHANNEL_TEXTS
            assert any(o["speaker"] != turn["speaker"] and o["start"] < turn["start"] and turn["end"] < o["end"] for o in after)


BACKCHANNEL_TEXTS = {"Yeah.", "Right.", "Uh huh.", "Okay.", "I see."}


def test_each_device_gets_its_channel_and_the_speakers_their_levels(sets) -> None:
    _, real = sets
    truth = json.loads((real / "truth.json").read_text())
    manifest = _manifest(real)
    devices = {entry["device"]: session for session, entry in manifest.items()}
    assert set(devices) == {"headset", "phone", "laptop"}
    for session, entry in manifest.items():
        audio, rate = sf.read(real / f"{session}.flac")
        assert rate == RATE
        high = _band_power(audio, 4200, 8000) / _band_power(audio, 300, 3400)
        conditions = truth["conditions"][session]
        assert conditions["telephone_line"] == (entry["device"] == "phone")
        assert (high < 1e-6) == (entry["device"] == "phone"), (session, high)  # the 8 kHz line: ~1e-8; the band alone: ~1e-4
        assert (conditions["rt60_s"] is not None) == (entry["device"] == "laptop")
        assert truth["snr_db"][session] == pytest.approx(conditions["snr_db"], abs=0.05)


def _own_level_db(folder: Path, session: str, speaker: str) -> float:
    """RMS (dB) of the samples where only ``speaker`` talks."""
    audio, _ = sf.read(folder / f"{session}.flac")
    turns = json.loads((folder / f"{session}.turns.json").read_text())
    own = np.zeros(len(audio), dtype=bool)
    for turn in turns:
        own[int(turn["start"] * RATE): int(turn["end"] * RATE)] |= turn["speaker"] == speaker
    for turn in turns:
        if turn["speaker"] != speaker:
            own[int(turn["start"] * RATE): int(turn["end"] * RATE)] = False
    return float(10 * np.log10(np.mean(audio[own] ** 2)))


def test_speakers_differ_in_level_by_the_drawn_offsets(sets) -> None:
    """On the headset dialogue (no room, no line) the level gap between the speakers grows by
    the drawn offsets over the plain dialogue's gap (both measured on each speaker's own speech)."""
    plain, real = sets
    manifest = _manifest(real)
    session = next(s for s, entry in manifest.items() if entry["device"] == "headset")
    a, b = (s["speaker_id"] for s in manifest[session]["speakers"])
    offsets = json.loads((real / "truth.json").read_text())["conditions"][session]["level_offset_db"]
    assert abs(offsets[0] - offsets[1]) >= 3.0
    gap_plain = _own_level_db(plain, session, a) - _own_level_db(plain, session, b)
    gap_real = _own_level_db(real, session, a) - _own_level_db(real, session, b)
    assert gap_real - gap_plain == pytest.approx(offsets[0] - offsets[1], abs=1.5)
