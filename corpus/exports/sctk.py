"""RTTM (who spoke when), STM (reference text) and CTM (word times) per split, as SCTK and pyannote read them."""

from __future__ import annotations

from asr.formats import turns_to_rttm, turns_to_stm
from corpus.exports.base import Exporter, Item, one_line


class SctkExporter(Exporter):
    name = "sctk"
    needs_audio = False

    def add(self, item: Item) -> None:
        turns = [dict(t, speaker=item.speaker(t), text=one_line(t["text"])) for _, t in item.timed_turns()]
        self.handle(f"{item.split}.rttm").write(turns_to_rttm(turns, item.key))  # type: ignore[arg-type]
        self.handle(f"{item.split}.stm").write(turns_to_stm(turns, item.key))  # type: ignore[arg-type]
        ctm = self.handle(f"{item.split}.ctm")
        words = sorted((w for t in turns for w in t.get("words", []) if w["end"] > w["start"] and w["text"].strip()),
                       key=lambda w: w["start"])
        for w in words:
            score = w.get("probability")
            ctm.write(f"{item.key} 1 {w['start']:.3f} {w['end'] - w['start']:.3f} {w['text'].strip()}"
                      f"{'' if score is None else f' {score:.3f}'}\n")
