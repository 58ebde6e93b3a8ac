"""`turnscribe pretranscribe --engine ray`: the cluster run's terminal side (progress, per-node figures)."""

from __future__ import annotations

from typing import NoReturn

import typer

from asr.cli import print_batch_report
from asr.preannotate import PreannotationSettings
from collection.ray_console import cluster_errors, cluster_progress, print_cluster_figures
from protocols.schema import Protocol
from store import models
from store.console import Exit, err, fail
from store.db import Store


def pretranscribe_on_cluster(store: Store, actor: str, row: models.Protocol, spec: Protocol, pending: list[models.Recording],
                             settings: PreannotationSettings, address: str | None, workers: int | None, threads: int,
                             ship_audio: bool, lease_minutes: float) -> NoReturn:
    """Run the backlog on Ray, show progress for the whole run, then the totals and one line per node."""
    from asr.models import ModelUnavailable, resolve_model
    from asr.ray_engine import RayOptions, pretranscribe_on_ray
    from collection.ray_cluster import ray_cluster

    try:  # a wrong model name fails here, before any node loads anything
        resolve_model(settings.asr_model, store.settings.models_dir)
    except ModelUnavailable as exc:
        fail(str(exc), Exit.USAGE)
    with (cluster_errors("finished recordings are stored, leases handed back; run again to resume"),
          ray_cluster(address) as cluster):
        err.print(cluster.describe())
        with cluster_progress(len(pending), "recordings") as (progress, console):
            report = pretranscribe_on_ray(
                store, row, spec, settings, cluster,
                RayOptions(address=address, workers=workers, threads=threads, ship_audio=ship_audio), actor=actor,
                lease_s=lease_minutes * 60, on_done=lambda _, seconds, node: progress.advance(seconds, node),
                on_event=console.print, probe_recording=pending[0])
    print_batch_report(report)
    print_cluster_figures(report, report.audio_seconds)
    raise typer.Exit(Exit.REJECTED if report.failed else Exit.OK)
