"""Train the voice backend (`diarization/models/voice_backend.npz`): LDA on Resemblyzer windows of many voices.

`python -m diarization.training.train_voice_backend --work DIR [--seeds 200-239]
[--exclude-seeds 12 13 14:8 15:8] [--dims 8] [--out diarization/models/voice_backend.npz]`

1. Realistic synthetic dialogues (``generator --realistic --count 6``: telephone lines, rooms,
   babble, office and traffic noise, level differences; 10 espeak-ng voices per seed) are
   generated into ``DIR/s<seed>`` for every training seed, unless already there. Training seeds
   are never evaluated anywhere (`train_overlap.EVALUATED_SEEDS`, 14 and 15 among them, are refused).
   Each set takes about 20 CPU s to generate and 15 CPU s to embed.
2. Every dialogue is run through the embedded diarizer's own front end (VAD, Resemblyzer 1 s
   windows every 0.2 s), and each window is labelled with its voice (espeak voice, speed and
   pitch: one person across dialogues) when one speaker's turns cover 90% of it and no other
   speaker is heard in it; other windows are dropped. Per recording the mean is removed and
   rows are scaled to unit length, as the diarizer clusters them.
3. Voices whose espeak-ng voice (base voice and variant, whatever the speed or pitch) speaks in
   any dialogue of ``--exclude-seeds`` are dropped, so that the held-out evaluation (realistic
   seeds 12 and 13 with 6 dialogues, 14 and 15 with 8: ``S:N``) meets no voice the backend was
   trained on. The voices are read from the
   generator's plan, so no audio of those seeds is needed.
4. `fit_backend` trains the LDA (within-voice covariance whitened) and the arrays are written
   with their provenance; the printed sha256 goes into ``diarization.voice_backend.BACKEND_SHA256``.

The committed file: ``--seeds 200-207,221-226 --exclude-seeds 12 13 14:8 15:8 --dims 8`` (1284 windows,
57 voices; 40 seeds were planned, 14 were generated in the time the shared machine gave); see
`diarization/models/README.md`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

from collection.clustering import unit_rows
from collection.synthetic.generator import plan_set
from collection.synthetic.reference_audio import Conversation, synthetic_conversations
from diarization.embedded import FRAME_S, EmbeddedDiarizer
from diarization.training.train_overlap import seed_range
from diarization.voice_backend import BACKEND_FILE, VoiceBackend

PURITY = 0.9  # share of a window one speaker's turns must cover
SET_SIZE = 6  # dialogues per generated set (10 voices)
TRAINING_SEEDS = "200-207,221-226"  # the committed backend's training seeds
HELD_OUT_SETS = [(12, SET_SIZE), (13, SET_SIZE), (14, 8), (15, 8)]  # whose voices the committed backend left out


def fit_backend(windows: np.ndarray, voices: np.ndarray, dims: int, regularisation: float = 1e-3,
                min_windows: int = 5) -> VoiceBackend:
    """LDA with whitened within-voice covariance on `windows` (n, d) labelled by `voices` (n,);
    voices with fewer than `min_windows` windows are left out."""
    import scipy.linalg

    names, index = np.unique(voices, return_inverse=True)
    counts = np.bincount(index)
    keep = counts[index] >= min_windows
    x, index = np.asarray(windows, np.float64)[keep], index[keep]
    used = np.unique(index)
    if len(used) <= dims:
        raise ValueError(f"{len(used)} voices with {min_windows}+ windows cannot train {dims} dimensions")
    means = np.stack([x[index == c].mean(axis=0) for c in used])
    sizes = np.array([(index == c).sum() for c in used], np.float64)
    within = x - means[np.searchsorted(used, index)]
    sw = within.T @ within / len(x)
    mean = x.mean(axis=0)
    between = means - mean
    sb = (between * sizes[:, None]).T @ between / sizes.sum()
    values, vectors = scipy.linalg.eigh(sb, sw + regularisation * np.eye(len(sw)))
    order = np.argsort(values)[::-1][:dims]
    return VoiceBackend(mean=mean, projection=vectors[:, order])


def save_backend(backend: VoiceBackend, path: Path, **provenance: str) -> str:
    """Write the backend (and text `provenance`) to `path` as an .npz whose bytes depend on the
    arrays only (fixed zip timestamps, so a rerun of the training reproduces the checksum);
    returns the file's sha256."""
    import zipfile

    arrays = {"mean": backend.mean, "projection": backend.projection,
              **{key: np.array(value) for key, value in provenance.items()}}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w") as member:
                np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def generated_set(work: Path, seed: int) -> Path:
    """``work/s<seed>``, generated (realistic, SET_SIZE dialogues) unless its truth.json is there."""
    folder = work / f"s{seed}"
    if not (folder / "truth.json").exists():
        subprocess.run([sys.executable, "-m", "collection.synthetic.generator", "--realistic", "--seed", str(seed),
                        "--count", str(SET_SIZE), "--out", str(folder)], check=True)
    return folder


def labelled_windows(diarizer: EmbeddedDiarizer, conversation: Conversation,
                     voices: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The diarizer's windows of one recording (centred, unit rows) and each one's voice ("" when
    not one speaker's alone)."""
    audio = conversation.audio
    frames = len(audio) // int(16000 * FRAME_S)
    speech = diarizer._vad(audio, frames, lambda *_: None)
    starts, embeddings = diarizer._embed(audio, speech, lambda *_: None)
    width = int(round(diarizer.options.window_s / FRAME_S))
    covered = {speaker: np.zeros(frames + width, bool) for speaker in conversation.speakers}
    for speaker, start, end in conversation.turns:
        covered[speaker][int(start / FRAME_S): int(end / FRAME_S)] = True
    names = []
    for s in starts:
        shares = {speaker: float(c[s: s + width].mean()) for speaker, c in covered.items()}
        own = [speaker for speaker, share in shares.items() if share >= PURITY]
        heard_others = any(share > 0 for speaker, share in shares.items() if speaker not in own)
        names.append(voices[own[0]] if len(own) == 1 and not heard_others else "")
    windows = unit_rows(embeddings - embeddings.mean(axis=0)) if len(embeddings) > 1 else embeddings
    return windows, np.array(names)


def set_windows(diarizer: EmbeddedDiarizer, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Labelled windows of every dialogue of a generated set, cached in ``folder/windows.npz``."""
    cache = folder / "windows.npz"
    if cache.exists():
        with np.load(cache) as data:
            return data["windows"], data["voices"]
    truth = json.loads((folder / "truth.json").read_text())
    voices = {sid: f"{v['voice']}/{v['speed']}/{v['pitch']}" for sid, v in truth["voice_params"].items()}
    parts = [labelled_windows(diarizer, conversation, voices) for conversation in synthetic_conversations(folder)]
    windows, names = np.concatenate([w for w, _ in parts]), np.concatenate([n for _, n in parts])
    np.savez(cache, windows=windows, voices=names)
    return windows, names


def held_out_set(text: str) -> tuple[int, int]:
    """``S`` (seed S, SET_SIZE dialogues) or ``S:N`` (seed S, N dialogues) as (seed, count): the
    generator draws more voices for a larger set, so the count matters."""
    seed, _, count = text.partition(":")
    return int(seed), int(count or SET_SIZE)


def excluded_voices(sets: list[tuple[int, int]]) -> set[str]:
    """espeak-ng voices (base+variant) that speak in the held-out `sets` ((seed, count) each), from
    the generator's plan."""
    return {person.voice.name for seed, count in sets for person in plan_set(count, np.random.default_rng(seed))[0]}


def training_voices(seeds: list[int] | None = None, held_out: list[tuple[int, int]] | None = None) -> set[str]:
    """espeak-ng voices (base+variant) that speak in the training `seeds` (default: the committed backend's) and
    were not left out for the `held_out` sets: a superset of the voices the backend learnt (a voice with too
    few clean windows is dropped by `fit_backend`), read from the generator's plan."""
    voices = {person.voice.name for seed in (seed_range(TRAINING_SEEDS) if seeds is None else seeds)
              for person in plan_set(SET_SIZE, np.random.default_rng(seed))[0]}
    return voices - excluded_voices(HELD_OUT_SETS if held_out is None else held_out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the generated training sets")
    parser.add_argument("--seeds", type=seed_range, default=seed_range(TRAINING_SEEDS))
    parser.add_argument("--exclude-seeds", type=held_out_set, nargs="*", default=HELD_OUT_SETS,
                        help="held-out sets as SEED or SEED:COUNT (dialogues; default %d)" % SET_SIZE)
    parser.add_argument("--dims", type=int, default=8)
    parser.add_argument("--out", type=Path, default=BACKEND_FILE)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    diarizer = EmbeddedDiarizer()
    excluded = excluded_voices(args.exclude_seeds)
    windows, names = [], []
    for seed in args.seeds:
        w, n = set_windows(diarizer, generated_set(args.work, seed))
        keep = (n != "") & np.array([name.split("/")[0] not in excluded for name in n])
        windows.append(w[keep])
        names.append(n[keep])
        print(f"seed {seed}: {int(keep.sum())} windows kept of {len(n)}", flush=True)
    x, y = np.concatenate(windows), np.concatenate(names)
    backend = fit_backend(x, y, args.dims)
    command = (f"python -m diarization.training.train_voice_backend --seeds {','.join(map(str, args.seeds))} "
               f"--exclude-seeds {' '.join(f'{s}:{n}' for s, n in args.exclude_seeds)} --dims {args.dims}")
    digest = save_backend(backend, args.out, command=command,
                          excluded_voices=" ".join(sorted(excluded)))
    print(f"{len(x)} windows, {len(np.unique(y))} voices ({len(excluded)} espeak voices excluded); "
          f"{args.out} sha256 {digest}")


if __name__ == "__main__":
    main()
