"""NeMo ASR manifests: one JSON line per turn (`audio_filepath`, `offset`, `duration`, `text`), per split."""

from __future__ import annotations

import json

from corpus.exports.base import Exporter, Item
from store.turns import normalise_text


class NemoExporter(Exporter):
    name = "nemo"

    def add(self, item: Item) -> None:
        out = self.handle(f"{item.split}_manifest.json")
        for i, turn in item.timed_turns():
            cut = item.cuts[i] if item.cuts else None
            end = min(turn.end, item.duration)
            out.write(json.dumps({
                "audio_filepath": str(cut if cut is not None else item.audio),
                "offset": 0.0 if cut is not None else round(turn.start, 3),
                "duration": round(end - turn.start, 3), "text": normalise_text(turn.text),
                "speaker": item.speaker(turn), "lang": item.entry["language"], "recording": item.key,
            }, ensure_ascii=False) + "\n")
