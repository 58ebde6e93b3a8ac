"""Spectral clustering of speaker embeddings on cosine affinity: the one implementation.

Both the voice matching of intake (`collection/voices.py`) and the embedded diarizer
(`diarization/embedded.py`) cluster embedding windows this way; it lives on the
collection floor because that is the lower of the two. The affinity keeps each row's
nearest neighbours only (windows spanning a turn change would otherwise bridge two
voices), the normalised Laplacian's first k eigenvectors are the points, and k-means
runs from fixed seeds so the same audio always gives the same labels.
"""

from __future__ import annotations

import numpy as np

KMEANS_SEEDS = 5


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each row scaled to unit length (zero rows stay zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def pruned_laplacian(x: np.ndarray, keep_share: float) -> np.ndarray:
    """Normalised Laplacian of the cosine affinity of unit rows, pruned to each row's nearest neighbours.

    Each row keeps its `keep_share` nearest neighbours (at least 2), negative
    similarities count as none, and the pruned affinity is symmetrised.
    """
    n = len(x)
    affinity = np.clip(x @ x.T, 0.0, None)
    keep = max(2, min(n, int(keep_share * n)))
    rows = np.arange(n)[:, None]
    nearest = np.argpartition(-affinity, keep - 1, axis=1)[:, :keep]
    pruned = np.zeros_like(affinity)
    pruned[rows, nearest] = affinity[rows, nearest]
    affinity = (pruned + pruned.T) / 2
    degree = affinity.sum(axis=1)
    return np.eye(n) - affinity / np.sqrt(np.outer(degree, degree) + 1e-12)


def spectral_clustering(x: np.ndarray, k: int, keep_share: float) -> np.ndarray | None:
    """A cluster index 0..k-1 per unit row, or None when no k-means run found k non-empty clusters.

    k-means (k-means++ starts, seeds 0..KMEANS_SEEDS-1) on the unit rows of the first k
    eigenvectors of `pruned_laplacian`; the run with the least inertia wins. The caller
    decides what None means (one voice, or a round-robin fallback).
    """
    from scipy.cluster.vq import kmeans2

    _, vectors = np.linalg.eigh(pruned_laplacian(x, keep_share))
    points = unit_rows(vectors[:, :k])
    best: tuple[float, np.ndarray] | None = None
    for seed in range(KMEANS_SEEDS):
        centres, labels = kmeans2(points, k, minit="++", seed=seed)
        inertia = float(((points - centres[labels]) ** 2).sum())
        if len(np.unique(labels)) == k and (best is None or inertia < best[0]):
            best = (inertia, labels)
    return best[1].astype(int) if best is not None else None
