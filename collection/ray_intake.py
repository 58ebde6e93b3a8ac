"""Intake on a Ray cluster (`collect ingest --engine ray`): workers decode, the driver checks and stores.

Every row goes the single-process way (`collection.intake`) but for where its file is
decoded and measured: the driver resolves and hashes the path (a path outside the
manifest's folder is refused here, before anything is sent), skips audio already
accepted, sends the file to a worker, then runs the metadata, consent and quality checks
and stores blobs and rows in the row's own transaction. So the same manifest gives the
same recordings, blobs and rejections as in one process, a rerun adds nothing, and the
database stays the only record: workers hold nothing that is not sent again when they die.

Two rows with the same audio are never at workers together: the second waits for the
first to be stored, then is skipped as in one process. A file whose worker dies
`max_attempts` times is rejected (`decode_failed`), like a file that cannot be decoded.
Audio goes by path when a worker sees the manifest's files at the driver's path (checked
at start on a real file: size and first 64 KiB), else as bytes through the object store.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collection.checks import Reason, duration_ceiling
from collection.intake import (Decoded, IngestReport, ManifestRun, Outcome, Prepared, discard_working, fault,
                               open_manifest, prepare, scratch_file, screen, settle)
from collection.manifest import ManifestItem, UnsafePath, resolve_audio_path
from collection.ray_cluster import Cluster, WorkerPlace, capped_cpu_actor, check_store, probe_for
from collection.ray_intake_worker import DecodeResult, IntakeWorker
from collection.ray_pool import ActorPool, ClusterFigures, ClusterOptions, Job, cpu_worker_count
from store.console import fault_text
from store.db import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settled:
    """One row's outcome as the driver stored it, and the node that decoded its file (None: no worker needed)."""

    outcome: Outcome
    node: str | None


def _first_file(items: list[ManifestItem], manifest_dir: Path, allow_absolute: bool) -> Path | None:
    """The first row's file that is safe to read: what the workers are asked whether they see at the same path."""
    for item in items:
        try:
            path = resolve_audio_path(manifest_dir, item.path, allow_absolute)
        except UnsafePath:
            continue
        if path.is_file():
            return path
    return None


class _IntakeRun(ActorPool):
    """Rows prepared and screened by the driver, decoded by `IntakeWorker`s, settled by the driver one by one."""

    def __init__(self, store: Store, run: ManifestRun, manifest_dir: Path, allow_absolute: bool, actor: str,
                 options: ClusterOptions, count: int, figures: ClusterFigures, say: Callable[[str], None],
                 on_item: Callable[[Settled], None] | None, worker: type[IntakeWorker]) -> None:
        probe = probe_for(_first_file(run.items, manifest_dir, allow_absolute))
        super().__init__(worker, count, capped_cpu_actor(options.threads), (options.threads, probe), options,
                         figures, f"the manifest's folder {manifest_dir}", say)
        self.store, self.intake, self.manifest_dir, self.allow_absolute = store, run, manifest_dir, allow_absolute
        self.actor, self.on_item = actor, on_item
        self.ceiling = duration_ceiling(run.protocol)
        self.queue: deque[ManifestItem] = deque(run.items)
        self.at_workers: set[str] = set()  # sha256 of the files sent and not yet settled
        self.parked: dict[str, list[Prepared]] = {}  # rows waiting for a row with the same audio to be settled
        self.unparked: deque[Prepared] = deque()

    def _next_prepared(self) -> Prepared | None:
        if self.unparked:
            return self.unparked.popleft()
        if self.queue:
            return prepare(self.queue.popleft(), self.manifest_dir, self.allow_absolute)
        return None

    def next_job(self) -> Job | None:
        while (prepared := self._next_prepared()) is not None:
            if prepared.sha256 in self.at_workers:
                self.parked.setdefault(prepared.sha256, []).append(prepared)
                continue
            outcome = screen(self.store, prepared, self.intake.blocked, self.actor)
            if outcome is None and not prepared.needs_decoding:  # a refused path, a missing or unreadable file
                outcome = settle(self.store, self.intake.protocol_row, self.intake.protocol, prepared, actor=self.actor)
            if outcome is not None:
                self._record(prepared, outcome, None)
                continue
            assert prepared.sha256 is not None
            self.at_workers.add(prepared.sha256)
            return Job(prepared)
        return None

    def drained(self) -> bool:
        return not self.queue and not self.unparked and not self.parked

    def send(self, handle: Any, place: WorkerPlace, job: Job) -> Any | None:
        prepared: Prepared = job.payload
        assert prepared.path is not None
        audio: str | bytes = str(prepared.path)
        if not self.by_path(place):
            try:
                audio = prepared.path.read_bytes()
            except OSError as exc:
                self._record(prepared, fault(self.store, prepared.item, fault_text(exc), set(), self.actor), None)
                return None
        return handle.decode.remote(audio, str(prepared.path), self.ceiling)

    def on_result(self, job: Job, value: DecodeResult) -> None:
        prepared: Prepared = job.payload
        node = self.figures.nodes[value.node_id].name
        if value.fault is not None:
            self._record(prepared, fault(self.store, prepared.item, value.fault, set(), self.actor), node)
            return
        prepared.decoded = value.decoded
        if value.working is not None:
            try:
                prepared.working = scratch_file(self.store.blobs.root)
                prepared.working.write_bytes(value.working)
            except OSError as exc:
                discard_working(prepared)
                self._record(prepared, fault(self.store, prepared.item, fault_text(exc), set(), self.actor), node)
                return
        outcome = settle(self.store, self.intake.protocol_row, self.intake.protocol, prepared, actor=self.actor)
        if outcome.status == "accepted":
            self.figures.count(value.node_id, outcome.duration_s or 0.0, value.seconds)
        self._record(prepared, outcome, node)

    def on_failure(self, job: Job, message: str) -> None:
        self._refuse(job.payload, Reason("decode_failed", f"decoding failed in its worker: {message}"))

    def on_gave_up(self, job: Job, node: str, error: BaseException) -> None:
        """Stated without the node or the error's ids, so that a rerun that fails alike is a skip, as in one process."""
        self.say(f"line {job.payload.item.line}: its worker died {job.attempts} times, the last on {node} ({error!r:.200})")
        self._refuse(job.payload, Reason("decode_failed", f"its worker died {job.attempts} times decoding this file"))

    def _refuse(self, prepared: Prepared, reason: Reason) -> None:
        prepared.decoded = Decoded(reasons=(reason,))
        self._record(prepared, settle(self.store, self.intake.protocol_row, self.intake.protocol, prepared, actor=self.actor), None)

    def _record(self, prepared: Prepared, outcome: Outcome, node: str | None) -> None:
        """The row is settled: report it, and let the rows with the same audio go on."""
        self.intake.report.outcomes.append(outcome)
        if prepared.sha256 is not None and prepared.sha256 in self.at_workers:
            self.at_workers.discard(prepared.sha256)
            self.unparked.extend(self.parked.pop(prepared.sha256, []))
        if self.on_item is not None:
            self.on_item(Settled(outcome, node))


def ingest_on_ray(
    store: Store, protocol_id: str, manifest: Path, cluster: Cluster, options: ClusterOptions = ClusterOptions(), *,
    version: int | None = None, allow_absolute: bool = False, actor: str,
    on_item: Callable[[Settled], None] | None = None, on_event: Callable[[str], None] | None = None,
    worker: type[IntakeWorker] = IntakeWorker,
) -> tuple[IngestReport, ClusterFigures]:
    """Ingest every row of `manifest` with decoding on the connected cluster (`ray_cluster`); problems become outcomes.

    `worker`: the actor class (a subclass injects faults in tests).
    """
    check_store(store, cluster)
    run = open_manifest(store, protocol_id, manifest, version=version, actor=actor)
    figures = ClusterFigures(dashboard_url=cluster.dashboard_url)
    count = cpu_worker_count(cluster, options)
    pool = _IntakeRun(store, run, manifest.parent, allow_absolute, actor, options, count, figures,
                      on_event or log.info, on_item, worker)
    pool.run(f"{count} CPU intake worker(s), {options.threads} thread(s) each", len(cluster.nodes))
    run.report.outcomes.sort(key=lambda o: o.line)
    return run.report, figures
