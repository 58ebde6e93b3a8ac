"""Lhotse manifests, written with lhotse's own classes and its streaming JSONL writers.

Per split: `recordings_<split>.jsonl.gz` and `supervisions_<split>.jsonl.gz` (a
supervision per turn, with word alignments when the turns have word times). In "cut"
mode each turn's WAV is its own recording and its supervision starts at 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corpus.exports.base import Exporter, Item
from store.turns import normalise_text


class LhotseExporter(Exporter):
    name = "lhotse"

    def __init__(self, out: Path, audio_mode: str) -> None:
        super().__init__(out, audio_mode)
        self._writers: dict[str, tuple[Any, Any]] = {}

    def _writer(self, split: str) -> tuple[Any, Any]:
        from lhotse import RecordingSet, SupervisionSet

        if split not in self._writers:
            self._writers[split] = (RecordingSet.open_writer(self.root / f"recordings_{split}.jsonl.gz"),
                                    SupervisionSet.open_writer(self.root / f"supervisions_{split}.jsonl.gz"))
            self.written += 2
        return self._writers[split]

    def add(self, item: Item) -> None:
        from lhotse import AudioSource, Recording, SupervisionSegment
        from lhotse.supervision import AlignmentItem

        recordings, supervisions = self._writer(item.split)

        def recording(rec_id: str, path: Path, num_samples: int) -> None:
            recordings.write(Recording(id=rec_id, sources=[AudioSource(type="file", channels=[0], source=str(path))],
                                       sampling_rate=item.sample_rate, num_samples=num_samples,
                                       duration=num_samples / item.sample_rate))

        if item.audio is not None:
            recording(item.key, item.audio, item.num_samples)
        for i, turn in item.timed_turns():
            rate = item.sample_rate
            if item.audio is None:
                cut = item.cuts[i]
                assert cut is not None
                first = max(0, int(round(turn.start * rate)))  # the frames audio.place_cuts wrote
                frames = min(item.num_samples, int(round(turn.end * rate))) - first
                rec_id, offset = f"{item.key}_{i:04d}", turn.start
                recording(rec_id, cut, frames)
                start, duration = 0.0, frames / rate
            else:
                rec_id, offset = item.key, 0.0
                start = turn.start
                duration = min(turn.end, item.duration) - start
            words = [AlignmentItem(symbol=w.text, start=round(w.start - offset, 3),
                                   duration=round(w.end - w.start, 3), score=w.probability)
                     for w in turn.words if w.end > w.start]
            supervisions.write(SupervisionSegment(
                id=f"{item.key}_{i:04d}", recording_id=rec_id, start=round(start, 3), duration=round(duration, 3),
                channel=0, text=normalise_text(turn.text), language=item.entry["language"], speaker=item.speaker(turn),
                custom={"session_id": item.entry["session_id"], "split": item.split},
                alignment={"word": words} if words else None,
            ))

    def close(self) -> int:
        for recordings, supervisions in self._writers.values():
            recordings.close()
            supervisions.close()
        return super().close()
