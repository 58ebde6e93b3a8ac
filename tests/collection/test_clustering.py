"""The one spectral clustering (voice matching and the embedded diarizer use it): by hand and on known groups."""

from __future__ import annotations

import numpy as np

from collection.clustering import pruned_laplacian, spectral_clustering, unit_rows


def test_pruned_laplacian_by_hand() -> None:
    angles = np.radians([0, 30, 45, 120])  # nearest neighbours: 0->30, 30->45, 45->30, 120->45 (not mutual)
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    got = pruned_laplacian(x, 0.5)  # keep = 2 neighbours per row (itself and its nearest)
    similarity = np.clip(x @ x.T, 0, None)
    kept = np.zeros((4, 4))
    for i in range(4):
        for j in sorted(range(4), key=lambda j: -similarity[i, j])[:2]:
            kept[i, j] = similarity[i, j]
    affinity = (kept + kept.T) / 2
    degree = affinity.sum(axis=1)
    want = np.array([[(i == j) - affinity[i, j] / np.sqrt(degree[i] * degree[j] + 1e-12) for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert kept[0, 2] == 0 and got[0, 2] == 0, "a row's far neighbours are pruned"
    assert kept[0, 1] > 0 and kept[1, 0] == 0 and got[1, 0] == got[0, 1] != 0, "a one-sided neighbour counts both ways"


def test_spectral_clustering_recovers_separated_voices_the_same_way_every_time() -> None:
    rng = np.random.default_rng(7)
    centres = unit_rows(rng.normal(size=(3, 16)))
    truth = np.repeat([0, 1, 2], [30, 20, 25])
    x = unit_rows(centres[truth] + 0.15 * rng.normal(size=(len(truth), 16)))
    labels = spectral_clustering(x, 3, 0.3)
    assert labels is not None and labels.shape == truth.shape
    pairs = set(zip(truth.tolist(), labels.tolist()))
    assert len(pairs) == 3 and len({label for _, label in pairs}) == 3, "one label per true group"
    assert np.array_equal(spectral_clustering(x, 3, 0.3), labels), "fixed seeds: the same input gives the same labels"
