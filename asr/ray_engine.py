"""Pre-annotation on a Ray cluster: actors hold the models, the database stays the source of truth.

The driver (the `turnscribe pretranscribe --engine ray` process) is the only database
client. It leases recordings exactly as the single-process batch does (`asr.batch`), sends
each to a `PreannotationWorker` actor, and commits finished results several at a time, each
with its lease dropped in the same transaction. So the guarantees are the single-process
ones: a recording is stored once; a crashed driver's leases expire and the next run takes
them up; a worker (or node) that dies hands its recordings back to the queue, and one that
keeps killing workers (`max_attempts`) is stored as failed; a recording that raises is
stored as failed with its error.

Audio reaches a worker by path when the worker sees the blob folder at the driver's path
(checked at start against a real working copy: size and first 64 KiB), else the driver
reads it and sends the samples through Ray's object store. The loop itself (workers started
and replaced, dispatch, lost work retried) is `collection.ray_pool`, shared with the intake.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from asr.batch import (LEASE_S, BatchReport, Finished, call_arguments, claim_recording, new_holder, record_failure,
                       release_lease, store_results)
from asr.preannotate import PreannotationSettings
from asr.ray_workers import PreannotationWorker, WorkerResult
from collection.decoding import load_working_copy
from collection.ray_cluster import (THREAD_VARIABLES, Cluster, ClusterRefused, WorkerPlace, capped_cpu_actor, check_store,
                                    probe_for)
from collection.ray_pool import ActorPool, ClusterFigures, ClusterOptions, Job, cpu_worker_count
from protocols.schema import Protocol
from store import models
from store.db import Store
from store.settings import OFFLINE_ENV

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayOptions(ClusterOptions):
    commit_every: int = 8  # results stored per transaction, or after `commit_interval_s`, whichever comes first


@dataclass
class RayReport(BatchReport, ClusterFigures):
    @property
    def wall_real_time_factor(self) -> float:
        """Wall-clock seconds of the run per second of audio stored (the cluster's RTF)."""
        return self.wall_s / self.audio_seconds if self.audio_seconds else 0.0


@dataclass(frozen=True)
class WorkerPlan:
    count: int
    settings: PreannotationSettings
    options: dict[str, Any]  # ray actor options
    threads: int

    def describe(self) -> str:
        kind = "GPU" if self.options.get("num_gpus") else "CPU"
        extra = f", {self.settings.compute_type}" if self.settings.compute_type else f", {self.threads} thread(s) each"
        return f"{self.count} {kind} worker(s){extra}"


def plan_workers(settings: PreannotationSettings, cluster: Cluster, options: RayOptions) -> WorkerPlan:
    """One actor per GPU (float16) when the cluster has GPUs and the device allows, else CPU actors with capped threads."""
    gpus = int(cluster.resources.get("GPU", 0))
    if settings.device == "cuda" and not gpus and not settings.fallback_to_cpu:
        raise ClusterRefused("--device cuda but the Ray cluster has no GPU (ray status lists its resources); "
                             "use --device cpu or --fallback-to-cpu")
    if gpus and settings.device != "cpu":
        count = options.workers or gpus
        gpu_settings = replace(settings, device="cuda", compute_type=settings.compute_type or "float16")
        env = {**OFFLINE_ENV, **{name: "1" for name in THREAD_VARIABLES}}
        return WorkerPlan(count, gpu_settings, {"num_gpus": 1, "num_cpus": 1, "runtime_env": {"env_vars": env}}, 1)
    actor = capped_cpu_actor(options.threads)
    return WorkerPlan(cpu_worker_count(cluster, options), replace(settings, device="cpu", compute_type=None), actor,
                      options.threads)


class _PreannotationRun(ActorPool):
    """Recordings leased as in one process, sent to `PreannotationWorker`s, results committed in batches."""

    def __init__(self, store: Store, protocol_row: models.Protocol, protocol: Protocol, plan: WorkerPlan,
                 options: RayOptions, actor: str, lease_s: float, report: RayReport,
                 on_done: Callable[[models.Recording, float, str], None] | None, say: Callable[[str], None],
                 probe_recording: models.Recording | None) -> None:
        probe_path = (store.blobs.path_for(probe_recording.working_sha256)
                      if probe_recording is not None and probe_recording.working_sha256 else None)
        super().__init__(PreannotationWorker, plan.count, plan.options,
                         (plan.settings, str(store.settings.models_dir), plan.threads, probe_for(probe_path)),
                         options, report, f"the shared blob folder {store.blobs.root}", say)
        self.store, self.row, self.protocol, self.rayopts = store, protocol_row, protocol, options
        self.actor, self.lease_s, self.report, self.on_done = actor, lease_s, report, on_done
        self.holder = new_holder()
        self.tried: set[int] = set()
        self.finished: list[tuple[WorkerResult, models.Recording]] = []
        self.last_commit = time.monotonic()
        self.exhausted = False

    def next_job(self) -> Job | None:
        if self.exhausted:
            return None
        recording = claim_recording(self.store, self.row, self.holder, lease_s=self.lease_s, skip=frozenset(self.tried))
        if recording is None:
            self.exhausted = True
            return None
        self.tried.add(recording.pk)
        return Job(recording)

    def drained(self) -> bool:
        return self.exhausted

    def send(self, handle: Any, place: WorkerPlace, job: Job) -> Any | None:
        recording: models.Recording = job.payload
        path = self.store.blobs.path_for(recording.working_sha256 or "")
        if self.by_path(place):
            audio: Any = str(path)
        else:
            try:
                audio = load_working_copy(path)
            except Exception as exc:  # noqa: BLE001 - stored as the recording's failure, as in one process
                self.on_failure(job, f"{type(exc).__name__}: {exc}")
                return None
        return handle.preannotate.remote(recording.pk, audio, call_arguments(self.protocol, recording))

    def on_failure(self, job: Job, message: str) -> None:
        recording: models.Recording = job.payload
        release_lease(self.store, recording.pk, self.holder)
        record_failure(self.store, recording, message, self.actor)
        self.report.failed.append((recording.pk, message))

    def release(self, job: Job) -> None:
        release_lease(self.store, job.payload.pk, self.holder)

    def on_result(self, job: Job, value: WorkerResult) -> None:
        if value.error is not None:
            self.on_failure(job, value.error)
        else:
            self.finished.append((value, job.payload))

    def flush(self, force: bool = False) -> None:
        due = (len(self.finished) >= self.rayopts.commit_every
               or time.monotonic() - self.last_commit >= self.rayopts.commit_interval_s)
        if not self.finished or not (force or due):
            return
        batch, self.finished = self.finished, []
        stored = store_results(self.store, [Finished(o.recording_pk, o.author, o.result, o.bundles) for o, _ in batch],  # type: ignore[arg-type]
                               self.holder, self.actor)
        self.last_commit = time.monotonic()
        for (outcome, recording), ok in zip(batch, stored):
            result = outcome.result
            assert result is not None
            if not ok:
                self.report.lost.append(recording.pk)
                continue
            self.report.done.append((recording.pk, result.duration, result.seconds))
            self.report.flags += [(recording.pk, f) for f in result.flags]
            stats = self.report.count(outcome.node_id, result.duration, outcome.seconds)
            if self.on_done is not None:
                self.on_done(recording, result.duration, stats.name)


def pretranscribe_on_ray(
    store: Store, protocol_row: models.Protocol, protocol: Protocol, settings: PreannotationSettings, cluster: Cluster,
    options: RayOptions = RayOptions(), *, actor: str, lease_s: float = LEASE_S,
    on_done: Callable[[models.Recording, float, str], None] | None = None,
    on_event: Callable[[str], None] | None = None, probe_recording: models.Recording | None = None,
) -> RayReport:
    """Pre-annotate a protocol version's pending recordings on the connected cluster (`ray_cluster`)."""
    check_store(store, cluster)
    plan = plan_workers(settings, cluster, options)
    report = RayReport(dashboard_url=cluster.dashboard_url)
    run = _PreannotationRun(store, protocol_row, protocol, plan, options, actor, lease_s, report, on_done,
                            on_event or log.info, probe_recording)
    run.run(plan.describe(), len(cluster.nodes))
    return report
