"""RTTM (who spoke when), STM (reference text) and CTM (word times) per split, as SCTK and pyannote read them."""

from __future__ import annotations

from dataclasses import replace

from corpus.exports.base import Exporter, Item
from store.rttm_stm_ctm import turns_to_rttm, turns_to_stm, words_to_ctm


class SctkExporter(Exporter):
    name = "sctk"
    needs_audio = False

    def add(self, item: Item) -> None:
        turns = [replace(t, speaker=item.speaker(t)) for _, t in item.timed_turns()]
        self.handle(f"{item.split}.rttm").write(turns_to_rttm(turns, item.key))
        self.handle(f"{item.split}.stm").write(turns_to_stm(turns, item.key))
        self.handle(f"{item.split}.ctm").write(words_to_ctm(turns, item.key))
