"""The embedded diarizer (silero-vad + Resemblyzer + clustering) on the committed synthetic dialogues.

One diarizer is loaded per module and the six dialogues are diarized once; everything
here runs on the CPU in well under a minute.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from collection.decoding import decode, to_working_rate
from collection.synthetic import DIALOGUES_DIR
from diarization.embedded import EmbeddedDiarizer, EmbeddedOptions
from diarization.types import SAMPLE_RATE, DiarizationResult, exclusive_from

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")

DIALOGUES = [f"dlg00{i}" for i in range(1, 7)]
TARGET_DER = 0.10
"""The target for the committed set (aggregate, no collar, overlap scored): measured 9.5%."""
PER_FILE_BOUND = 0.14
"""No single dialogue regresses far (measured 4.9-12.9%)."""


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One BLAS/OpenMP thread: the 2 cores are shared, and spinning pools under contention are slow."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def diarizer() -> EmbeddedDiarizer:
    return EmbeddedDiarizer()


def _load(uri: str) -> np.ndarray:
    decoded = decode(DIALOGUES_DIR / f"{uri}.flac")
    return to_working_rate(decoded.samples, decoded.sample_rate)


def _reference(uri: str):  # noqa: ANN202 - pyannote.core.Annotation
    from pyannote.database.util import load_rttm

    return load_rttm(DIALOGUES_DIR / f"{uri}.rttm")[uri]


def _annotation(result: DiarizationResult, uri: str):  # noqa: ANN202
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for segment in result.segments:
        annotation[Segment(segment.start, segment.end)] = segment.speaker
    return annotation


@pytest.fixture(scope="module")
def audio() -> dict[str, np.ndarray]:
    return {uri: _load(uri) for uri in DIALOGUES}


@pytest.fixture(scope="module")
def results(diarizer: EmbeddedDiarizer, audio: dict[str, np.ndarray]) -> dict[str, DiarizationResult]:
    return {uri: diarizer(samples, num_speakers=2) for uri, samples in audio.items()}


def test_der_on_the_committed_dialogues(results: dict[str, DiarizationResult]) -> None:
    from pyannote.metrics.diarization import DiarizationErrorRate

    everything = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    per_file = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "'uem' was approximated": the file's extent is what we mean
        for uri, result in results.items():
            per_file[uri] = everything(_reference(uri), _annotation(result, uri))
    assert abs(everything) <= TARGET_DER, per_file
    assert max(per_file.values()) <= PER_FILE_BOUND, per_file


def test_result_shape(results: dict[str, DiarizationResult], audio: dict[str, np.ndarray]) -> None:
    for uri, result in results.items():
        duration = len(audio[uri]) / SAMPLE_RATE
        assert result.speakers == ["SPEAKER_00", "SPEAKER_01"], uri
        first_seen = list(dict.fromkeys(s.speaker for s in sorted(result.segments, key=lambda s: s.start)))
        assert first_seen == ["SPEAKER_00", "SPEAKER_01"], uri  # labels in order of first appearance
        assert all(0 <= s.start < s.end <= duration + 1e-6 for s in result.segments), uri
        for piece in result.exclusive:  # the dominant voice's view: inside that speaker's own segments
            assert any(s.speaker == piece.speaker and s.start <= piece.start and piece.end <= s.end
                       for s in result.segments), (uri, piece)
        starts = [s.start for s in result.exclusive]
        assert starts == sorted(starts)
        assert all(a.end <= b.start + 1e-9 for a, b in zip(result.exclusive, result.exclusive[1:]))


def test_params_echo_options_versions_and_device(diarizer: EmbeddedDiarizer,
                                                 results: dict[str, DiarizationResult]) -> None:
    params = results["dlg001"].params
    assert params["backend"] == "embedded" == diarizer.name
    assert params["device"] == "cpu"
    assert params["num_speakers"] == 2
    assert params["options"] == asdict(diarizer.options) == asdict(EmbeddedOptions())
    for package in ("resemblyzer", "silero-vad", "webrtcvad"):
        assert params["versions"][package], package
    assert params["duration"] == pytest.approx(len(_load("dlg001")) / SAMPLE_RATE, abs=1e-3)
    assert params["clusters"] == 2 and params["windows"] > 0 and params["speech_s"] > 10


def test_options_are_honoured_and_echoed() -> None:
    options = EmbeddedOptions(vad="webrtc", window_s=0.8, step_s=0.25, resegment=False)
    diarizer = EmbeddedDiarizer(options)
    result = diarizer(_load("dlg005")[: 12 * SAMPLE_RATE], num_speakers=2)
    assert result.params["options"]["vad"] == "webrtc"
    assert result.params["options"]["window_s"] == 0.8
    assert result.params["options"]["resegment"] is False
    assert result.speakers == ["SPEAKER_00", "SPEAKER_01"]
    with pytest.raises(ValueError, match="VAD"):
        EmbeddedDiarizer(EmbeddedOptions(vad="energy"))


def test_declared_count_is_honoured_with_three_voices(diarizer: EmbeddedDiarizer,
                                                      audio: dict[str, np.ndarray]) -> None:
    """Turns of three voices (both of dlg001's, one of dlg002's) in one file, declared as two."""
    pieces = []
    first, second = _reference("dlg001"), _reference("dlg002")
    third_voice = sorted(second.labels())[0]
    turns = [("dlg001", s) for s in list(first.get_timeline())[:6]]
    turns += [("dlg002", s) for s in list(second.label_timeline(third_voice))[:3]]
    order = [0, 6, 1, 2, 7, 3, 4, 8, 5]
    silence = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    for index in order:
        uri, segment = turns[index]
        pieces += [audio[uri][int(segment.start * SAMPLE_RATE): int(segment.end * SAMPLE_RATE)], silence]
    mixed = np.concatenate(pieces)
    result = diarizer(mixed, num_speakers=2)
    assert result.speakers == ["SPEAKER_00", "SPEAKER_01"]
    assert result.params["clusters"] == 2


def test_count_is_estimated_when_not_declared(diarizer: EmbeddedDiarizer, audio: dict[str, np.ndarray]) -> None:
    result = diarizer(audio["dlg001"])
    assert result.speakers == ["SPEAKER_00", "SPEAKER_01"]
    assert result.params["num_speakers"] is None
    bounded = diarizer(audio["dlg001"], max_speakers=1)
    assert bounded.speakers == ["SPEAKER_00"]


def test_single_speaker(diarizer: EmbeddedDiarizer, audio: dict[str, np.ndarray]) -> None:
    reference = _reference("dlg001")
    voice = sorted(reference.labels())[0]
    gap = np.zeros(int(0.4 * SAMPLE_RATE), np.float32)
    solo = np.concatenate([np.concatenate([audio["dlg001"][int(s.start * SAMPLE_RATE): int(s.end * SAMPLE_RATE)], gap])
                           for s in reference.label_timeline(voice)])
    result = diarizer(solo)
    assert result.speakers == ["SPEAKER_00"]
    speech = sum(s.end - s.start for s in result.segments)
    assert speech > 0.8 * reference.label_timeline(voice).duration()


def test_silent_audio_gives_no_segments(diarizer: EmbeddedDiarizer) -> None:
    for samples in (np.zeros(5 * SAMPLE_RATE, np.float32), np.zeros(0, np.float32), np.zeros(100, np.float32)):
        result = diarizer(samples, num_speakers=2)
        assert result.segments == [] and result.exclusive == []
        assert result.params["backend"] == "embedded"


def test_low_white_noise_is_not_speech(diarizer: EmbeddedDiarizer) -> None:
    rng = np.random.default_rng(0)
    noise = (0.01 * rng.standard_normal(8 * SAMPLE_RATE)).astype(np.float32)
    result = diarizer(noise, num_speakers=2)
    assert sum(s.end - s.start for s in result.segments) <= 0.5


def test_two_second_file(diarizer: EmbeddedDiarizer, audio: dict[str, np.ndarray]) -> None:
    clip = audio["dlg001"][1 * SAMPLE_RATE: 3 * SAMPLE_RATE]  # inside spk-0001's first turn
    for result in (diarizer(clip, num_speakers=2), diarizer(clip)):
        assert result.speakers == ["SPEAKER_00"]
        assert all(0 <= s.start < s.end <= 2.0 for s in result.segments)
        assert sum(s.end - s.start for s in result.segments) > 1.5


def test_input_shapes(diarizer: EmbeddedDiarizer, audio: dict[str, np.ndarray]) -> None:
    clip = audio["dlg002"][: 6 * SAMPLE_RATE]
    assert diarizer(clip[:, None], num_speakers=2).segments == diarizer(clip, num_speakers=2).segments
    with pytest.raises(ValueError, match="mono"):
        diarizer(np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="num_speakers"):
        diarizer(clip, num_speakers=0)


def test_progress_hook(diarizer: EmbeddedDiarizer, audio: dict[str, np.ndarray]) -> None:
    calls: list[tuple[str, float]] = []
    diarizer(audio["dlg004"][: 8 * SAMPLE_RATE], num_speakers=2,
             hook=lambda step, fraction: calls.append((step, fraction)))
    steps = list(dict.fromkeys(step for step, _ in calls))
    assert steps == ["vad", "embeddings", "clustering"]
    assert all(0.0 <= fraction <= 1.0 for _, fraction in calls)
    for step in steps:
        assert max(f for s, f in calls if s == step) == 1.0


def test_thread_count_is_restored(diarizer: EmbeddedDiarizer, audio: dict[str, np.ndarray]) -> None:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(3)  # neither 1 (the test's limit) nor the diarizer's own count (at most 2)
    try:
        diarizer(audio["dlg006"][: 4 * SAMPLE_RATE], num_speakers=2)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_long_recording_paths(audio: dict[str, np.ndarray]) -> None:
    """What keeps an hour bounded, on short audio: clustering on a subsample of the windows,
    and the mel spectrogram computed a minute at a time (identical to one whole call)."""
    from resemblyzer import audio as rz_audio

    small = EmbeddedDiarizer(EmbeddedOptions(max_cluster_windows=40))
    result = small(audio["dlg005"], num_speakers=2)
    assert result.params["windows"] > 40
    assert result.speakers == ["SPEAKER_00", "SPEAKER_01"]
    long = np.tile(audio["dlg001"], 3)[: int(70.3 * SAMPLE_RATE)]
    frames = len(long) // 160
    chunked = small._mel(long, frames, 2.0)
    whole = rz_audio.wav_to_mel_spectrogram(long * 2.0)[:frames]
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)


def test_overlapped_speech_is_found_as_a_second_voice(results: dict[str, DiarizationResult],
                                                       audio: dict[str, np.ndarray]) -> None:
    """The trained overlap model's second voices recover overlapped speech (backchannels, overlapping
    changes) that the single-voice segmentation misses, for well under half as much false alarm. The
    per-recording model it replaced recovered 3.65 s for 2.77 s of false alarm here."""
    from pyannote.metrics.diarization import DiarizationErrorRate

    without = EmbeddedDiarizer(EmbeddedOptions(overlap=False))
    parts = {"on": {"missed detection": 0.0, "false alarm": 0.0}, "off": {"missed detection": 0.0, "false alarm": 0.0}}
    overlapping = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for uri, result in results.items():
            for key, hypothesis in (("on", result), ("off", without(audio[uri], num_speakers=2))):
                detail = DiarizationErrorRate(collar=0.0, skip_overlap=False)(
                    _reference(uri), _annotation(hypothesis, uri), detailed=True)
                for name in parts[key]:
                    parts[key][name] += detail[name]
            overlapping += sum(1 for a in result.segments for b in result.segments
                               if a.speaker != b.speaker and a.start < b.start and b.end < a.end)
    recovered = parts["off"]["missed detection"] - parts["on"]["missed detection"]
    added = parts["on"]["false alarm"] - parts["off"]["false alarm"]
    assert recovered > 3.5 and added < 0.5 * recovered, parts  # measured 4.87 s recovered for 1.58 s
    assert overlapping >= 2, "some second voices lie wholly inside the other speaker's segment (backchannels)"


def test_speech_is_widened_only_around_the_vads_own_regions() -> None:
    """The overlap model's speech grows a VAD region to the model's run that holds it (the quiet word ends
    silero drops), but a model run that touches no VAD region adds nothing: silence the model, normalised per
    recording, calls speech stays silence."""
    from diarization.embedded import _widen_speech

    vad = np.zeros(100, bool)
    vad[20:30] = True
    model = np.zeros(100, bool)
    model[15:40] = True  # holds the VAD region: grows it on both sides
    model[60:80] = True  # no VAD region there: not speech
    widened = _widen_speech(vad, model)
    expected = np.zeros(100, bool)
    expected[15:40] = True
    np.testing.assert_array_equal(widened, expected)
    assert not _widen_speech(np.zeros(100, bool), np.ones(100, bool)).any()


def test_at_most_the_overlap_share_of_speech_is_marked_overlapped(diarizer: EmbeddedDiarizer) -> None:
    """However sure the model is, at most `overlap_max_share` of the labelled speech becomes a second voice
    (the model, trained on generated voices, marks far more of a real recording)."""
    rng = np.random.default_rng(3)
    labels = np.repeat(rng.choice([-1, 0, 0, 1, 1], 50), 100)  # 1 s turns and pauses
    probability = np.repeat(rng.uniform(0.5, 1.0, 250), 20)  # sure of overlap everywhere, in 0.2 s steps
    share = diarizer.options.overlap_max_share
    assert share is not None
    marked = diarizer._overlapped(labels, probability)
    assert not marked[labels < 0].any()
    assert 0 < marked[labels >= 0].mean() <= share + 0.01
    uncapped = EmbeddedDiarizer.__new__(EmbeddedDiarizer)
    uncapped.options = EmbeddedOptions(overlap_max_share=None)
    assert uncapped._overlapped(labels, probability)[labels >= 0].mean() > 0.9


def test_overlap_detection_does_not_raise_the_real_recordings_der(diarizer: EmbeddedDiarizer) -> None:
    """The guard the overlap share was chosen under: on the one real two-speaker recording with a reference
    that ships offline (pyannote.audio's sample, a telephone conversation), the diarizer with overlap
    detection is not worse than without (measured 10.9% against 12.7%; 23% with no share cap)."""
    import pyannote.audio
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    folder = Path(pyannote.audio.__file__).parent / "sample"
    decoded = decode(folder / "sample.wav")
    samples = to_working_rate(decoded.samples, decoded.sample_rate)
    reference = Annotation(uri="sample")
    for line in (folder / "sample.rttm").read_text().splitlines():
        fields = line.split()
        reference[Segment(float(fields[3]), float(fields[3]) + float(fields[4])), len(reference)] = fields[7]
    scores = {}
    for name, model in (("on", diarizer), ("off", EmbeddedDiarizer(EmbeddedOptions(overlap=False)))):
        result = model(samples, num_speakers=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores[name] = DiarizationErrorRate(collar=0.0, skip_overlap=False)(reference, _annotation(result, "sample"))
    assert scores["on"] <= scores["off"] and scores["on"] < 0.13, scores


def test_the_voices_are_embedded_on_the_widened_speech(diarizer: EmbeddedDiarizer,
                                                       audio: dict[str, np.ndarray]) -> None:
    """The windows the voices are clustered (and the separation flag's silhouette and distance measured) from
    lie over the speech the diarizer labels, the VAD's regions widened to the overlap model's speech runs,
    not over the VAD's regions alone (stored-turns DER on held-out seed 7: 7.24% against 8.04%; the flag
    was recalibrated for it, diarization/separation.py)."""
    samples = audio["dlg001"]
    seen: dict[str, np.ndarray] = {}
    embed = diarizer._embed

    def observed(signal: np.ndarray, speech: np.ndarray, hook):  # type: ignore[no-untyped-def]
        seen["speech"] = speech.copy()
        return embed(signal, speech, hook)

    diarizer._embed = observed  # type: ignore[method-assign]
    try:
        result = diarizer(samples, num_speakers=2)
    finally:
        del diarizer._embed
    vad = diarizer._vad(samples, len(samples) // 160, lambda *_: None)
    embedded = seen["speech"]
    assert embedded.sum() * 0.01 == pytest.approx(result.params["speech_s"], abs=0.005)
    assert embedded[vad].all() and embedded.sum() > vad.sum(), "the widening adds the quiet word ends"
