"""Decoding every container we accept, and refusing what cannot be trusted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from collection.decoding import AudioDecodeError, decode, to_working_rate
from collection.measurements import measure, measure_file
from collection.synthetic import DIALOGUES_DIR
from tests.factories import ffmpeg

SOURCE = DIALOGUES_DIR / "dlg001.flac"


@pytest.mark.parametrize(
    "suffix,args",
    [(".wav", ["-ar", "44100", "-ac", "2"]), (".flac", []), (".mp3", ["-b:a", "64k"]),
     (".ogg", ["-c:a", "libopus", "-b:a", "32k"]), (".m4a", ["-c:a", "aac", "-b:a", "64k"])],
)
def test_decodes_every_accepted_container(tmp_path: Path, suffix: str, args: list[str]) -> None:
    path = ffmpeg(SOURCE, tmp_path / f"x{suffix}", *args)
    decoded = decode(path)
    expected = sf.info(SOURCE).duration
    assert decoded.duration_s == pytest.approx(expected, abs=0.1)
    mono = to_working_rate(decoded.samples, decoded.sample_rate)
    assert len(mono) == pytest.approx(16000 * expected, abs=1600)
    assert measure(decoded, mono).speech_ratio > 0.3


def test_refuses_empty_corrupt_and_truncated(tmp_path: Path) -> None:
    empty = tmp_path / "e.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty file"):
        decode(empty)
    noise = tmp_path / "n.mp3"
    noise.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(AudioDecodeError):
        decode(noise)
    wav = ffmpeg(SOURCE, tmp_path / "w.wav")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav.read_bytes()[:5000])
    with pytest.raises(AudioDecodeError, match="truncated"):
        decode(cut)


def test_text_named_like_audio_is_refused_not_a_crash(tmp_path: Path) -> None:
    """FFmpeg guesses a FLAC stream from the name alone (0 Hz, 0 channels): a refusal, not an error that stops the batch."""
    text = tmp_path / "t.flac"
    text.write_bytes(b"not audio at all" * 64)
    with pytest.raises(AudioDecodeError, match="no sample rate or channels"):
        measure_file(text, tmp_path / "w.wav")


def test_snr_estimate_separates_quiet_from_noisy() -> None:
    import json

    truth = json.loads((DIALOGUES_DIR / "truth.json").read_text())["snr_db"]
    measured = {}
    for name in truth:
        decoded = decode(DIALOGUES_DIR / f"{name}.flac")
        measured[name] = measure(decoded, to_working_rate(decoded.samples, decoded.sample_rate)).snr_db
    for name, snr in truth.items():
        assert (measured[name] >= 20) == (snr >= 20), (name, snr, measured[name])


def test_clipping_and_silence_are_measured(tmp_path: Path) -> None:
    rate = 16000
    tone = 1.5 * np.sin(2 * np.pi * 220 * np.arange(rate * 2) / rate)
    path = tmp_path / "clip.wav"
    sf.write(path, np.clip(tone, -1, 1), rate, subtype="PCM_16")
    decoded = decode(path)
    assert measure(decoded, to_working_rate(decoded.samples, rate)).clipping_ratio > 0.3
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(rate * 2), rate, subtype="PCM_16")
    decoded = decode(silent)
    measured = measure(decoded, to_working_rate(decoded.samples, rate))
    assert measured.speech_ratio == 0 and measured.snr_db is None
