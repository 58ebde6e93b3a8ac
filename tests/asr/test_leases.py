"""Concurrent pre-annotation runs share the backlog through leases (issue #10 item 17), on both databases."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from asr.batch import claim_recording, pending_recordings
from collection.intake import ingest_manifest
from store import models
from store.accounts import add_user
from store.db import Store
from tests.factories import import_consent_file, manifest_rows, register_en, write_manifest

BIN = Path(sys.executable).parent / "turnscribe"


@pytest.fixture
def backlog(store: Store, dialogues: Path) -> tuple[Store, models.Protocol]:
    row, protocol = register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    report = ingest_manifest(store, protocol.id, dialogues / "manifest.jsonl", actor="test")
    assert report.count("accepted") == 6
    return store, row


def test_claimers_at_once_share_the_backlog_with_no_duplicates(backlog: tuple[Store, models.Protocol]) -> None:
    store, row = backlog
    everything = {r.pk for r in pending_recordings(store, row)}
    claimed: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def claimer(holder: str) -> None:
        start.wait()
        mine = claimed.setdefault(holder, [])
        while (recording := claim_recording(store, row, holder)) is not None:
            mine.append(recording.pk)

    threads = [threading.Thread(target=claimer, args=(f"run-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(pk for pks in claimed.values() for pk in pks)
    assert set(counts) == everything and set(counts.values()) == {1}, claimed
    with store.session() as session:
        holders = dict(session.execute(select(models.RecordingLease.recording_pk, models.RecordingLease.holder)).all())
    assert holders == {pk: holder for holder, pks in claimed.items() for pk in pks}


def test_a_crashed_runs_leases_expire_and_the_work_is_taken_up(backlog: tuple[Store, models.Protocol]) -> None:
    store, row = backlog
    crashed = claim_recording(store, row, "crashed-run", lease_s=3600)
    assert crashed is not None
    others = []
    while (recording := claim_recording(store, row, "survivor", lease_s=3600)) is not None:
        others.append(recording.pk)
    assert len(others) == 5 and crashed.pk not in others, "a live lease is skipped"
    with store.session() as session:  # an hour later: the crashed run's lease has run out
        session.execute(update(models.RecordingLease).where(models.RecordingLease.holder == "crashed-run")
                        .values(expires_at=models.utcnow() - dt.timedelta(seconds=1)))
        session.commit()
    taken = claim_recording(store, row, "survivor")
    assert taken is not None and taken.pk == crashed.pk
    assert claim_recording(store, row, "late") is None
    with store.session() as session:
        assert session.scalar(select(models.RecordingLease.holder).where(models.RecordingLease.recording_pk == crashed.pk)) == "survivor"
        assert session.scalar(select(func.count()).select_from(models.RecordingLease)) == 6, "the expired lease was replaced, not doubled"


def test_two_pretranscribe_runs_at_once_share_the_work_with_no_duplicates(store: Store, dialogues: Path) -> None:
    register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    four = write_manifest(dialogues / "four.jsonl", manifest_rows(dialogues)[:4])  # each run loads its models: keep it short
    assert ingest_manifest(store, "en-dialogue-accents", four, actor="test").count("accepted") == 4
    with store.session() as session:
        add_user(session, "ada", "correct-horse-battery", ["manager"], actor="test")
        session.commit()
    env = dict(os.environ, TURNSCRIBE_HOME=str(store.settings.home), TURNSCRIBE_DATABASE_URL=store.settings.database_url,
               TURNSCRIBE_USER="ada", TURNSCRIBE_PASSWORD="correct-horse-battery")
    command = [str(BIN), "pretranscribe", "--protocol", "en-dialogue-accents", "--device", "cpu"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err for _, err in outputs]
    with store.session() as session:
        per_recording = Counter(session.scalars(select(models.TranscriptRevision.recording_pk)
                                                .where(models.TranscriptRevision.author_kind == "model")))
        leases = session.scalar(select(func.count()).select_from(models.RecordingLease))
    assert len(per_recording) == 4 and set(per_recording.values()) == {1}, per_recording
    assert leases == 0, "finished work hands its lease back"
    done = [int(next(line.replace("│", " ").split()[0] for line in out.splitlines() if line.startswith("│"))) for out, _ in outputs]
    assert sum(done) == 4 and min(done) > 0, outputs
