"""tiny.en on real audio: words with timings, and each guard on audio that provokes it."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf

from asr.evaluation import normalize
from asr.models import resolve_model
from asr.transcriber import AsrOptions, Transcriber, chunk_bounds, collapse_loops
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
    assert [w["start"] for w in result.words] == sorted(w["start"] for w in result.words)
    truth = sorted(json.loads((DIALOGUES_DIR / "dlg001.turns.json").read_text()), key=lambda t: t["start"])
    reference = normalize(" ".join(t["text"] for t in truth))
    heard = normalize(" ".join(w["text"] for w in result.words))
    assert jiwer.wer(reference, heard) < 0.42, heard  # measured 38.2% (29 errors in 76 words; two voices overlap twice)
    assert guarded.params()["options"]["beam_size"] == guarded.options.beam_size


def test_silence_provokes_text_that_each_guard_removes(models_dir: Path, guarded: Transcriber) -> None:
    silence = np.zeros(RATE * 10, dtype=np.float32)
    bare = _transcriber(models_dir, vad_filter=False, drop_outside_speech=False, hallucination_silence_threshold=None)
    hallucinated = bare.transcribe(silence, language="en", speech_regions=[]).words
    assert hallucinated, "tiny.en hallucinates in silence"
    # the same decoding, with only the speech-region filter on: it drops exactly what was hallucinated
    region_filter = _transcriber(models_dir, vad_filter=False, hallucination_silence_threshold=None)
    filtered = region_filter.transcribe(silence, language="en", speech_regions=[])
    assert filtered.words == [] and filtered.dropped["outside_speech"] == len(hallucinated)
    # with faster-whisper's VAD gate as well, nothing reaches the decoder
    result = _transcriber(models_dir, vad_filter=True).transcribe(silence, language="en", speech_regions=[])
    assert result.words == [] and result.dropped.get("outside_speech", 0) == 0


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


SENTENCES = ["Please book a table for our family on Saturday evening.",
             "The kitchen closes early, so come before dinner.",
             "We also need a high chair for our daughter.",
             "Thank you very much, see you then."]
PAUSES = [1.0, 1.8, 1.3]  # seconds of silence after each sentence but the last


def test_chunk_cuts_fall_in_pauses_even_where_speakers_overlap() -> None:
    assert chunk_bounds(25.0, [(0, 9.0), (9.8, 14.0), (14.1, 25.0)], chunk_s=10, search_s=2) == [0.0, 9.4, 19.4, 25.0]
    # a second voice inside the first (9.0-9.4) must not make 9.4-10.8 look like a pause: the pause is 10.5-10.8
    assert chunk_bounds(30.0, [(0, 10.5), (9.0, 9.4), (10.8, 30.0)], chunk_s=10, search_s=2) == [0.0, 10.65, 20.65, 30.0]
    # a search window wider than a chunk must never pick a pause behind the last cut (that looped for ever)

    def expired(*_: object) -> None:
        raise TimeoutError("chunk_bounds did not finish")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(5)
    try:
        cuts = chunk_bounds(40.0, [(0, 5.0), (7.0, 40.0)], chunk_s=10, search_s=30)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert cuts == [0.0, 6.0, 16.0, 26.0, 36.0, 40.0]


def test_long_audio_is_decoded_in_chunks_and_no_word_is_lost_at_a_cut(models_dir: Path, tmp_path: Path) -> None:
    """Four espeak sentences with known pauses, decoded in 8 s chunks: each cut lies in a pause, and the
    sentences on both sides of every cut keep every word."""
    parts, spans, at = [], [], 0.5
    parts.append(np.zeros(int(0.5 * RATE), np.float32))
    for i, sentence in enumerate(SENTENCES):
        voice = _espeak(sentence, tmp_path / f"s{i}.wav").reshape(-1)
        spans.append((at, at + len(voice) / RATE))
        parts.append(voice)
        at += len(voice) / RATE
        pause = PAUSES[i] if i < len(PAUSES) else 0.5
        parts.append(np.zeros(int(pause * RATE), np.float32))
        at += int(pause * RATE) / RATE
    audio = np.concatenate(parts)
    cuts = chunk_bounds(len(audio) / RATE, spans, chunk_s=8.0)
    inner = cuts[1:-1]
    assert inner and all(any(a[1] < c < b[0] for a, b in zip(spans, spans[1:])) for c in inner), (cuts, spans)
    chunked = _transcriber(models_dir, chunk_s=8.0).transcribe(audio, language="en", speech_regions=spans)
    starts = [w["start"] for w in chunked.words]
    assert starts == sorted(starts) and all(0 <= w["start"] <= w["end"] <= len(audio) / RATE for w in chunked.words)
    # each word goes to the sentence whose stretch (bounded by the middles of the pauses) holds its middle
    edges = [0.0] + [(a[1] + b[0]) / 2 for a, b in zip(spans, spans[1:])] + [len(audio) / RATE]
    for cut in inner:
        before = max(i for i, (_, end) in enumerate(spans) if end < cut)
        for i in (before, before + 1):
            heard = normalize(" ".join(w["text"] for w in chunked.words if edges[i] <= (w["start"] + w["end"]) / 2 < edges[i + 1]))
            said = normalize(SENTENCES[i])
            # a word misheard next to a cut is the model's; a word missing there is ours
            assert jiwer.process_words(said, heard).deletions == 0, (cut, said, heard)
