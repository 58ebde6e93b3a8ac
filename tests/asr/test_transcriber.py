"""tiny.en on real audio: words with timings, and each guard on audio that provokes it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.evaluation import normalize
from asr.models import resolve_model
from asr.transcriber import AsrOptions, Transcriber, collapse_loops
from collection.decoding import decode, to_working_rate
from collection.synthetic import DIALOGUES_DIR

RATE = 16000


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def _transcriber(models_dir: Path, **options) -> Transcriber:  # type: ignore[no-untyped-def]
    return Transcriber(resolve_model("tiny.en", models_dir), AsrOptions(**options), device="cpu")


@pytest.fixture(scope="module")
def guarded(models_dir: Path) -> Transcriber:
    return _transcriber(models_dir)


def test_words_have_timings_probabilities_and_match_the_script(guarded: Transcriber) -> None:
    decoded = decode(DIALOGUES_DIR / "dlg001.flac")
    result = guarded.transcribe(to_working_rate(decoded.samples, decoded.sample_rate), language="en")
    assert result.language == "en" and len(result.words) > 40
    assert all(0 <= w["start"] <= w["end"] <= result.duration + 0.1 and 0 <= w["probability"] <= 1 for w in result.words)
    reference = set(normalize(" ".join(t["text"] for t in json.loads((DIALOGUES_DIR / "dlg001.turns.json").read_text()))).split())
    heard = [normalize(w["text"]) for w in result.words]
    assert sum(h in reference for h in heard) / len(heard) > 0.6
    assert guarded.params()["options"]["beam_size"] == guarded.options.beam_size


def test_silence_provokes_text_only_without_the_guards(models_dir: Path, guarded: Transcriber) -> None:
    silence = np.zeros(RATE * 10, dtype=np.float32)
    bare = _transcriber(models_dir, vad_filter=False, drop_outside_speech=False, hallucination_silence_threshold=None)
    assert bare.transcribe(silence, language="en", speech_regions=[]).words, "tiny.en hallucinates in silence"
    assert guarded.transcribe(silence, language="en", speech_regions=[]).words == []


def test_text_outside_speech_regions_is_dropped(models_dir: Path) -> None:
    no_vad = _transcriber(models_dir, vad_filter=False)
    silence = np.zeros(RATE * 10, dtype=np.float32)
    result = no_vad.transcribe(silence, language="en", speech_regions=[])
    assert result.words == [] and result.dropped["outside_speech"] >= 1


def _espeak(text: str, path: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
    samples, rate = sf.read(path, dtype="float32")
    return to_working_rate(samples[:, None] if samples.ndim == 1 else samples, rate)


def test_real_repetition_is_not_taken_for_a_loop(guarded: Transcriber, tmp_path: Path) -> None:
    audio = _espeak("No. No. No. No. No. No. I said no.", tmp_path / "no.wav")
    result = guarded.transcribe(audio, language="en", speech_regions=[(0, len(audio) / RATE)])
    assert sum(normalize(w["text"]) == "no" for w in result.words) >= 5
    assert result.dropped["repetition_loop"] == 0


def test_a_decoding_loop_is_cut() -> None:
    words = [{"text": "Thank", "start": 1.0, "end": 1.3, "probability": 0.9},
             {"text": "you.", "start": 1.3, "end": 1.6, "probability": 0.9}]
    loop = [{"text": t, "start": 1.6 + 0.01 * i, "end": 1.61 + 0.01 * i, "probability": 0.2}
            for i, t in enumerate(["Thank", "you."] * 8)]
    kept, dropped = collapse_loops(words + loop, max_repeats=3)
    assert dropped == 12 and [w["text"] for w in kept] == ["Thank", "you."] * 3


def test_long_audio_is_decoded_in_chunks_cut_inside_pauses(models_dir: Path) -> None:
    from asr.transcriber import chunk_bounds

    assert chunk_bounds(25.0, [(0, 9.0), (9.8, 14.0), (14.1, 25.0)], chunk_s=10, search_s=2) == [0.0, 9.4, 19.4, 25.0]
    decoded = decode(DIALOGUES_DIR / "dlg001.flac")
    audio = to_working_rate(decoded.samples, decoded.sample_rate)
    truth = json.loads((DIALOGUES_DIR / "dlg001.turns.json").read_text())
    regions = [(t["start"], t["end"]) for t in truth]
    whole = _transcriber(models_dir).transcribe(audio, language="en", speech_regions=regions)
    chunked = _transcriber(models_dir, chunk_s=10.0).transcribe(audio, language="en", speech_regions=regions)
    starts = [w["start"] for w in chunked.words]
    assert starts == sorted(starts) and chunked.words[-1]["end"] > 20
    assert abs(len(chunked.words) - len(whole.words)) <= 0.15 * len(whole.words), "no speech lost at the cuts"
