"""Releases on SQLite and PostgreSQL: what enters, the id, immutability, consent, verify and diff."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from sqlalchemy import select, update

from store import models
from store.accounts import PermissionDenied
from corpus.releases.build import ReleaseError, build_release, release_id_of, sha256_json
from corpus.releases.verify import diff_releases, verify_release
from tests.corpus.conftest import PROTOCOL_ID, Corpus, approve, store_entry, stored_entries

ON = dt.date(2026, 11, 1)


def _release(corpus: Corpus, name: str, **kwargs):  # type: ignore[no-untyped-def]
    return build_release(corpus.store, corpus.manager, PROTOCOL_ID, name, on=kwargs.pop("on", ON), **kwargs)


def test_release_lists_every_approved_recording_with_hashes_speakers_and_consent(corpus: Corpus) -> None:
    outcome = _release(corpus, "v1")
    release = outcome.release
    manifest, entries = release.manifest, stored_entries(corpus.store, "v1")
    assert "recordings" not in manifest and manifest["recording_digests"] == [sha256_json(e) for e in entries]
    assert outcome.created and release.release_id == release_id_of(manifest) and len(release.release_id) == 64
    assert [e["recording"] for e in entries] == [f"rec-{pk}" for pk in sorted(corpus.recordings.values())]
    with corpus.store.session() as session:
        for entry in entries:
            recording = session.get(models.Recording, int(entry["recording"][4:]))
            revision = session.get(models.TranscriptRevision, entry["revision_pk"])
            assert (entry["sha256"], entry["working_sha256"]) == (recording.sha256, recording.working_sha256)
            assert revision.stage == "approved" and entry["revision_sha256"] == sha256_json(revision.turns)
            assert entry["split"] in {"train", "dev", "test"} and len(entry["speakers"]) == 2
            assert all(s["form_version"] == "v3" and "model_training" in s["permitted_uses"] for s in entry["speakers"])
        stored = set(session.scalars(select(models.ReleaseSpeaker.speaker_id).where(models.ReleaseSpeaker.release_pk == release.pk)))
        event = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "release_created")).one()
    assert stored == set(manifest["speakers"]) and len(stored) == 11
    assert manifest["speakers"]["spk-0007"]["demographics"]["accent"]
    assert event.actor == "manny" and event.details["release_id"] == release.release_id
    assert release.card["totals"]["recordings"] == 6 and release.card["excluded"] == {}


def test_same_state_gives_the_same_id_and_a_taken_name_is_immutable(corpus: Corpus) -> None:
    first = _release(corpus, "v1")
    again = _release(corpus, "v1", on=ON + dt.timedelta(days=3))
    assert not again.created and again.release.pk == first.release.pk, "same name, same content: the same release"
    twin = _release(corpus, "v1-copy")
    assert twin.created and twin.release.release_id == first.release.release_id and twin.same_content_as == ["v1"]
    assert twin.release.card["release"]["same_content_as"] == ["v1"]
    reseeded = _release(corpus, "v1-seed7", seed=7)
    assert reseeded.release.release_id != first.release.release_id, "the seed is part of what is hashed"
    approve(corpus.store, corpus.recordings["dlg002"], [{"speaker": "spk-0003", "start": 0.5, "end": 2.0, "text": "changed", "words": []}])
    with pytest.raises(ReleaseError, match="already exists with other content"):
        _release(corpus, "v1")
    with corpus.store.session() as session:
        assert session.scalar(select(models.Release).where(models.Release.name == "v1")).release_id == first.release.release_id


def test_newest_approved_revision_is_taken_and_unapproved_recordings_are_left_out(corpus: Corpus) -> None:
    newer = approve(corpus.store, corpus.recordings["dlg003"], [{"speaker": "spk-0005", "start": 0.0, "end": 1.0, "text": "x", "words": []}])
    with corpus.store.session() as session:
        session.execute(update(models.TranscriptRevision).where(
            models.TranscriptRevision.recording_pk == corpus.recordings["dlg006"], models.TranscriptRevision.stage == "approved"
        ).values(stage="submitted"))
        session.commit()
    release = _release(corpus, "v1").release
    entries = {e["session_id"]: e for e in stored_entries(corpus.store, "v1")}
    assert entries["dlg003"]["revision_pk"] == newer and "dlg006" not in entries
    assert release.card["excluded"] == {"no approved transcript": 1}
    assert "spk-0010" not in release.manifest["speakers"]


def test_withdrawn_and_expired_consent_keep_a_dialogue_out(corpus: Corpus) -> None:
    with corpus.store.session() as session:
        current = session.scalars(select(models.Consent).where(models.Consent.consent_id == "c-spk-0004")).one()
        session.add(models.Consent(consent_id="c-spk-0004", speaker_id="spk-0004", form_version="v3",
                                   permitted_uses=current.permitted_uses, granted_on=current.granted_on,
                                   expires_on=current.expires_on, withdrawn_on=dt.date(2026, 10, 20)))
        session.commit()
    release = _release(corpus, "v1").release
    assert "dlg002" not in {e["session_id"] for e in stored_entries(corpus.store, "v1")}
    assert release.card["excluded"] == {"consent withdrawn": 1}
    with pytest.raises(ReleaseError, match=r"nothing to release.*consent expired: 6.*consent withdrawn: 1"):
        _release(corpus, "v-2032", on=dt.date(2032, 1, 1))


def test_only_managers_release(corpus: Corpus) -> None:
    with pytest.raises(PermissionDenied, match="may not release"):
        build_release(corpus.store, corpus.consumer, PROTOCOL_ID, "nope", on=ON)
    with pytest.raises(ReleaseError, match="name"):
        _release(corpus, "has space")


def test_verify_reports_drift_and_erased_entries(corpus: Corpus) -> None:
    _release(corpus, "v1")
    entries = stored_entries(corpus.store, "v1")
    report = verify_release(corpus.store, "v1")
    assert report.ok and report.checked == 6 and not report.erased, report.drift
    entry = entries[1]
    blob = corpus.store.blobs.path_for(entry["working_sha256"])
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:-2] + b"\x00\x01")
    with corpus.store.session() as session:
        revision = session.get(models.TranscriptRevision, entries[2]["revision_pk"])
        revision.turns = revision.turns[:-1]
        session.commit()
    drift = verify_release(corpus.store, "v1").drift
    assert {(f.recording, f.problem.split(" ")[0]) for f in drift} == {(entry["recording"], "working"),
                                                                        (entries[2]["recording"], "transcript")}
    # an erasure as the governance helper performs it: the entry row becomes a marker naming a tombstone
    with corpus.store.session() as session:
        session.add(models.Tombstone(tombstone_id="tomb-1", erased_by="manny", reason="erasure request", counts={}))
        session.commit()
    store_entry(corpus.store, "v1", 0, {"erased": "tomb-1"})
    report = verify_release(corpus.store, "v1")
    assert report.erased == [("0", "tomb-1")] and report.checked == 5
    assert not [f for f in report.drift if f.recording in ("release", entries[0]["recording"])]
    store_entry(corpus.store, "v1", 3, dict(entries[3], split="test" if entries[3]["split"] != "test" else "dev"))
    edited = [f for f in verify_release(corpus.store, "v1").drift if "edited" in f.problem]
    assert [f.recording for f in edited] == [entries[3]["recording"]]


def test_diff_and_card_diff_against_the_previous_release(corpus: Corpus) -> None:
    _release(corpus, "v1")
    approve(corpus.store, corpus.recordings["dlg001"], [{"speaker": "spk-0001", "start": 0.0, "end": 1.0, "text": "hi", "words": []}])
    with corpus.store.session() as session:
        session.execute(update(models.TranscriptRevision).where(
            models.TranscriptRevision.recording_pk == corpus.recordings["dlg006"]).values(stage="submitted"))
        session.commit()
    second = _release(corpus, "v2").release
    diff = diff_releases(corpus.store, "v1", "v2")
    rec1, rec6 = f"rec-{corpus.recordings['dlg001']}", f"rec-{corpus.recordings['dlg006']}"
    assert diff["recordings"]["transcript_changed"] == [rec1] and diff["recordings"]["removed"] == [rec6]
    assert diff["counts"]["speakers removed"] == 2 and diff["counts"]["recordings added"] == 0
    assert second.card["release"]["previous"] == "v1" and second.card["diff"]["counts"] == diff["counts"]


def test_entries_are_rows_in_position_order_read_a_batch_at_a_time(corpus: Corpus) -> None:
    from corpus.releases.build import count_entries, release_entry_batches

    release = _release(corpus, "v1").release
    with corpus.store.session() as session:
        batches = list(release_entry_batches(session, release.pk, 4))
        positions = list(session.scalars(select(models.ReleaseEntry.position).where(models.ReleaseEntry.release_pk == release.pk)
                                         .order_by(models.ReleaseEntry.position)))
        assert count_entries(session, release.pk) == 6
    assert [len(b) for b in batches] == [4, 2] and positions == list(range(6))
    assert [e["recording"] for b in batches for e in b] == [f"rec-{pk}" for pk in sorted(corpus.recordings.values())]
    assert [sha256_json(e) for b in batches for e in b] == release.manifest["recording_digests"]
    with pytest.raises(ValueError, match="at least 1"):
        with corpus.store.session() as session:
            next(release_entry_batches(session, release.pk, 0))


def test_a_missing_entry_row_is_drift_for_verify_and_pull(corpus: Corpus, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import delete

    from corpus.exports.pull import ReleaseDrift, pull_release

    release = _release(corpus, "v1").release
    with corpus.store.session() as session:
        session.execute(delete(models.ReleaseEntry).where(models.ReleaseEntry.release_pk == release.pk,
                                                          models.ReleaseEntry.position == 2))
        session.commit()
    problems = [f.problem for f in verify_release(corpus.store, "v1").drift]
    assert any("release entry 2 is missing (the next stored entry is 3)" in p for p in problems), problems
    with pytest.raises(ReleaseDrift, match="release entry 2 is missing"):
        pull_release(corpus.store, corpus.consumer, "v1", "jsonl", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def _alembic(corpus: Corpus, action: str, target: str) -> None:
    """Run an Alembic upgrade or downgrade on the test store, as store.db.migrate does."""
    from alembic import command
    from alembic.config import Config

    from store.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with corpus.store.engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, target)


def test_migration_0004_moves_a_manifests_entries_into_rows_and_back(corpus: Corpus) -> None:
    release = _release(corpus, "v1").release
    entries = stored_entries(corpus.store, "v1")
    _alembic(corpus, "downgrade", "0003")  # a store as it was: the entries inside releases.manifest
    with corpus.store.session() as session:
        old = session.scalar(select(models.Release.manifest).where(models.Release.pk == release.pk))
    assert old["recordings"] == entries and release_id_of(old) == release.release_id
    _alembic(corpus, "upgrade", "head")
    with corpus.store.session() as session:
        header = session.scalar(select(models.Release.manifest).where(models.Release.pk == release.pk))
    assert header == release.manifest and "recordings" not in header
    assert stored_entries(corpus.store, "v1") == entries
    report = verify_release(corpus.store, "v1")
    assert report.ok and report.checked == 6, report.drift


def _hold_back(corpus: Corpus, sessions: list[str], stage: str) -> None:
    """Mark the approved revisions of `sessions` `stage` (a growing corpus: approvals arrive later)."""
    with corpus.store.session() as session:
        pks = [corpus.recordings[s] for s in sessions]
        session.execute(update(models.TranscriptRevision).where(models.TranscriptRevision.recording_pk.in_(pks),
                                                                models.TranscriptRevision.stage.in_(["approved", "held"]))
                        .values(stage=stage))
        session.commit()


def _speaker_splits(release: models.Release) -> dict[str, str]:
    return {spk: info["split"] for spk, info in release.manifest["speakers"].items()}


def test_speakers_keep_their_split_across_growing_releases(corpus: Corpus) -> None:
    """Three releases of 2, 4 and 6 dialogues, each with another seed: no speaker ever changes split.

    (Assigned afresh each time, as before, these releases moved speakers for every seed tried.)
    """
    later = ["dlg003", "dlg004", "dlg005", "dlg006"]
    _hold_back(corpus, later, "held")
    first: dict[str, str] = {}
    releases = []
    for name, seed, now_approved in (("g1", 0, []), ("g2", 1, later[:2]), ("g3", 2, later[2:])):
        _hold_back(corpus, now_approved, "approved")
        release = _release(corpus, name, seed=seed, ratios={"train": 0.6, "dev": 0.2, "test": 0.2})
        releases.append(release.release)
        splits = _speaker_splits(release.release)
        history = release.release.card["splits"]["history"]
        new = {s for s in splits if s not in first}
        assert history["crossed"] == {} and history["kept_speakers"] == len(splits) - len(new)
        assert sum(history["new_speakers"].values()) == len(new)
        assert history["new_speakers"] == {split: sum(1 for s in new if splits[s] == split) for split in ("train", "dev", "test")}
        for speaker, split in splits.items():
            assert first.setdefault(speaker, split) == split, f"{speaker} moved in {name}"
        entries = stored_entries(corpus.store, name)
        assert {e["split"] for e in entries for s in e["speakers"] if splits[s["speaker_id"]] != e["split"]} == set()
    assert [len(_speaker_splits(r)) for r in releases] == [4, 7, 11]
    card = releases[-1].card
    assert card["splits"]["history"]["earlier_releases"] == ["g1", "g2"]
    assert releases[-1].manifest["created_from"]["splits"] == "kept from earlier releases"
    from corpus.releases.card import render_markdown

    assert "No speaker changed split" in render_markdown(card) and "Speakers new to each split" in render_markdown(card)
    # two dialogues (speaker groups) cannot fill three splits: the card says which are empty rather than staying silent
    small = releases[0].card["splits"]
    assert small["sizes"]["test"]["recordings"] == 0 and "test" in small["empty"]
    assert "The test split is empty" in render_markdown(releases[0].card)


def test_reassigning_splits_is_a_managers_explicit_choice_recorded_in_the_card(corpus: Corpus) -> None:
    first = _speaker_splits(_release(corpus, "r1", seed=0).release)
    for seed in range(1, 4):
        assert _speaker_splits(_release(corpus, f"r-seed{seed}", seed=seed).release) == first, "a new seed alone moves nobody"
    seed, moves = 0, {}
    while not moves:  # the first seed whose fresh assignment moves someone
        seed += 1
        assert seed < 20, "no seed moves anyone"
        fresh = _release(corpus, f"r-fresh{seed}", seed=seed, reassign_splits=True).release
        after = _speaker_splits(fresh)
        moves = {}
        for speaker, split in first.items():
            if after[speaker] != split:
                moves[f"{split}->{after[speaker]}"] = moves.get(f"{split}->{after[speaker]}", 0) + 1
        history = fresh.card["splits"]["history"]
        assert history["reassigned"] is True and history["crossed"] == dict(sorted(moves.items()))
        assert fresh.manifest["created_from"]["splits"] == "reassigned"
        first = after  # a reassignment is the new layout the next releases keep
    from corpus.releases.card import render_markdown

    assert f"{sum(moves.values())} speaker(s) changed split" in render_markdown(fresh.card)
    assert _speaker_splits(_release(corpus, "r-after", seed=0).release) == after
    with corpus.store.session() as session:
        details = [e.details for e in session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "release_created"))]
    assert details[-2]["reassign_splits"] and details[-2]["speakers_moved"] == dict(sorted(moves.items()))
    assert not details[-1]["reassign_splits"] and details[-1]["speakers_moved"] == {}
