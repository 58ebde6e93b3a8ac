"""The driver loop every Turnscribe job on Ray runs: workers started and replaced, jobs dispatched, lost work retried.

The driver is the only database client; actors only compute. An engine (intake,
pre-annotation) subclasses `ActorPool` and says where jobs come from (`next_job`), how one
is sent (`send`), and what to do with a result (`on_result`), a failure (`on_failure`) and
a batch (`flush`). The pool does the rest the same way for both: breadth-first dispatch
with `in_flight` jobs per worker, a lost worker's jobs handed back to the queue (a job
whose worker dies `max_attempts` times fails with that error), a replacement worker
started, per-node figures, and the audio mode (shared folder or object store) said per node.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collection.ray_cluster import Cluster, ClusterRefused, WorkerPlace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterOptions:
    address: str | None = None  # None: a local Ray instance started for this run and shut down after it
    workers: int | None = None  # default: what the engine plans (one per GPU, or one per `threads` CPUs)
    threads: int = 1  # CPU threads per CPU worker (torch, CTranslate2, OpenMP): workers never oversubscribe cores
    in_flight: int = 2  # jobs sent to a worker ahead of its results (hides the driver's round trip)
    commit_interval_s: float = 10.0  # the longest the driver waits before flushing finished results
    max_attempts: int = 3  # a job whose worker dies this many times fails
    startup_timeout_s: float = 600.0  # how long to wait for a first (or replacement) worker to become ready
    ship_audio: bool = False  # send audio through the object store even to workers that see the shared files


def cpu_worker_count(cluster: Cluster, options: ClusterOptions) -> int:
    """`--workers`, else as many `threads`-thread workers as the cluster has CPUs for."""
    return options.workers or max(1, int(cluster.resources.get("CPU", 0)) // max(1, options.threads))


@dataclass
class NodeStats:
    name: str
    workers: int = 0
    recordings: int = 0
    audio_s: float = 0.0
    worker_s: float = 0.0  # time inside workers, reading audio included


@dataclass
class ClusterFigures:
    """What a run on Ray reports besides its results: nodes, audio modes, lost workers, timings."""

    dashboard_url: str | None = None
    nodes: dict[str, NodeStats] = field(default_factory=dict)  # node id -> figures
    audio_modes: dict[str, str] = field(default_factory=dict)  # node name -> "shared folder" | "object store"
    lost_workers: list[tuple[str, int]] = field(default_factory=list)  # (node name, jobs handed back)
    worker_starts: int = 0
    wall_s: float = 0.0  # from starting the workers to the last commit
    first_ready_s: float | None = None  # until the first worker was ready

    def count(self, node_id: str, audio_s: float, worker_s: float) -> NodeStats:
        """Add one finished recording to its node's figures."""
        stats = self.nodes[node_id]
        stats.recordings += 1
        stats.audio_s += audio_s
        stats.worker_s += worker_s
        return stats


@dataclass
class Job:
    payload: Any
    attempts: int = 0  # how many of its workers died holding it


def first_line(error: BaseException) -> str:
    """An error's type and the last line Ray gives it (the original error for a remote one)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[-1] if lines else ''}".strip()


class ActorPool:
    """One driver loop over actors of `remote_class` (a plain class with `where() -> WorkerPlace`)."""

    def __init__(self, remote_class: type, count: int, actor_options: dict[str, Any], actor_args: tuple[Any, ...],
                 options: ClusterOptions, figures: ClusterFigures, shared: str, say: Callable[[str], None]) -> None:
        import ray

        self.ray = ray
        self.count, self.actor_args, self.options, self.figures = count, actor_args, options, figures
        self.shared, self.say = shared, say  # `shared`: what workers may see by path, for messages
        self.remote = ray.remote(remote_class).options(max_restarts=0, max_task_retries=0, **actor_options)
        self.started = time.perf_counter()
        self.starting: dict[Any, Any] = {}  # where() ref -> actor handle
        self.ready: dict[Any, WorkerPlace] = {}  # actor handle -> place
        self.in_flight: dict[Any, tuple[Any, Job]] = {}  # result ref -> (actor, job)
        self.retry: deque[Job] = deque()
        self.startup_errors: list[str] = []
        self.waiting_since: float | None = None

    # --- what an engine supplies --------------------------------------------------------------

    def next_job(self) -> Job | None:
        """The next job to send, or None when there is none to send now."""
        raise NotImplementedError

    def drained(self) -> bool:
        """No job will come any more from `next_job` (nothing is left in the queue or the database)."""
        raise NotImplementedError

    def send(self, handle: Any, place: WorkerPlace, job: Job) -> Any | None:
        """Send `job` to the actor; the result's ref, or None when the job was settled without a worker."""
        raise NotImplementedError

    def on_result(self, job: Job, value: Any) -> None:
        raise NotImplementedError

    def on_failure(self, job: Job, message: str) -> None:
        """The job raised in its worker (or could not be sent)."""
        raise NotImplementedError

    def on_gave_up(self, job: Job, node: str, error: BaseException) -> None:
        """The job's workers died `max_attempts` times holding it (the last on `node`, with `error`)."""
        self.on_failure(job, f"WorkerLost: its worker died {job.attempts} times (last on {node}): {first_line(error)}")

    def flush(self, force: bool = False) -> None:
        """Store finished results when a batch is due (always when `force`)."""

    def release(self, job: Job) -> None:
        """Interrupted: hand a job that was not finished back (a lease dropped)."""

    # --- the loop -----------------------------------------------------------------------------

    def by_path(self, place: WorkerPlace) -> bool:
        """Whether audio goes to this worker by path (it sees the shared files) rather than through the object store."""
        return place.sees_shared and not self.options.ship_audio

    def run(self, describe: str, nodes: int) -> None:
        """Start the workers, drive every job to its end, flush; on any interruption hand everything back."""
        self.say(f"starting {describe} on {nodes} node(s)")
        for _ in range(self.count):
            self._start_one()
        try:
            self._loop()
            self.flush(force=True)
        except BaseException:
            self._hand_back()
            raise
        finally:
            self.figures.wall_s = time.perf_counter() - self.started
        self.stop_workers()

    def _start_one(self) -> None:
        handle = self.remote.remote(*self.actor_args)
        self.starting[handle.where.remote()] = handle
        self.figures.worker_starts += 1

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
        if self.figures.first_ready_s is None:
            self.figures.first_ready_s = time.perf_counter() - self.started
        self.figures.nodes.setdefault(place.node_id, NodeStats(place.node)).workers += 1
        mode = "shared folder" if self.by_path(place) else "object store"
        if self.figures.audio_modes.get(place.node) != mode:
            self.figures.audio_modes[place.node] = mode
            sees = "sees" if place.sees_shared else "does not see"
            self.say(f"{place.node}: audio by path on {self.shared}" if mode == "shared folder"
                     else f"{place.node} {sees} {self.shared}; audio goes through Ray's object store")
        self.say(f"worker ready on {place.node}: {place.detail}, ready in {place.load_seconds:.1f} s")

    def _worker_lost(self, handle: Any, error: Exception) -> None:
        place = self.ready.pop(handle, None)
        name = place.node if place else "?"
        handed_back = [(ref, job) for ref, (owner, job) in self.in_flight.items() if owner == handle]
        for ref, job in handed_back:
            del self.in_flight[ref]
            job.attempts += 1
            if job.attempts >= self.options.max_attempts:
                self.on_gave_up(job, name, error)
            else:
                self.retry.append(job)
        if place is not None:
            self.figures.nodes[place.node_id].workers -= 1
        self.figures.lost_workers.append((name, len(handed_back)))
        self.say(f"worker on {name} lost ({first_line(error)}); {len(handed_back)} recording(s) handed back to the queue")
        if self.figures.worker_starts < self.count * (1 + self.options.max_attempts):
            self._start_one()  # Ray places it wherever resources are left; it may wait for a node to (re)join
        self.ray.kill(handle, no_restart=True)

    def _job(self) -> Job | None:
        return self.retry.popleft() if self.retry else self.next_job()

    def _fill(self) -> None:
        """Top every ready worker up to `in_flight` jobs, breadth first so that all workers get work."""
        load = Counter(handle for handle, _ in self.in_flight.values())
        for depth in range(1, self.options.in_flight + 1):
            for handle, place in list(self.ready.items()):
                if load[handle] >= depth:
                    continue
                if not self._dispatch(handle, place):
                    return
                load[handle] += 1

    def _dispatch(self, handle: Any, place: WorkerPlace) -> bool:
        """Send the next job to this worker; False when there is none left."""
        while (job := self._job()) is not None:
            ref = self.send(handle, place, job)
            if ref is not None:
                self.in_flight[ref] = (handle, job)
                return True
        return False

    def _result(self, ref: Any) -> None:
        handle, job = self.in_flight[ref]
        try:
            value = self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError,
                self.ray.exceptions.NodeDiedError, self.ray.exceptions.ObjectLostError) as exc:
            self._worker_lost(handle, exc)
            return
        except self.ray.exceptions.RayTaskError as exc:
            del self.in_flight[ref]
            self.on_failure(job, first_line(exc))
            return
        del self.in_flight[ref]
        self.on_result(job, value)

    def _loop(self) -> None:
        while True:
            self._fill()
            if not self.in_flight and not self.retry and self.drained():
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
            self.flush()


    def _await_workers(self) -> None:
        """No worker is ready: wait for those starting, within `startup_timeout_s`, else stop with the reason."""
        if not self.starting:
            raise ClusterRefused("no worker could start: " + ("; ".join(dict.fromkeys(self.startup_errors)) or "none was placed"))
        self.waiting_since = self.waiting_since or time.monotonic()
        if time.monotonic() - self.waiting_since > self.options.startup_timeout_s:
            raise ClusterRefused(
                f"no worker became ready within {self.options.startup_timeout_s:.0f} s: the cluster lacks the resources "
                "(`ray status` shows what it has) or the workers take longer to load")

    def _hand_back(self) -> None:
        """Interrupted or stopped: store what is finished, release every job still held, stop the workers."""
        try:
            self.flush(force=True)
        finally:
            for _, job in self.in_flight.values():
                self.release(job)
            for job in self.retry:
                self.release(job)
            self.stop_workers()

    def stop_workers(self) -> None:
        for handle in [*self.ready, *self.starting.values()]:
            self.ray.kill(handle, no_restart=True)
        self.ready.clear()
        self.starting.clear()
