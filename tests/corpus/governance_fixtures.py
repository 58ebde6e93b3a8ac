"""Fixtures of the governance tests: a store holding everything an erasure must reach.

The six synthetic dialogues ingested, each with a "model" revision from its ground-truth
turns, an annotation task with a draft, a review comment, work time, a PII span and a
voice-profile blob; a manager account; and a past release listing every recording.
Import the fixture into a test module (`from tests.corpus.governance_fixtures import gov`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from collection.intake import ingest_manifest
from store import models
from store.accounts import Principal, add_user, principal_of
from store.db import Store
from protocols.schema import Protocol
from tests.factories import import_consent_file, register_en
from tests.review_ui.conftest import truth_turns

PASSWORD = "correct horse battery"


@dataclass
class GovStore:
    store: Store
    protocol_row: models.Protocol
    protocol: Protocol
    recordings: dict[str, int]  # dialogue stem -> recording pk
    revisions: dict[str, int]  # dialogue stem -> its "model" revision pk
    manager: Principal
    release_name: str
    dialogues: Path

    def add_user(self, username: str, *roles: str) -> Principal:
        with self.store.session() as session:
            user = add_user(session, username, PASSWORD, list(roles), actor="test")
            session.commit()
            return principal_of(user)


def dump_store(store: Store) -> dict[str, list[tuple[str, ...]]]:
    """Every row of every table as JSON text (the whole store, read generically through the metadata)."""
    tables = {}
    with store.engine.connect() as conn:
        for table in models.Base.metadata.sorted_tables:
            rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
            tables[table.name] = [tuple(json.dumps(v, default=str, sort_keys=True) for v in row) for row in rows]
    return tables


def blob_files(root: Path) -> dict[str, bytes]:
    """Blob file name -> content (left empty for files over 64 KiB, i.e. audio: those are matched by name)."""
    return {p.name: (p.read_bytes() if p.stat().st_size < 65536 else b"") for p in root.rglob("*") if p.is_file()}


def release_manifest(session: Any, recordings: list[models.Recording],
                     revisions: dict[int, int]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A manifest header in the release helper's shape (turnscribe-release/1) and the entries of `recordings`."""
    entries = []
    for rec in recordings:
        speakers = [{"speaker_id": p.speaker_id, "consent_id": p.consent_id, "form_version": "v3",
                     "permitted_uses": ["model_training"],
                     "demographics": {d.dimension: d.value for d in session.scalars(
                         select(models.SpeakerDemographic).where(models.SpeakerDemographic.speaker_id == p.speaker_id))}}
                    for p in session.scalars(select(models.SessionParticipant).where(
                        models.SessionParticipant.session_pk == rec.session_pk).order_by(models.SessionParticipant.speaker_id))]
        entries.append({"recording": f"rec-{rec.pk}", "sha256": rec.sha256, "working_sha256": rec.working_sha256,
                        "duration_s": round(rec.duration_s or 0.0, 3), "session_id": Path(rec.source_name).stem,
                        "revision_pk": revisions[rec.pk], "revision_sha256": "f" * 64, "split": "train",
                        "speakers": speakers})
    index = {s["speaker_id"]: {"split": "train", "demographics": s["demographics"]} for e in entries for s in e["speakers"]}
    return ({"format": "turnscribe-release/1", "protocol": {"id": "en-dialogue-accents", "version": 1},
             "speakers": dict(sorted(index.items()))}, entries)


def build_gov_store(store: Store, dialogues: Path) -> GovStore:
    row, protocol = register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    report = ingest_manifest(store, protocol.id, dialogues / "manifest.jsonl", actor="test")
    assert report.ok
    with store.session() as session:
        manager = principal_of(add_user(session, "maria", PASSWORD, ["manager"], actor="test"))
        add_user(session, "anna", PASSWORD, ["annotator"], actor="test")
        recordings = session.scalars(select(models.Recording).where(models.Recording.status == "accepted")
                                     .order_by(models.Recording.source_name)).all()
        by_stem, revisions, by_pk = {}, {}, {}
        for rec in recordings:
            stem = Path(rec.source_name).stem
            model = models.TranscriptRevision(recording_pk=rec.pk, author_kind="model", author="truth",
                                              turns=truth_turns(dialogues, stem), stage="model")
            session.add(model)
            session.flush()
            task = models.Task(kind="annotate", recording_pk=rec.pk, assignee="anna", state="in_progress",
                               head_revision_pk=model.pk)
            session.add(task)
            session.flush()
            draft = models.TranscriptRevision(recording_pk=rec.pk, parent_pk=model.pk, author_kind="person",
                                              author="anna", turns=model.turns, stage="draft", task_pk=task.pk)
            session.add(draft)
            session.flush()
            session.add_all([
                models.ReviewComment(task_pk=task.pk, revision_pk=draft.pk, turn_index=0, author="maria", text="check the name"),
                models.WorkInterval(username="anna", task_pk=task.pk, started_at=models.utcnow(), ended_at=models.utcnow()),
                models.PiiSpan(revision_pk=draft.pk, turn_index=0, word_start=0, word_end=1, kind="name", source="anna"),
                models.VoiceProfile(recording_pk=rec.pk, model="test", source="clusters",
                                    sha256=store.blobs.put_bytes(f"voices of {stem}".encode())),
            ])
            by_stem[stem], revisions[stem], by_pk[rec.pk] = rec.pk, model.pk, model.pk
        header, entries = release_manifest(session, list(recordings), by_pk)
        release = models.Release(name="v1", release_id="r" * 64, protocol_pk=row.pk, created_by="maria",
                                 manifest=header, card={"title": "v1", "speakers": 11})
        session.add(release)
        session.flush()
        session.add_all(models.ReleaseEntry(release_pk=release.pk, position=i, entry=e) for i, e in enumerate(entries))
        for speaker_id in session.scalars(select(models.Speaker.id)):
            session.add(models.ReleaseSpeaker(release_pk=release.pk, speaker_id=speaker_id))
        session.commit()
    return GovStore(store, row, protocol, by_stem, revisions, manager, "v1", dialogues)


@pytest.fixture
def gov(store: Store, dialogues: Path) -> GovStore:
    return build_gov_store(store, dialogues)
