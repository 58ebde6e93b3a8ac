"""Erasing a data subject on SQLite and PostgreSQL: no row, blob or audit entry of theirs is left."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from collection.intake import ingest_manifest
from store import models
from store.accounts import PermissionDenied
from corpus.governance.audit_verify import verify_chain
from corpus.governance.erasure import ErasureError, erase_speaker
from tests.corpus.conftest import stored_entries
from tests.corpus.governance_fixtures import GovStore, blob_files, dump_store, gov  # noqa: F401 - fixture
from tests.factories import clipped_copy, manifest_rows, variant_row, write_manifest

ERASED = "spk-0006"  # speaks in dlg003 (with spk-0005) and dlg004 (with spk-0007)


def _needles(g: GovStore, speaker_id: str) -> set[str]:
    """The speaker id, their consent ids and the hashes of every blob of every recording they are in."""
    with g.store.session() as session:
        sessions = select(models.SessionParticipant.session_pk).where(models.SessionParticipant.speaker_id == speaker_id)
        recs = session.scalars(select(models.Recording).where(models.Recording.session_pk.in_(sessions))).all()
        rejected = [r for r in session.scalars(select(models.Recording).where(models.Recording.status == "rejected"))
                    if speaker_id in json.dumps(r.declared)]
        hashes = {h for r in [*recs, *rejected] for h in (r.sha256, r.working_sha256) if h}
        hashes |= set(session.scalars(select(models.VoiceProfile.sha256).where(
            models.VoiceProfile.recording_pk.in_([r.pk for r in recs]))))
        consents = set(session.scalars(select(models.Consent.consent_id).where(models.Consent.speaker_id == speaker_id)))
    assert len(recs) == 2 and rejected and len(hashes) == 7
    return {speaker_id, *consents, *hashes}


def _add_rejected_recording(g: GovStore, speaker_id: str) -> None:
    """A rejected (clipped) take declared with the speaker: its row names them too."""
    base = next(r for r in manifest_rows(g.dialogues) if r["session_id"] == "dlg004")
    clipped_copy(g.dialogues / "dlg004.flac", g.dialogues / "clipped.flac")
    path = write_manifest(g.dialogues / "more.jsonl", [variant_row(base, "clipped.flac", "dlg004-take2")])
    report = ingest_manifest(g.store, g.protocol.id, path, actor="test")
    assert [o.status for o in report.outcomes] == ["rejected"]
    assert speaker_id in json.dumps([s["speaker_id"] for s in base["speakers"]])


def test_erasure_leaves_no_row_blob_or_audit_entry_of_the_speaker(gov: GovStore) -> None:  # noqa: F811
    _add_rejected_recording(gov, ERASED)
    needles = _needles(gov, ERASED)
    kept_blobs = {name for name in blob_files(gov.store.blobs.root) if name not in needles}
    report = erase_speaker(gov.store, gov.manager, ERASED)

    for table, rows in dump_store(gov.store).items():
        for row in rows:
            for needle in needles:
                assert not any(needle in value for value in row), f"{needle} left in {table}: {row}"
    files = blob_files(gov.store.blobs.root)
    for name, content in files.items():
        assert not any(n in name or n.encode() in content for n in needles), name
    assert set(files) == kept_blobs, "every other blob is still there"

    assert report.releases_affected == ["v1"] and report.tombstone_id.startswith("tomb-")
    assert report.counts["recordings"] == 3 and report.counts["speakers"] == 1
    assert report.counts["transcript_revisions"] == 4 and report.counts["tasks"] == 2
    assert report.counts["release_entries"] == 2 and report.counts["sessions"] == 2
    assert report.blobs_deleted == 6  # 2 originals, 2 working copies, 2 voice profiles (the rejected take had none)
    with gov.store.session() as session:
        tombstone = session.scalar(select(models.Tombstone))
        assert (tombstone.reason, tombstone.erased_by, tombstone.releases_affected) == ("erasure request", "maria", ["v1"])
        entries = stored_entries(gov.store, "v1")
        erased = [e for e in entries if "erased" in e]
        assert erased == [{"erased": tombstone.tombstone_id}] * 2 and len(entries) == 6
        listed = set(session.scalars(select(models.ReleaseSpeaker.speaker_id)))
        assert listed == {f"spk-{i:04d}" for i in range(1, 12)} - {"spk-0005", "spk-0006", "spk-0007"}
        # the other speakers of the erased dialogues stay (they asked nothing), and unrelated dialogues are intact
        assert session.get(models.Speaker, "spk-0005") is not None and session.get(models.Speaker, "spk-0007") is not None
        dlg001 = session.get(models.Recording, gov.recordings["dlg001"])
        assert gov.store.blobs.exists(dlg001.sha256) and gov.store.blobs.exists(dlg001.working_sha256)
        assert session.get(models.TranscriptRevision, gov.revisions["dlg001"]).turns[0]["speaker"] == "spk-0001"
        assert session.scalar(select(models.AuditEvent).where(models.AuditEvent.action == "erase")).subject == \
            f"tombstone:{tombstone.tombstone_id}"
        chain = verify_chain(session)
    assert chain.ok and chain.blanked == report.counts["audit_events_blanked"] >= 3, chain.problem

    with pytest.raises(ErasureError, match="no speaker 'spk-0006'"):
        erase_speaker(gov.store, gov.manager, ERASED)


def test_dry_run_reports_the_same_and_changes_nothing(gov: GovStore) -> None:  # noqa: F811
    before, blobs = dump_store(gov.store), blob_files(gov.store.blobs.root)
    planned = erase_speaker(gov.store, gov.manager, "spk-0001", dry_run=True)
    assert dump_store(gov.store) == before and blob_files(gov.store.blobs.root) == blobs
    assert planned.tombstone_id == "" and planned.blobs_deleted == 0
    done = erase_speaker(gov.store, gov.manager, "spk-0001")
    assert done.counts == planned.counts and done.releases_affected == planned.releases_affected == ["v1"]
    assert done.blobs_deleted == planned.counts["blobs"] == 3


def test_a_blob_another_recording_still_uses_is_kept(gov: GovStore) -> None:  # noqa: F811
    with gov.store.session() as session:
        shared = session.scalar(select(models.VoiceProfile.sha256).where(
            models.VoiceProfile.recording_pk == gov.recordings["dlg004"]))
        session.add(models.VoiceProfile(recording_pk=gov.recordings["dlg001"], model="other", source="clusters", sha256=shared))
        session.commit()
    report = erase_speaker(gov.store, gov.manager, ERASED)
    assert report.counts["blobs_shared_kept"] == 1 and report.blobs_deleted == 5
    assert gov.store.blobs.exists(shared)


def test_only_managers_may_erase(gov: GovStore) -> None:  # noqa: F811
    before = dump_store(gov.store)
    annotator = gov.add_user("ann2", "annotator")
    with pytest.raises(PermissionDenied, match="may not erase"):
        erase_speaker(gov.store, annotator, ERASED)
    after = dump_store(gov.store)
    after["users"] = [r for r in after["users"] if "ann2" not in r[0]]
    after["audit_events"] = after["audit_events"][: len(before["audit_events"])]
    assert after == before


def test_unknown_speaker_is_refused(gov: GovStore) -> None:  # noqa: F811
    with pytest.raises(ErasureError, match="no speaker 'spk-9999'"):
        erase_speaker(gov.store, gov.manager, "spk-9999")


def test_a_real_release_still_verifies_and_pulls_after_an_erasure(gov: GovStore, tmp_path) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    """The one erase-then-verify flow: a real (redacted) release, the erasure, verify, pull, and the next release."""
    from corpus.exports.pull import pull_release
    from corpus.releases.build import build_release
    from corpus.releases.verify import diff_releases, verify_release

    with gov.store.session() as session:
        for stem, model_pk in gov.revisions.items():
            model = session.get(models.TranscriptRevision, model_pk)
            session.add(models.TranscriptRevision(recording_pk=model.recording_pk, parent_pk=model.pk, author_kind="person",
                                                  author="rita", turns=model.turns, stage="approved"))
        session.commit()
    build_release(gov.store, gov.manager, gov.protocol.id, "v2", redact_pii=True)
    assert len(stored_entries(gov.store, "v2")) == 6
    report = erase_speaker(gov.store, gov.manager, ERASED)
    assert report.releases_affected == ["v1", "v2"]
    verified = verify_release(gov.store, "v2")
    assert verified.ok, verified.drift
    assert [t for _, t in verified.erased] == [report.tombstone_id] * 2 and verified.checked == 4
    with gov.store.session() as session:
        manifest = session.scalar(select(models.Release).where(models.Release.name == "v2")).manifest
    assert ERASED not in json.dumps(manifest) and ERASED not in json.dumps(stored_entries(gov.store, "v2"))
    consumer = gov.add_user("connie", "consumer")
    pulled = pull_release(gov.store, consumer, "v2", "jsonl", tmp_path / "out")
    assert pulled.erased_skipped == 2 and pulled.recordings == 4
    assert ERASED not in (tmp_path / "out" / "jsonl" / "turns.jsonl").read_text()
    later = build_release(gov.store, gov.manager, gov.protocol.id, "v3").release
    assert len(stored_entries(gov.store, "v3")) == 4, "never in a future release"
    assert ERASED not in json.dumps([later.manifest, stored_entries(gov.store, "v3")])
    assert diff_releases(gov.store, "v2", "v3")["recordings"]["removed"] == [], "already erased from v2 too"


def test_a_numeric_speaker_id_blanks_only_the_events_that_name_it(store) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from store.accounts import Principal
    from store.audit import record_event

    with store.session() as session:
        session.add(models.Speaker(id="17"))
        session.add(models.Consent(consent_id="c17", speaker_id="17", form_version="v3", permitted_uses=["x"],
                                   granted_on=dt.date(2026, 1, 1)))
        record_event(session, "cli", "note", "speaker:17", {})
        record_event(session, "cli", "note", "batch", {"speakers": ["17", "18"]})
        record_event(session, "cli", "note", "batch", {"recordings": 17, "hours": 1.17, "who": "speaker 170"})
        session.commit()
    report = erase_speaker(store, Principal("maria", frozenset({"manager"})), "17")
    assert report.counts["audit_events_blanked"] == 2 and report.counts["consents"] == 1
    with store.session() as session:
        kept = session.scalar(select(models.AuditEvent).where(models.AuditEvent.subject == "batch"))
        assert kept.details == {"recordings": 17, "hours": 1.17, "who": "speaker 170"}
        assert verify_chain(session).ok


def test_an_erasure_that_cannot_complete_changes_nothing(gov: GovStore) -> None:  # noqa: F811
    with gov.store.session() as session:  # a revision of dlg001 derived from dlg004's: the erasure cannot delete that parent
        foreign = session.get(models.TranscriptRevision, gov.revisions["dlg004"])
        session.add(models.TranscriptRevision(recording_pk=gov.recordings["dlg001"], parent_pk=foreign.pk, author_kind="person",
                                              author="anna", turns=foreign.turns, stage="draft"))
        session.commit()
    before, blobs = dump_store(gov.store), blob_files(gov.store.blobs.root)
    with pytest.raises(ErasureError, match="nothing was erased: a record outside the erased recordings still refers to them"):
        erase_speaker(gov.store, gov.manager, ERASED)
    after = dump_store(gov.store)
    after["audit_events"] = after["audit_events"][: len(before["audit_events"])]
    assert after == before and blob_files(gov.store.blobs.root) == blobs
