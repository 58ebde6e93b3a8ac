"""Decoding options of the ASR stage against bare faster-whisper, file by file.

Run: `.venv/bin/python benchmarks/decoding_bench.py [--model tiny.en --model base] [--option default ...]
[--unseen-dir DIR] [--json OUT]`.

For every model, on the committed synthetic set (seed 0, the set the defaults were chosen
on) and on an unseen set generated with seed 11 (`--unseen-dir`, generated there when
missing; nothing is tuned on it), prints per file and per decoding option the WER of
the ASR stage (`Transcriber.transcribe` with the embedded diarizer's speech regions, as
`Preannotator` runs it), the WER of bare `WhisperModel.transcribe(audio, language=...)`
with the library's defaults and the same model files, loaded afresh for each file (as a user's
own process would: a loaded model that sampled on one file samples differently on the next, see
`asr.transcriber.SamplingWatch`), and their ratio. WER: jiwer on
`asr.evaluation.normalize`d text, both sides. The figure to hold is stage <= bare on
every file (issue #12).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr.evaluation import WordCounts, word_counts  # noqa: E402
from asr.models import resolve_model  # noqa: E402
from asr.transcriber import AsrOptions, Transcriber, options_for  # noqa: E402
from collection.decoding import decode, to_working_rate  # noqa: E402
from collection.synthetic import DIALOGUES_DIR  # noqa: E402
from diarization.backends import load_diarizer  # noqa: E402
from store.settings import enforce_offline  # noqa: E402

UNSEEN_SEED, UNSEEN_COUNT = 11, 8

OPTIONS: dict[str, Callable[[AsrOptions], dict]] = {  # each a change to the model's defaults
    "default": lambda o: {},
    "beam1": lambda o: {"beam_size": 1},
    "no_fallback": lambda o: {"temperatures": (0.0,)},
    "toggle_cond": lambda o: {"condition_on_previous_text": not o.condition_on_previous_text},
    "toggle_vad": lambda o: {"vad_filter": not o.vad_filter},
    "no_silence_skip": lambda o: {"hallucination_silence_threshold": None},
    "per_turn": lambda o: {"per_turn": True},
    "library": lambda o: {"vad_filter": False, "condition_on_previous_text": True, "hallucination_silence_threshold": None,
                          "beam_size": 5, "temperatures": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), "per_turn": False},
}


@dataclass
class Item:
    set_name: str
    name: str
    audio: np.ndarray
    reference: str
    regions: list[tuple[float, float]]


def load_set(set_name: str, directory: Path) -> list[Item]:
    """Every `<id>.flac` with its `<id>.turns.json` and the embedded diarizer's speech regions."""
    diarizer = load_diarizer("embedded", device="cpu")
    items = []
    for flac in sorted(directory.glob("*.flac")):
        decoded = decode(flac)
        audio = to_working_rate(decoded.samples, decoded.sample_rate)
        turns = json.loads((directory / f"{flac.stem}.turns.json").read_text())
        reference = " ".join(t["text"] for t in sorted(turns, key=lambda t: t["start"]))
        regions = [(s.start, s.end) for s in diarizer(audio, num_speakers=2).segments]
        items.append(Item(set_name, flac.stem, audio, reference, regions))
    return items


def unseen_set(directory: Path) -> Path:
    if not any(directory.glob("*.flac")):
        from collection.synthetic.generator import generate_dialogues

        generate_dialogues(directory, count=UNSEEN_COUNT, seed=UNSEEN_SEED)
    return directory


def bare_model(transcriber: Transcriber):  # type: ignore[no-untyped-def]
    """faster-whisper's own WhisperModel on the stage's model files, device, compute type and threads."""
    from faster_whisper import WhisperModel

    return WhisperModel(str(transcriber.model_dir.path), device=transcriber.device.device,
                        compute_type=transcriber.device.compute_type, cpu_threads=transcriber.options.cpu_threads,
                        local_files_only=True)


def bare_text(model, audio: np.ndarray, language: str) -> str:  # type: ignore[no-untyped-def]
    """faster-whisper as a user would call it: the library's defaults, the same model files."""
    segments, _ = model.transcribe(audio, language=language)
    return " ".join(s.text for s in segments)


def stage_text(transcriber: Transcriber, item: Item, language: str, vocabulary: tuple[str, ...] = ()) -> str:
    result = transcriber.transcribe(item.audio, language=language, speech_regions=item.regions, vocabulary=vocabulary)
    return " ".join(w["text"] for w in result.words)


def run_model(model_name: str, items: list[Item], option_names: list[str], models_dir: Path) -> list[dict]:
    transcriber = Transcriber(resolve_model(model_name, models_dir), options_for(model_name), device="cpu")
    defaults = transcriber.options
    rows = []
    for item in items:
        # a bare model loaded for each file: CTranslate2 seeds a decoding thread once, so a model that
        # sampled on one file would sample differently on the next (see asr.transcriber.SamplingWatch)
        bare = word_counts(item.reference, bare_text(bare_model(transcriber), item.audio, "en"))
        for option in option_names:
            transcriber.options = replace(defaults, **OPTIONS[option](defaults))
            start = time.perf_counter()
            stage = word_counts(item.reference, stage_text(transcriber, item, "en"))
            rows.append({"model": model_name, "set": item.set_name, "file": item.name, "option": option,
                         "stage": asdict(stage), "bare": asdict(bare), "seconds": round(time.perf_counter() - start, 2)})
            print_row(rows[-1])
    transcriber.options = defaults
    return rows


def _wer(counts: dict) -> float:
    return WordCounts(**counts).wer or 0.0


HEADER = f"{'model':8s} {'set':9s} {'file':7s} {'option':15s} {'stage':>7s} {'bare':>7s} {'ratio':>6s}"


def print_row(r: dict) -> None:
    stage, bare = _wer(r["stage"]), _wer(r["bare"])
    ratio = stage / bare if bare else (1.0 if stage == 0 else float("inf"))
    mark = "  WORSE" if stage > bare else ""
    print(f"{r['model']:8s} {r['set']:9s} {r['file']:7s} {r['option']:15s} {100 * stage:6.1f}% {100 * bare:6.1f}% "
          f"{ratio:6.2f}{mark}", flush=True)


def report(rows: list[dict]) -> None:
    print("\nsummary (corpus WER = summed errors / summed reference words; worse = files where stage > bare)")
    keys = sorted({(r["model"], r["set"], r["option"]) for r in rows}, key=lambda k: (k[0], k[1], list(OPTIONS).index(k[2])))
    for model, set_name, option in keys:
        sel = [r for r in rows if (r["model"], r["set"], r["option"]) == (model, set_name, option)]
        stage = sum((WordCounts(**r["stage"]) for r in sel), WordCounts())
        bare = sum((WordCounts(**r["bare"]) for r in sel), WordCounts())
        worse = sum(_wer(r["stage"]) > _wer(r["bare"]) for r in sel)
        print(f"{model:8s} {set_name:9s} {option:15s} stage {100 * (stage.wer or 0):5.1f}%  bare {100 * (bare.wer or 0):5.1f}%  "
              f"worse on {worse}/{len(sel)}  {sum(r['seconds'] for r in sel):6.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="tiny.en, base or a CTranslate2 directory (repeatable)")
    parser.add_argument("--option", action="append", choices=list(OPTIONS), help="decoding options to compare (repeatable)")
    parser.add_argument("--set", action="append", choices=["committed", "unseen"], help="which sets (default both)")
    parser.add_argument("--unseen-dir", type=Path, default=Path(tempfile.gettempdir()) / f"turnscribe-unseen-seed{UNSEEN_SEED}")
    parser.add_argument("--json", type=Path, help="also write every row here")
    args = parser.parse_args()
    enforce_offline()
    sets = args.set or ["committed", "unseen"]
    items: list[Item] = []
    if "committed" in sets:
        items += load_set("committed", DIALOGUES_DIR)
    if "unseen" in sets:
        items += load_set(f"seed{UNSEEN_SEED}", unseen_set(args.unseen_dir))
    rows: list[dict] = []
    print(HEADER, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.model or ["tiny.en", "base"]:
            rows += run_model(model, items, args.option or list(OPTIONS), Path(tmp))
    report(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
