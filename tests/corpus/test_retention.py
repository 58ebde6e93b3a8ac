"""Retention purge on SQLite and PostgreSQL: what retention or consent no longer allows goes, with reasons."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store import models
from store.accounts import PermissionDenied
from corpus.governance.audit_verify import verify_chain
from corpus.governance.retention import purge, purge_candidates
from tests.corpus.governance_fixtures import GovStore, blob_files, dump_store, gov  # noqa: F401 - fixture
from tests.factories import import_consent_file

# committed data: dialogues recorded 2026-10-01 .. 10-12, consents expire 2031-09-01, retention 1826 days
AFTER = dt.date(2031, 10, 3)  # dlg001 (2026-10-01) is past retention; dlg002 (10-02) is not


def _update_consents(g: GovStore, tmp_path: Path) -> None:
    """spk-0003 (dlg002) withdraws; spk-0001 and spk-0002 (dlg001) extend their consent to 2040."""
    rows = ["consent_id,speaker_id,form_version,permitted_uses,granted_on,expires_on,withdrawn_on",
            "c-spk-0003,spk-0003,v3,model_training;evaluation,2026-09-01,2031-09-01,2026-11-01",
            "c-spk-0001,spk-0001,v3,model_training;evaluation,2026-09-01,2040-01-01,",
            "c-spk-0002,spk-0002,v3,model_training;evaluation,2026-09-01,2040-01-01,"]
    (tmp_path / "update.csv").write_text("\n".join(rows) + "\n")
    import_consent_file(g.store, tmp_path / "update.csv")


def _count(g: GovStore, model: type) -> int:
    with g.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)))


def test_nothing_is_purged_while_consent_and_retention_hold(gov: GovStore) -> None:  # noqa: F811
    with gov.store.session() as session:
        assert purge_candidates(session, dt.date(2027, 1, 1)) == []
    report = purge(gov.store, gov.manager, today=dt.date(2027, 1, 1))
    assert report.items == [] and report.erasures == [] and _count(gov, models.Recording) == 6


def test_purge_lists_then_erases_by_reason(gov: GovStore, tmp_path: Path) -> None:  # noqa: F811
    _update_consents(gov, tmp_path)
    before, blobs = dump_store(gov.store), blob_files(gov.store.blobs.root)
    planned = purge(gov.store, gov.manager, today=AFTER, dry_run=True)
    assert dump_store(gov.store) == before and blob_files(gov.store.blobs.root) == blobs, "a dry run changes nothing"
    by_stem = {Path(i.source_name).stem: i for i in planned.items}
    assert sorted(by_stem) == ["dlg001", "dlg002", "dlg003", "dlg004", "dlg005", "dlg006"]
    assert by_stem["dlg001"].reason == "retention" and "recorded on 2026-10-01" in by_stem["dlg001"].why
    assert by_stem["dlg002"].reason == "consent withdrawn" and "spk-0003 withdrew" in by_stem["dlg002"].why
    assert {by_stem[s].reason for s in ("dlg003", "dlg004", "dlg005", "dlg006")} == {"consent expired"}
    assert [e.reason for e in planned.erasures] == ["consent withdrawn", "consent expired", "retention"]
    assert [e.counts["recordings"] for e in planned.erasures] == [1, 4, 1]

    done = purge(gov.store, gov.manager, today=AFTER)
    assert [e.counts for e in done.erasures] == [e.counts for e in planned.erasures]
    assert all(e.releases_affected == ["v1"] for e in done.erasures)
    assert _count(gov, models.Recording) == 0 and _count(gov, models.TranscriptRevision) == 0
    assert _count(gov, models.Speaker) == 11, "speakers and their consent history stay"
    with gov.store.session() as session:
        reasons = sorted(t.reason for t in session.scalars(select(models.Tombstone)))
        assert reasons == ["consent expired", "consent withdrawn", "retention"]
        events = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "purge")).all()
        assert sorted(e.details["reason"] for e in events) == reasons
        assert session.scalars(select(models.ReleaseSpeaker)).all() == []
        assert verify_chain(session).ok
        assert purge_candidates(session, AFTER) == []
    assert {p.name for p in gov.store.blobs.root.rglob("*") if p.is_file()} == set(), "every blob went"


def test_only_a_manager_may_purge(gov: GovStore) -> None:  # noqa: F811
    annotator = gov.add_user("ann2", "annotator")
    with pytest.raises(PermissionDenied, match="may not purge"):
        purge(gov.store, annotator, today=AFTER, dry_run=True)
    assert _count(gov, models.Recording) == 6


def test_purge_removes_blob_files_no_record_refers_to(gov: GovStore) -> None:  # noqa: F811
    import os
    import time

    old = gov.store.blobs.put_bytes(b"left by an erasure interrupted after its commit")
    young = gov.store.blobs.put_bytes(b"an intake still committing")
    hours_ago = time.time() - 2 * 3600
    for path in gov.store.blobs.root.rglob("*"):
        if path.is_file() and path.name != young:
            os.utime(path, (hours_ago, hours_ago))
    assert purge(gov.store, gov.manager, dry_run=True).orphan_blobs == 1
    assert gov.store.blobs.exists(old)
    report = purge(gov.store, gov.manager)
    assert report.orphan_blobs == 1 and report.items == []
    assert not gov.store.blobs.exists(old) and gov.store.blobs.exists(young)
    assert _count(gov, models.Recording) == 6 and all(
        gov.store.blobs.exists(d) for d in _recording_blobs(gov)), "referenced blobs stay, however old"


def _recording_blobs(g: GovStore) -> list[str]:
    with g.store.session() as session:
        return [d for r in session.scalars(select(models.Recording)) for d in (r.sha256, r.working_sha256)]
