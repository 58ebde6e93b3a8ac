"""`turnscribe collect ingest --engine ray`: the cluster run's terminal side (progress, per-node figures, summary)."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

from collection.ray_console import cluster_errors, cluster_progress, print_cluster_figures
from store.console import err
from store.db import Store


def ingest_on_cluster(store: Store, actor: str, protocol: str, version: int | None, manifest: Path, total: int,
                      allow_absolute: bool, address: str | None, workers: int | None, threads: int,
                      ship_audio: bool) -> NoReturn:
    """Decode on Ray, check and store here; progress for the whole run, then the usual summary and one line per node."""
    from collection.cli import ingest_exit, print_ingest_summary
    from collection.ray_cluster import ray_cluster
    from collection.ray_intake import ingest_on_ray
    from collection.ray_pool import ClusterOptions

    options = ClusterOptions(address=address, workers=workers, threads=threads, ship_audio=ship_audio)
    with cluster_errors("the rows settled so far are stored; run the same manifest again to resume"), \
            ray_cluster(address) as cluster:
        err.print(cluster.describe())
        with cluster_progress(total, "rows") as (progress, console):
            report, figures = ingest_on_ray(
                store, protocol, manifest, cluster, options, version=version, allow_absolute=allow_absolute, actor=actor,
                on_item=lambda s: progress.advance(s.outcome.duration_s or 0.0 if s.outcome.status == "accepted" else 0.0,
                                                   s.node),
                on_event=console.print)
    print_ingest_summary(report)
    accepted_s = sum(o.duration_s or 0.0 for o in report.outcomes if o.status == "accepted")
    print_cluster_figures(figures, accepted_s)
    raise typer.Exit(ingest_exit(report))
