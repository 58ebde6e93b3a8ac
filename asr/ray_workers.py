"""The pre-annotation worker a Ray actor runs: models loaded once, one recording per call.

A plain class (the engine wraps it with `ray.remote`), so this module imports without Ray.
It never opens the database: the driver leases and commits, the worker only computes,
so a worker that dies loses nothing but the recordings it held, which the driver retries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from asr.preannotate import Preannotation, PreannotationSettings, Preannotator
from collection.ray_cluster import Probe, WorkerPlace, worker_place


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
                 probe: Probe | None = None) -> None:
        started = time.perf_counter()
        import torch  # the engine set THREAD_VARIABLES in the actor's environment before its process started

        torch.set_num_threads(threads)
        if settings.device != "cuda":
            settings = replace(settings, asr=replace(settings.asr, cpu_threads=threads))
        self.preannotator = Preannotator(settings, Path(models_dir))
        torch.set_num_threads(threads)  # loading silero-vad resets it
        import ray

        self.node_id = ray.get_runtime_context().get_node_id()
        device = self.preannotator.transcriber.device
        self.place = worker_place(probe, started, f"{device.device} {device.compute_type}, {threads} thread(s), models loaded")

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
