"""Intake against SQLite and PostgreSQL: what enters, what is refused and why, and that nothing is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collection.intake import ingest_manifest
from store import models
from store.db import Store
from tests.factories import (
    clipped_copy,
    import_consent_file,
    manifest_rows,
    register_en,
    resampled_copy,
    variant_row,
    write_manifest,
)
from tests.conftest import EN_PROTOCOL


@pytest.fixture
def ready(store: Store, dialogues: Path) -> Store:
    register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    return store


def _count(store: Store, model: type, *where) -> int:  # type: ignore[no-untyped-def]
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _blob_files(store: Store) -> set[str]:
    root = store.blobs.root
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _reasons(report, line: int) -> str:  # type: ignore[no-untyped-def]
    outcome = next(o for o in report.outcomes if o.line == line)
    assert outcome.status == "rejected", outcome
    return " | ".join(r.message for r in outcome.reasons)


def test_committed_dialogues_are_accepted_stored_and_audited(ready: Store, dialogues: Path) -> None:
    report = ingest_manifest(ready, "en-dialogue-accents", dialogues / "manifest.jsonl", actor="test")
    assert [o.status for o in report.outcomes] == ["accepted"] * 6, report.outcomes
    with ready.session() as session:
        recordings = session.scalars(select(models.Recording)).all()
        for rec in recordings:
            original = ready.blobs.path_for(rec.sha256)
            assert original.read_bytes() == (dialogues / rec.source_name).read_bytes()
            assert not original.stat().st_mode & 0o222, "originals are read-only"
            working = ready.blobs.path_for(rec.working_sha256)
            import soundfile as sf
            info = sf.info(working)
            assert (info.samplerate, info.channels) == (16000, 1)
            assert info.duration == pytest.approx(rec.duration_s, abs=0.01)
            assert 0.3 < rec.speech_ratio < 1.0 and rec.clipping_ratio == 0
        events = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "ingest_accepted")).all()
        assert len(events) == 6
        assert all(e.details["transforms"][0].startswith("decode:libsndfile:FLAC") for e in events)
        assert session.scalar(select(func.count()).select_from(models.Speaker)) == 11
    mismatched = [o for o in report.outcomes if o.note]
    assert [o.path for o in mismatched] == ["dlg002.flac"], "declared quiet, mixed at 10 dB"


def test_reingesting_is_a_noop_that_says_so(ready: Store, dialogues: Path) -> None:
    ingest_manifest(ready, "en-dialogue-accents", dialogues / "manifest.jsonl", actor="test")
    blobs = _blob_files(ready)
    again = ingest_manifest(ready, "en-dialogue-accents", dialogues / "manifest.jsonl", actor="test")
    assert {o.status for o in again.outcomes} == {"skipped"}
    assert all("already ingested" in o.note for o in again.outcomes)
    assert _count(ready, models.Recording) == 6 and _blob_files(ready) == blobs


def test_bad_files_are_rejected_with_reasons_and_the_batch_goes_on(ready: Store, dialogues: Path) -> None:
    rows = manifest_rows(dialogues)
    src = dialogues / "dlg001.flac"
    resampled_copy(src, dialogues / "narrow.wav", 8000)
    (dialogues / "empty.wav").write_bytes(b"")
    (dialogues / "garbage.flac").write_bytes(b"fLaC" + bytes(range(256)) * 40)
    whole = (dialogues / "whole.wav")
    resampled_copy(src, whole, 16000)
    (dialogues / "truncated.wav").write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 3])
    clipped_copy(src, dialogues / "clipped.wav")
    bad = [
        variant_row(rows[0], "narrow.wav", "s-narrow"),
        variant_row(rows[0], "empty.wav", "s-empty"),
        variant_row(rows[0], "garbage.flac", "s-garbage"),
        variant_row(rows[0], "truncated.wav", "s-trunc"),
        variant_row(rows[0], "clipped.wav", "s-clip"),
        rows[1],
    ]
    report = ingest_manifest(ready, "en-dialogue-accents", write_manifest(dialogues / "bad.jsonl", bad), actor="test")
    assert "8000 Hz is below the protocol's minimum 16000 Hz" in _reasons(report, 1)
    assert "empty file (0 bytes)" in _reasons(report, 2)
    assert "not a decodable audio file" in _reasons(report, 3) and "garbage" not in _reasons(report, 3)
    assert "header declares" in _reasons(report, 4) and "truncated" in _reasons(report, 4)
    assert "clipped" in _reasons(report, 5)
    assert report.outcomes[5].status == "accepted"
    assert not report.ok
    with ready.session() as session:
        rejected = session.scalars(select(models.Recording).where(models.Recording.status == "rejected")).all()
        assert len(rejected) == 5 and all(r.reasons and r.session_pk is None for r in rejected)
        stored = _blob_files(ready)
        assert not any(r.sha256 in stored for r in rejected if r.sha256), "rejected audio is not copied in"


def test_a_wav_whose_header_lies_about_its_length(ready: Store, dialogues: Path) -> None:
    wav = resampled_copy(dialogues / "dlg001.flac", dialogues / "liar.wav", 16000)
    data = bytearray(wav.read_bytes())
    at = data.index(b"data") + 4
    data[at : at + 4] = (len(data) * 4).to_bytes(4, "little")
    wav.write_bytes(bytes(data))
    rows = [variant_row(manifest_rows(dialogues)[0], "liar.wav", "s-liar")]
    report = ingest_manifest(ready, "en-dialogue-accents", write_manifest(dialogues / "m.jsonl", rows), actor="test")
    assert "WAV header declares" in _reasons(report, 1)


def test_unknown_demographic_value_and_dimension(ready: Store, dialogues: Path) -> None:
    row = manifest_rows(dialogues)[0]
    row["speakers"][0]["demographics"]["accent"] = "martian"
    row["speakers"][1]["demographics"]["shoe_size"] = "44"
    report = ingest_manifest(ready, "en-dialogue-accents", write_manifest(dialogues / "m.jsonl", [row]), actor="test")
    why = _reasons(report, 1)
    assert "accent 'martian' is not allowed" in why and "'shoe_size' is not a demographic dimension" in why
    assert _count(ready, models.Speaker) == 0, "nothing about refused speakers is stored"


def test_missing_and_withdrawn_consent(ready: Store, dialogues: Path) -> None:
    rows = manifest_rows(dialogues)[:2]
    rows[0]["speakers"][0]["consent_ref"] = "c-nobody"
    withdrawn = rows[1]["speakers"][1]
    (dialogues / "withdraw.csv").write_text(
        "consent_id,speaker_id,form_version,permitted_uses,granted_on,expires_on,withdrawn_on\n"
        f"{withdrawn['consent_ref']},{withdrawn['speaker_id']},v3,model_training;evaluation,2026-09-01,2031-09-01,2026-09-20\n"
    )
    import_consent_file(ready, dialogues / "withdraw.csv")
    report = ingest_manifest(ready, "en-dialogue-accents", write_manifest(dialogues / "m.jsonl", rows), actor="test")
    assert "no consent record 'c-nobody'" in _reasons(report, 1)
    assert f"speaker {withdrawn['speaker_id']} withdrew consent" in _reasons(report, 2)
    with ready.session() as session:
        history = session.scalars(select(models.Consent).where(models.Consent.consent_id == withdrawn["consent_ref"])).all()
        assert len(history) == 2 and history[0].withdrawn_on is None, "withdrawal appends, the grant stays"


def test_consent_on_the_wrong_form_or_without_the_use(ready: Store, dialogues: Path) -> None:
    row = manifest_rows(dialogues)[0]
    a, b = row["speakers"]
    (dialogues / "c.csv").write_text(
        "consent_id,speaker_id,form_version,permitted_uses,granted_on,expires_on,withdrawn_on\n"
        f"{a['consent_ref']},{a['speaker_id']},v2,model_training,2026-09-01,,\n"
        f"{b['consent_ref']},{b['speaker_id']},v3,evaluation,2026-09-01,2026-09-15,\n"
    )
    import_consent_file(ready, dialogues / "c.csv")
    why = _reasons(ingest_manifest(ready, "en-dialogue-accents", write_manifest(dialogues / "m.jsonl", [row]), actor="test"), 1)
    assert "is on form v2; the protocol requires v3" in why
    assert "does not permit model_training" in why and "expired on 2026-09-15" in why


def test_paths_that_escape_the_manifest_folder(ready: Store, dialogues: Path, tmp_path: Path) -> None:
    base = manifest_rows(dialogues)[0]
    outside = tmp_path / "outside.flac"
    outside.write_bytes((dialogues / "dlg001.flac").read_bytes())
    (dialogues / "link.flac").symlink_to(outside)
    rows = [
        variant_row(base, "../../etc/passwd", "s1"),
        variant_row(base, str(outside), "s2"),
        variant_row(base, "link.flac", "s3"),
    ]
    report = ingest_manifest(ready, "en-dialogue-accents", write_manifest(dialogues / "m.jsonl", rows), actor="test")
    assert "escapes the manifest's folder" in _reasons(report, 1)
    assert "absolute path" in _reasons(report, 2) and "not allowed" in _reasons(report, 2)
    assert "escapes the manifest's folder" in _reasons(report, 3)
    allowed = ingest_manifest(ready, "en-dialogue-accents", dialogues / "m.jsonl", allow_absolute=True, actor="test")
    assert next(o for o in allowed.outcomes if o.line == 2).status == "accepted"


def test_duplicate_and_malformed_rows(ready: Store, dialogues: Path) -> None:
    rows = manifest_rows(dialogues)[:2]
    text = json.dumps(rows[0]) + "\n" + json.dumps(rows[0]) + "\n{not json\n" + json.dumps(rows[1]) + "\n"
    (dialogues / "m.jsonl").write_text(text)
    report = ingest_manifest(ready, "en-dialogue-accents", dialogues / "m.jsonl", actor="test")
    assert "duplicate row" in _reasons(report, 2) and "line 1" in _reasons(report, 2)
    assert "not valid JSON" in _reasons(report, 3)
    assert [o.status for o in report.outcomes if o.line in (1, 4)] == ["accepted", "accepted"]


def test_csv_manifest_groups_speakers_and_flags_duplicates(ready: Store, dialogues: Path) -> None:
    lines = (dialogues / "manifest.csv").read_text().splitlines()
    (dialogues / "m.csv").write_text("\n".join(lines[:3] + [lines[2]]) + "\n")
    report = ingest_manifest(ready, "en-dialogue-accents", dialogues / "m.csv", actor="test")
    assert report.count("accepted") == 1
    assert "duplicate row" in _reasons(report, 4)


def test_a_speaker_redeclared_with_other_demographics(ready: Store, dialogues: Path) -> None:
    rows = manifest_rows(dialogues)
    ingest_manifest(ready, "en-dialogue-accents", write_manifest(dialogues / "a.jsonl", rows[:1]), actor="test")
    clash = rows[1]
    clash["speakers"][0] = dict(rows[0]["speakers"][0], demographics=dict(rows[0]["speakers"][0]["demographics"], age_band="60+"))
    report = ingest_manifest(ready, "en-dialogue-accents", write_manifest(dialogues / "b.jsonl", [clash]), actor="test")
    assert "was registered with age_band" in _reasons(report, 1)


def test_counts_stay_tied_to_the_protocol_version(ready: Store, dialogues: Path) -> None:
    from collection.coverage import compute_coverage
    from protocols.registry import ProtocolConflict, get_protocol

    ingest_manifest(ready, "en-dialogue-accents", dialogues / "manifest.jsonl", actor="test")
    changed = EN_PROTOCOL.read_text().replace("total: {hours: 300, speakers: 480}", "total: {hours: 400, speakers: 500}")
    with pytest.raises(ProtocolConflict, match="give the changed plan version 2"):
        register_en(ready, changed)
    register_en(ready, changed.replace("version: 1", "version: 2"))
    with ready.session() as session:
        v1_row, v1 = get_protocol(session, "en-dialogue-accents", 1)
        v2_row, v2 = get_protocol(session, "en-dialogue-accents")
        assert v2.version == 2 and v1.targets.total.hours == 300
        old, new = compute_coverage(session, v1_row, v1), compute_coverage(session, v2_row, v2)
    assert old.scope("total")[0].sessions == 6 and old.scope("total")[0].target_hours == 300
    assert new.scope("total")[0].sessions == 0 and new.other_versions == {1: 6}


def test_session_attributes_are_accepted_validated_and_kept(store: Store, dialogues: Path) -> None:
    """The finding: `recorded_by` and `site` were refused as unknown fields, so conflict rules had no input."""
    from tests.factories import register_en

    text = EN_PROTOCOL.read_text().replace("  style: spontaneous\n", "  style: spontaneous\n  attributes: [group]\n")
    register_en(store, text)
    import_consent_file(store, dialogues / "consent.csv")
    rows = manifest_rows(dialogues)[:4]
    rows[0].update(recorded_by="ann1", site="lyon")
    rows[1].update(group="acme", site="")  # an empty value is no value
    rows[2].update(site="lyon west")  # a space: no group could name it
    rows[3].update(room="b12")  # not declared by the protocol
    report = ingest_manifest(store, "en-dialogue-accents", write_manifest(dialogues / "m.jsonl", rows), actor="test")
    assert [o.status for o in report.outcomes] == ["accepted", "accepted", "rejected", "rejected"]
    assert "site 'lyon west': use 1-128 letters, digits" in _reasons(report, 3)
    assert "unknown field(s) ['room']" in _reasons(report, 4)
    with store.session() as session:
        declared = {r.source_name: r.declared for r in session.scalars(select(models.Recording))}
    assert (declared["dlg001.flac"]["recorded_by"], declared["dlg001.flac"]["site"]) == ("ann1", "lyon")
    assert declared["dlg002.flac"]["group"] == "acme" and "site" not in declared["dlg002.flac"]


def test_csv_session_attribute_columns_are_not_demographics(ready: Store, dialogues: Path) -> None:
    lines = (dialogues / "manifest.csv").read_text().splitlines()
    header = lines[0] + ",recorded_by,site"
    body = [lines[1] + ",ann1,lyon", lines[2] + ",ann1,lyon",  # dlg001: both rows agree
            lines[3] + ",ann2,lyon", lines[4] + ",ann2,paris"]  # dlg002: its rows disagree on the site
    (dialogues / "m.csv").write_text("\n".join([header, *body]) + "\n")
    report = ingest_manifest(ready, "en-dialogue-accents", dialogues / "m.csv", actor="test")
    assert [o.status for o in report.outcomes] == ["accepted", "rejected", "rejected"]
    assert "has site='paris' here but 'lyon' on line 4" in _reasons(report, 5)
    with ready.session() as session:
        recording = session.scalars(select(models.Recording).where(models.Recording.status == "accepted")).one()
        dims = set(session.scalars(select(models.SpeakerDemographic.dimension)))
    assert recording.declared["recorded_by"] == "ann1" and recording.declared["site"] == "lyon"
    assert "site" not in dims and "recorded_by" not in dims
