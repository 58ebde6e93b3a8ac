"""Intake under bad fields and a failing environment: refused or faulted per row, nothing half-stored.

Issue #10 items 15 and 16 and the intake half of the fault-injection check: field limits
are the same on SQLite and PostgreSQL (checked before storing), an environment fault is
one row's outcome with its reason (no traceback, exit 4 from the CLI), and no failure
leaves a blob file that no row refers to.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from collection.intake import ingest_manifest
from store import models
from store.accounts import add_user
from store.db import Store, open_store
from store.settings import Settings
from tests.factories import ffmpeg, import_consent_file, manifest_rows, register_en, variant_row, write_manifest

BIN = Path(sys.executable).parent / "turnscribe"
PASSWORD = "correct-horse-battery"


@pytest.fixture
def ready(store: Store, dialogues: Path) -> Store:
    register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    return store


def _blob_files(store: Store) -> set[str]:
    root = store.blobs.root
    return {p.name for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def _referenced(store: Store) -> set[str]:
    with store.session() as session:
        rows = session.execute(select(models.Recording.sha256, models.Recording.working_sha256)).all()
    return {d for row in rows for d in row if d}


def _count(store: Store, model: type) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _why(report, line: int, status: str = "rejected") -> str:  # type: ignore[no-untyped-def]
    outcome = next(o for o in report.outcomes if o.line == line)
    assert outcome.status == status, outcome
    return " | ".join(r.message for r in outcome.reasons)


def test_field_limits_are_refused_before_storing_the_same_on_both_databases(ready: Store, dialogues: Path) -> None:
    base = manifest_rows(dialogues)[0]

    def with_speaker(session_id: str, **changes: object) -> dict:  # type: ignore[type-arg]
        row = variant_row(base, "dlg001.flac", session_id)
        row["speakers"][0].update(changes)
        return row

    long_demographic = variant_row(base, "dlg001.flac", "s-demo")
    long_demographic["speakers"][0]["demographics"]["accent"] = "a" * 300
    rows = [
        variant_row(base, "dlg001.flac", "s" * 200),  # SQLite stored a 100 KB id; PostgreSQL failed mid-batch
        with_speaker("s-space", speaker_id="spk 1"),
        with_speaker("s-slash", speaker_id="spk/1"),
        with_speaker("s-escape", speaker_id="spk\x1b[31m"),
        with_speaker("s-channel", channel=2**70),  # too large for SQLite's INTEGER
        long_demographic,
        variant_row(base, "dlg001.flac", "s-device", device="d" * 65),
        manifest_rows(dialogues)[1],
    ]
    report = ingest_manifest(ready, "en-dialogue-accents", write_manifest(dialogues / "limits.jsonl", rows), actor="test")
    assert "session_id is 200 characters long; the limit is 128" in _why(report, 1)
    assert "whitespace or a slash" in _why(report, 2) and "whitespace or a slash" in _why(report, 3)
    assert "control characters" in _why(report, 4)
    assert "channel must be between 1 and 1024" in _why(report, 5)
    assert "is 300 characters long; the limit is 128" in _why(report, 6)
    assert "device is 65 characters long; the limit is 64" in _why(report, 7)
    assert [o.status for o in report.outcomes] == ["rejected"] * 7 + ["accepted"]
    assert _count(ready, models.Recording) == 1 and _count(ready, models.Session) == 1
    assert _count(ready, models.Speaker) == 2, "only the accepted row's two speakers"
    assert _blob_files(ready) == _referenced(ready)


def test_a_csv_field_over_128_kib_is_one_refused_row(ready: Store, dialogues: Path) -> None:
    header, *rows = (dialogues / "manifest.csv").read_text().splitlines()
    oversized = "dlg009.flac,dlg009,laptop,quiet," + "x" * (200 * 1024) + ",en,2026-10-01,spk-0001,c-spk-0001,30-44,male,west_midlands,en"
    manifest = dialogues / "big.csv"
    manifest.write_text("\n".join([header, *rows[:2], oversized, *rows[2:4]]) + "\n")
    report = ingest_manifest(ready, "en-dialogue-accents", manifest, actor="test")
    assert "field larger than field limit" in _why(report, 4)
    assert [(o.line, o.status) for o in report.outcomes] == [(2, "accepted"), (4, "rejected"), (5, "accepted")]
    assert _count(ready, models.Recording) == 2


def test_a_speaker_listed_twice_in_one_row_gets_the_true_reason_and_no_blob(ready: Store, dialogues: Path) -> None:
    row = manifest_rows(dialogues)[0]
    row["speakers"][1] = dict(row["speakers"][0])
    report = ingest_manifest(ready, "en-dialogue-accents", write_manifest(dialogues / "twice.jsonl", [row]), actor="test")
    why = _why(report, 1)
    assert f"speaker {row['speakers'][0]['speaker_id']} is listed twice in this row" in why
    assert "concurrently" not in why
    assert _count(ready, models.Recording) == 0 and _blob_files(ready) == set()


def _read_only(store: Store) -> Store:
    """A second handle on the same home whose database refuses every write (SQLite mode=ro, PostgreSQL read-only)."""
    url = store.settings.database_url
    if url.startswith("sqlite"):
        url = f"sqlite:///file:{url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    else:
        url += "?options=-c%20default_transaction_read_only%3Don"
    return open_store(Settings(home=store.settings.home, database_url=url), upgrade=False)


def test_a_read_only_database_is_a_fault_per_row_with_no_orphan_blob(ready: Store, dialogues: Path) -> None:
    before = _count(ready, models.AuditEvent)
    read_only = _read_only(ready)
    try:
        report = ingest_manifest(read_only, "en-dialogue-accents",
                                 write_manifest(dialogues / "m.jsonl", manifest_rows(dialogues)[:2]), actor="test")
    finally:
        read_only.close()
    assert [o.status for o in report.outcomes] == ["fault", "fault"], report.outcomes
    assert all("read" in _why(report, line, "fault").lower() for line in (1, 2))
    assert all("not in the audit log" in o.note for o in report.outcomes)
    assert _blob_files(ready) == set(), "the blobs written before the refused commit are removed"
    assert _count(ready, models.Recording) == 0 and _count(ready, models.AuditEvent) == before
    again = ingest_manifest(ready, "en-dialogue-accents", dialogues / "manifest.jsonl", actor="test")
    assert again.ok and again.count("accepted") == 6, "the same manifest goes through once the store is writable"


def _limited(limit: int):  # type: ignore[no-untyped-def]
    """preexec_fn: files this process writes may not grow past `limit` bytes (a full disk); EFBIG, not SIGXFSZ."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


# PostgreSQL: its files belong to the server, so the limit falls on the blob store alone
# (SQLite's database file and WAL would be limited in the same process).
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_ingest_with_a_full_disk_reports_faults_exits_4_and_leaves_no_orphan(ready: Store, dialogues: Path) -> None:
    big = ffmpeg(dialogues / "dlg001.flac", dialogues / "big.wav", "-ar", "48000", "-ac", "2")
    assert big.stat().st_size > 4 * 2**20
    rows = manifest_rows(dialogues)
    manifest = write_manifest(dialogues / "full.jsonl", [variant_row(rows[0], "big.wav", "s-big"), rows[1]])
    with ready.session() as session:
        add_user(session, "ada", PASSWORD, ["manager"], actor="test")
        session.commit()
    settings = ready.settings
    env = dict(os.environ, TURNSCRIBE_HOME=str(settings.home), TURNSCRIBE_DATABASE_URL=settings.database_url,
               TURNSCRIBE_USER="ada", TURNSCRIBE_PASSWORD=PASSWORD)
    done = subprocess.run([str(BIN), "collect", "ingest", "--protocol", "en-dialogue-accents", str(manifest)],
                          capture_output=True, text=True, env=env, timeout=300, preexec_fn=_limited(3 * 2**20))
    assert done.returncode == 4, done.stderr
    assert "Traceback" not in done.stderr and "File too large" in done.stderr
    assert "1 row(s) hit a fault" in done.stderr
    cells = [line.replace("│", " ").split() for line in done.stdout.splitlines()]
    assert ["1", "0", "0", "1", "0.007"] in cells, done.stdout  # accepted, rejected, skipped, faults, hours
    assert _blob_files(ready) == _referenced(ready) and len(_blob_files(ready)) == 2
    with ready.session() as session:
        fault = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "ingest_fault")).one()
    assert fault.subject == "manifest_line:1" and "File too large" in fault.details["fault"]
    assert json.dumps(fault.details).count("big.wav") == 1


def test_consent_rows_over_the_limits_are_refused_and_the_rest_imported(store: Store, tmp_path: Path) -> None:
    from collection.consent import import_consents
    from store.do_not_collect import DoNotCollect

    rows = ["consent_id,speaker_id,form_version,permitted_uses,granted_on",
            f"c-long,{'s' * 200},v1,asr,2026-01-01",  # PostgreSQL refused it mid-file; SQLite stored it
            "c-space,spk 9,v1,asr,2026-01-01",
            "c-ok,spk-9,v1,asr,2026-01-01"]
    (tmp_path / "consent.csv").write_text("\n".join(rows) + "\n")
    blocked = DoNotCollect.for_store(store)
    with store.session() as session:
        result = import_consents(session, tmp_path / "consent.csv", blocked, actor="test")
        session.commit()
    assert result.added == 1
    assert [(line, "limit is 128" in m or "whitespace" in m) for line, m in result.errors] == [(2, True), (3, True)]
    with store.session() as session:
        assert session.scalars(select(models.Consent.consent_id)).all() == ["c-ok"]
