"""What `turnscribe transcribe` writes per file: the turns JSON, RTTM and STM (SCTK)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from store.rttm_stm_ctm import turns_to_rttm, turns_to_stm
from store.turns import TurnJson, turns_from_json


def write_turn_files(turns: list[TurnJson], out_dir: Path, stem: str, extra: dict[str, Any] | None = None) -> list[Path]:
    """`<stem>.json`, `<stem>.rttm`, `<stem>.stm` in `out_dir`."""
    checked = turns_from_json(turns)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{stem}.json", out_dir / f"{stem}.rttm", out_dir / f"{stem}.stm"]
    paths[0].write_text(json.dumps({"turns": [t.to_json() for t in checked], **(extra or {})}, indent=2, default=str))
    paths[1].write_text(turns_to_rttm(checked, stem))
    paths[2].write_text(turns_to_stm(checked, stem))
    return paths
