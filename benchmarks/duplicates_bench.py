"""Centred voice similarities behind `collection.duplicates.THRESHOLD`, on generated sets.

`python benchmarks/duplicates_bench.py DIR [DIR ...]`: each DIR is a set made by
``python -m collection.synthetic.generator [--realistic] --seed S --out DIR`` (every set of
four or more dialogues registers one voice twice; ``truth.json`` ``duplicates`` names the
pair). Each set is ingested into a throwaway SQLite store under the English protocol,
voices are clustered as `find_duplicate_speakers` does, and the script prints the
similarity of the true duplicate pair, the highest different-voice pair, whether the
threshold separates them, and the seconds `voice_pairs` took, wall and this process's
CPU (the duplicates cost: front end and encoder; intake is not counted). Compare timings
with ``OMP_NUM_THREADS=1``: on a shared machine torch's default threads spread them
several-fold.

A pair is the duplicate when ``truth.json`` ``duplicates`` names it, not when the two
ids share an espeak voice name: sets of eight dialogues give two different people the
same variant and accent at another pitch and speed, and those are different voices.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

from collection.consent import import_consents
from collection.duplicates import THRESHOLD, voice_pairs
from collection.intake import ingest_manifest
from protocols.loader import load_protocol
from protocols.registry import register_protocol
from store.db import open_store
from store.do_not_collect import DoNotCollect
from store.settings import Settings

EN_PROTOCOL = Path(__file__).resolve().parents[1] / "protocols" / "en_dialogue_accents.yaml"


def measure(folder: Path) -> tuple[float, float, str, float, float]:
    """(duplicate pair's best similarity, highest different-voice similarity, that pair's ids, wall s, CPU s)."""
    truth = json.loads((folder / "truth.json").read_text())
    registered_twice = {frozenset((a, b)) for ids in truth["duplicates"] for a in ids for b in ids if a != b}
    with tempfile.TemporaryDirectory(prefix="dup-bench-") as home:
        store = open_store(Settings(home=Path(home), database_url=f"sqlite:///{home}/t.db"))
        with store.session() as session:
            row = register_protocol(session, load_protocol(EN_PROTOCOL), actor="bench").row
            session.commit()
        do_not_collect = DoNotCollect.for_store(store)
        with store.session() as session:
            import_consents(session, folder / "consent.csv", do_not_collect, actor="bench")
            session.commit()
        ingest_manifest(store, "en-dialogue-accents", folder / "manifest.jsonl", actor="bench")
        began, began_cpu = time.perf_counter(), time.process_time()
        pairs = voice_pairs(store, row.pk)
        seconds, cpu = time.perf_counter() - began, time.process_time() - began_cpu
        store.close()
    same, different = [], []
    for pair in pairs:
        if pair.may_be_same_id:
            continue
        # a clustered voice may stand for several ids: it is the duplicate when one reading is
        one_voice = any(frozenset((a, b)) in registered_twice for a in pair.a.candidates for b in pair.b.candidates)
        if one_voice:
            same.append(pair.similarity)
        else:
            different.append((pair.similarity, f"{'/'.join(pair.a.candidates)} ~ {'/'.join(pair.b.candidates)}"))
    top = max(different)
    return max(same), top[0], top[1], seconds, cpu


def main() -> None:
    warnings.filterwarnings("ignore")
    for folder in map(Path, sys.argv[1:]):
        dup, diff, ids, seconds, cpu = measure(folder)
        found = "found" if dup >= THRESHOLD else "missed"
        false = "no false duplicate" if diff < THRESHOLD else "FALSE DUPLICATE"
        print(f"{folder}\tduplicate {dup:.3f} ({found})\thighest different {diff:.3f} ({ids}; {false}) at {THRESHOLD}"
              f"\tvoice_pairs {seconds:.1f} s wall, {cpu:.1f} s CPU")


if __name__ == "__main__":
    main()
