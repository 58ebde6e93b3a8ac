"""Train the overlapped-speech detector (`diarization/overlap_model.py`) on generated dialogues.

`python -m diarization.training.train_overlap --seeds 101-128 --validate-seeds 129-130 --data DIR
--out diarization/models/overlap.pt` generates (into DIR, once; reused when there) 4 plain and 4
`--realistic` dialogues per seed with `collection.synthetic.generator`, and trains on every
`<id>.flac` + `<id>.turns.json` (labels: the number of reference turns covering each 10 ms frame,
0 / 1 / 2+). The validation seeds' dialogues pick the epoch (frame average precision of "two or
more" among speech frames). Seeds that any evaluation uses (`EVALUATED_SEEDS`) are refused.
`diarization/models/README.md` names the command that made the committed weights.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np

from collection.decoding import decode, to_working_rate
from diarization.overlap_model import HOP, SAMPLE_RATE, build_network, log_mel

FRAME_S = HOP / SAMPLE_RATE
DIALOGUES_PER_SEED = 4
EVALUATED_SEEDS = {0, 1, 7, 10, 11, 12, 13, 14, 15, 16, 141, 142, 143, 144, 250, 251, 260, 261}
"""Seeds whose dialogues are evaluated somewhere in the project (the committed set is seed 0; held-out
sets 1, 7, 10-16 in the benchmarks' docstrings, 250 and 251 in `benchmarks/separation_rule_bench.py`, 260 and
261 in `benchmarks/turns_bench.py`; 141-144 are the diarizer's development sets, on which its options are
chosen or tried with the committed set): never trained on."""


def speaker_counts(turns: list[dict], n_frames: int) -> np.ndarray:
    """Per 10 ms frame, how many reference turns cover it, capped at 2."""
    count = np.zeros(n_frames, np.int64)
    for turn in turns:
        a, b = int(round(turn["start"] / FRAME_S)), int(round(turn["end"] / FRAME_S))
        count[max(0, a): min(n_frames, b)] += 1
    return np.minimum(count, 2)


def seed_range(text: str) -> list[int]:
    """'101-128' or '101,105' -> seeds; an evaluated seed is an error."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds.extend(range(int(lo), int(hi or lo) + 1))
    evaluated = sorted(set(seeds) & EVALUATED_SEEDS)
    if evaluated:
        raise argparse.ArgumentTypeError(f"seeds {evaluated} are evaluated: never train or validate on them")
    return seeds


def folders_for(seeds: list[int], data: Path) -> list[Path]:
    """The plain and realistic folders of each seed under `data`, generated when missing."""
    from collection.synthetic.generator import generate_dialogues

    out = []
    for seed in seeds:
        for kind in ("p", "r"):
            folder = data / f"{kind}{seed}"
            if not (folder / "truth.json").is_file():
                generate_dialogues(folder, count=DIALOGUES_PER_SEED, seed=seed, realistic=kind == "r")
            out.append(folder)
    return out


def load_folder(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(features, labels) of every dialogue in a generated folder."""
    out = []
    for flac in sorted(folder.glob("*.flac")):
        turns_file = flac.with_suffix(".turns.json")
        if not turns_file.is_file():
            continue
        decoded = decode(flac)
        audio = to_working_rate(decoded.samples, decoded.sample_rate)
        n = len(audio) // HOP
        out.append((log_mel(audio, n), speaker_counts(json.loads(turns_file.read_text()), n)))
    return out


def augment(batch: np.ndarray, rng: np.random.Generator, freq_mask: int, tilt: float) -> None:
    """In place, per crop: a random linear spectral tilt (another microphone or line) and a band of up
    to `freq_mask` mel bands set to the mean (SpecAugment): what a generated voice's exact spectrum
    says must not decide overlap."""
    bands = batch.shape[2]
    ramp = np.linspace(-1.0, 1.0, bands, dtype=np.float32)
    for crop in batch:
        if tilt:
            crop += np.float32(rng.uniform(-tilt, tilt)) * ramp
        if freq_mask:
            width = int(rng.integers(0, freq_mask + 1))
            first = int(rng.integers(0, bands - width + 1))
            crop[:, first: first + width] = 0.0


def average_precision(score: np.ndarray, positive: np.ndarray) -> float:
    order = np.argsort(-score)
    hits = positive[order].astype(float)
    if not hits.sum():
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precision * hits).sum() / hits.sum())


def main(argv: list[str] | None = None) -> None:
    """Train, keep the epoch with the best validation average precision, write the weights."""
    import torch

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--seeds", type=seed_range, required=True, help="training seeds, e.g. 101-128")
    parser.add_argument("--validate-seeds", type=seed_range, required=True, help="seeds that pick the epoch")
    parser.add_argument("--data", type=Path, required=True, help="folder for the generated dialogues")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--crop-s", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--overlap-weight", type=float, default=2.0, help="loss weight of the 2+ class")
    parser.add_argument("--overlap-crops", type=float, default=0.5, help="share of crops drawn around overlap")
    parser.add_argument("--freq-mask", type=int, default=0, help="mask up to this many adjacent mel bands per crop")
    parser.add_argument("--tilt", type=float, default=0.0, help="random spectral tilt per crop, in normalised units")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    if set(args.seeds) & set(args.validate_seeds):
        parser.error("a seed cannot both train and validate")
    train = [item for folder in folders_for(args.seeds, args.data) for item in load_folder(folder)]
    valid = [item for folder in folders_for(args.validate_seeds, args.data) for item in load_folder(folder)]
    frames = sum(len(y) for _, y in train)
    print(f"train {len(train)} dialogues, {frames * FRAME_S / 60:.1f} min, overlap "
          f"{sum(int((y == 2).sum()) for _, y in train) * FRAME_S:.0f} s; validate {len(valid)} "
          f"({time.perf_counter() - started:.0f} s to load)", flush=True)
    crop = int(round(args.crop_s / FRAME_S))
    crop -= crop % 2
    network = build_network()
    optimiser = torch.optim.Adam(network.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.epochs)
    class_weight = torch.tensor([1.0, 1.0, args.overlap_weight])
    lengths = np.array([len(y) for _, y in train], float)
    overlapped = [np.flatnonzero(y == 2) for _, y in train]
    steps = max(1, int(frames / crop / args.batch))
    best, best_state = -1.0, None
    for epoch in range(args.epochs):
        network.train()
        total = 0.0
        for _ in range(steps):
            xs, ys = [], []
            for i in rng.choice(len(train), args.batch, p=lengths / lengths.sum()):
                x, y = train[i]
                first = int(rng.integers(0, max(1, len(y) - crop + 1)))
                if rng.random() < args.overlap_crops and len(overlapped[i]):  # a crop around some overlap
                    first = int(np.clip(rng.choice(overlapped[i]) - rng.integers(0, crop), 0, max(0, len(y) - crop)))
                first -= first % 2
                xs.append(np.pad(x[first: first + crop], ((0, max(0, crop - len(y[first:first + crop]))), (0, 0))))
                ys.append(np.pad(y[first: first + crop], (0, max(0, crop - len(y[first:first + crop]))),
                                 constant_values=-100))
            batch = np.stack(xs)
            augment(batch, rng, args.freq_mask, args.tilt)
            logits = network(torch.from_numpy(batch))
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 3), torch.from_numpy(np.stack(ys)).reshape(-1),
                                                     weight=class_weight, ignore_index=-100)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
        schedule.step()
        network.eval()
        scores, positive = [], []
        with torch.inference_mode():
            for x, y in valid:
                p = torch.softmax(network(torch.from_numpy(x[None]))[0], dim=-1).numpy()
                speech = y >= 1
                scores.append(p[speech, 2])
                positive.append(y[speech] == 2)
        ap = average_precision(np.concatenate(scores), np.concatenate(positive))
        print(f"epoch {epoch + 1:2d} loss {total / steps:.4f} validation AP(2+) {ap:.3f} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        if ap > best:
            best, best_state = ap, {k: v.detach().clone() for k, v in network.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(best_state, buffer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buffer.getvalue())
    print(f"best validation AP {best:.3f}; wrote {args.out} ({len(buffer.getvalue())} bytes, SHA-256 "
          f"{hashlib.sha256(buffer.getvalue()).hexdigest()}) in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
