"""A Hugging Face `datasets` DatasetDict (one split per release split) under `hf/dataset`.

Load it with `datasets.load_from_disk("hf/dataset")`, or with
`datasets.load_dataset("arrow", data_files={"train": "hf/dataset/train/*.arrow", ...})`.

Rows are staged as JSONL while recordings stream in, then each split is built with
`Dataset.from_generator`, which writes Arrow shards batch by batch (small batches when
audio bytes are embedded). "link" rows point at the audio files; "include" and "cut"
rows embed the WAV bytes, so the saved dataset stands alone. "cut" gives one row per turn.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from corpus.exports.base import Exporter, Item
from store.turns import normalise_text


def _features(per_turn: bool, rate: int):  # type: ignore[no-untyped-def]
    from datasets import Audio, Features, List, Value

    if per_turn:
        return Features({"id": Value("string"), "recording": Value("string"), "audio": Audio(sampling_rate=rate),
                         "speaker": Value("string"), "start": Value("float64"), "end": Value("float64"),
                         "text": Value("string"), "language": Value("string"), "session_id": Value("string")})
    turn = {"speaker": Value("string"), "start": Value("float64"), "end": Value("float64"), "text": Value("string")}
    return Features({"id": Value("string"), "audio": Audio(sampling_rate=rate), "duration": Value("float64"),
                     "language": Value("string"), "session_id": Value("string"), "speakers": List(Value("string")),
                     "turns": List(turn)})


def _rows(staged: Path, embed: bool) -> Iterator[dict[str, Any]]:
    with open(staged, encoding="utf-8") as src:
        for line in src:
            row = json.loads(line)
            path = row.pop("audio_path")
            row["audio"] = {"path": path, "bytes": Path(path).read_bytes() if embed else None}
            yield row


class HfDatasetsExporter(Exporter):
    name = "hf"

    def __init__(self, out: Path, audio_mode: str) -> None:
        super().__init__(out, audio_mode)
        self.staging = self.root / ".staging"
        self.staging.mkdir()
        self.rate = 16000

    def add(self, item: Item) -> None:
        self.rate = item.sample_rate
        out = self.handle(f".staging/{item.split}.jsonl")
        base = {"language": item.entry["language"], "session_id": item.entry["session_id"]}
        if item.audio is None:
            for i, turn in item.timed_turns():
                out.write(json.dumps({**base, "id": f"{item.key}_{i:04d}", "recording": item.key, "audio_path": str(item.cuts[i]),
                                      "speaker": item.speaker(turn), "start": turn.start, "end": turn.end,
                                      "text": normalise_text(turn.text)}, ensure_ascii=False) + "\n")
            return
        turns = [{"speaker": item.speaker(t), "start": t.start, "end": t.end, "text": normalise_text(t.text)}
                 for _, t in item.timed_turns()]
        out.write(json.dumps({**base, "id": item.key, "audio_path": str(item.audio), "duration": item.duration,
                              "speakers": sorted({t["speaker"] for t in turns}), "turns": turns}, ensure_ascii=False) + "\n")

    def close(self) -> int:
        from datasets import Dataset, DatasetDict

        super().close()
        embed = self.audio_mode != "link"
        features = _features(self.audio_mode == "cut", self.rate)
        splits = {}
        for staged in sorted(self.staging.glob("*.jsonl")):
            splits[staged.stem] = Dataset.from_generator(
                _rows, features=features, gen_kwargs={"staged": staged, "embed": embed},
                cache_dir=str(self.staging / "cache"), writer_batch_size=32 if embed else 1000)
        DatasetDict(splits).save_to_disk(str(self.root / "dataset"))
        del splits
        shutil.rmtree(self.staging)
        return sum(1 for p in (self.root / "dataset").rglob("*") if p.is_file())
