"""Runs on the diarizer's 10 ms frame grid: the stretches every step (VAD, clustering,
re-segmentation, the separation statistics, segments) works on, found one way."""

from __future__ import annotations

import numpy as np


def mask_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of a boolean array."""
    if not len(mask):
        return []
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def label_runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(start, end, label) runs of an int array, -1 (no speech) included."""
    if not len(labels):
        return []
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(labels)]])
    return [(int(a), int(b), int(labels[a])) for a, b in zip(starts, ends)]
