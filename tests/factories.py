"""Helpers that build test inputs: registered protocols, consent, manifests, bad audio."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from collection.consent import import_consents
from store.do_not_collect import DoNotCollect
from store import models
from store.db import Store
from protocols.loader import load_protocol, parse_protocol
from protocols.registry import register_protocol
from protocols.schema import Protocol
from tests.conftest import EN_PROTOCOL


def register_en(store: Store, text: str | None = None) -> tuple[models.Protocol, Protocol]:
    protocol = parse_protocol(text, "en") if text is not None else load_protocol(EN_PROTOCOL)
    with store.session() as session:
        row = register_protocol(session, protocol, actor="test").row
        session.commit()
    return row, protocol


def import_consent_file(store: Store, path: Path) -> None:
    with store.session() as session:
        import_consents(session, path, DoNotCollect.for_store(store), actor="test")
        session.commit()


def manifest_rows(dialogues: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (dialogues / "manifest.jsonl").read_text().splitlines() if line.strip()]


def write_manifest(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def variant_row(base: dict[str, Any], name: str, session_id: str, **changes: Any) -> dict[str, Any]:
    """A manifest row for another file, reusing a committed row's speakers under a new session id."""
    row = json.loads(json.dumps(base))
    row.update(path=name, session_id=session_id, **changes)
    return row


def ffmpeg(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args, str(dst)], check=True)
    return dst


def resampled_copy(src: Path, dst: Path, rate: int) -> Path:
    return ffmpeg(src, dst, "-ar", str(rate))


def clipped_copy(src: Path, dst: Path, gain: float = 8.0) -> Path:
    samples, rate = sf.read(src, dtype="float32")
    sf.write(dst, np.clip(samples * gain, -1, 1), rate, subtype="PCM_16")
    return dst
