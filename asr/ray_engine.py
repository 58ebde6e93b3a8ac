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
reads it and sends the samples through Ray's object store.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from asr.batch import (LEASE_S, BatchReport, Finished, call_arguments, claim_recording, new_holder, record_failure,
                       release_lease, store_results)
from asr.preannotate import PreannotationSettings
from asr.ray_workers import THREAD_VARIABLES, PreannotationWorker, WorkerPlace, WorkerResult, probe_digest
from collection.decoding import load_working_copy
from protocols.schema import Protocol
from store import models
from store.db import Store
from store.settings import OFFLINE_ENV

log = logging.getLogger(__name__)


class ClusterRefused(RuntimeError):
    """The cluster cannot run this job as configured; the message says what to change."""


class ClusterUnreachable(ClusterRefused):
    """Ray is missing, or the cluster could not be joined or started."""


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: a local Ray instance started for this run and shut down after it
    workers: int | None = None  # default: one per GPU, else one per `threads` CPUs of the cluster
    threads: int = 1  # CPU threads per CPU worker (torch, CTranslate2, OpenMP): workers never oversubscribe cores
    in_flight: int = 2  # recordings sent to a worker ahead of its results (hides the driver's round trip)
    commit_every: int = 8  # results stored per transaction ...
    commit_interval_s: float = 10.0  # ... or after this long, whichever comes first
    max_attempts: int = 3  # a recording whose worker dies this many times is stored as failed
    startup_timeout_s: float = 600.0  # how long to wait for a first (or replacement) worker to load its models
    ship_audio: bool = False  # send audio through the object store even to workers that see the blob folder


@dataclass
class NodeStats:
    name: str
    workers: int = 0
    recordings: int = 0
    audio_s: float = 0.0
    worker_s: float = 0.0  # time inside workers, reading audio included


@dataclass
class RayReport(BatchReport):
    dashboard_url: str | None = None
    nodes: dict[str, NodeStats] = field(default_factory=dict)
    audio_modes: dict[str, str] = field(default_factory=dict)  # node name -> "shared blob folder" | "object store"
    lost_workers: list[tuple[str, int]] = field(default_factory=list)  # (node name, recordings handed back)
    worker_starts: int = 0
    wall_s: float = 0.0  # from starting the workers to the last commit
    first_ready_s: float | None = None  # until the first worker had its models loaded

    @property
    def wall_real_time_factor(self) -> float:
        """Wall-clock seconds of the run per second of audio stored (the cluster's RTF)."""
        return self.wall_s / self.audio_seconds if self.audio_seconds else 0.0


@dataclass(frozen=True)
class Cluster:
    address: str
    nodes: list[str]  # alive nodes' addresses
    dashboard_url: str | None
    started_here: bool
    resources: dict[str, float]


@contextmanager
def ray_cluster(address: str | None) -> Iterator[Cluster]:
    """Join the cluster at `address` (host:port, 'auto' or ray://...), or start a local instance for this run."""
    import os

    os.environ.update(OFFLINE_ENV)
    try:
        import ray
    except ImportError as exc:
        raise ClusterUnreachable("the Ray engine needs Ray: pip install 'turnscribe[ray]'") from exc
    quiet = dict(log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    try:
        if address:
            context = ray.init(address=address, **quiet)
        else:
            context = ray.init(address="local", include_dashboard=False, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterUnreachable(f"cannot {'join the Ray cluster at ' + address if address else 'start a local Ray instance'}: {exc}") from exc
    try:
        dashboard = getattr(context, "dashboard_url", None) or None
        nodes = sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])
        yield Cluster(context.address_info.get("gcs_address", address or "local"), nodes,
                      f"http://{dashboard}" if dashboard and not dashboard.startswith("http") else dashboard,
                      not address, dict(ray.cluster_resources()))
    finally:
        ray.shutdown()


def check_store(store: Store, cluster: Cluster) -> None:
    """SQLite is one file on one machine: a cluster of several nodes needs PostgreSQL."""
    if len(cluster.nodes) > 1 and store.settings.database_url.startswith("sqlite"):
        raise ClusterRefused(
            f"this Ray cluster has {len(cluster.nodes)} nodes but the store is SQLite ({store.settings.database_url}); "
            "SQLite is a file on one machine, so runs started on other nodes, the review UI and a resumed run could not "
            "share it. Set TURNSCRIBE_DATABASE_URL=postgresql+psycopg://USER@HOST/DB (a server every node reaches), "
            "or run without --address on one machine"
        )


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
    cpus = int(cluster.resources.get("CPU", 0))
    if settings.device == "cuda" and not gpus and not settings.fallback_to_cpu:
        raise ClusterRefused("--device cuda but the Ray cluster has no GPU (ray status lists its resources); "
                             "use --device cpu or --fallback-to-cpu")
    env = {**OFFLINE_ENV}
    if gpus and settings.device != "cpu":
        count = options.workers or gpus
        gpu_settings = replace(settings, device="cuda", compute_type=settings.compute_type or "float16")
        env.update({name: "1" for name in THREAD_VARIABLES})
        return WorkerPlan(count, gpu_settings, {"num_gpus": 1, "num_cpus": 1, "runtime_env": {"env_vars": env}}, 1)
    if options.threads < 1:
        raise ClusterRefused("--threads-per-worker must be at least 1")
    count = options.workers or max(1, cpus // options.threads)
    env.update({name: str(options.threads) for name in THREAD_VARIABLES})
    return WorkerPlan(count, replace(settings, device="cpu", compute_type=None),
                      {"num_cpus": options.threads, "num_gpus": 0, "runtime_env": {"env_vars": env}}, options.threads)


@dataclass
class _Job:
    recording: models.Recording
    attempts: int = 0


class _Run:
    """One driver loop: claims, dispatch, results, lost workers, batched commits."""

    def __init__(self, store: Store, protocol_row: models.Protocol, protocol: Protocol, plan: WorkerPlan,
                 options: RayOptions, actor: str, lease_s: float, report: RayReport,
                 on_done: Callable[[models.Recording, float, str], None] | None, say: Callable[[str], None]) -> None:
        import ray

        self.ray = ray
        self.store, self.row, self.protocol, self.plan, self.options = store, protocol_row, protocol, plan, options
        self.actor, self.lease_s, self.report, self.on_done, self.say = actor, lease_s, report, on_done, say
        self.holder = new_holder()
        self.started = time.perf_counter()
        self.remote = ray.remote(PreannotationWorker).options(max_restarts=0, max_task_retries=0, **plan.options)
        self.starting: dict[Any, Any] = {}  # where() ref -> actor handle
        self.ready: dict[Any, WorkerPlace] = {}  # actor handle -> place
        self.in_flight: dict[Any, tuple[Any, _Job, float]] = {}  # result ref -> (actor, job, sent at)
        self.retry: deque[_Job] = deque()
        self.tried: set[int] = set()
        self.finished: list[tuple[WorkerResult, _Job]] = []
        self.last_commit = time.monotonic()
        self.exhausted = False
        self.startup_errors: list[str] = []
        self.waiting_since: float | None = None

    # --- workers ---------------------------------------------------------------------------

    def start_workers(self, count: int, probe: tuple[str, tuple[int, str] | None]) -> None:
        self.probe = probe
        for _ in range(count):
            self._start_one()

    def _start_one(self) -> None:
        handle = self.remote.remote(self.plan.settings, str(self.store.settings.models_dir), self.plan.threads, self.probe)
        self.starting[handle.where.remote()] = handle
        self.report.worker_starts += 1

    def _worker_ready(self, ref: Any) -> None:
        handle = self.starting.pop(ref)
        try:
            place: WorkerPlace = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            message = str(exc).strip().splitlines()
            self.startup_errors.append(message[-1] if message else type(exc).__name__)
            self.say(f"a worker could not start: {self.startup_errors[-1]}")
            return
        self.ready[handle] = place
        if self.report.first_ready_s is None:
            self.report.first_ready_s = time.perf_counter() - self.started
        stats = self.report.nodes.setdefault(place.node_id, NodeStats(place.node))
        stats.workers += 1
        by_path = place.sees_blobs and not self.options.ship_audio
        mode = "shared blob folder" if by_path else "object store"
        if self.report.audio_modes.get(place.node) != mode:
            self.report.audio_modes[place.node] = mode
            sees = "sees" if place.sees_blobs else "does not see"
            self.say(f"{place.node}: audio by path on the shared blob folder {self.store.blobs.root}" if by_path
                     else f"{place.node} {sees} the blob folder {self.store.blobs.root}; audio goes through Ray's object store")
        self.say(f"worker ready on {place.node}: {place.device} {place.compute_type}, {place.threads} thread(s), "
                 f"models loaded in {place.load_seconds:.1f} s")

    def _worker_lost(self, handle: Any, error: Exception) -> None:
        place = self.ready.pop(handle, None)
        name = place.node if place else "?"
        handed_back = [(ref, job) for ref, (owner, job, _) in self.in_flight.items() if owner == handle]
        for ref, job in handed_back:
            del self.in_flight[ref]
            job.attempts += 1
            if job.attempts >= self.options.max_attempts:
                self._fail(job, f"WorkerLost: its worker died {job.attempts} times (last on {name}): {_first_line(error)}")
            else:
                self.retry.append(job)
        if place is not None:
            self.report.nodes[place.node_id].workers -= 1
        self.report.lost_workers.append((name, len(handed_back)))
        self.say(f"worker on {name} lost ({_first_line(error)}); {len(handed_back)} recording(s) handed back to the queue")
        if self.report.worker_starts < self.plan.count * (1 + self.options.max_attempts):
            self._start_one()  # Ray places it wherever resources are left; it may wait for a node to (re)join
        self.ray.kill(handle, no_restart=True)

    # --- work ----------------------------------------------------------------------------------

    def _next_job(self) -> _Job | None:
        if self.retry:
            return self.retry.popleft()
        if self.exhausted:
            return None
        recording = claim_recording(self.store, self.row, self.holder, lease_s=self.lease_s, skip=frozenset(self.tried))
        if recording is None:
            self.exhausted = True
            return None
        self.tried.add(recording.pk)
        return _Job(recording)

    def _send(self, handle: Any, place: WorkerPlace, job: _Job) -> bool:
        path = self.store.blobs.path_for(job.recording.working_sha256 or "")
        if place.sees_blobs and not self.options.ship_audio:
            audio: Any = str(path)
        else:
            try:
                audio = load_working_copy(path)
            except Exception as exc:  # noqa: BLE001 - stored as the recording's failure, as in one process
                self._fail(job, f"{type(exc).__name__}: {exc}")
                return False
        ref = handle.preannotate.remote(job.recording.pk, audio, call_arguments(self.protocol, job.recording))
        self.in_flight[ref] = (handle, job, time.monotonic())
        return True

    def _fill(self) -> None:
        """Top every ready worker up to `in_flight` recordings, breadth first so that all workers get work."""
        load = Counter(handle for handle, _, _ in self.in_flight.values())
        for depth in range(1, self.options.in_flight + 1):
            for handle, place in list(self.ready.items()):
                if load[handle] >= depth:
                    continue
                if not self._dispatch(handle, place):
                    return
                load[handle] += 1

    def _dispatch(self, handle: Any, place: WorkerPlace) -> bool:
        """Send the next job to this worker; False when there is none left."""
        while (job := self._next_job()) is not None:
            if self._send(handle, place, job):
                return True
        return False

    def _fail(self, job: _Job, message: str) -> None:
        release_lease(self.store, job.recording.pk, self.holder)
        record_failure(self.store, job.recording, message, self.actor)
        self.report.failed.append((job.recording.pk, message))

    def _result(self, ref: Any) -> None:
        handle, job, _ = self.in_flight[ref]
        try:
            outcome: WorkerResult = self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError,
                self.ray.exceptions.NodeDiedError, self.ray.exceptions.ObjectLostError) as exc:
            self._worker_lost(handle, exc)
            return
        except self.ray.exceptions.RayTaskError as exc:
            del self.in_flight[ref]
            self._fail(job, _first_line(exc))
            return
        del self.in_flight[ref]
        if outcome.error is not None:
            self._fail(job, outcome.error)
        else:
            self.finished.append((outcome, job))

    def commit(self, force: bool = False) -> None:
        due = len(self.finished) >= self.options.commit_every or time.monotonic() - self.last_commit >= self.options.commit_interval_s
        if not self.finished or not (force or due):
            return
        batch, self.finished = self.finished, []
        stored = store_results(self.store, [Finished(o.recording_pk, o.author, o.result, o.bundles) for o, _ in batch],  # type: ignore[arg-type]
                               self.holder, self.actor)
        self.last_commit = time.monotonic()
        for (outcome, job), ok in zip(batch, stored):
            result = outcome.result
            assert result is not None
            if not ok:
                self.report.lost.append(job.recording.pk)
                continue
            self.report.done.append((job.recording.pk, result.duration, result.seconds))
            self.report.flags += [(job.recording.pk, f) for f in result.flags]
            stats = self.report.nodes[outcome.node_id]
            stats.recordings += 1
            stats.audio_s += result.duration
            stats.worker_s += outcome.seconds
            if self.on_done is not None:
                self.on_done(job.recording, result.duration, stats.name)

    def loop(self) -> None:
        while True:
            self._fill()
            if not self.in_flight and not self.retry and self.exhausted:
                return
            if not self.ready and not self.in_flight:
                self._await_workers()
            refs = list(self.in_flight) + list(self.starting)
            done, _ = self.ray.wait(refs, num_returns=1, timeout=min(1.0, self.options.commit_interval_s))
            for ref in done:
                if ref in self.starting:
                    self._worker_ready(ref)
                elif ref in self.in_flight:
                    self._result(ref)
            self.commit()

    def _await_workers(self) -> None:
        """No worker is ready: wait for those starting, within `startup_timeout_s`, else stop with the reason."""
        if not self.starting:
            raise ClusterRefused("no worker could start: " + ("; ".join(dict.fromkeys(self.startup_errors)) or "none was placed"))
        self.waiting_since = self.waiting_since or time.monotonic()
        if time.monotonic() - self.waiting_since > self.options.startup_timeout_s:
            raise ClusterRefused(
                f"no worker became ready within {self.options.startup_timeout_s:.0f} s: the cluster lacks the resources "
                f"({self.plan.describe()}; `ray status` shows what it has) or the models take longer to load")

    def hand_back(self) -> None:
        """Interrupted or stopped: store what is finished, release every lease still held, stop the workers."""
        try:
            self.commit(force=True)
        finally:
            for _, job, _ in self.in_flight.values():
                release_lease(self.store, job.recording.pk, self.holder)
            for job in self.retry:
                release_lease(self.store, job.recording.pk, self.holder)
            self.stop_workers()

    def stop_workers(self) -> None:
        for handle in [*self.ready, *self.starting.values()]:
            self.ray.kill(handle, no_restart=True)
        self.ready.clear()
        self.starting.clear()


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}".strip()


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
    say = on_event or log.info
    probe_path = store.blobs.path_for(probe_recording.working_sha256) if probe_recording and probe_recording.working_sha256 else None
    probe = (str(probe_path), probe_digest(probe_path)) if probe_path else ("", None)
    run = _Run(store, protocol_row, protocol, plan, options, actor, lease_s, report, on_done, say)
    say(f"starting {plan.describe()} on {len(cluster.nodes)} node(s)")
    run.start_workers(plan.count, probe)
    try:
        run.loop()
        run.commit(force=True)
    except BaseException:
        run.hand_back()
        raise
    finally:
        report.wall_s = time.perf_counter() - run.started
    run.stop_workers()
    return report
