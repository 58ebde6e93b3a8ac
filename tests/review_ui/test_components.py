"""The editor's audio window and the peaks the browser draws, on a real working copy."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from review_ui.components.audio_window import MAX_VIEW_S, clip_wav, envelope, read_window
from review_ui.editor_component.bridge import window_audio

RATE = 16000


@pytest.fixture
def working_copy(tmp_path: Path) -> Path:
    """Ten seconds of a known ramp as 16 kHz PCM WAV (the stored working-copy format)."""
    samples = np.linspace(-0.9, 0.9, RATE * 10, dtype=np.float32)
    path = tmp_path / "w.wav"
    sf.write(path, samples, RATE, subtype="PCM_16")
    return path


def test_a_window_reads_exactly_its_samples_and_clamps_to_the_file(working_copy: Path) -> None:
    whole, _ = sf.read(working_copy, dtype="float32")
    part, rate = read_window(working_copy, 2.0, 3.5)
    assert rate == RATE and np.array_equal(part, whole[2 * RATE : int(3.5 * RATE)])
    tail, _ = read_window(working_copy, 9.5, 12.0)
    assert tail.size == RATE // 2, "a window past the end stops at the end"
    clip, clip_rate = sf.read(io.BytesIO(clip_wav(working_copy, 1.0, 2.0)), dtype="float32")
    assert clip_rate == RATE and np.allclose(clip, whole[RATE : 2 * RATE], atol=1 / 32768)


def test_envelope_is_min_and_max_per_column_of_the_window_only(working_copy: Path) -> None:
    whole, _ = sf.read(working_copy, dtype="float32")
    env = envelope(working_copy, 4.0, 6.0, columns=100)
    window = whole[4 * RATE : 6 * RATE].reshape(100, -1)
    assert np.array_equal(env.mins, window.min(axis=1)) and np.array_equal(env.maxs, window.max(axis=1))
    assert (env.start_s, env.end_s) == (4.0, 6.0)
    assert envelope(working_copy, 9.0, 11.0).end_s == pytest.approx(10.0)
    with pytest.raises(ValueError, match="wider than"):
        envelope(working_copy, 0.0, MAX_VIEW_S + 1)


def test_window_peaks_are_the_int8_min_and_max_of_each_hundredth_of_a_second(working_copy: Path) -> None:
    whole, _ = sf.read(working_copy, dtype="float32")
    wav, peaks = window_audio(working_copy, 3.0, 5.0)
    columns = whole[3 * RATE : 5 * RATE].reshape(200, -1)  # 100 columns per second, 160 samples each
    expected = np.empty(400)
    expected[0::2], expected[1::2] = np.round(columns.min(axis=1) * 127), np.round(columns.max(axis=1) * 127)
    assert peaks["peaks"] == expected.astype(int).tolist() and peaks["per_second"] == pytest.approx(100.0)
    assert (peaks["start"], peaks["end"]) == (3.0, 5.0)
    clip, _ = sf.read(io.BytesIO(wav), dtype="float32")
    assert np.allclose(clip, whole[3 * RATE : 5 * RATE], atol=1 / 32768), "the WAV is the window's samples, nothing more"
