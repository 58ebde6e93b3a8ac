"""A small trained overlapped-speech detector: log-mel frames in, per-frame speaker count (0, 1, 2+) out.

No pretrained overlap model can be had offline, so this one is trained here, on synthetic
dialogues from the project's own generator with seeds that no evaluation uses (the command and
seeds are in `diarization/models/README.md`; `diarization/training/train_overlap.py` reproduces
the weights). It replaces nothing by itself: the embedded diarizer turns its overlap probability
into second voices (step 7 of `diarization/embedded.py`).

The network (about 0.1 M parameters): 64 log-mel bands on the diarizer's 10 ms grid, normalised
per recording, a 3-tap convolution, a strided one down to 20 ms, a bidirectional GRU and a linear
layer giving three classes per 20 ms step (no speech, one speaker, two or more), repeated back to
10 ms. It runs on the CPU with the torch threads the caller sets, 30 s of audio at a time with 2 s
of context on each side, so memory stays bounded on an hour.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16000
HOP = 160  # 10 ms: the embedded diarizer's grid
N_MELS = 64
N_FFT = 512
WIN = 400  # 25 ms
BLOCK_FRAMES = 3000  # 30 s per network call
CONTEXT_FRAMES = 200  # 2 s of context on each side of a block
FEATURE_BLOCK = 6000  # log-mel computed a minute at a time

WEIGHTS = Path(__file__).parent / "models" / "overlap.pt"
WEIGHTS_SHA256 = "fe80b7beb80b298119e20479b7fb8b6e011099e150db9776ef66ef54aa974558"
"""Checksum of the committed weights: a changed or truncated file is refused, not silently used."""


class OverlapWeightsError(RuntimeError):
    """The committed overlap model's weights are missing or not the ones this code was measured with."""


def log_mel(audio: np.ndarray, n_frames: int | None = None) -> np.ndarray:
    """(n_frames, 64) log-mel frames, frame i centred on sample 160 i, normalised per recording
    (mean and deviation per band over the whole input: the level and channel of a recording say
    nothing about overlap). Computed a minute at a time with 3 frames of margin, so the result is
    the whole-input computation's."""
    import librosa

    samples = np.asarray(audio, np.float32)
    n = len(samples) // HOP if n_frames is None else n_frames
    out = np.zeros((n, N_MELS), np.float32)
    margin = 3
    for first in range(0, n, FEATURE_BLOCK):
        last = min(n, first + FEATURE_BLOCK)
        a = max(0, first - margin) * HOP
        b = min(len(samples), (last + margin) * HOP)
        mel = librosa.feature.melspectrogram(y=samples[a:b], sr=SAMPLE_RATE, n_fft=N_FFT, win_length=WIN,
                                             hop_length=HOP, n_mels=N_MELS, center=True).T
        take = mel[first - a // HOP: first - a // HOP + (last - first)]
        out[first: first + len(take)] = np.log(take + 1e-8)
    if n:
        out -= out.mean(axis=0)
        out /= out.std(axis=0) + 1e-5
    return out


def build_network():  # noqa: ANN201 - a torch.nn.Module; torch is imported lazily
    """The network, untrained: the one definition training and inference share."""
    import torch
    from torch import nn

    class OverlapNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.front = nn.Sequential(
                nn.Conv1d(N_MELS, 96, 3, padding=1), nn.ReLU(),
                nn.Conv1d(96, 96, 3, stride=2, padding=1), nn.ReLU(),
            )
            self.gru = nn.GRU(96, 64, batch_first=True, bidirectional=True)
            self.head = nn.Linear(128, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            """(batch, frames, 64) features -> (batch, frames, 3) logits on the 10 ms grid."""
            frames = x.shape[1]
            h = self.front(x.transpose(1, 2)).transpose(1, 2)
            h, _ = self.gru(h)
            logits = self.head(h)
            return logits.repeat_interleave(2, dim=1)[:, :frames]

    return OverlapNet()


class OverlapModel:
    """The committed weights, loaded once and checked against `WEIGHTS_SHA256`."""

    def __init__(self, path: Path = WEIGHTS, sha256: str | None = None) -> None:
        import torch

        expected = WEIGHTS_SHA256 if sha256 is None else sha256
        if not path.is_file():
            raise OverlapWeightsError(f"overlap model weights missing: {path}")
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if expected and digest != expected:
            raise OverlapWeightsError(f"overlap model weights {path} have SHA-256 {digest}, expected {expected}")
        self.sha256 = digest
        self.network = build_network()
        self.network.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        self.network.eval()

    def probabilities(self, audio: np.ndarray, n_frames: int) -> np.ndarray:
        """(n_frames, 3): per 10 ms frame, the probability of no speech, one speaker, two or more."""
        import torch

        features = log_mel(audio, n_frames)
        out = np.zeros((n_frames, 3), np.float32)
        with torch.inference_mode():
            for first in range(0, n_frames, BLOCK_FRAMES):
                last = min(n_frames, first + BLOCK_FRAMES)
                lo, hi = max(0, first - CONTEXT_FRAMES), min(n_frames, last + CONTEXT_FRAMES)
                lo -= lo % 2  # keep the network's 20 ms steps on the same even frames everywhere
                x = torch.from_numpy(features[lo:hi][None])
                p = torch.softmax(self.network(x)[0], dim=-1).numpy()
                out[first:last] = p[first - lo: last - lo]
        return out
