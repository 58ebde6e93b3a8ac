"""A Kaldi data directory per split: wav.scp, segments, text, utt2spk, spk2utt (and reco2dur).

Kaldi wants every file sorted in C-locale byte order and utterance ids prefixed by
their speaker id (so utt2spk and spk2utt sort alike). Lines are appended unsorted as
recordings stream in, then each file is sorted on disk in bounded memory (sorted runs
merged with heapq); spk2utt is utt2spk inverted and sorted the same way.
"""

from __future__ import annotations

import heapq
import itertools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from corpus.exports.base import Exporter, Item
from store.turns import normalise_text

FILES = ("wav.scp", "segments", "text", "utt2spk", "reco2dur")
RUN_LINES = 50_000  # lines sorted in memory at once (a few MiB)


def _runs(path: Path, workdir: Path) -> list[Path]:
    """Sorted runs of at most RUN_LINES lines each."""
    runs = []
    with open(path, encoding="utf-8") as src:
        while True:
            chunk = list(itertools.islice(src, RUN_LINES))
            if not chunk:
                break
            chunk.sort(key=lambda line: line.encode())
            fd, name = tempfile.mkstemp(dir=workdir, suffix=".run")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.writelines(chunk)
            runs.append(Path(name))
    return runs


def sort_file(path: Path) -> None:
    """Sort a text file's lines in C-locale (byte) order, in place, without reading it whole."""
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        runs = _runs(path, Path(tmp))
        handles = [open(r, encoding="utf-8") for r in runs]
        try:
            staged = Path(tmp) / "sorted"
            with open(staged, "w", encoding="utf-8", newline="\n") as out:
                out.writelines(heapq.merge(*handles, key=lambda line: line.encode()))
        finally:
            for h in handles:
                h.close()
        staged.replace(path)


def _spk2utt(utt2spk: Path) -> Iterator[str]:
    """utt2spk inverted: its pairs sorted by (speaker, utterance) on disk, then grouped per speaker."""
    pairs = utt2spk.with_name("spk_utt.pairs")
    with open(utt2spk, encoding="utf-8") as src, open(pairs, "w", encoding="utf-8", newline="\n") as out:
        out.writelines(" ".join(reversed(line.split())) + "\n" for line in src)
    sort_file(pairs)
    try:
        with open(pairs, encoding="utf-8") as src:
            for speaker, group in itertools.groupby((line.split() for line in src), key=lambda p: p[0]):
                yield speaker + " " + " ".join(p[1] for p in group) + "\n"
    finally:
        pairs.unlink()


class KaldiExporter(Exporter):
    name = "kaldi"

    def add(self, item: Item) -> None:
        d = item.split
        wav, segments, text, utt2spk, reco2dur = (self.handle(f"{d}/{f}") for f in FILES)
        if item.audio is not None:
            wav.write(f"{item.key} {item.audio}\n")
            reco2dur.write(f"{item.key} {item.duration:.3f}\n")
        for i, turn in item.timed_turns():
            words = normalise_text(turn.text)
            if not words:
                continue  # Kaldi's text needs a transcript; silent turns stay in the RTTM/STM exports
            speaker = item.speaker(turn)
            utt = f"{speaker}-{item.key}-{i:04d}"
            end = min(turn.end, item.duration)
            if item.audio is None:
                cut = item.cuts[i]
                wav.write(f"{utt} {cut}\n")
                reco2dur.write(f"{utt} {end - turn.start:.3f}\n")
                segments.write(f"{utt} {utt} 0.000 {end - turn.start:.3f}\n")
            else:
                segments.write(f"{utt} {item.key} {turn.start:.3f} {end:.3f}\n")
            text.write(f"{utt} {words}\n")
            utt2spk.write(f"{utt} {speaker}\n")

    def close(self) -> int:
        written = super().close()
        for split_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for name in FILES:
                sort_file(split_dir / name)
            with open(split_dir / "spk2utt", "w", encoding="utf-8", newline="\n") as out:
                out.writelines(_spk2utt(split_dir / "utt2spk"))
            written += 1
        return written
