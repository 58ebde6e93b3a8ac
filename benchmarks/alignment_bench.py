"""Word timings of corrected turns against the synthetic dialogues' true word times: before and after re-alignment.

For each dialogue the pre-annotation's words come from Whisper (the embedded tiny.en,
the model the editor's saves align with) and go to the true turns they overlap most.
A transcriber's correction is simulated by giving every turn its true text, as the
editor sends it (the words dropped once they no longer spell the text); the save path's
`review_ui.realign.retime_turns` then times them with `asr.alignment`. Reported per set,
over the words of the corrected turns (both boundaries of each word, seconds):

- before: what the editor stored until now: no words, so no word times at all; and what
  an untimed turn gives an export that spreads it (equal shares, and shares by length,
  which is the fallback when alignment cannot run);
- the pre-annotation's own word times, for the words it heard right (a reference);
- after: the re-aligned words, and how many were marked typed.

    python benchmarks/alignment_bench.py [--set DIR ...] [--limit N]

The committed set (collection/synthetic/dialogues) is where `WHISPER_LAG_S` was measured;
give a second set made with another seed (`python -m collection.synthetic.generator --out
DIR --count 6 --seed 7`) for figures nothing was tuned on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

from asr.alignment import AlignedWord, WordAligner, align_turn, spread  # noqa: E402
from asr.models import resolve_model  # noqa: E402
from asr.transcriber import AsrOptions, Transcriber  # noqa: E402
from collection.synthetic import DIALOGUES_DIR  # noqa: E402
from review_ui.realign import WordTiming, retime_turns  # noqa: E402


def boundary_errors(words: list[dict[str, Any]] | list[AlignedWord], truth: list[dict[str, Any]]) -> list[float]:
    """|start - true start| and |end - true end| of each word, in order (the texts must be the same tokens)."""
    out = []
    for word, true in zip(words, truth, strict=True):
        start, end = (word["start"], word["end"]) if isinstance(word, dict) else (word.start, word.end)
        out += [abs(start - true["start"]), abs(end - true["end"])]
    return out


def equal_shares(text: str, start: float, end: float) -> list[dict[str, float]]:
    """Each word an equal share of the turn (what an export that spreads an untimed turn does)."""
    n = len(text.split())
    return [{"start": start + i * (end - start) / n, "end": start + (i + 1) * (end - start) / n} for i in range(n)]


def model_words_to_turns(words: list[dict[str, Any]], truth: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pre-annotation as the parent revision: each model word in the true turn it overlaps most."""
    parent = [{**t, "text": "", "words": []} for t in truth]
    for word in words:
        best = max(parent, key=lambda t: min(word["end"], t["end"]) - max(word["start"], t["start"]))
        best["words"].append(word)
    for turn in parent:
        turn["text"] = " ".join(w["text"] for w in turn["words"])
    return parent


def measure_set(directory: Path, aligner: WordAligner, transcriber: Transcriber, limit: int | None) -> dict[str, Any]:
    stems = sorted(p.name.removesuffix(".turns.json") for p in directory.glob("*.turns.json"))[:limit]
    errors: dict[str, list[float]] = {"equal": [], "by_length": [], "after": [], "model_heard_right": []}
    words = typed = turns_corrected = 0
    timing = WordTiming(model=aligner.model_dir.name)
    seconds = cpu = 0.0
    for stem in stems:
        truth = json.loads((directory / f"{stem}.turns.json").read_text())
        path = directory / f"{stem}.flac"
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 16000, f"{path} is not 16 kHz"
        parent = model_words_to_turns(transcriber.transcribe(audio).words, truth)
        corrected = [{"speaker": t["speaker"], "start": t["start"], "end": t["end"], "text": t["text"], "words": []}
                     for t, p in zip(truth, parent) if p["text"] != t["text"]]
        began, began_cpu = time.perf_counter(), time.process_time()
        retimed = retime_turns(corrected, parent, lambda s, e, text: align_turn(aligner, path, s, e, text), timing)
        seconds += time.perf_counter() - began
        cpu += time.process_time() - began_cpu
        by_bounds = {(t["start"], t["end"], t["speaker"]): t for t in truth}
        for turn, model in zip(retimed, [p for t, p in zip(truth, parent) if p["text"] != t["text"]]):
            true = by_bounds[(turn["start"], turn["end"], turn["speaker"])]["words"]
            turns_corrected += 1
            words += len(true)
            typed += sum(1 for w in turn["words"] if w.get("typed"))
            errors["after"] += boundary_errors(turn["words"], true)
            errors["equal"] += boundary_errors(equal_shares(turn["text"], turn["start"], turn["end"]), true)
            errors["by_length"] += boundary_errors(spread(turn["text"], turn["start"], turn["end"]), true)
            for word, true_word in zip(model["words"], true):  # words the model heard right, in place
                if len(model["words"]) == len(true) and word["text"] == true_word["text"]:
                    errors["model_heard_right"] += boundary_errors([word], [true_word])
    return {"set": str(directory), "dialogues": len(stems), "turns_corrected": turns_corrected, "words": words,
            "typed": typed, "aligned_turns": timing.aligned, "spread_turns": timing.spread,
            "align_s_per_turn": seconds / max(turns_corrected, 1), "align_cpu_s_per_turn": cpu / max(turns_corrected, 1),
            "median_s": {k: (statistics.median(v) if v else None) for k, v in errors.items()},
            "p90_s": {k: (float(np.percentile(v, 90)) if v else None) for k, v in errors.items()}}


def print_set(result: dict[str, Any]) -> None:
    med, p90 = result["median_s"], result["p90_s"]
    print(f"\n{result['set']}: {result['dialogues']} dialogues, {result['turns_corrected']} corrected turns, "
          f"{result['words']} words ({result['typed']} marked typed); {result['aligned_turns']} turns aligned, "
          f"{result['spread_turns']} spread; alignment per turn {result['align_s_per_turn']:.2f} s wall, "
          f"{result['align_cpu_s_per_turn']:.2f} s CPU")
    print("  word-boundary error vs ground truth    median     p90")
    print(f"  before: words dropped (no times)        {'-':>6}  {'-':>6}   0 of {result['words']} words timed")
    for key, label in (("equal", "before, spread in equal shares"), ("by_length", "before, spread by length (fallback)"),
                       ("model_heard_right", "pre-annotation, words it heard right"), ("after", "after re-alignment")):
        if med[key] is not None:
            print(f"  {label:<38} {med[key] * 1000:5.0f} ms {p90[key] * 1000:5.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, action="append", default=None, help="a folder of synthetic dialogues (repeatable)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many dialogues per set")
    parser.add_argument("--models-dir", type=Path, default=Path("turnscribe-data/models"))
    args = parser.parse_args()
    model = resolve_model("tiny.en", args.models_dir)
    aligner = WordAligner(model)
    transcriber = Transcriber(model, AsrOptions(vad_filter=False))
    for directory in args.set or [DIALOGUES_DIR]:
        print_set(measure_set(directory, aligner, transcriber, args.limit))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
