"""Plain JSONL of turns: one line per turn, with its recording, split, speaker and audio."""

from __future__ import annotations

import json

from corpus.exports.base import Exporter, Item


class JsonlExporter(Exporter):
    name = "jsonl"

    def add(self, item: Item) -> None:
        out = self.handle("turns.jsonl")
        for i, turn in enumerate(item.turns):
            cut = item.cuts[i] if item.cuts else None
            out.write(json.dumps({
                "recording": item.key, "split": item.split, "session_id": item.entry["session_id"], "turn": i,
                "speaker": item.speaker(turn), "start": turn.start, "end": turn.end, "text": turn.text,
                "words": [w.to_json() for w in turn.words], "language": item.entry["language"],
                "audio": str(cut if cut is not None else item.audio) if (cut or item.audio) else None,
                "audio_offset": 0.0 if cut is not None else turn.start,
            }, ensure_ascii=False) + "\n")
