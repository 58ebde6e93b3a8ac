"""The pyannote backend, on a small real pyannote pipeline directory built with pyannote's own classes.

The directory is built once per module (random weights: labels are meaningless, the
mechanics are real) and loaded through `PyannoteDiarizer(path)`, i.e. through
`pyannote.audio.Pipeline.from_pretrained(path)` like a user's copied-in directory.
Clips are 12 s cut from a committed synthetic dialogue, to keep CPU time low.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from collection.synthetic import DIALOGUES_DIR
from diarization.pyannote_backend import DiarizerUnavailable, PyannoteDiarizer
from diarization.types import SAMPLE_RATE, DiarizationResult
from tests.diarization.pipeline_factory import build_tiny_pipeline

CLIP_SECONDS = 12.0


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One BLAS/OpenMP thread: the test machine's 2 cores are shared, and spinning
    thread pools under contention turn a half-second diarization into tens of seconds."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    return build_tiny_pipeline(tmp_path_factory.mktemp("pyannote") / "pipeline", seed=0)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    audio, rate = sf.read(DIALOGUES_DIR / "dlg001.flac", dtype="float32")
    assert rate == SAMPLE_RATE and audio.ndim == 1
    return audio[: int(CLIP_SECONDS * SAMPLE_RATE)]


@pytest.fixture(scope="module")
def diarizer(tiny_pipeline: Path) -> PyannoteDiarizer:
    return PyannoteDiarizer(tiny_pipeline, device="cpu")


@pytest.fixture
def pipeline_copy(tiny_pipeline: Path, tmp_path: Path) -> Path:
    """A writable copy of the tiny pipeline, for breaking it."""
    return Path(shutil.copytree(tiny_pipeline, tmp_path / "pipeline"))


def _assert_within(segments, duration: float) -> None:
    for s in segments:
        assert 0.0 <= s.start < s.end <= duration + 1e-9, s


def test_diarizes_a_clip_from_the_local_directory(diarizer: PyannoteDiarizer, tiny_pipeline: Path, clip: np.ndarray):
    import pyannote.audio

    result = diarizer(clip)

    assert isinstance(result, DiarizationResult)
    assert diarizer.name == "pyannote"
    assert type(diarizer._pipeline).__name__ == "SpeakerDiarization"
    assert result.segments, "the tiny pipeline is built to produce speech, so the whole pipeline runs"
    _assert_within(result.segments, CLIP_SECONDS)
    _assert_within(result.exclusive, CLIP_SECONDS)
    for earlier, later in zip(result.exclusive, result.exclusive[1:]):
        assert earlier.end <= later.start + 1e-9, "exclusive diarization has one speaker at a time"
    # labels renamed SPEAKER_00, SPEAKER_01, ... in order of first appearance
    first_seen = list(dict.fromkeys(s.speaker for s in sorted(result.segments, key=lambda s: (s.start, s.end))))
    assert first_seen == [f"SPEAKER_{i:02d}" for i in range(len(first_seen))]
    assert {s.speaker for s in result.exclusive} <= set(first_seen)

    params = result.params
    assert params["backend"] == "pyannote"
    assert params["pipeline_dir"] == str(tiny_pipeline.resolve())
    assert params["config_sha256"] == hashlib.sha256((tiny_pipeline / "config.yaml").read_bytes()).hexdigest()
    assert params["pyannote_audio_version"] == pyannote.audio.__version__
    assert params["device"] == "cpu"
    assert params["pipeline_params"]["clustering"] == {"threshold": 0.6, "Fa": 0.07, "Fb": 0.8}
    assert params["pipeline_params"]["segmentation"] == {"min_duration_off": 0.0}
    assert params["num_speakers"] is None and params["min_speakers"] is None and params["max_speakers"] is None
    assert set(params["model_sha256"]) == {"segmentation", "embedding", "plda/xvec_transform.npz", "plda/plda.npz"}
    assert result.to_rttm("clip").startswith("SPEAKER clip 1 ")


def _raw(diarizer: PyannoteDiarizer, audio: np.ndarray, **counts: int) -> list[list[tuple[float, float]]]:
    """The pipeline's own diarization of `audio`, called directly as pyannote documents it, grouped by speaker."""
    import torch

    output = diarizer._pipeline({"waveform": torch.from_numpy(np.ascontiguousarray(audio))[None], "sample_rate": SAMPLE_RATE},
                                **counts)
    tracks = [(round(t.start, 3), round(t.end, 3), label) for t, _, label in output.speaker_diarization.itertracks(yield_label=True)]
    return _grouped(tracks)


def _grouped(tracks) -> list[list[tuple[float, float]]]:  # type: ignore[no-untyped-def]
    """Segments as one sorted list per speaker, the lists sorted: the same diarization under any speaker names."""
    by: dict[str, list[tuple[float, float]]] = {}
    for start, end, label in tracks:
        by.setdefault(label, []).append((start, end))
    return sorted(sorted(v) for v in by.values())


def test_speaker_count_arguments_bound_the_labels(diarizer: PyannoteDiarizer, clip: np.ndarray):
    two = diarizer(clip, num_speakers=2)
    assert two.speakers == ["SPEAKER_00", "SPEAKER_01"], "two declared, two found"
    assert two.params["num_speakers"] == 2
    assert _grouped((s.start, s.end, s.speaker) for s in two.segments) == _raw(diarizer, clip, num_speakers=2)

    one = diarizer(clip, min_speakers=1, max_speakers=1)
    assert one.speakers == ["SPEAKER_00"]
    assert (one.params["min_speakers"], one.params["max_speakers"]) == (1, 1)


def test_hook_reports_fractions_per_step(diarizer: PyannoteDiarizer, clip: np.ndarray):
    calls: list[tuple[str, float]] = []
    diarizer(clip, hook=lambda step, fraction: calls.append((step, fraction)))

    assert calls
    assert all(isinstance(step, str) and 0.0 <= fraction <= 1.0 for step, fraction in calls)
    steps = list(dict.fromkeys(step for step, _ in calls))
    assert {"segmentation", "embeddings"} <= set(steps)
    for step in steps:
        assert [f for s, f in calls if s == step][-1] == 1.0, f"{step} ends at 1.0"
    assert calls[0] == ("segmentation", 0.0)


def test_no_network_and_no_telemetry(tiny_pipeline: Path, clip: np.ndarray, monkeypatch: pytest.MonkeyPatch):
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(OSError):  # the guard is live
        socket.create_connection(("example.org", 443))
    attempts.clear()
    # pyannote.audio 4 turns its metrics on by default: the backend must turn them off itself
    monkeypatch.setenv("PYANNOTE_METRICS_ENABLED", "true")

    result = PyannoteDiarizer(tiny_pipeline, device="cpu")(clip, num_speakers=2)

    from pyannote.audio.telemetry import metrics

    metrics.provider.force_flush()  # export any span now (a background thread would, 0.5 s later)
    assert attempts == []
    assert os.environ["PYANNOTE_METRICS_ENABLED"] == "false"
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert not metrics.is_metrics_enabled()
    assert result.segments


def test_missing_directory(tmp_path: Path):
    with pytest.raises(DiarizerUnavailable, match=r"does not exist.*[Cc]opy"):
        PyannoteDiarizer(tmp_path / "nowhere")


def test_directory_without_config(pipeline_copy: Path):
    (pipeline_copy / "config.yaml").unlink()
    with pytest.raises(DiarizerUnavailable, match=r"has no config\.yaml"):
        PyannoteDiarizer(pipeline_copy)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "bit flip", "empty", "not pyannote"])
def test_corrupt_segmentation_checkpoint(pipeline_copy: Path, damage: str):
    path = pipeline_copy / "segmentation" / "pytorch_model.bin"
    data = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"this is not a pytorch checkpoint\n" * 100)
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "bit flip":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a sound PyTorch file, but not a pyannote.audio checkpoint
        import torch

        torch.save({"state_dict": {"weight": torch.zeros(2)}}, path)
    with pytest.raises(DiarizerUnavailable) as raised:
        PyannoteDiarizer(pipeline_copy)
    message = str(raised.value)
    assert "segmentation/pytorch_model.bin" in message
    assert re.search(r"corrupt|empty", message)
    if damage == "not pyannote":
        assert "not a pyannote.audio 4.x model checkpoint" in message
    assert "Copy it there again" in message


@pytest.mark.parametrize("missing", ["embedding/pytorch_model.bin", "plda/plda.npz", "plda/xvec_transform.npz"])
def test_missing_model_file(pipeline_copy: Path, missing: str):
    (pipeline_copy / missing).unlink()
    with pytest.raises(DiarizerUnavailable, match=re.escape(missing) + r" is missing.*Copy it there"):
        PyannoteDiarizer(pipeline_copy)


def test_config_naming_a_hub_model_is_refused_without_download(pipeline_copy: Path):
    config_path = pipeline_copy / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["pipeline"]["params"]["embedding"] = "pyannote/wespeaker-voxceleb-resnet34-LM"
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(DiarizerUnavailable, match=r"embedding: 'pyannote/wespeaker-voxceleb-resnet34-LM'.*nothing is downloaded"):
        PyannoteDiarizer(pipeline_copy)


def test_unknown_device_is_refused(tiny_pipeline: Path):
    with pytest.raises(ValueError, match="device must be one of"):
        PyannoteDiarizer(tiny_pipeline, device="tpu")


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available()


@pytest.mark.skipif(not _no_gpu(), reason="a CUDA GPU is available")
def test_cuda_without_gpu_is_a_clear_error(tiny_pipeline: Path):
    with pytest.raises(DiarizerUnavailable, match=r"asked for device 'cuda'.*no CUDA GPU.*fallback"):
        PyannoteDiarizer(tiny_pipeline, device="cuda")


@pytest.mark.skipif(not _no_gpu(), reason="a CUDA GPU is available")
def test_cuda_without_gpu_falls_back_to_cpu_when_allowed(tiny_pipeline: Path, clip: np.ndarray):
    with pytest.warns(RuntimeWarning, match="falling back to the CPU"):
        fallback = PyannoteDiarizer(tiny_pipeline, device="cuda", fallback=True)
    result = fallback(clip[: 10 * SAMPLE_RATE], num_speakers=2)
    assert result.params["device"] == "cpu"
    assert result.params["device_requested"] == "cuda"
    _assert_within(result.segments, 10.0)


@pytest.mark.skipif(_no_gpu(), reason="needs a CUDA GPU")
def test_auto_uses_the_gpu_when_there_is_one(tiny_pipeline: Path, clip: np.ndarray):
    gpu = PyannoteDiarizer(tiny_pipeline, device="auto")
    result = gpu(clip, num_speakers=2)
    assert result.params["device"] == "cuda"
    assert result.segments
    _assert_within(result.segments, CLIP_SECONDS)


def test_empty_and_stereo_shaped_audio(diarizer: PyannoteDiarizer, clip: np.ndarray):
    empty = diarizer(np.zeros(0, dtype=np.float32))
    assert empty.segments == [] and empty.exclusive == [] and empty.params["backend"] == "pyannote"
    column = diarizer(clip[: 10 * SAMPLE_RATE, None])  # (samples, 1) is still mono
    mono = diarizer(clip[: 10 * SAMPLE_RATE])
    assert column.segments and (column.segments, column.exclusive) == (mono.segments, mono.exclusive)
    assert _grouped((s.start, s.end, s.speaker) for s in column.segments) == _raw(diarizer, clip[: 10 * SAMPLE_RATE])
    with pytest.raises(ValueError, match="mono"):
        diarizer(np.zeros((2, 16000), dtype=np.float32))
