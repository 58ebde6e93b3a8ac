"""`collect ingest --engine ray`, in process on a local Ray instance: the same intake as one process (issue #13).

One local instance for the module (`ray_cluster(None)`, two CPUs: two intake actors);
the two-node cluster with a node killed mid-run is covered for the same actor pool by
tests/asr/test_ray_cluster.py, which also runs this command on it against PostgreSQL.
Here: a manifest with every kind of row gives the same recordings, blob digests,
rejections and outcomes by path, through the object store, and in one process; a rerun
adds nothing; a worker killed mid-file is replaced and its file retried; a file that
kills its worker every time is rejected with that error; a path trick never reaches a worker.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from collection.intake import IngestReport, ingest_manifest
from collection.ray_cluster import Cluster, ray_cluster
from collection.ray_intake import ingest_on_ray
from collection.ray_intake_worker import DecodeResult, IntakeWorker
from collection.ray_pool import ClusterOptions
from store import models
from store.db import Store
from tests.conftest import open_test_store
from tests.factories import (clipped_copy, import_consent_file, manifest_rows, register_en, resampled_copy, variant_row,
                             write_manifest)

pytest.importorskip("ray")
PROTOCOL = "en-dialogue-accents"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[Cluster]:
    with ray_cluster(None) as cluster:
        yield cluster


def _ready(request: pytest.FixtureRequest, home: Path, backend: str, dialogues: Path) -> Store:
    store = open_test_store(request, home, backend)
    register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    return store


def _mixed_manifest(dialogues: Path) -> Path:
    """The committed dialogues and a row of every kind: same audio twice, resampled, clipped, broken, missing, escaping."""
    rows = manifest_rows(dialogues)
    base = rows[0]
    shutil.copy(dialogues / base["path"], dialogues / "twin.flac")
    resampled_copy(dialogues / rows[1]["path"], dialogues / "eight-khz.wav", 8000)
    clipped_copy(dialogues / rows[2]["path"], dialogues / "clipped.wav")
    (dialogues / "broken.flac").write_bytes(b"fLaC but not audio" * 100)
    extra = [variant_row(base, "twin.flac", "twin"), variant_row(base, "eight-khz.wav", "eight"),
             variant_row(base, "clipped.wav", "clipped"), variant_row(base, "broken.flac", "broken"),
             variant_row(base, "missing.flac", "missing"), variant_row(base, "../../etc/passwd", "escape")]
    return write_manifest(dialogues / "mixed.jsonl", [rows[0], extra[0], *rows[1:], *extra[1:]])


def _stored(store: Store) -> list[tuple[Any, ...]]:
    """Every recording as intake stored it (not its primary key), with its session and the audited transforms."""
    with store.session() as session:
        rows = []
        for r in session.scalars(select(models.Recording)):
            event = session.scalars(select(models.AuditEvent).where(models.AuditEvent.subject == f"recording:{r.pk}")).one()
            session_id = session.get(models.Session, r.session_pk).session_id if r.session_pk else None
            rows.append((r.source_name, r.status, r.reasons, r.sha256, r.working_sha256, session_id, r.container_format,
                         r.sample_rate, r.channels, r.num_samples, r.duration_s, r.peak_dbfs, r.clipping_ratio,
                         r.speech_ratio, r.snr_db, r.noise_mismatch, event.action, event.details["transforms"]))
    return sorted(rows, key=repr)


def _blobs(store: Store) -> set[str]:
    return {p.name for p in store.blobs.root.rglob("*") if p.is_file()}


def _outcomes(report: IngestReport) -> list[tuple[Any, ...]]:
    return [(o.line, o.path, o.status, o.reasons, re.sub(r"\d+", "N", o.note)) for o in report.outcomes]


def test_the_same_intake_as_one_process_by_path_and_through_the_object_store(
        request: pytest.FixtureRequest, tmp_path: Path, dialogues: Path, local_ray: Cluster) -> None:
    backend = "sqlite"  # one machine; tests/asr/test_ray_cluster.py runs the command on two nodes against PostgreSQL
    manifest = _mixed_manifest(dialogues)
    single = _ready(request, tmp_path / "single", backend, dialogues)
    expected = ingest_manifest(single, PROTOCOL, manifest, actor="test")
    statuses = {o.path: o.status for o in expected.outcomes}
    assert statuses["twin.flac"] == "skipped", statuses
    assert {statuses[p] for p in ("broken.flac", "missing.flac", "../../etc/passwd")} == {"rejected"}
    first = _stored(single)
    again_single = ingest_manifest(single, PROTOCOL, manifest, actor="test")  # one process: a rerun stores rows without audio again

    for ship in (False, True):
        store = _ready(request, tmp_path / f"ray-{ship}", backend, dialogues)
        events: list[str] = []
        report, figures = ingest_on_ray(store, PROTOCOL, manifest, local_ray, ClusterOptions(ship_audio=ship),
                                        actor="test", on_event=events.append)
        assert _outcomes(report) == _outcomes(expected)
        assert _stored(store) == first
        assert _blobs(store) == _blobs(single)
        mode = "audio goes through Ray's object store" if ship else "audio by path on the manifest's folder"
        assert any(mode in e for e in events), events
        accepted = [o for o in report.outcomes if o.status == "accepted"]
        assert sum(s.recordings for s in figures.nodes.values()) == len(accepted)
        assert sum(s.audio_s for s in figures.nodes.values()) == pytest.approx(sum(o.duration_s for o in accepted))
        if not ship:  # a rerun (once: actors start slowly on two shared cores)
            again, _ = ingest_on_ray(store, PROTOCOL, manifest, local_ray, actor="test")
            assert _outcomes(again) == _outcomes(again_single)
            assert _stored(store) == _stored(single) and _blobs(store) == _blobs(single)
            with_audio = [o.status for o in again.outcomes if o.path not in ("missing.flac", "../../etc/passwd")]
            assert set(with_audio) == {"skipped"}, again.outcomes  # every file that was read: nothing added
        store.close()
    single.close()


class KillingWorker(IntakeWorker):
    """Fault injection: the worker process dies on every `poison*` file, and on the first try of each `flaky*` one."""

    def decode(self, audio: str | bytes, source: str, max_duration_s: float | None) -> DecodeResult:
        path = Path(source)
        with open(path.parent / "seen.log", "a") as log:
            log.write(source + "\n")
        died_once = path.with_suffix(".died")
        if path.name.startswith("poison") or (path.name.startswith("flaky") and not died_once.exists()):
            died_once.touch()
            os._exit(1)
        return super().decode(audio, source, max_duration_s)


def test_a_killed_worker_is_replaced_its_file_retried_and_a_file_that_always_kills_is_rejected(
        request: pytest.FixtureRequest, tmp_path: Path, dialogues: Path, local_ray: Cluster) -> None:
    rows = manifest_rows(dialogues)
    resampled_copy(dialogues / rows[3]["path"], dialogues / "poison.wav", 22050)
    resampled_copy(dialogues / rows[4]["path"], dialogues / "flaky.wav", 22050)
    outside = tmp_path / "outside.flac"
    shutil.copy(dialogues / rows[5]["path"], outside)
    manifest = write_manifest(dialogues / "faults.jsonl", [
        rows[0], variant_row(rows[0], "poison.wav", "poison"), rows[1], variant_row(rows[0], "flaky.wav", "flaky"),
        variant_row(rows[0], "../outside.flac", "escape")])
    store = _ready(request, tmp_path / "home", "sqlite", dialogues)
    report, figures = ingest_on_ray(store, PROTOCOL, manifest, local_ray, ClusterOptions(workers=2, in_flight=1, max_attempts=2),
                                    actor="test", worker=KillingWorker)
    by_path = {o.path: o for o in report.outcomes}
    poison = by_path["poison.wav"]
    assert poison.status == "rejected"
    assert [(r.code, r.message) for r in poison.reasons] == [("decode_failed", "its worker died 2 times decoding this file")]
    assert by_path["flaky.wav"].status == "accepted"
    assert [by_path[r["path"]].status for r in rows[:2]] == ["accepted", "accepted"]
    assert [r.code for r in by_path["../outside.flac"].reasons] == ["unsafe_path"]
    assert len(figures.lost_workers) == 3 and sum(n for _, n in figures.lost_workers) == 3  # 2 × poison, 1 × flaky
    seen = (dialogues / "seen.log").read_text().splitlines()
    assert not any("outside" in line for line in seen), seen  # refused on the driver: never sent
    assert sorted(Path(line).name for line in seen).count("poison.wav") == 2
    with store.session() as session:
        stored = {r.source_name: r.status for r in session.scalars(select(models.Recording))}
    assert stored == {rows[0]["path"]: "accepted", rows[1]["path"]: "accepted", "flaky.wav": "accepted",
                      "poison.wav": "rejected", "../outside.flac": "rejected"}
    store.close()
