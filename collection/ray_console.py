"""The terminal side both `--engine ray` commands share: their options, their errors, their per-node figures."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from collection.ray_cluster import ClusterRefused, ClusterUnreachable
from collection.ray_pool import ClusterFigures
from store.console import Exit, err, fail, out

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

EngineOpt = Annotated[str, typer.Option("--engine", help="'process' (this process) or 'ray' (Ray actors; pip install "
                                        "'turnscribe[ray]').")]
AddressOpt = Annotated[str | None, typer.Option("--address", help="With --engine ray: the cluster to join (host:port of "
                                                "the head, or 'auto'); without it a local Ray instance runs for this command.")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", min=1, help="With --engine ray: actors to start (default: "
                                                "one per GPU where the job uses GPUs, else one per --threads-per-worker CPUs).")]
ThreadsOpt = Annotated[int, typer.Option("--threads-per-worker", min=1, help="With --engine ray: CPU threads of each CPU actor.")]
ShipAudioOpt = Annotated[bool, typer.Option("--ship-audio", help="With --engine ray: send audio through Ray's object store "
                                            "even to nodes that see the files at the driver's path.")]


def check_engine(engine: str, address: str | None, workers: int | None, ship_audio: bool) -> None:
    """Exit 2 for an unknown engine, or Ray options without `--engine ray`."""
    if engine not in ("process", "ray"):
        fail(f"unknown engine '{engine}' (process or ray)", Exit.USAGE)
    if engine == "process" and (address or workers or ship_audio):
        fail("--address, --workers and --ship-audio need --engine ray", Exit.USAGE)


@contextmanager
def cluster_errors(interrupted: str) -> Iterator[None]:
    """Ray missing or unreachable: exit 3; a job the cluster cannot run as asked: exit 2; Ctrl-C: `interrupted`, exit 130."""
    try:
        yield
    except ClusterUnreachable as exc:
        fail(str(exc), Exit.FAILED)
    except ClusterRefused as exc:
        fail(str(exc), Exit.USAGE)
    except KeyboardInterrupt:
        err.print(f"[yellow]interrupted: {interrupted}[/yellow]")
        raise typer.Exit(130) from None


def print_cluster_figures(figures: ClusterFigures, audio_s: float) -> None:
    """One line per node (its throughput), the run's wall clock and RTF, and every worker lost on the way."""
    from rich.table import Table

    table = Table("node", "workers", "recordings", "audio h", "audio s per s", "worker RTF", title="Per node",
                  title_justify="left")
    for stats in sorted(figures.nodes.values(), key=lambda s: s.name):
        table.add_row(stats.name, str(stats.workers), str(stats.recordings), f"{stats.audio_s / 3600:.3f}",
                      f"{stats.audio_s / max(figures.wall_s, 1e-9):.2f}", f"{stats.worker_s / max(stats.audio_s, 1e-9):.3f}")
    out.print(table)
    out.print(f"wall clock {figures.wall_s:.1f} s for {audio_s / 3600:.3f} h of audio: cluster RTF "
              f"{figures.wall_s / audio_s if audio_s else 0.0:.3f}")
    for node, handed_back in figures.lost_workers:
        err.print(f"[yellow]worker lost on {node}[/yellow]: {handed_back} recording(s) handed back and retried")


@contextmanager
def cluster_progress(total: int, noun: str) -> Iterator[tuple[ClusterProgress, Any]]:
    """A live display on stderr: `total` items and their audio hours over all nodes, one line per node; and its console."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.fields[label]}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"))
    with Progress(*columns, console=err, transient=True) as progress:
        yield ClusterProgress(progress, total, noun), progress.console


class ClusterProgress:
    """Items done, audio hours and RTF for the whole run, and each node's throughput (audio seconds per second)."""

    def __init__(self, progress: Progress, total: int, noun: str) -> None:
        self.progress, self.total, self.noun = progress, total, noun
        self.overall = progress.add_task("", total=total, label="all nodes")
        self.nodes: dict[str, tuple[TaskID, float]] = {}  # node -> (its task, its audio seconds)
        self.audio_s = 0.0
        self.started = time.perf_counter()

    def advance(self, audio_s: float, node: str | None) -> None:
        """One item settled; `audio_s` of it counted, on `node` (None: settled without a worker)."""
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        self.audio_s += audio_s
        self.progress.update(self.overall, advance=1, description=f"{self.noun}, {self.audio_s / 3600:.3f} h audio, "
                             f"RTF {elapsed / max(self.audio_s, 1e-9):.3f}")
        if node is None:
            return
        task, seconds = self.nodes.get(node) or (self.progress.add_task("", total=self.total, label=node), 0.0)
        self.nodes[node] = (task, seconds + audio_s)
        self.progress.update(task, advance=1, description=f"{(seconds + audio_s) / elapsed:.2f} s audio/s")
