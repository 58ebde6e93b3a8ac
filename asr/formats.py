"""Turns written as the files speech tools read: turns JSON, RTTM and STM (SCTK)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from asr.turns import Turn
from diarization.types import rttm_line


def turns_to_rttm(turns: list[Turn], uri: str) -> str:
    """RTTM: 10 fields, channel 1, one line per turn."""
    return "".join(rttm_line(uri, t["start"], t["end"], t["speaker"]) for t in turns)


def turns_to_stm(turns: list[Turn], uri: str) -> str:
    """STM: `file channel speaker begin end text`, sorted by begin time; turns without text are skipped."""
    return "".join(
        f"{uri} 1 {t['speaker']} {t['start']:.3f} {t['end']:.3f} {t['text']}\n"
        for t in sorted(turns, key=lambda t: t["start"]) if t["text"]
    )


def write_turn_files(turns: list[Turn], out_dir: Path, stem: str, extra: dict[str, Any] | None = None) -> list[Path]:
    """`<stem>.json`, `<stem>.rttm`, `<stem>.stm` in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.rttm", out_dir / f"{stem}.stm"]
    paths[0].write_text(json.dumps({"turns": turns, **(extra or {})}, indent=2, default=str))
    paths[1].write_text(turns_to_rttm(turns, stem))
    paths[2].write_text(turns_to_stm(turns, stem))
    return paths
