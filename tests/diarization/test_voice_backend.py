"""The trained voice backend behind the separation flag's voice distance: LDA with whitened
within-voice covariance, committed with a checksum and refused when it differs."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np
import pytest

from diarization.training.train_voice_backend import fit_backend, save_backend, seed_range
from diarization.voice_backend import (
    BACKEND_FILE,
    BACKEND_SHA256,
    VoiceBackend,
    load_backend,
    shipped_backend,
    voice_distance,
)


def _voices(rng: np.random.Generator, n_voices: int = 40, per_voice: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Voices that differ along axis 0 only (spread 1), with within-voice noise of std 3 along
    axis 1 and 0.1 elsewhere: the discriminant direction is axis 0 although axis 1 varies most."""
    centres = np.zeros((n_voices, 4))
    centres[:, 0] = rng.normal(0, 1.0, n_voices)
    x = np.repeat(centres, per_voice, axis=0) + rng.normal(0, 1, (n_voices * per_voice, 4)) * [0.1, 3.0, 0.1, 0.1]
    return x, np.repeat(np.arange(n_voices).astype(str), per_voice)


def test_the_first_direction_is_the_one_voices_differ_in_and_within_voice_variance_is_one() -> None:
    x, voices = _voices(np.random.default_rng(0))
    backend = fit_backend(x, voices, dims=2, regularisation=0.0)
    first = backend.projection[:, 0] / np.linalg.norm(backend.projection[:, 0])
    assert abs(first[0]) > 0.99  # not axis 1, where the raw variance is largest
    projected = backend.project(x)
    within = projected - np.stack([projected[voices == v].mean(axis=0) for v in voices])
    # the generalised eigenvectors make the pooled within-voice covariance the identity
    np.testing.assert_allclose(np.cov(within.T, bias=True), np.eye(2), atol=1e-6)


def test_too_few_voices_for_the_dimensions_is_refused() -> None:
    x, voices = _voices(np.random.default_rng(1), n_voices=3)
    with pytest.raises(ValueError, match="3 voices with 5\\+ windows cannot train 3 dimensions"):
        fit_backend(x, voices, dims=3)


def test_a_saved_backend_loads_back_and_a_changed_file_is_refused(tmp_path: Path) -> None:
    backend = VoiceBackend(mean=np.arange(3.0), projection=np.eye(3)[:, :2])
    path = tmp_path / "backend.npz"
    digest = save_backend(backend, path, command="test")
    assert digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert save_backend(backend, tmp_path / "again.npz", command="test") == digest, "same arrays, same bytes"
    loaded = load_backend(path, digest)
    np.testing.assert_array_equal(loaded.mean, backend.mean)
    np.testing.assert_array_equal(loaded.projection, backend.projection)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="backend.npz: sha256 .* does not match"):
        load_backend(path, digest)


def test_the_shipped_backend_matches_its_checksum() -> None:
    assert hashlib.sha256(BACKEND_FILE.read_bytes()).hexdigest() == BACKEND_SHA256
    backend = shipped_backend()
    assert backend.mean.shape == (256,) and backend.projection.shape[0] == 256


def test_voice_distance_measures_the_clusters_in_the_backend_space() -> None:
    """Two clusters of windows 1 s apart (100 frames each) that differ along axis 0 and vary
    along axis 1: a backend that keeps axis 0 sees them far apart, one that keeps axis 1 sees
    one voice. Expected values derived by hand: with axis 0 only, every window of a cluster
    sits at its mean (spread ~0), so the ratio is huge; with axis 1 only, the means coincide."""
    n = 20
    side = np.repeat([1.0, -1.0], n)
    windows = np.zeros((2 * n, 256))
    windows[:, 0] = side
    windows[:, 1] = np.tile([1.0, -1.0], n)  # as much of it in each cluster
    windows[:, 2] = 5.0  # a shared offset, removed with the recording's mean
    starts = np.arange(2 * n) * 100
    labels = np.repeat((side < 0).astype(int), 100)
    axis = np.eye(256)
    speaker_axis = VoiceBackend(mean=np.zeros(256), projection=axis[:, :1])
    nuisance_axis = VoiceBackend(mean=np.zeros(256), projection=axis[:, 1:2])
    far = voice_distance(windows, starts, labels, speaker_axis)
    near = voice_distance(windows, starts, labels, nuisance_axis)
    assert far is not None and far > 1e3
    assert near is not None and near < 1e-6
    assert voice_distance(windows, starts, np.zeros_like(labels), speaker_axis) is None, "one cluster"


def test_the_training_refuses_seeds_that_are_evaluated() -> None:
    assert seed_range("200-202,221") == [200, 201, 202, 221]
    with pytest.raises(argparse.ArgumentTypeError, match="seeds \\[14, 15\\] are evaluated"):
        seed_range("14-15,200")


def test_the_training_voices_are_the_committed_backends_and_none_of_the_held_out_sets() -> None:
    """`training_voices` (which dialogues the separation flag's held-out measurement leaves out) reads the
    committed backend's seeds and left-out sets: the voices it left out are the ones its file records, and no
    voice of those sets is a training voice."""
    from diarization.training.train_voice_backend import HELD_OUT_SETS, excluded_voices, training_voices

    with np.load(BACKEND_FILE) as data:
        recorded = set(str(data["excluded_voices"]).split())
        command = str(data["command"])
    assert excluded_voices(HELD_OUT_SETS) == recorded
    assert " ".join(f"{s}:{n}" for s, n in HELD_OUT_SETS) in command
    trained = training_voices()
    assert trained and not trained & recorded
    assert training_voices(seeds=[200]) <= trained
