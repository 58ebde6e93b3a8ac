"""What every exporter receives and the interface it implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from store.turns import Turn

AUDIO_MODES = ("link", "include", "cut")


@dataclass
class Item:
    """One released recording as an exporter sees it.

    `audio` is the whole recording's 16 kHz mono WAV in the output (a copy or a link);
    in "cut" mode it is None and `cuts[i]` is turn i's own WAV (None for a turn with no
    duration).
    """

    key: str  # "rec-<pk>": unique, stable across releases
    entry: dict[str, Any]  # the manifest entry
    turns: list[Turn]
    num_samples: int
    sample_rate: int
    audio: Path | None = None
    cuts: list[Path | None] = field(default_factory=list)

    @property
    def split(self) -> str:
        return str(self.entry["split"])

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    def speaker(self, turn: Turn) -> str:
        """A corpus-wide speaker label: the speaker id when the turn names one, else `<rec>_<label>`."""
        label = turn.speaker
        known = {s["speaker_id"] for s in self.entry["speakers"]}
        return label if label in known else f"{self.key}_{label}".replace(" ", "_")

    def timed_turns(self) -> list[tuple[int, Turn]]:
        """(index, turn) for the turns with a positive duration inside the audio, in time order."""
        out = [(i, t) for i, t in enumerate(self.turns) if t.end > t.start and t.start < self.duration]
        return sorted(out, key=lambda it: (it[1].start, it[0]))


class Exporter:
    """Writes one format under `out/<name>/`; `add` is called once per recording, in manifest order."""

    name = ""
    needs_audio = True
    audio_modes = AUDIO_MODES  # the --audio modes this format can point at

    def __init__(self, out: Path, audio_mode: str) -> None:
        self.root = out / self.name
        self.root.mkdir(parents=True, exist_ok=True)
        self.audio_mode = audio_mode
        self._files: dict[Path, IO[str]] = {}
        self.written = 0  # files written (counted, not listed: a release may have many thousands)

    def add(self, item: Item) -> None:
        raise NotImplementedError

    def handle(self, relative: str) -> IO[str]:
        """A text file under the format's folder, opened once and appended to (streaming output)."""
        path = self.root / relative
        if path not in self._files:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._files[path] = open(path, "w", encoding="utf-8", newline="\n")
            self.written += 1
        return self._files[path]

    def write_file(self, relative: str, text: str) -> None:
        """A whole small file (one per recording) under the format's folder."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.written += 1

    def close(self) -> int:
        """Finish the files; returns how many files the format wrote."""
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        return self.written
