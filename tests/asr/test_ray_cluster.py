"""`pretranscribe --engine ray` and `collect ingest --engine ray` on a real two-node Ray cluster (issue #13).

One cluster for the module (Ray starts slowly on two shared cores): a head and a second
node, each with one CPU, so each holds one worker actor, against the real PostgreSQL server.
Twenty short synthetic dialogues are pre-annotated while the second node is killed mid-run;
every recording must end with exactly one pre-annotation, equal turn for turn to what the
single-process engine computes. The intake runs here too, before the kill (the killed node
does not come back): the same recordings and blobs as one process.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf
from sqlalchemy import func, select

from asr.batch import call_arguments, pending_recordings, speaker_count
from asr.preannotate import Preannotator, PreannotationSettings
from collection.decoding import load_working_copy
from collection.intake import ingest_manifest
from collection.synthetic.generator import generate_dialogues
from store import models
from store.accounts import add_user
from store.db import Store
from tests.conftest import open_test_store
from protocols.schema import Protocol
from tests.factories import import_consent_file, manifest_rows, register_en, write_manifest
from tests.ray_cluster import LocalRayCluster, start_head

pytest.importorskip("ray")
BIN = Path(sys.executable).parent / "turnscribe"
DIALOGUES = 20
PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRayCluster]:
    started = start_head(dict(os.environ))
    try:
        started.add_node("second", cpus=1)
        yield started
    finally:
        left = started.stop()
    assert left == [], f"Ray processes left behind: {left}"


@pytest.fixture(scope="module")
def short_dialogues(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Short dialogues (four main turns, about 11 s each) from the repository's generator; a few spare."""
    out = tmp_path_factory.mktemp("short-dialogues")
    generate_dialogues(out, count=DIALOGUES + 4, seed=13, turn_count=4)
    return out


def _registered(store: Store, dialogues: Path) -> tuple[models.Protocol, Protocol]:
    """The protocol, the dialogues' consent and a manager who signs the commands in."""
    row, protocol = register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    with store.session() as session:
        add_user(session, "ada", PASSWORD, ["manager"], actor="test")
        session.commit()
    return row, protocol


def _long_enough(dialogues: Path) -> list[dict[str, object]]:
    return [row for row in manifest_rows(dialogues) if sf.info(dialogues / str(row["path"])).duration >= 10.2]  # intake's minimum: 10 s


def _backlog(store: Store, dialogues: Path, count: int) -> tuple[models.Protocol, Protocol]:
    row, protocol = _registered(store, dialogues)
    manifest = write_manifest(dialogues / f"first-{count}.jsonl", _long_enough(dialogues)[:count])
    assert ingest_manifest(store, protocol.id, manifest, actor="test").count("accepted") == count
    return row, protocol


def _environment(store: Store, cluster: LocalRayCluster) -> dict[str, str]:
    return dict(os.environ, **cluster.client_env, TURNSCRIBE_HOME=str(store.settings.home), TURNSCRIBE_DATABASE_URL=store.settings.database_url,
                TURNSCRIBE_USER="ada", TURNSCRIBE_PASSWORD=PASSWORD, COLUMNS="300")


def _command(cluster: LocalRayCluster) -> list[str]:
    return [str(BIN), "pretranscribe", "--protocol", "en-dialogue-accents", "--engine", "ray", "--address", cluster.address,
            "--device", "cpu", "--threads-per-worker", "1"]


def test_sqlite_is_refused_on_a_cluster_of_several_nodes(request: pytest.FixtureRequest, tmp_path: Path,
                                                          cluster: LocalRayCluster, short_dialogues: Path) -> None:
    store = open_test_store(request, tmp_path / "home", "sqlite")
    row, _ = _backlog(store, short_dialogues, 1)
    cluster.wait_for_nodes(2)
    run = subprocess.run(_command(cluster), env=_environment(store, cluster), capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr
    message = " ".join(run.stderr.split())
    assert "has 2 nodes but the store is SQLite" in message and "TURNSCRIBE_DATABASE_URL=postgresql" in message, run.stderr
    assert len(pending_recordings(store, row)) == 1
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(models.RecordingLease)) == 0
    manifest = write_manifest(short_dialogues / "refused.jsonl", _long_enough(short_dialogues)[1:3])
    ingest = subprocess.run(_ingest_command(cluster, manifest), env=_environment(store, cluster), capture_output=True,
                            text=True, timeout=300)
    assert ingest.returncode == 2, ingest.stderr
    assert "has 2 nodes but the store is SQLite" in " ".join(ingest.stderr.split()), ingest.stderr
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(models.Recording)) == 1
    store.close()


def _ingest_command(cluster: LocalRayCluster, manifest: Path) -> list[str]:
    return [str(BIN), "collect", "ingest", str(manifest), "--protocol", "en-dialogue-accents", "--engine", "ray",
            "--address", cluster.address]


def _intake(store: Store) -> list[tuple[object, ...]]:
    with store.session() as session:
        return sorted((r.source_name, r.status, r.reasons, r.sha256, r.working_sha256, r.duration_s, r.speech_ratio, r.snr_db)
                      for r in session.scalars(select(models.Recording)))


def test_ingest_on_two_nodes_stores_what_one_process_stores(
        request: pytest.FixtureRequest, tmp_path: Path, cluster: LocalRayCluster, short_dialogues: Path) -> None:
    rows = _long_enough(short_dialogues)[:8]
    (short_dialogues / "broken.flac").write_bytes(b"not audio at all" * 64)
    extra = {**rows[0], "path": "broken.flac", "session_id": "broken"}
    manifest = write_manifest(short_dialogues / "intake.jsonl", [*rows, extra])
    single = open_test_store(request, tmp_path / "single", "postgresql")
    _, protocol = _registered(single, short_dialogues)
    expected = ingest_manifest(single, protocol.id, manifest, actor="test")
    assert expected.count("accepted") == len(rows) and expected.count("rejected") == 1

    store = open_test_store(request, tmp_path / "home", "postgresql")
    _registered(store, short_dialogues)
    cluster.wait_for_nodes(2)
    run = subprocess.run(_ingest_command(cluster, manifest), env=_environment(store, cluster), capture_output=True,
                         text=True, timeout=600)
    print(run.stderr, run.stdout)  # shown by pytest when the test fails
    assert run.returncode == 1, run.stderr  # one row rejected
    said = " ".join(run.stderr.split())  # the terminal wraps long lines
    # a worker for each node; decoding is quick, so the first one ready may take every file before the second is
    assert "starting 2 CPU intake worker(s), 1 thread(s) each on 2 node(s)" in said, run.stderr
    assert "audio by path on the manifest's folder" in said and "object store" not in said, run.stderr
    assert f"dashboard: http://127.0.0.1:{cluster.dashboard_port}" in run.stderr
    assert "Per node" in run.stdout and "not a decodable audio file" in said
    assert _intake(store) == _intake(single)
    assert {p.name for p in store.blobs.root.rglob("*") if p.is_file()} == \
        {p.name for p in single.blobs.root.rglob("*") if p.is_file()}
    store.close()
    single.close()


def test_two_nodes_one_killed_mid_run_every_recording_once_same_turns(
        request: pytest.FixtureRequest, tmp_path: Path, cluster: LocalRayCluster, short_dialogues: Path) -> None:
    store = open_test_store(request, tmp_path / "home", "postgresql")
    row, spec = _backlog(store, short_dialogues, DIALOGUES)
    cluster.wait_for_nodes(2)
    log = tmp_path / "run.log"
    with open(log, "w") as stderr:
        run = subprocess.Popen(_command(cluster), env=_environment(store, cluster), stdout=subprocess.PIPE, stderr=stderr, text=True)
    second = next(node for node in cluster.nodes if node.name == "second")
    deadline = time.monotonic() + 300
    while log.read_text().count("worker ready") < 2 or len(pending_recordings(store, row)) == DIALOGUES:
        assert run.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.5)
    stored_before_kill = DIALOGUES - len(pending_recordings(store, row))
    second.kill()  # the machine dies with the recordings its worker holds
    output, _ = run.communicate(timeout=600)
    errors = log.read_text()
    print(errors, output)  # shown by pytest when the test fails
    assert run.returncode == 0, errors + output
    assert 0 < stored_before_kill < DIALOGUES

    handed_back = [int(n) for n in re.findall(r"worker lost on .*?: (\d+) recording\(s\) handed back", errors)]
    assert len(handed_back) == 1 and handed_back[0] >= 1, errors
    assert f"dashboard: http://127.0.0.1:{cluster.dashboard_port}" in errors
    assert errors.count("audio by path on the shared blob folder") == 2, errors  # one machine: both nodes see it

    with store.session() as session:
        revisions = session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.author_kind == "model")).all()
        events = Counter(session.scalars(select(models.AuditEvent.subject).where(models.AuditEvent.action == "pretranscribe")))
        failures = session.scalar(select(func.count()).select_from(models.AuditEvent)
                                  .where(models.AuditEvent.action == "pretranscribe_failed"))
        leases = session.scalar(select(func.count()).select_from(models.RecordingLease))
        recordings = session.scalars(select(models.Recording).order_by(models.Recording.pk)).all()
    per_recording = Counter(r.recording_pk for r in revisions)
    assert set(per_recording) == {r.pk for r in recordings} and set(per_recording.values()) == {1}, per_recording
    assert set(events.values()) == {1} and len(events) == DIALOGUES and failures == 0 and leases == 0
    assert f"│ {DIALOGUES} " in output, output

    # what `turnscribe pretranscribe --device cpu` computes in one process (its default two threads; workers had one)
    single = Preannotator(PreannotationSettings(device="cpu"), store.settings.models_dir)
    stored = {r.recording_pk: r for r in revisions}
    assert speaker_count(spec) == 2
    for recording in recordings:
        expected = single(load_working_copy(store.blobs.path_for(recording.working_sha256)), **call_arguments(spec, recording))
        assert stored[recording.pk].turns == expected.turns, recording.source_name
        assert stored[recording.pk].author == single.author
    store.close()


def test_a_failing_recording_is_stored_with_its_error_then_audio_through_the_object_store(
        request: pytest.FixtureRequest, tmp_path: Path, cluster: LocalRayCluster, short_dialogues: Path) -> None:
    store = open_test_store(request, tmp_path / "home", "postgresql")
    row, _ = _backlog(store, short_dialogues, 2)
    good, bad = pending_recordings(store, row)
    broken = store.blobs.path_for(bad.working_sha256)
    saved = broken.read_bytes()
    os.chmod(broken, 0o644)
    broken.write_bytes(b"not audio")
    with pytest.raises(Exception) as raised:  # what the single-process run stores for this file
        load_working_copy(broken)
    expected = f"{type(raised.value).__name__}: {raised.value}"

    first = subprocess.run(_command(cluster) + ["--workers", "1"], env=_environment(store, cluster), capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 1, first.stderr
    with store.session() as session:
        failures = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "pretranscribe_failed")).all()
        assert [(f.subject, f.details["error"]) for f in failures] == [(f"recording:{bad.pk}", expected)]
        assert session.scalar(select(func.count()).select_from(models.RecordingLease)) == 0
    assert [r.pk for r in pending_recordings(store, row)] == [bad.pk]

    broken.write_bytes(saved)
    second = subprocess.run(_command(cluster) + ["--workers", "1", "--ship-audio"], env=_environment(store, cluster),
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    said = " ".join(second.stderr.split())  # the terminal wraps long lines
    assert "audio goes through Ray's object store" in said and "audio by path" not in said, second.stderr
    assert pending_recordings(store, row) == []
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(models.TranscriptRevision)
                              .where(models.TranscriptRevision.recording_pk == bad.pk)) == 1
    store.close()
