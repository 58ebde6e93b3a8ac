"""What every Turnscribe job on Ray shares: joining or starting the cluster, the store it may use, what a worker sees.

Intake (`collect ingest --engine ray`) and pre-annotation (`pretranscribe --engine ray`)
both run here; it sits on the intake's floor so that both can use it. Importing it needs
no Ray: Ray is imported when a cluster is joined (the `turnscribe[ray]` extra).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from store.db import Store
from store.settings import OFFLINE_ENV

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
PROBE_BYTES = 1 << 16


class ClusterRefused(RuntimeError):
    """The cluster cannot run this job as configured; the message says what to change."""


class ClusterUnreachable(ClusterRefused):
    """Ray is missing, or the cluster could not be joined or started."""


@dataclass(frozen=True)
class Cluster:
    address: str
    nodes: list[str]  # alive nodes' addresses
    dashboard_url: str | None
    started_here: bool
    resources: dict[str, float]

    def describe(self) -> str:
        """One line for the terminal: which cluster, how many nodes, the dashboard."""
        where = "a local Ray instance for this run" if self.started_here else f"the Ray cluster at {self.address}"
        return f"Ray: {where}, {len(self.nodes)} node(s); dashboard: {self.dashboard_url or 'none'}"


@contextmanager
def ray_cluster(address: str | None) -> Iterator[Cluster]:
    """Join the cluster at `address` (host:port, 'auto' or ray://...), or start a local instance for this run."""
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


def capped_cpu_actor(threads: int) -> dict[str, Any]:
    """Ray actor options for a CPU worker whose every thread pool is capped at `threads`: actors never oversubscribe cores."""
    if threads < 1:
        raise ClusterRefused("--threads-per-worker must be at least 1")
    env = {**OFFLINE_ENV, **{name: str(threads) for name in THREAD_VARIABLES}}
    return {"num_cpus": threads, "num_gpus": 0, "runtime_env": {"env_vars": env}}


Probe = tuple[str, tuple[int, str] | None]  # a file's path on the driver, and its size and head digest there


def probe_digest(path: Path) -> tuple[int, str] | None:
    """Size and hash of the first 64 KiB of a file: what driver and worker compare to agree they see the same file."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(PROBE_BYTES)
        return path.stat().st_size, hashlib.sha256(head).hexdigest()
    except OSError:
        return None


def probe_for(path: Path | None) -> Probe:
    """The probe a worker checks at start to tell whether it sees the driver's files at the same path."""
    return (str(path), probe_digest(path)) if path is not None else ("", None)


@dataclass(frozen=True)
class WorkerPlace:
    """Where a worker runs, whether it sees the driver's files, and a line about it for people."""

    node_id: str
    node: str  # host name and address, for people
    sees_shared: bool
    load_seconds: float
    detail: str  # e.g. "cpu int8, 1 thread(s)"


def worker_place(probe: Probe | None, started: float, detail: str) -> WorkerPlace:
    """Called inside an actor once it is ready: its node, and whether the probe file reads the same here."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    sees = probe is not None and probe[1] is not None and probe_digest(Path(probe[0])) == probe[1]
    name = f"{socket.gethostname()} {ray.util.get_node_ip_address()} node {node_id[:8]}"
    return WorkerPlace(node_id, name, sees, time.perf_counter() - started, detail)
