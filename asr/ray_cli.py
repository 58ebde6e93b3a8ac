"""`turnscribe pretranscribe --engine ray`: the cluster run's terminal side (progress, per-node figures)."""

from __future__ import annotations

import time
from typing import NoReturn

import typer

from asr.cli import print_batch_report
from asr.preannotate import PreannotationSettings
from protocols.schema import Protocol
from store import models
from store.console import Exit, err, fail, out
from store.db import Store


def pretranscribe_on_cluster(store: Store, actor: str, row: models.Protocol, spec: Protocol, pending: list[models.Recording],
                             settings: PreannotationSettings, address: str | None, workers: int | None, threads: int,
                             ship_audio: bool, lease_minutes: float) -> NoReturn:
    """Run the backlog on Ray, show progress for the whole run, then the totals and one line per node."""
    from rich.progress import BarColumn, Progress, TextColumn

    from asr.models import ModelUnavailable, resolve_model
    from asr.ray_engine import RayOptions, pretranscribe_on_ray
    from collection.ray_cluster import ClusterRefused, ClusterUnreachable, ray_cluster

    try:  # a wrong model name fails here, before any node loads anything
        resolve_model(settings.asr_model, store.settings.models_dir)
    except ModelUnavailable as exc:
        fail(str(exc), Exit.USAGE)
    total_hours = sum(r.duration_s or 0 for r in pending) / 3600
    columns = (TextColumn("{task.fields[label]}"), BarColumn(), TextColumn("{task.completed:.3f}/{task.total:.3f} h audio"),
               TextColumn("{task.description}"))
    try:
        with ray_cluster(address) as cluster:
            err.print(cluster.describe())
            with Progress(*columns, console=err, transient=True) as progress:
                overall = progress.add_task("", total=total_hours, label="all nodes")
                per_node: dict[str, int] = {}
                started = time.perf_counter()
                count = 0

                def advance(recording: models.Recording, seconds: float, node: str) -> None:
                    nonlocal count
                    count += 1
                    elapsed = time.perf_counter() - started
                    done = progress.tasks[overall].completed + seconds / 3600
                    progress.update(overall, completed=done, description=f"{count}/{len(pending)} recordings, "
                                    f"RTF {elapsed / max(done * 3600, 1e-9):.3f}")
                    task = per_node.get(node)
                    if task is None:
                        task = per_node[node] = progress.add_task("", total=total_hours, label=node)
                    node_done = progress.tasks[task].completed + seconds / 3600
                    progress.update(task, completed=node_done, description=f"{node_done * 3600 / elapsed:.2f} s audio/s")

                report = pretranscribe_on_ray(store, row, spec, settings, cluster, RayOptions(
                    address=address, workers=workers, threads=threads, ship_audio=ship_audio), actor=actor, lease_s=lease_minutes * 60,
                    on_done=advance, on_event=progress.console.print, probe_recording=pending[0])
    except ClusterUnreachable as exc:
        fail(str(exc), Exit.FAILED)
    except ClusterRefused as exc:
        fail(str(exc), Exit.USAGE)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted: finished recordings are stored, leases handed back; run again to resume[/yellow]")
        raise typer.Exit(130) from None
    print_batch_report(report)
    from rich.table import Table

    table = Table("node", "workers", "recordings", "audio h", "audio s per s", "worker RTF", title="Per node",
                  title_justify="left")
    for stats in sorted(report.nodes.values(), key=lambda s: s.name):
        table.add_row(stats.name, str(stats.workers), str(stats.recordings), f"{stats.audio_s / 3600:.3f}",
                      f"{stats.audio_s / max(report.wall_s, 1e-9):.2f}", f"{stats.worker_s / max(stats.audio_s, 1e-9):.3f}")
    out.print(table)
    out.print(f"wall clock {report.wall_s:.1f} s for {report.audio_seconds / 3600:.3f} h of audio: cluster RTF "
              f"{report.wall_real_time_factor:.3f}")
    for node, handed_back in report.lost_workers:
        err.print(f"[yellow]worker lost on {node}[/yellow]: {handed_back} recording(s) handed back and retried")
    raise typer.Exit(Exit.REJECTED if report.failed else Exit.OK)
