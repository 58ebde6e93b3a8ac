"""Candidate statistics for the "voices barely separate" flag, beside the silhouette it uses.

`python benchmarks/separation_candidates_bench.py [--sets DIR ...] [--skip-real]`

The cases are `benchmarks/separation_bench.py`'s (embedded diarizer, num_speakers=2; two
voices: real recordings offline and generated dialogues; one voice registered as two: each
speaker's own speech). For each case the diarizer's own windows, embeddings and labels
(after re-segmentation, before overlap detection) are read by wrapping two of its steps,
and these statistics of its two clusters are printed:

- ``silhouette``: what the flag uses (cosine silhouette of the centred window embeddings);
- ``centroid_cos``: cosine between the clusters' mean *uncentred* Resemblyzer embeddings
  (a same-voice test: utterances of one speaker score high);
- ``fisher``: squared distance between the clusters' centred mean embeddings over their
  mean within-cluster spread;
- ``dbic``: ΔBIC per frame between one full-covariance Gaussian and two on the clusters'
  standardised MFCC frames (the classic same-speaker test, penalty left out);
- ``f0_st``: distance in semitones between the clusters' median F0 (librosa.yin, 60-400 Hz);
- ``heldout_acc``: share of a cluster's runs (>= 0.3 s) that per-cluster MFCC GMMs trained
  on the *other* runs (alternate runs, two folds) give to the right cluster;
- ``voice_distance``: the clusters' distance in a trained LDA backend's space
  (`diarization.voice_backend`, trained by `diarization/training/train_voice_backend.py` on seeds
  that are never evaluated; the flag now uses it, vetoed by the agreement).

A statistic is usable when some threshold puts every one-voice case on one side and every
two-voice case on the other; the summary prints, per statistic, the two-voice range, the
one-voice range and how many one-voice cases lie beyond every two-voice case.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from collection.clustering import unit_rows
from collection.synthetic.reference_audio import one_voice, real_conversations, synthetic_conversations
from diarization import embedded
from diarization.embedded import EmbeddedDiarizer
from diarization.separation import heldout_agreement
from diarization.voice_backend import voice_distance

WINDOW_FRAMES = 100  # the diarizer's 1 s windows on its 10 ms grid
# (statistic, True when one voice is expected to score higher than two voices)
STATISTICS = (("silhouette", False), ("centroid_cos", True), ("fisher", False), ("dbic", False),
              ("f0_st", False), ("heldout_acc", False), ("voice_distance", False))


def captured_diarizer() -> tuple[EmbeddedDiarizer, dict[str, Any]]:
    """An embedded diarizer whose windows, embeddings, speech mask and labels land in the returned dict."""
    diarizer = EmbeddedDiarizer()
    seen: dict[str, Any] = {}
    embed, overlapped = diarizer._embed, diarizer._overlapped

    def embed_and_keep(audio, speech, hook):  # type: ignore[no-untyped-def]
        starts, vectors = embed(audio, speech, hook)
        seen.update(starts=starts, embeddings=vectors, speech=speech.copy())
        return starts, vectors

    def overlapped_and_keep(labels, probability):  # type: ignore[no-untyped-def]
        seen.update(labels=labels.copy())
        return overlapped(labels, probability)

    diarizer._embed, diarizer._overlapped = embed_and_keep, overlapped_and_keep  # type: ignore[method-assign]
    return diarizer, seen


def _logdet(frames: np.ndarray) -> float:
    return float(np.linalg.slogdet(np.cov(frames.T) + 1e-6 * np.eye(frames.shape[1]))[1])


def statistics(audio: np.ndarray, seen: dict[str, Any]) -> dict[str, float | None]:
    """The candidate statistics of the two clusters in `seen` (None where a cluster is too small)."""
    import librosa

    labels, starts, vectors = seen["labels"], seen["starts"], seen["embeddings"]
    window = np.array([np.bincount(np.maximum(labels[s: s + WINDOW_FRAMES], 0), minlength=2).argmax()
                       if (labels[s: s + WINDOW_FRAMES] >= 0).any() else -1 for s in starts])
    if min((window == 0).sum(), (window == 1).sum()) < 2:
        return {}
    means = unit_rows(np.stack([vectors[window == j].mean(axis=0) for j in (0, 1)]))
    centred = unit_rows(vectors - vectors.mean(axis=0))
    centres = [centred[window == j].mean(axis=0) for j in (0, 1)]
    spread = np.mean([((centred[window == j] - centres[j]) ** 2).sum(axis=1).mean() for j in (0, 1)])
    features = embedded._mfcc(audio, len(labels))
    speech = seen["speech"]
    features = (features - features[speech].mean(axis=0)) / (features[speech].std(axis=0) + 1e-6)
    a, b = features[labels == 0], features[labels == 1]
    n = len(a) + len(b)
    f0 = librosa.yin(audio.astype(np.float32), fmin=60, fmax=400, sr=16000, frame_length=1024, hop_length=160)
    f0, frame_labels = f0[: len(labels)], labels[: len(f0)]
    voiced = (f0 > 62) & (f0 < 390)
    semitones = [np.median(12 * np.log2(f0[voiced & (frame_labels == j)] / 100)) for j in (0, 1)]
    return {
        "centroid_cos": float(means[0] @ means[1]),
        "fisher": float(((centres[0] - centres[1]) ** 2).sum() / spread),
        "dbic": 0.5 * (n * _logdet(np.concatenate([a, b])) - len(a) * _logdet(a) - len(b) * _logdet(b)) / n,
        "f0_st": float(abs(semitones[0] - semitones[1])),
        "heldout_acc": heldout_agreement(features, labels),  # the statistic the warning uses
        "voice_distance": voice_distance(vectors, starts, labels),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=Path, nargs="*", default=[], help="generated dialogue folders")
    parser.add_argument("--skip-real", action="store_true", help="skip the real recordings")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    diarizer, seen = captured_diarizer()
    groups = {} if args.skip_real else {"real": real_conversations()}
    groups |= {str(folder): synthetic_conversations(folder) for folder in args.sets}
    rows: list[tuple[str, dict[str, float | None]]] = []
    for group, conversations in groups.items():
        for conversation in conversations:
            cases = [(conversation.name, "two", conversation.audio)]
            cases += [(f"{conversation.name}:{s}", "one", one_voice(conversation, s)) for s in conversation.speakers]
            for name, kind, audio in cases:
                seen.clear()
                result = diarizer(audio, num_speakers=2)
                values: dict[str, float | None] = {"silhouette": result.params.get("cluster_separation")}
                if "labels" in seen:
                    values |= statistics(audio, seen)
                rows.append((kind, values))
                print(group, kind, name, " ".join(f"{k}={v:.3f}" if v is not None else f"{k}=-" for k, v in values.items()),
                      flush=True)
    for statistic, one_higher in STATISTICS:
        two = [v[statistic] for k, v in rows if k == "two" and v.get(statistic) is not None]
        one = [v[statistic] for k, v in rows if k == "one" and v.get(statistic) is not None]
        if not two or not one:
            continue
        beyond = sum(x > max(two) for x in one) if one_higher else sum(x < min(two) for x in one)
        print(f"# {statistic}: two voices {min(two):.3f}..{max(two):.3f}, one voice {min(one):.3f}..{max(one):.3f}; "
              f"one-voice cases beyond every two-voice case: {beyond}/{len(one)}")


if __name__ == "__main__":
    main()
