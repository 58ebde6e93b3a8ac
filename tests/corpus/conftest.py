"""A store ready to release: the six synthetic dialogues ingested, pre-annotated and approved.

The "model" revision is the ground truth with one word changed per turn in noisy
sessions (so the card's WER per noise condition has a known answer); the "approved"
revision is the ground truth with evenly spread word times (what a reviewer accepted).
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
from store.accounts import Principal, add_user, authenticate
from store.db import Store
from tests.factories import import_consent_file, register_en

PROTOCOL_ID = "en-dialogue-accents"
PASSWORD = "correct-horse-battery"


def with_words(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turns with word times spread evenly over each turn (test data: the generator keeps no word times)."""
    out = []
    for turn in turns:
        words = turn["text"].split()
        step = (turn["end"] - turn["start"]) / max(len(words), 1)
        out.append({"speaker": turn["speaker"], "start": turn["start"], "end": turn["end"], "text": turn["text"],
                    "words": [{"text": w, "start": round(turn["start"] + i * step, 3),
                               "end": round(turn["start"] + (i + 1) * step, 3), "probability": 0.9}
                              for i, w in enumerate(words)]})
    return out


def misheard(turns: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One substituted word per turn: the 'model' output of a noisy session."""
    out = json.loads(json.dumps(turns))
    for turn in out:
        if turn["words"]:
            turn["words"][0]["text"] = "zzz"
            turn["text"] = " ".join(w["text"] for w in turn["words"])
    return out


def approve(store: Store, recording_pk: int, turns: list[dict[str, Any]], parent_pk: int | None = None,
            author: str = "reviewer1") -> int:
    """Append an approved revision (what the review workflow's accept does) and return its pk."""
    with store.session() as session:
        revision = models.TranscriptRevision(recording_pk=recording_pk, parent_pk=parent_pk, author_kind="person",
                                             author=author, author_params={}, turns=turns, stage="approved")
        session.add(revision)
        session.commit()
        return revision.pk


@dataclass
class Corpus:
    store: Store
    dialogues: Path
    recordings: dict[str, int]  # session id -> recording pk
    manager: Principal
    consumer: Principal


@pytest.fixture
def corpus(store: Store, dialogues: Path) -> Corpus:
    return build_corpus(store, dialogues)


def build_corpus(store: Store, dialogues: Path) -> Corpus:
    """The six dialogues ingested, each with its "model" and approved revisions, and the three accounts."""
    register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    report = ingest_manifest(store, PROTOCOL_ID, dialogues / "manifest.jsonl", actor="test")
    assert [o.status for o in report.outcomes] == ["accepted"] * 6, report.outcomes
    recordings: dict[str, int] = {}
    with store.session() as session:
        rows = session.execute(select(models.Recording, models.Session).join(models.Session, models.Session.pk == models.Recording.session_pk)).all()
        for recording, sess in rows:
            truth = with_words(json.loads((dialogues / f"{sess.session_id}.turns.json").read_text()))
            model_turns = misheard(truth) if sess.noise_condition == "noisy" else truth
            model = models.TranscriptRevision(recording_pk=recording.pk, author_kind="model", author="whisper:tiny.en+embedded",
                                              author_params={"asr": {"model": "tiny.en", "beam_size": 5}}, turns=model_turns, stage="model")
            session.add(model)
            session.flush()
            session.add(models.TranscriptRevision(recording_pk=recording.pk, parent_pk=model.pk, author_kind="person",
                                                  author="reviewer1", author_params={}, turns=truth, stage="approved"))
            recordings[sess.session_id] = recording.pk
        add_user(session, "manny", PASSWORD, ["manager"], actor="test")
        add_user(session, "connie", PASSWORD, ["consumer"], actor="test")
        add_user(session, "annie", PASSWORD, ["annotator"], actor="test")
        session.commit()
        manager = authenticate(session, "manny", PASSWORD)
        consumer = authenticate(session, "connie", PASSWORD)
        session.commit()
    return Corpus(store, dialogues, recordings, manager, consumer)


def stored_entries(store: Store, name: str) -> list[dict[str, Any]]:
    """Release `name`'s entries as stored (its release_entries rows, through the one reader pulls use)."""
    from corpus.releases.build import release_entries

    with store.session() as session:
        release = session.scalar(select(models.Release.pk).where(models.Release.name == name))
        assert release is not None, f"no release {name}"
        return list(release_entries(session, release))


def store_entry(store: Store, name: str, position: int, entry: dict[str, Any]) -> None:
    """Overwrite one stored entry row of release `name` (tests that play an erasure or a tampering)."""
    with store.session() as session:
        release = session.scalar(select(models.Release.pk).where(models.Release.name == name))
        row = session.get(models.ReleaseEntry, (release, position))
        assert row is not None, f"release {name} has no entry {position}"
        row.entry = entry
        session.commit()
