"""Stored turns against ground truth: DER split into false alarm / missed / confusion, and turn-boundary error.

`python benchmarks/turns_bench.py [DIR ...]` (default: the committed synthetic set) runs what
`turnscribe pretranscribe` runs (the `Preannotator`: embedded diarizer, tiny.en, `build_turns`)
on every `<id>.flac` with num_speakers=2 and English, and scores the turns it would store with
`asr.evaluation.score_recording`, the code behind `turnscribe eval` (pyannote.metrics
DiarizationErrorRate(collar=0, skip_overlap=False) and its components; median |start|/|end|
error of each reference turn against its speaker's best-overlapping turn). A second folder,
e.g. one made with `python -m collection.synthetic.generator --out DIR --count 8 --seed 7`,
is the check that nothing was tuned on it.

Measured (tiny.en + embedded diarizer as shipped: the retrained overlap network, speech widened to
its speech runs and the voices embedded there; one BLAS thread, no collar, overlap scored). Seeds
7, 13, 260 and 261 are unseen (generated with `--count 8 --seed N`; no option was chosen on them;
260 and 261 were generated for the last choice, whether to embed the voices on the widened speech,
and measured once for it); 141-144 are development sets. "95%" is the bootstrap interval of the
DER over the set's dialogues (`der_interval`):

    set                      DER     95%            false alarm  missed  confusion  median boundary
    committed (6, tuned on)  6.71%   4.11-9.60%     2.00%        2.71%   2.01%      0.026 s
    --seed 7 (8)             7.24%   5.07-9.62%     2.01%        4.08%   1.15%      0.022 s
    --seed 13 (8)            4.71%   3.59-5.86%     2.13%        2.27%   0.30%      0.020 s
    --seed 260 (8)           5.14%   4.17-6.22%     1.81%        3.07%   0.26%      0.022 s
    --seed 261 (8)           8.30%   4.73-13.83%    1.79%        4.24%   2.27%      0.028 s
    unseen, pooled (32)      6.38%   5.08-8.03%
    dev 143 / 144 (8 each)   10.57% / 7.71%  (4.79-18.31% / 4.43-12.61%)

With the voices embedded on the VAD's regions (the previous release) the unseen sets gave 8.04% /
4.70% / 5.83% / 8.72%. The targets (DER < 6%, false alarm < 3%, boundary < 0.15 s) are met for
false alarm and boundaries everywhere; DER < 6% holds on seeds 13 and 260 and is inside the pooled
interval, not on the committed set, seed 7 or 261. The DER of a set of eight swings with one or two
dialogues whose two voices Resemblyzer's windows do not separate (seed 261, dev 143 dlg001 25%
confusion, dev 144 dlg008 13%): `benchmarks/der_breakdown.py`'s docstring says what was tried.
WER depends on the diarizer only through `drop_outside_speech`.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from asr.evaluation import Score, load_reference, score_recording
from asr.preannotate import Preannotator, PreannotationSettings
from collection.decoding import decode, to_working_rate
from collection.synthetic import DIALOGUES_DIR
from store.turns import turns_from_json


def measure(directory: Path, preannotator: Preannotator) -> dict[str, Any]:
    """Per-file and total summaries (`Score.summary()`) of the pre-annotation of every dialogue in `directory`."""
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    total, files = Score(), {}
    started = time.perf_counter()
    for flac in sorted(directory.glob("*.flac")):
        reference = load_reference(directory, flac.stem)
        if reference is None:
            continue
        decoded = decode(flac)
        result = preannotator(to_working_rate(decoded.samples, decoded.sample_rate), num_speakers=2, language="en")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = score_recording(turns_from_json(result.turns), reference, flac.stem)
        files[flac.stem] = score.summary()
        total.add(score)
    return {"files": files, "total": total.summary(), "seconds": time.perf_counter() - started}


def _row(name: str, s: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return f"{'–':>7s}" if v is None else f"{v:7.2%}"

    return (f"{name:10s} {pct(s['der'])} {pct(s['der_false_alarm'])} {pct(s['der_miss'])} {pct(s['der_confusion'])} "
            f"{s['boundary_median_s'] or 0:8.3f} {s['unmatched_turns']:3d}/{s['reference_turns']:<3d} {pct(s['wer'])}")


def _errors_and_speech(files: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Seconds of diarization error and of reference speech of each scored dialogue."""
    scored = [f for f in files if f["der"] is not None]
    return (np.array([f["der"] * f["reference_speech_s"] for f in scored]),
            np.array([f["reference_speech_s"] for f in scored]))


def der_interval(files: list[dict[str, Any]], draws: int = 10000, seed: int = 0) -> tuple[float, float]:
    """95% interval of the pooled DER (total error over total reference speech) when the dialogues
    are drawn again with replacement: eight dialogues are few, and one whose voices the embeddings
    cannot tell apart moves a set's DER by two points, so a single set's figure says little alone."""
    errors, totals = _errors_and_speech(files)
    if not len(totals):
        return float("nan"), float("nan")
    picks = np.random.default_rng(seed).integers(0, len(totals), size=(draws, len(totals)))
    ratios = errors[picks].sum(axis=1) / totals[picks].sum(axis=1)
    low, high = np.quantile(ratios, [0.025, 0.975])
    return float(low), float(high)


def main(argv: list[str] | None = None) -> None:
    """Print DER, its parts, the median boundary error and WER per file and in total, per folder,
    with a bootstrap interval of each folder's DER and, over two or more folders, of all their
    dialogues pooled."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("directories", nargs="*", type=Path, help="dialogues as <id>.flac + <id>.turns.json/.stm/.rttm")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as models:
        preannotator = Preannotator(PreannotationSettings(device="cpu"), Path(models))
        pooled: list[dict[str, Any]] = []
        directories = args.directories or [DIALOGUES_DIR]
        for directory in directories:
            report = measure(directory, preannotator)
            pooled.extend(report["files"].values())
            print(f"\n{directory}")
            print(f"{'file':10s} {'DER':>7s} {'FA':>7s} {'miss':>7s} {'conf':>7s} {'bound s':>8s} {'unmatched':9s} {'WER':>7s}")
            for name, summary in report["files"].items():
                print(_row(name, summary))
            print(_row("total", report["total"]) + f"   ({report['seconds']:.0f} s)")
            low, high = der_interval(list(report["files"].values()))
            print(f"DER 95% bootstrap interval over its dialogues: {low:.2%} - {high:.2%}")
        if len(directories) > 1:
            errors, totals = _errors_and_speech(pooled)
            low, high = der_interval(pooled)
            print(f"\nall {len(pooled)} dialogues pooled: DER {errors.sum() / max(totals.sum(), 1e-9):.2%} "
                  f"(95% {low:.2%} - {high:.2%})")


if __name__ == "__main__":
    main()
