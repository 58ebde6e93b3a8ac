"""A recording's words do not depend on what the process transcribed before (real tiny.en).

Temperature fallback samples, and CTranslate2 seeds each decoding thread's generator only once
(`asr.transcriber.SamplingWatch`). Reversed speech is what makes tiny.en fall back here: the
committed dialogues decode at temperature 0 and never sample.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.models import resolve_model
from asr.transcriber import Transcriber, options_for
from collection.decoding import decode, to_working_rate
from collection.synthetic import DIALOGUES_DIR


def _reversed(name: str) -> np.ndarray:
    decoded = decode(DIALOGUES_DIR / f"{name}.flac")
    return to_working_rate(decoded.samples, decoded.sample_rate)[::-1].copy()


def _words(transcriber: Transcriber, audio: np.ndarray) -> list[str]:
    return [w["text"] for w in transcriber.transcribe(audio, language="en").words]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def _transcriber(models: Path) -> Transcriber:
    return Transcriber(resolve_model("tiny.en", models), options_for("tiny.en"), device="cpu")


def test_a_recording_after_one_that_sampled_gets_the_words_it_gets_alone(models: Path) -> None:
    first, second = _reversed("dlg002"), _reversed("dlg001")
    alone = _words(_transcriber(models), second)
    shared = _transcriber(models)
    _words(shared, first)
    assert shared.model.model.sampled, "the first recording must make tiny.en fall back to sampling"
    assert _words(shared, second) == alone
    assert shared.reloads == 1


def test_recordings_that_never_sample_load_the_model_once(models: Path) -> None:
    transcriber = _transcriber(models)
    for name in ("dlg001", "dlg002"):
        decoded = decode(DIALOGUES_DIR / f"{name}.flac")
        assert _words(transcriber, to_working_rate(decoded.samples, decoded.sample_rate))
        assert not transcriber.model.model.sampled
    assert transcriber.reloads == 0
