"""Praat TextGrids, written with praatio: one file per recording, one interval tier per speaker.

Praat tiers cannot hold overlapping intervals, so a speaker's turn that starts inside
their previous one is appended to it (the text is kept, never dropped).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from corpus.exports.base import Exporter, Item
from store.turns import normalise_text


def _tiers(item: Item) -> dict[str, list[tuple[float, float, str]]]:
    tiers: dict[str, list[tuple[float, float, str]]] = {}
    for _, turn in item.timed_turns():
        start, end = round(turn.start, 3), round(min(turn.end, item.duration), 3)
        if end <= start:
            continue
        entries = tiers.setdefault(item.speaker(turn), [])
        if entries and start < entries[-1][1]:
            prev = entries[-1]
            entries[-1] = (prev[0], max(prev[1], end), normalise_text(f"{prev[2]} {turn.text}"))
        else:
            entries.append((start, end, normalise_text(turn.text)))
    return tiers


class TextGridExporter(Exporter):
    name = "textgrid"
    needs_audio = False

    def add(self, item: Item) -> None:
        from praatio import textgrid

        grid = textgrid.Textgrid(0.0, round(item.duration, 3))
        for speaker, entries in sorted(_tiers(item).items()):
            grid.addTier(textgrid.IntervalTier(speaker, entries, 0.0, round(item.duration, 3)))
        target = self.root / item.split / f"{item.key}.TextGrid"
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            staged = Path(tmp) / target.name
            grid.save(str(staged), format="long_textgrid", includeBlankSpaces=True)
            staged.replace(target)
        self.written += 1
