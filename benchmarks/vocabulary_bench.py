"""Does a protocol's vocabulary help the recogniser find its names and places?

Run: `.venv/bin/python benchmarks/vocabulary_bench.py [--model tiny.en --model base] [--dir DIR] [--json OUT]`.

Generates (once, into `--dir`) synthetic dialogues whose name, doctor, city, hub and
landmark slots are filled from `VOCABULARY` (seed 21, 16 dialogues of 14 turns), then
runs the ASR stage on them with the vocabulary shown to the decoder not at all, as
faster-whisper `hotwords`, as `initial_prompt`, or both, and prints for each: how many
of the vocabulary words said in the dialogues were written out (each spoken occurrence
counts once; a word found as often as said in a dialogue counts as found), and the WER
(jiwer, `asr.evaluation.normalize`d) over all the words.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr.evaluation import WordCounts, normalize, word_counts  # noqa: E402
from asr.models import resolve_model  # noqa: E402
from asr.transcriber import VOCABULARY_VIA, Transcriber, options_for  # noqa: E402
from benchmarks.decoding_bench import load_set, stage_text  # noqa: E402
from store.settings import enforce_offline  # noqa: E402

SLOTS: dict[str, tuple[str, ...]] = {
    "name": ("Okonkwo", "Szymanski", "Nakamura", "Featherstone", "Ramaswamy"),
    "doctor": ("Oyelaran", "Kowalczyk", "Achterberg", "Mahmoud"),
    "city": ("Aberystwyth", "Ljubljana", "Llandudno", "Reykjavik"),
    "hub": ("Crewe", "Doncaster", "Stockport"),
    "landmark": ("Cenotaph", "Guildhall", "Alhambra"),
}
VOCABULARY: tuple[str, ...] = tuple(word for words in SLOTS.values() for word in words)
SEED, COUNT, TURNS = 21, 16, 14


def vocabulary_set(directory: Path) -> Path:
    if not any(directory.glob("*.flac")):
        from collection.synthetic.generator import generate_dialogues

        generate_dialogues(directory, count=COUNT, seed=SEED, turn_count=TURNS, slots=dict(SLOTS))
    return directory


def term_hits(reference: str, hypothesis: str, terms: tuple[str, ...]) -> tuple[int, int]:
    """(occurrences of the terms said, occurrences written), per term at most as often as said."""
    said, written = Counter(normalize(reference).split()), Counter(normalize(hypothesis).split())
    keys = [normalize(t) for t in terms]
    return sum(said[k] for k in keys), sum(min(said[k], written[k]) for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="tiny.en, base or a CTranslate2 directory (repeatable)")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / f"turnscribe-vocabulary-seed{SEED}")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    enforce_offline()
    items = load_set("vocabulary", vocabulary_set(args.dir))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model_name in args.model or ["tiny.en", "base"]:
            transcriber = Transcriber(resolve_model(model_name, Path(tmp)), options_for(model_name), device="cpu")
            defaults = transcriber.options
            for via in ("none", *VOCABULARY_VIA):
                transcriber.options = replace(defaults, vocabulary_via=defaults.vocabulary_via if via == "none" else via)
                said = found = 0
                counts = WordCounts()
                misses: Counter[str] = Counter()
                for item in items:
                    text = stage_text(transcriber, item, "en", () if via == "none" else VOCABULARY)
                    s, f = term_hits(item.reference, text, VOCABULARY)
                    said, found = said + s, found + f
                    counts += word_counts(item.reference, text)
                    for term in VOCABULARY:
                        if term_hits(item.reference, text, (term,))[1] < term_hits(item.reference, text, (term,))[0]:
                            misses[term] += 1
                rows.append({"model": model_name, "via": via, "said": said, "found": found, "wer": counts.wer,
                             "missed": dict(misses)})
                print(f"{model_name:8s} vocabulary {via:9s} found {found:2d}/{said} ({100 * found / max(said, 1):5.1f}%)  "
                      f"WER {100 * (counts.wer or 0):5.1f}%  missed: {', '.join(sorted(misses))}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
