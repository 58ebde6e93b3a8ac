"""The pre-annotation worker a Ray actor runs: models loaded once, one recording per call.

A plain class (the engine wraps it with `ray.remote`), so this module imports without Ray.
It never opens the database: the driver leases and commits, the worker only computes,
so a worker that dies loses nothing but the recordings it held, which the driver retries.
"""

from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from asr.preannotate import Preannotation, PreannotationSettings, Preannotator

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
PROBE_BYTES = 1 << 16


def probe_digest(path: Path) -> tuple[int, str] | None:
    """Size and hash of the first 64 KiB of a file: what driver and worker compare to agree they see the same blob."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(PROBE_BYTES)
        return path.stat().st_size, hashlib.sha256(head).hexdigest()
    except OSError:
        return None


@dataclass(frozen=True)
class WorkerPlace:
    """Where a worker runs and what it sees."""

    node_id: str
    node: str  # host name and address, for people
    device: str
    compute_type: str
    threads: int
    sees_blobs: bool
    load_seconds: float


@dataclass
class WorkerResult:
    """One recording's outcome: the pre-annotation, or the error that stopped it (stored with the recording)."""

    recording_pk: int
    node_id: str
    author: str
    bundles: dict[str, Any]
    result: Preannotation | None = None
    error: str | None = None
    seconds: float = 0.0  # wall time in the worker, reading audio included


class PreannotationWorker:
    """Holds one `Preannotator`; `threads` caps every thread pool in the process (CPU actors)."""

    def __init__(self, settings: PreannotationSettings, models_dir: str, threads: int,
                 probe: tuple[str, tuple[int, str] | None] | None = None) -> None:
        started = time.perf_counter()
        import torch  # the engine set THREAD_VARIABLES in the actor's environment before its process started

        torch.set_num_threads(threads)
        if settings.device != "cuda":
            settings = replace(settings, asr=replace(settings.asr, cpu_threads=threads))
        self.preannotator = Preannotator(settings, Path(models_dir))
        torch.set_num_threads(threads)  # loading silero-vad resets it
        self.threads = threads
        import ray

        self.node_id = ray.get_runtime_context().get_node_id()
        sees = probe is not None and probe[1] is not None and probe_digest(Path(probe[0])) == probe[1]
        device = self.preannotator.transcriber.device
        name = f"{socket.gethostname()} {ray.util.get_node_ip_address()} node {self.node_id[:8]}"
        self.place = WorkerPlace(self.node_id, name, device.device,
                                 device.compute_type, threads, sees, time.perf_counter() - started)

    def where(self) -> WorkerPlace:
        return self.place

    def preannotate(self, recording_pk: int, audio: str | np.ndarray, arguments: dict[str, Any]) -> WorkerResult:
        """`audio`: a working copy's path on the shared blob folder, or its samples sent through the object store."""
        from collection.decoding import load_working_copy

        started = time.perf_counter()
        author, bundles = self.preannotator.author, self.preannotator.bundles
        try:
            samples = load_working_copy(Path(audio)) if isinstance(audio, str) else audio
            result = self.preannotator(samples, **arguments)
        except Exception as exc:  # noqa: BLE001 - stored with the recording, like the single-process run does
            return WorkerResult(recording_pk, self.node_id, author, bundles, error=f"{type(exc).__name__}: {exc}",
                                seconds=time.perf_counter() - started)
        return WorkerResult(recording_pk, self.node_id, author, bundles, result=result, seconds=time.perf_counter() - started)
