"""What an erasure or a purge must also reach, on SQLite and PostgreSQL: the do-not-collect list, pulls, stuck blobs, demographics."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collection.intake import ingest_manifest
from corpus.exports.pull import pull_release
from corpus.governance.erasure import delete_blobs, erase_speaker
from corpus.governance.retention import purge
from corpus.releases.build import build_release
from store import models
from store.do_not_collect import DoNotCollect, DoNotCollectKeyError, key_path
from tests.corpus.conftest import PROTOCOL_ID, Corpus, corpus  # noqa: F401 - fixture
from tests.corpus.governance_fixtures import GovStore, dump_store, gov  # noqa: F401 - fixture
from collection.consent import import_consents
from tests.corpus.test_governance_cli import home, run  # noqa: F401 - fixture
from tests.factories import import_consent_file, manifest_rows, write_manifest

ERASED = "spk-0006"
ON = dt.date(2026, 11, 1)  # speaks in dlg003 (with spk-0005) and dlg004 (with spk-0007)


def _erased_identifiers(g: GovStore) -> set[str]:
    with g.store.session() as session:
        sessions = select(models.SessionParticipant.session_pk).where(models.SessionParticipant.speaker_id == ERASED)
        recs = session.scalars(select(models.Recording).where(models.Recording.session_pk.in_(sessions))).all()
        return {ERASED, f"c-{ERASED}", *(r.sha256 for r in recs), *(r.working_sha256 for r in recs)}


def test_an_erased_speaker_does_not_come_back_with_the_old_files(gov: GovStore) -> None:  # noqa: F811
    needles = _erased_identifiers(gov)
    report = erase_speaker(gov.store, gov.manager, ERASED)
    assert report.counts["do_not_collect"] == 1 + 1 + 6  # speaker, consent id, 2 originals + 2 working copies + 2 voice blobs

    blocked = DoNotCollect.for_store(gov.store)
    with gov.store.session() as session:  # the original consent file again
        imported = import_consents(session, gov.dialogues / "consent.csv", blocked, actor="test")
        session.commit()
    assert imported.added == 0 and [line for line, _ in imported.errors] == [7]  # spk-0006's row
    assert "do-not-collect" in imported.errors[0][1] and ERASED not in imported.errors[0][1]
    again = ingest_manifest(gov.store, gov.protocol.id, gov.dialogues / "manifest.jsonl", actor="test")
    by_path = {o.path: o for o in again.outcomes}
    for path in ("dlg003.flac", "dlg004.flac"):
        assert by_path[path].status == "rejected" and [r.code for r in by_path[path].reasons] == ["do_not_collect"]
    assert {o.status for p, o in by_path.items() if p not in ("dlg003.flac", "dlg004.flac")} == {"skipped"}

    # the erased audio under a new speaker and consent id is refused too
    row = next(r for r in manifest_rows(gov.dialogues) if r["session_id"] == "dlg003")
    row.update(session_id="dlg003-again")
    for speaker in row["speakers"]:
        speaker["speaker_id"], speaker["consent_ref"] = speaker["speaker_id"] + "x", speaker["consent_ref"] + "x"
    same_audio = ingest_manifest(gov.store, gov.protocol.id, write_manifest(gov.dialogues / "again.jsonl", [row]), actor="test")
    assert [r.code for r in same_audio.outcomes[0].reasons] == ["do_not_collect"]

    for table, rows in dump_store(gov.store).items():  # nothing about them was stored again, anywhere
        for stored in rows:
            assert not any(n in value for n in needles for value in stored), f"{table}: {stored}"
    with gov.store.session() as session:
        digests = session.scalars(select(models.DoNotCollectEntry.digest)).all()
    assert len(digests) == 8 and not set(digests) & needles, "keyed hashes only"
    key = key_path(gov.store)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.parent == gov.store.settings.home / "keys"


def test_a_lost_or_swapped_key_is_an_error_not_a_silent_pass(gov: GovStore) -> None:  # noqa: F811
    erase_speaker(gov.store, gov.manager, ERASED)
    key = key_path(gov.store)
    original = key.read_text()
    key.write_text(os.urandom(32).hex() + "\n")
    with pytest.raises(DoNotCollectKeyError, match="not the one this store's list was made with"):
        ingest_manifest(gov.store, gov.protocol.id, gov.dialogues / "manifest.jsonl", actor="test")
    key.unlink()
    with pytest.raises(DoNotCollectKeyError, match="is missing"):
        DoNotCollect.for_store(gov.store)
    key.write_text(original)
    assert DoNotCollect.for_store(gov.store).key == bytes.fromhex(original.strip())


def _tree_text(folder: Path) -> str:
    """Every file's text (gzip-decompressed) under a pull folder, one string."""
    import gzip

    parts = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            parts.append((gzip.decompress(data) if path.suffix == ".gz" else data).decode("utf-8", "replace"))
    return "\n".join(parts)


def test_erasure_rewrites_the_pulls_under_the_home_and_lists_the_others(corpus: Corpus, tmp_path: Path) -> None:  # noqa: F811
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v1", on=ON)
    home = corpus.store.settings.home
    inside = {fmt: home / "pulls" / fmt for fmt in ("kaldi", "lhotse")}
    for fmt, folder in inside.items():
        pull_release(corpus.store, corpus.consumer, "v1", fmt, folder)
    outside = tmp_path / "elsewhere"
    pull_release(corpus.store, corpus.consumer, "v1", "kaldi", outside)
    for folder in (*inside.values(), outside):
        assert ERASED in _tree_text(folder)
    pulled_before = sum(json.loads((inside["kaldi"] / "release.json").read_text())["splits"].values())

    planned = erase_speaker(corpus.store, corpus.manager, ERASED, dry_run=True)
    assert sorted(p.action for p in planned.pulls) == ["elsewhere", "would be rewritten", "would be rewritten"]
    assert ERASED in _tree_text(inside["kaldi"]), "a dry run touches no pull"

    report = erase_speaker(corpus.store, corpus.manager, ERASED)
    by_path = {p.path: p for p in report.pulls}
    assert {by_path[str(f)].action for f in inside.values()} == {"rewritten"}
    assert (by_path[str(outside)].action, by_path[str(outside)].pulled_by) == ("elsewhere", "connie")
    assert by_path[str(outside)].release == "v1" and by_path[str(outside)].pulled_at[:4] == str(dt.date.today().year)
    for folder in inside.values():
        text = _tree_text(folder)
        assert ERASED not in text and "spk-0001" in text
        assert json.loads((folder / "release.json").read_text())["erased_skipped"] == 2
    assert sum(json.loads((inside["kaldi"] / "release.json").read_text())["splits"].values()) == pulled_before - 2
    assert ERASED in _tree_text(outside), "outside the home nothing is touched: it is listed"
    with corpus.store.session() as session:
        pulls = session.scalars(select(models.Pull).order_by(models.Pull.pk)).all()
    assert [(p.pulled_by, p.removed_at is not None) for p in pulls] == [
        ("connie", True), ("connie", True), ("connie", False), ("manny", False), ("manny", False)]
    assert all(p.removed_reason.startswith("rewritten after erasure tomb-") for p in pulls[:2])


def test_a_blob_that_cannot_be_deleted_is_reported_with_the_command_that_finishes_the_job(gov: GovStore) -> None:  # noqa: F811
    with gov.store.session() as session:
        stuck = session.get(models.Recording, gov.recordings["dlg003"]).working_sha256
    path = gov.store.blobs.path_for(stuck)
    content = path.read_bytes()
    path.unlink()
    path.mkdir()  # unlink(2) fails on it with EISDIR, even for root (a read-only mount or EACCES in real life)
    (path / "keep").write_text("x")

    report = erase_speaker(gov.store, gov.manager, ERASED)
    assert list(report.blobs_failed) == [stuck] and "Is a directory" in report.blobs_failed[stuck]
    assert report.blobs_deleted == 5 and report.finish_command() == f"turnscribe governance delete-blobs {stuck}"
    with gov.store.session() as session:
        event = session.scalar(select(models.AuditEvent).where(models.AuditEvent.action == "erase_blobs_failed"))
        assert event is not None and event.details == {"files": 1}

    (path / "keep").unlink()
    path.rmdir()
    path.write_bytes(content)  # the cause fixed, the file is still there: the command finishes the job
    done = delete_blobs(gov.store, {stuck})
    assert (done.deleted, done.failed) == (1, {}) and not path.exists()


def test_purge_after_a_withdrawal_removes_the_demographics_it_no_longer_needs(gov: GovStore, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "withdraw.csv").write_text(
        "consent_id,speaker_id,form_version,permitted_uses,granted_on,expires_on,withdrawn_on\n"
        "c-spk-0003,spk-0003,v3,model_training;evaluation,2026-09-01,2031-09-01,2026-11-01\n")
    import_consent_file(gov.store, tmp_path / "withdraw.csv")

    def demographics(speaker: str) -> int:
        with gov.store.session() as session:
            return int(session.scalar(select(func.count()).select_from(models.SpeakerDemographic)
                                      .where(models.SpeakerDemographic.speaker_id == speaker)))

    assert demographics("spk-0003") == demographics("spk-0004") == 4
    report = purge(gov.store, gov.manager, today=dt.date(2026, 11, 20))
    assert [i.reason for i in report.items] == ["consent withdrawn"]
    assert report.erasures[0].counts["speaker_demographics"] == 8
    assert demographics("spk-0003") == demographics("spk-0004") == 0, "dlg002 was their only dialogue"
    assert demographics("spk-0001") == 4, "speakers with recordings keep theirs"
    with gov.store.session() as session:
        assert session.get(models.Speaker, "spk-0003") is not None, "the speaker and the consent history stay"
        assert session.scalar(select(func.count()).select_from(models.Consent).where(models.Consent.speaker_id == "spk-0003")) == 2


def test_the_cli_exits_4_and_prints_the_command_that_deletes_a_stuck_blob(home: tuple[Path, GovStore]) -> None:  # noqa: F811
    path, g = home
    with g.store.session() as session:
        stuck = session.get(models.Recording, g.recordings["dlg003"]).sha256
    blob = g.store.blobs.path_for(stuck)
    content = blob.read_bytes()
    blob.unlink()
    blob.mkdir()
    done = run(path, "erase", "--speaker", ERASED)
    assert done.returncode == 4 and "5 blob file(s) deleted" in done.stdout
    command = f"turnscribe governance delete-blobs {stuck}"
    assert command in done.stderr.splitlines() and "Is a directory" in done.stderr
    blob.rmdir()
    blob.write_bytes(content)
    finished = run(path, *command.split()[2:])
    assert finished.returncode == 0 and "1 blob file(s) deleted" in finished.stdout and not blob.exists()
    assert run(path, "delete-blobs", "not-a-digest").returncode == 2
