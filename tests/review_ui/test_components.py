"""The editor's audio window, waveform drawing and unsure-word marks, on a real working copy."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from review_ui.components.audio_window import MAX_VIEW_S, clip_wav, envelope, read_window
from review_ui.components.unsure_words import marked_text_html
from review_ui.components.waveform import waveform_svg

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


def test_waveform_draws_the_turns_in_view_with_escaped_labels(working_copy: Path) -> None:
    env = envelope(working_copy, 2.0, 6.0, columns=50)
    turns = [{"speaker": "A", "start": 0.5, "end": 1.5, "text": ""},
             {"speaker": "<b>", "start": 2.5, "end": 4.0, "text": ""},
             {"speaker": "A", "start": 5.0, "end": 7.0, "text": ""}]
    svg = waveform_svg(env, turns, selected=2)
    assert svg.count('class="ts-turn"') == 2, "the turn before the window is not drawn"
    assert 'data-index="1"' in svg and 'data-index="2"' in svg and 'data-index="0"' not in svg
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert 'data-index="2" x="750.0"' in svg and 'width="250.0"' in svg, "clipped to the window's right edge"


def test_unsure_words_are_marked_with_their_probability() -> None:
    turn = {"speaker": "A", "start": 0.0, "end": 1.0, "text": "fish <and> chips",
            "words": [{"text": "fish", "start": 0.0, "end": 0.3, "probability": 0.95},
                      {"text": "<and>", "start": 0.3, "end": 0.5, "probability": 0.2},
                      {"text": "chips", "start": 0.5, "end": 1.0, "probability": 0.8}]}
    html = marked_text_html(turn)
    assert html.startswith("fish <mark") and 'title="model probability 0.20"' in html and "&lt;and&gt;</mark> chips" in html
    assert "<mark" not in marked_text_html({**turn, "text": "fish and chips"}), "retyped text has no stale marks"


def test_autosave_waits_for_unsaved_edits_and_a_quiet_interval() -> None:
    import datetime as dt

    from review_ui.components.draft import AUTOSAVE_S, autosave_due

    opened = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.timezone.utc)
    later = opened + dt.timedelta(seconds=AUTOSAVE_S)
    state = {"turns": [{"text": "edited"}], "saved": [{"text": "model"}], "conflict": None, "saved_at": None, "opened_at": opened}
    assert autosave_due(state, later) and not autosave_due(state, later - dt.timedelta(seconds=1))
    assert not autosave_due({**state, "saved": state["turns"]}, later), "nothing unsaved"
    assert not autosave_due({**state, "conflict": object()}, later), "a conflict waits for the person's choice"
    assert not autosave_due({**state, "saved_at": later}, later + dt.timedelta(seconds=5)), "counted from the last save"
