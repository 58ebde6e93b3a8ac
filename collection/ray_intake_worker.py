"""The intake worker a Ray actor runs: decode, measure and make the working copy of one file per call.

A plain class (the engine wraps it with `ray.remote`), so this module imports without Ray.
It never opens the database and writes nothing the store keeps: the driver checks, stores
the blobs and writes the rows, so a worker that dies loses nothing but the files it held,
which the driver sends again.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from collection.intake import Decoded, decode_checked
from collection.ray_cluster import Probe, WorkerPlace, worker_place
from store.console import fault_text


@dataclass
class DecodeResult:
    """One file decoded: what the checks need and the working copy's bytes, or the environment fault that stopped it."""

    node_id: str
    decoded: Decoded | None = None
    working: bytes | None = None  # the 16 kHz mono PCM-16 WAV working copy, back to the driver through the object store
    fault: str | None = None
    seconds: float = 0.0  # wall time in the worker


def _as_if_at(decoded: Decoded, here: Path, there: str) -> Decoded:
    """Reasons that name the worker's copy of a shipped file name the driver's path instead, as one process would."""
    reasons = tuple(replace(r, message=r.message.replace(str(here), there)) for r in decoded.reasons)
    return replace(decoded, reasons=reasons)


class IntakeWorker:
    """Decodes files; the engine capped its thread pools (OMP and the like) to `threads` before the process started."""

    def __init__(self, threads: int, probe: Probe | None = None) -> None:
        self.place = worker_place(probe, time.perf_counter(), f"decoder, {threads} thread(s)")

    def where(self) -> WorkerPlace:
        return self.place

    def decode(self, audio: str | bytes, source: str, max_duration_s: float | None) -> DecodeResult:
        """`audio`: the file's path on the shared folder, or its bytes through the object store; `source`: the driver's path."""
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="turnscribe-intake-") as scratch:
            try:
                path = Path(audio) if isinstance(audio, str) else Path(scratch) / f"source{Path(source).suffix}"
                if isinstance(audio, bytes):
                    path.write_bytes(audio)
                working = Path(scratch) / "working.wav"
                decoded = decode_checked(path, working, max_duration_s)
                if isinstance(audio, bytes):
                    decoded = _as_if_at(decoded, path, source)
                data = working.read_bytes() if decoded.measured is not None else None
            except OSError as exc:
                return DecodeResult(self.place.node_id, fault=fault_text(exc), seconds=time.perf_counter() - started)
        return DecodeResult(self.place.node_id, decoded, data, seconds=time.perf_counter() - started)
