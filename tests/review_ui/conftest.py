"""Shared fixtures of the review workbench's tests: a store holding the six synthetic dialogues,
each with a "model" pre-annotation built from its ground-truth turns (with word times).

Shared by the workflow tests and the UI tests; keep it fast (no ASR, no diarizer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
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

PASSWORD = "correct horse battery"


def words_for(turn: dict[str, Any]) -> list[dict[str, Any]]:
    """Words spread evenly over a turn, each as long as its share of the letters."""
    tokens = turn["text"].split()
    if not tokens:
        return []
    span = turn["end"] - turn["start"]
    total = sum(len(t) + 1 for t in tokens)
    out, at = [], turn["start"]
    for token in tokens:
        length = span * (len(token) + 1) / total
        out.append({"text": token, "start": round(at, 3), "end": round(at + length * 0.9, 3), "probability": 0.9})
        at += length
    return out


def truth_turns(dialogues: Path, stem: str) -> list[dict[str, Any]]:
    turns = json.loads((dialogues / f"{stem}.turns.json").read_text())
    return [{**t, "words": words_for(t)} for t in turns]


@dataclass
class ReviewStore:
    """What the review tests start from."""

    store: Store
    protocol_row: models.Protocol
    protocol: Protocol
    recording_pks: list[int]  # in manifest order (dlg001 .. dlg006)
    model_revision_pks: dict[int, int]  # recording pk -> its "model" revision pk
    dialogues: Path

    def stem(self, recording_pk: int) -> str:
        with self.store.session() as session:
            return Path(session.get(models.Recording, recording_pk).source_name).stem

    def add_user(self, username: str, *roles: str, groups: list[str] | None = None) -> Principal:
        with self.store.session() as session:
            user = add_user(session, username, PASSWORD, list(roles), groups=groups, actor="test")
            session.commit()
            return principal_of(user)

    def calibrate(self, username: str, language: str = "en", accent: str = "", state: str = "passed") -> None:
        """Record a calibration outcome directly (the accent "" covers every accent of the language)."""
        with self.store.session() as session:
            session.add(models.Calibration(username=username, language=language, accent=accent, state=state))
            session.commit()


@pytest.fixture
def review_store(store: Store, dialogues: Path) -> ReviewStore:
    row, protocol = register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    report = ingest_manifest(store, protocol.id, dialogues / "manifest.jsonl", actor="test")
    assert report.ok
    pks, revisions = [], {}
    with store.session() as session:
        recordings = session.scalars(
            select(models.Recording).where(models.Recording.protocol_pk == row.pk, models.Recording.status == "accepted")
            .order_by(models.Recording.source_name)
        ).all()
        for recording in recordings:
            revision = models.TranscriptRevision(
                recording_pk=recording.pk, author_kind="model", author="truth+even-words",
                author_params={"source": "ground truth"}, turns=truth_turns(dialogues, Path(recording.source_name).stem),
                stage="model",
            )
            session.add(revision)
            session.flush()
            pks.append(recording.pk)
            revisions[recording.pk] = revision.pk
        session.commit()
    return ReviewStore(store, row, protocol, pks, revisions, dialogues)


@pytest.fixture
def make_user(review_store: ReviewStore) -> Callable[..., Principal]:
    return review_store.add_user
