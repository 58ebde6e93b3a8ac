"""A trained backend for Resemblyzer windows, and the "voice distance" of two clusters in it: one
of the statistics behind the "voices barely separate" flag (`diarization.separation`).

Resemblyzer's 1 s windows of two different voices can lie closer together than two stretches of
one voice once a telephone line or a room has narrowed them (two women on a telephone line: a
silhouette of 0.125, lower than some one-voice splits). Raw distances cannot tell those apart;
the field's answer is a backend trained on many voices in many conditions: linear discriminant
analysis (LDA) whose directions maximise between-voice over within-voice scatter, with the
within-voice covariance whitened (the generalised eigenvectors are normalised so that it is the
identity: within-class covariance normalisation comes with them). `voice_distance` is the squared
distance between two clusters' mean windows in that space over the mean squared distance of a
window to its own cluster's mean.

Windows are taken as the embedded diarizer sees them: Resemblyzer embeddings of 1 s windows
over speech, the recording's mean embedding removed and each row scaled to unit length (what
`EmbeddedDiarizer._labels` clusters).

The arrays (`models/voice_backend.npz`, 8 dimensions, checked against `BACKEND_SHA256` when
loaded) are made by `diarization/training/train_voice_backend.py`; the command, the seeds and
the voices left out are in `diarization/models/README.md`. Trained on espeak-ng voices only, the
space does not carry to every real voice in noise (the real sample's two voices came as close as
0.64, one voices from 0.45), which is why the flag only uses the distance where the clusters'
held-out agreement also fails (`diarization.separation`).

Cost: under 1 ms a recording (0.1 s of CPU for the 171 cases of the benchmarks); reading and
checking the 21 KB file once per process.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from collection.clustering import unit_rows

BACKEND_FILE = Path(__file__).parent / "models" / "voice_backend.npz"
BACKEND_SHA256 = "4bf58990beb6bd03a08ee2bef491afab604d8d6ceb142d20fb0d83cf89c6de91"
"""sha256 of `BACKEND_FILE`; a file that differs is refused rather than silently used."""


@dataclass(frozen=True)
class VoiceBackend:
    """``mean`` (d,) and ``projection`` (d, k): ``(x - mean) @ projection`` has identity
    within-voice covariance on the training windows."""

    mean: np.ndarray
    projection: np.ndarray

    def project(self, windows: np.ndarray) -> np.ndarray:
        """Windows (n, d), already centred per recording and unit length, in backend space (n, k)."""
        return (np.asarray(windows, np.float64) - self.mean) @ self.projection


def load_backend(path: Path = BACKEND_FILE, sha256: str = BACKEND_SHA256) -> VoiceBackend:
    """The backend at `path`, refused (ValueError naming the file) when its sha256 is not `sha256`."""
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ValueError(f"{path}: sha256 {digest} does not match the expected {sha256}; "
                         "retrain it with diarization/training/train_voice_backend.py or restore the shipped file")
    with np.load(path) as arrays:
        return VoiceBackend(mean=arrays["mean"], projection=arrays["projection"])


@lru_cache(maxsize=1)
def shipped_backend() -> VoiceBackend:
    """The shipped backend, read and checked once per process."""
    return load_backend(BACKEND_FILE, BACKEND_SHA256)


WINDOW_FRAMES = 100  # the embedded diarizer's 1 s windows on its 10 ms frame grid
MIN_CLUSTER_WINDOWS = 2  # a cluster needs two windows for a spread


def window_clusters(starts: np.ndarray, labels: np.ndarray, width: int = WINDOW_FRAMES) -> np.ndarray:
    """Each window's cluster: the label most of its frames carry (-1 when none is speech)."""
    out = np.full(len(starts), -1)
    for i, start in enumerate(starts):
        frames = labels[start: start + width]
        if (frames >= 0).any():
            out[i] = int(np.bincount(frames[frames >= 0]).argmax())
    return out


def voice_distance(embeddings: np.ndarray, starts: np.ndarray, labels: np.ndarray,
                   backend: VoiceBackend | None = None, width: int = WINDOW_FRAMES) -> float | None:
    """Two clusters' distance in the backend's space (see the module docstring); None with other
    than two clusters of at least MIN_CLUSTER_WINDOWS windows.

    `embeddings`: Resemblyzer windows (n, 256) starting at frames `starts` (n,); `labels`: the
    diarization's cluster per frame, -1 for none; `width`: the windows' length in frames."""
    clusters = window_clusters(starts, labels, width)
    if set(np.unique(clusters[clusters >= 0]).tolist()) != {0, 1} or \
            min((clusters == 0).sum(), (clusters == 1).sum()) < MIN_CLUSTER_WINDOWS:
        return None
    windows = unit_rows(embeddings - embeddings.mean(axis=0))
    projected = (backend or shipped_backend()).project(windows)
    means = [projected[clusters == j].mean(axis=0) for j in (0, 1)]
    spread = np.mean([((projected[clusters == j] - means[j]) ** 2).sum(axis=1).mean() for j in (0, 1)])
    return round(float(((means[0] - means[1]) ** 2).sum() / max(spread, 1e-12)), 4)
