"""Scale-out: pre-annotation and intake throughput in one process and on Ray with 1 and 2 CPU actors, and a projection.

Measured on this machine, one run, the same recordings each time (the committed synthetic
dialogues, repeated `--copies` times under new session ids):
- single process: `asr.batch.pretranscribe`, the default engine, default settings;
- Ray, a local instance, 1 and then 2 CPU actors of one thread each (`--engine ray`);
- per-recording overhead of the engine: with 1 actor and one recording in flight, the
  wall time after the worker is ready minus the time spent inside the worker, per recording
  (leasing, sending, the result's trip back, batched commits).
Then a PROJECTION (not a measurement): hours of audio pre-annotated per night on N
workers, from the measured per-worker throughput and the measured 2-actor scaling. No
GPU here: pass a GPU worker's measured real-time factor (`--gpu-rtf`, e.g. from one
`turnscribe pretranscribe --device cuda` run) to project GPUs instead of these CPU actors.

Intake (`--part intake`): `collect ingest` of the same kind of manifest (`--intake-copies`
times the dialogues, as 44.1 kHz WAV so every file is resampled) into a fresh store, in
one process and with `--engine ray` on 1 and 2 CPU actors; the same recordings each time.

  python benchmarks/scaleout_bench.py [--part both|pre-annotation|intake] [--copies 2] [--intake-copies 4]
                                      [--night-hours 10] [--gpu-rtf 0.02]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete  # noqa: E402

from store.settings import Settings, enforce_offline  # noqa: E402

enforce_offline()

from asr.batch import pending_recordings, pretranscribe  # noqa: E402
from asr.preannotate import Preannotator, PreannotationSettings  # noqa: E402
from asr.ray_engine import RayOptions, pretranscribe_on_ray  # noqa: E402
from collection.consent import import_consents  # noqa: E402
from collection.intake import ingest_manifest  # noqa: E402
from collection.ray_cluster import ray_cluster  # noqa: E402
from collection.ray_intake import ingest_on_ray  # noqa: E402
from collection.ray_pool import ClusterOptions  # noqa: E402
from collection.synthetic import DIALOGUES_DIR  # noqa: E402
from protocols.loader import load_protocol  # noqa: E402
from protocols.registry import register_protocol  # noqa: E402
from store import models  # noqa: E402
from store.db import Store, open_store  # noqa: E402
from store.do_not_collect import DoNotCollect  # noqa: E402

PROTOCOL = Path(__file__).resolve().parent.parent / "protocols" / "en_dialogue_accents.yaml"


def new_store(home: Path) -> tuple[Store, models.Protocol, object]:
    """A SQLite store at `home` with the protocol and the dialogues' consent registered."""
    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'turnscribe.db'}"))
    protocol = load_protocol(PROTOCOL)
    with store.session() as session:
        row = register_protocol(session, protocol, actor="bench").row
        session.commit()
    do_not_collect = DoNotCollect.for_store(store)
    with store.session() as session:
        import_consents(session, DIALOGUES_DIR / "consent.csv", do_not_collect, actor="bench")
        session.commit()
    return store, row, protocol


def copies_manifest(audio: Path, copies: int, rate: int | None = None) -> Path:
    """The committed dialogues `copies` times as WAV (made distinct by a tiny gain; resampled to `rate` if given)."""
    import numpy as np
    import soundfile as sf
    import soxr

    rows = [json.loads(line) for line in (DIALOGUES_DIR / "manifest.jsonl").read_text().splitlines() if line.strip()]
    audio.mkdir(parents=True)
    lines = []
    for copy in range(copies):
        for source in rows:
            samples, source_rate = sf.read(DIALOGUES_DIR / source["path"], dtype="float32")
            if rate is not None and rate != source_rate:
                samples = np.asarray(soxr.resample(samples, source_rate, rate), dtype="float32")
            name = f"c{copy}-{source['path'].replace('.flac', '.wav')}"
            sf.write(audio / name, samples * (1.0 - 0.001 * copy), rate or source_rate, subtype="PCM_16")
            lines.append(json.dumps({**source, "path": name, "session_id": f"c{copy}-{source['session_id']}"}))
    (audio / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return audio / "manifest.jsonl"


def backlog(home: Path, copies: int) -> tuple[Store, models.Protocol, object]:
    """A SQLite store with the committed dialogues ingested `copies` times (the audio made distinct by a tiny gain)."""
    store, row, protocol = new_store(home)
    manifest = copies_manifest(home / "audio", copies)
    report = ingest_manifest(store, protocol.id, manifest, actor="bench")
    assert report.ok and report.count("accepted") == len(report.outcomes), [o for o in report.outcomes if o.status != "accepted"]
    return store, row, protocol


def intake_bench(home: Path, copies: int) -> None:
    """Intake throughput: one process, then Ray with 1 and 2 CPU actors, each into a fresh store; the same rows stored."""
    manifest = copies_manifest(home / "intake-audio", copies, rate=44100)
    files = len(manifest.read_text().splitlines())
    print(f"\nINTAKE: {files} files (44.1 kHz WAV), load average {os.getloadavg()[0]:.1f} at start")
    store, _, protocol = new_store(home / "intake-single")
    started = time.perf_counter()
    single = ingest_manifest(store, protocol.id, manifest, actor="bench")
    single_s = time.perf_counter() - started
    audio_s = sum(o.duration_s or 0.0 for o in single.outcomes if o.status == "accepted")
    expected = sorted((o.path, o.status) for o in single.outcomes)
    assert single.count("accepted") == files, [o for o in single.outcomes if o.status != "accepted"]
    single_rate = audio_s / single_s
    print(f"single process: {single_s:.1f} s for {audio_s:.0f} s of audio: {single_rate:.1f} s of audio per s, "
          f"{files / single_s:.2f} files/s")
    with ray_cluster(None) as cluster:
        for actors in (1, 2):
            store, _, _ = new_store(home / f"intake-ray-{actors}")
            report, figures = ingest_on_ray(store, protocol.id, manifest, cluster, ClusterOptions(workers=actors),
                                            actor="bench", on_event=lambda _: None)
            assert sorted((o.path, o.status) for o in report.outcomes) == expected
            steady_s = figures.wall_s - (figures.first_ready_s or 0.0)
            worker_s = sum(s.worker_s for s in figures.nodes.values())
            print(f"Ray, {actors} CPU actor(s) x 1 thread: {figures.wall_s:.1f} s in all, first worker ready after "
                  f"{figures.first_ready_s:.1f} s; after it {steady_s:.1f} s: {audio_s / steady_s:.1f} s of audio per s = "
                  f"{audio_s / steady_s / single_rate:.2f}x the single process (with startup: "
                  f"{audio_s / figures.wall_s / single_rate:.2f}x); inside workers {worker_s:.1f} s, "
                  f"driver's share per file {(steady_s - worker_s / actors) / files * 1000:.0f} ms")


def reset(store: Store) -> None:
    """Every recording pending again (a benchmark's shortcut: revisions are append-only in the product)."""
    with store.session() as session:
        session.execute(delete(models.TranscriptRevision))
        session.execute(delete(models.RecordingLease))
        session.commit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("both", "pre-annotation", "intake"), default="both")
    parser.add_argument("--copies", type=int, default=2, help="times the 6 committed dialogues are ingested (default 2)")
    parser.add_argument("--intake-copies", type=int, default=4, help="times the 6 dialogues are in the intake manifest (default 4)")
    parser.add_argument("--night-hours", type=float, default=10.0, help="hours in a night for the projection")
    parser.add_argument("--gpu-rtf", type=float, default=None,
                        help="a GPU worker's measured real-time factor, to project GPUs (default: project the CPU actor measured here)")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="scaleout-bench-"))
    try:
        if args.part != "pre-annotation":
            intake_bench(home, args.intake_copies)
        if args.part != "intake":
            preannotation_bench(home, args)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def preannotation_bench(home: Path, args: argparse.Namespace) -> None:
    """Pre-annotation throughput: one process, then Ray with 1 and 2 CPU actors; a projection from them."""
    store, row, protocol = backlog(home, args.copies)
    recordings = pending_recordings(store, row)
    audio_s = sum(r.duration_s or 0.0 for r in recordings)
    print(f"{len(recordings)} recordings, {audio_s:.0f} s of audio; {os.cpu_count()} CPU core(s), "
          f"load average {os.getloadavg()[0]:.1f} at start")

    started = time.perf_counter()
    preannotator = Preannotator(PreannotationSettings(device="cpu"), store.settings.models_dir)
    loaded = time.perf_counter()
    single = pretranscribe(store, row, protocol, preannotator, actor="bench")
    single_s = time.perf_counter() - loaded
    assert len(single.done) == len(recordings), single.failed
    single_rate = audio_s / single_s
    print(f"single process: models {loaded - started:.1f} s, then {single_s:.1f} s: {single_rate:.2f} s of audio per s "
          f"(RTF {1 / single_rate:.3f})")

    runs = {}
    with ray_cluster(None) as cluster:
        for actors in (1, 2):
            reset(store)
            options = RayOptions(workers=actors, threads=1, in_flight=1 if actors == 1 else 2)
            report = pretranscribe_on_ray(store, row, protocol, PreannotationSettings(device="cpu"), cluster, options,
                                          actor="bench", on_event=lambda _: None, probe_recording=recordings[0])
            assert len(report.done) == len(recordings) and not report.failed, report.failed
            steady_s = report.wall_s - (report.first_ready_s or 0.0)
            runs[actors] = (report, steady_s)
            worker_s = sum(s.worker_s for s in report.nodes.values())
            print(f"Ray, {actors} CPU actor(s) x 1 thread: {report.wall_s:.1f} s in all, first worker ready after "
                  f"{report.first_ready_s:.1f} s; after it {steady_s:.1f} s: {audio_s / steady_s:.2f} s of audio per s = "
                  f"{audio_s / steady_s / single_rate:.2f}x the single process (with startup: "
                  f"{audio_s / report.wall_s / single_rate:.2f}x); inside workers {worker_s:.1f} s")
    one, one_steady = runs[1]
    overhead = (one_steady - sum(s.worker_s for s in one.nodes.values())) / len(recordings)
    print(f"engine overhead per recording (1 actor, one recording in flight): {overhead * 1000:.0f} ms")
    two_steady = runs[2][1]
    scaling = one_steady / two_steady / 2  # 1.0 = two actors do twice the work of one
    per_worker = audio_s / one_steady  # audio seconds per second, one CPU actor with one thread
    print(f"scaling from 1 to 2 actors on {os.cpu_count()} shared cores: {one_steady / two_steady:.2f}x "
          f"(efficiency {scaling:.2f})")

    rate = 1 / args.gpu_rtf if args.gpu_rtf else per_worker
    source = (f"a GPU worker at the given RTF {args.gpu_rtf}" if args.gpu_rtf
              else f"the CPU actor measured here ({per_worker:.2f} s of audio per s)")
    print(f"\nPROJECTION, not a measurement: hours of audio per {args.night_hours:.0f}-hour night from {source}, "
          "workers assumed to scale linearly (the database and the driver are not the bottleneck at these rates: "
          f"{overhead * 1000:.0f} ms of engine time per recording)")
    for workers in (1, 2, 4, 8, 16):
        print(f"  {workers:>2} {'GPU' if args.gpu_rtf else 'CPU actor'}(s): {workers * rate * args.night_hours:8.1f} h")
    mean_s = audio_s / len(recordings)
    print(f"  the driver's own ceiling at {overhead * 1000:.0f} ms per recording: "
          f"{args.night_hours * 3600 / max(overhead, 1e-3) * mean_s / 3600:.0f} h of {mean_s:.0f}-s recordings per night")


if __name__ == "__main__":
    main()
