"""The ASR stage against bare faster-whisper, and a protocol's vocabulary reaching the decoder (real tiny.en)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.evaluation import normalize, word_counts
from asr.models import resolve_model
from asr.transcriber import Transcriber, options_for, speech_clips, vocabulary_arguments
from collection.decoding import decode, to_working_rate
from collection.synthetic import DIALOGUES_DIR
from diarization.backends import load_diarizer

RATE = 16000
COMMITTED = [f"dlg00{i}" for i in range(1, 7)]


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Transcriber:
    return Transcriber(resolve_model("tiny.en", tmp_path_factory.mktemp("models")), options_for("tiny.en"), device="cpu")


def _audio(name: str) -> np.ndarray:
    decoded = decode(DIALOGUES_DIR / f"{name}.flac")
    return to_working_rate(decoded.samples, decoded.sample_rate)


def _reference(name: str) -> str:
    turns = json.loads((DIALOGUES_DIR / f"{name}.turns.json").read_text())
    return " ".join(t["text"] for t in sorted(turns, key=lambda t: t["start"]))


def _bare_model(stage: Transcriber):  # type: ignore[no-untyped-def]
    from faster_whisper import WhisperModel

    return WhisperModel(str(stage.model_dir.path), device="cpu", compute_type=stage.device.compute_type,
                        cpu_threads=stage.options.cpu_threads, local_files_only=True)


def test_the_stage_is_never_worse_than_bare_faster_whisper_on_the_committed_set(stage: Transcriber) -> None:
    """Per file, WER of the stage (diarizer's speech regions, as Preannotator runs it) <= WER of
    `WhisperModel.transcribe(audio, language="en")` with the library's defaults on the same model files."""
    bare = _bare_model(stage)
    diarizer = load_diarizer("embedded", device="cpu")
    worse = {}
    for name in COMMITTED:
        audio = _audio(name)
        regions = [(s.start, s.end) for s in diarizer(audio, num_speakers=2).segments]
        ours = word_counts(_reference(name), " ".join(w["text"] for w in stage.transcribe(
            audio, language="en", speech_regions=regions).words))
        segments, _ = bare.transcribe(audio, language="en")
        theirs = word_counts(_reference(name), " ".join(s.text for s in segments))
        if ours.errors > theirs.errors:
            worse[name] = (ours.errors, theirs.errors)
    assert not worse, f"stage errors > bare errors (same reference words): {worse}"


def test_words_whose_alignment_collapses_to_an_instant_are_kept(stage: Transcriber) -> None:
    """faster-whisper with word timestamps skips a segment whose words all land on one instant:
    on dlg001 that is "Lovely." (22-23 s), which the same decoding without word timestamps keeps."""
    audio = _audio("dlg001")
    bare = _bare_model(stage)
    kwargs = dict(language="en", condition_on_previous_text=stage.options.condition_on_previous_text,
                  vad_filter=stage.options.vad_filter)
    with_words, _ = bare.transcribe(audio, word_timestamps=True, **kwargs)
    without_words, _ = bare.transcribe(audio, **kwargs)
    assert "lovely" in normalize(" ".join(s.text for s in without_words))
    assert "lovely" not in normalize(" ".join(s.text for s in with_words)), "the library no longer drops it: guard obsolete?"
    words = stage.transcribe(audio, language="en", speech_regions=[(0.0, len(audio) / RATE)]).words
    lovely = [w for w in words if normalize(w["text"]) == "lovely"]
    assert len(lovely) == 1 and 22.0 <= lovely[0]["start"] < lovely[0]["end"] <= 24.0, lovely


NAMES = ["Szymanski", "Kowalczyk", "Achterberg"]
VOCABULARY = ("Okonkwo", "Szymanski", "Nakamura", "Kowalczyk", "Achterberg", "Doncaster")


def _say(text: str, path: Path) -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", "en-gb-x-rp", "-s", "160", "-w", str(path), text], check=True)
    samples, rate = sf.read(path, dtype="float32", always_2d=True)
    return to_working_rate(samples, rate)


def test_a_protocol_vocabulary_makes_the_model_write_names_it_otherwise_mishears(stage: Transcriber, tmp_path: Path) -> None:
    """Measured with tiny.en: without the vocabulary these come out as "shaman's case", "i'll click",
    "the sherberg"; with it, spelled as listed."""
    for name in NAMES:
        audio = _say(f"The booking is under {name}, thank you.", tmp_path / f"{name}.wav")
        region = [(0.0, len(audio) / RATE)]
        plain = normalize(" ".join(w["text"] for w in stage.transcribe(audio, language="en", speech_regions=region).words))
        helped = normalize(" ".join(w["text"] for w in stage.transcribe(
            audio, language="en", speech_regions=region, vocabulary=VOCABULARY).words))
        assert name.lower() not in plain.split(), plain
        assert name.lower() in helped.split(), helped


def test_vocabulary_arguments_and_per_turn_clips() -> None:
    assert vocabulary_arguments((), "hotwords") == {}
    assert vocabulary_arguments(("Crewe", "St Mary's"), "hotwords") == {"hotwords": "Crewe, St Mary's"}
    assert vocabulary_arguments(("Crewe",), "prompt") == {"initial_prompt": "Crewe"}
    assert vocabulary_arguments(("Crewe",), "both") == {"hotwords": "Crewe", "initial_prompt": "Crewe"}
    with pytest.raises(ValueError, match="vocabulary_via must be one of hotwords, prompt, both"):
        vocabulary_arguments(("Crewe",), "prefix")
    # overlapping speakers and a gap closed by the padding make one clip; the ends stay inside the audio
    assert speech_clips([(0.1, 2.0), (1.5, 3.0), (3.3, 4.0), (6.0, 9.95)], 10.0, 0.2) == [0.0, 4.2, 5.8, 10.0]


def test_the_batched_pipeline_decodes_through_the_same_guarded_model(stage: Transcriber, tmp_path: Path) -> None:
    """The batched pipeline hands the model's word alignment a list of frame counts, not one."""
    batched = Transcriber(stage.model_dir, options_for("tiny.en", batched=True), device="cpu")
    audio = _say("Please book a table for two on Friday evening.", tmp_path / "batched.wav")
    words = batched.transcribe(audio, language="en", speech_regions=[(0.0, len(audio) / RATE)]).words
    assert {"table", "friday"} <= set(normalize(" ".join(w["text"] for w in words)).split()), words
