"""`turnscribe governance` as a script runs it: sign-in, permissions, outputs and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from store.db import Store
from store.settings import Settings
from tests.corpus.governance_fixtures import PASSWORD, GovStore, build_gov_store
from tests.factories import import_consent_file

BIN = Path(sys.executable).parent / "turnscribe"


@pytest.fixture
def home(store: Store, dialogues: Path) -> tuple[Settings, GovStore]:
    """The governance store on SQLite or PostgreSQL, and the settings the command is pointed at."""
    return store.settings, build_gov_store(store, dialogues)


def run(settings: Settings, *args: str, user: str = "maria") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TURNSCRIBE_HOME=str(settings.home), TURNSCRIBE_DATABASE_URL=settings.database_url,
               TURNSCRIBE_USER=user, TURNSCRIBE_PASSWORD=PASSWORD)
    return subprocess.run([str(BIN), "governance", *args], capture_output=True, text=True, env=env, timeout=300)


def test_erase_needs_a_manager_reports_releases_and_keeps_the_chain(home: tuple[Settings, GovStore]) -> None:
    path, _ = home
    refused = run(path, "erase", "--speaker", "spk-0006", user="anna")
    assert refused.returncode == 1 and "may not erase" in refused.stderr

    planned = run(path, "erase", "--speaker", "spk-0006", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert "Dry run" in planned.stdout and "nothing was changed" in planned.stdout and "v1" in planned.stdout

    done = run(path, "erase", "--speaker", "spk-0006")
    assert done.returncode == 0, done.stderr
    assert "releases that contained it (retrain from a new release): v1" in done.stdout
    assert "6 blob file(s) deleted" in done.stdout

    again = run(path, "erase", "--speaker", "spk-0006")
    assert again.returncode == 2 and "no speaker 'spk-0006'" in again.stderr

    verified = run(path, "audit", "--verify")
    assert verified.returncode == 0 and "audit chain intact" in verified.stdout and "blanked" in verified.stdout
    tail = run(path, "audit", "tail", "-n", "50")
    assert tail.returncode == 0 and "erase" in tail.stdout and "spk-0006" not in tail.stdout
    shown = run(path, "audit", "show", "--action", "erase")
    assert shown.returncode == 0 and "tombstone:tomb-" in shown.stdout and "sign_in" not in shown.stdout
    assert run(path, "audit", "show", user="anna").returncode == 1, "annotators do not read the audit log"
    gone = run(path, "consent", "show", "--speaker", "spk-0006")
    assert gone.returncode == 2 and "no consent recorded" in gone.stderr


def test_audit_verify_names_tampering_and_cut_off_entries(home: tuple[Settings, GovStore]) -> None:
    path, g = home
    ok = run(path, "audit", "--verify")
    assert ok.returncode == 0, ok.stderr
    head = ok.stdout.split("head ")[-1].strip()
    assert len(head) == 64
    assert run(path, "audit", "--verify", "--expect-head", head).returncode == 0

    with g.store.engine.begin() as db:  # tampering behind the application's back, in plain SQL
        pk = db.execute(text("SELECT pk FROM audit_events WHERE entry_hash = :head"), {"head": head}).scalar_one()
        db.execute(text("DELETE FROM audit_events WHERE pk >= :pk"), {"pk": pk})
    cut = run(path, "audit", "--verify", "--expect-head", head)
    assert cut.returncode == 1 and "cut off" in cut.stderr

    with g.store.engine.begin() as db:
        db.execute(text("UPDATE audit_events SET subject = 'recording:999' WHERE pk = 3"))
    broken = run(path, "audit", "--verify")
    assert broken.returncode == 1 and "BROKEN at entry 3: content changed" in broken.stderr
    assert run(path, "audit").returncode == 2, "no subcommand and no --verify: usage"


def test_audit_head_prints_the_head_and_removed_hashes_are_a_break(home: tuple[Settings, GovStore]) -> None:
    path, g = home
    head = run(path, "audit", "head")
    assert head.returncode == 0, head.stderr
    printed = head.stdout.strip()
    with g.store.engine.connect() as db:
        newest_pk, newest_hash, actor = db.execute(
            text("SELECT pk, entry_hash, actor FROM audit_events ORDER BY pk DESC LIMIT 1")).one()
    assert (printed, actor) == (newest_hash, "maria")  # the head includes this very sign-in
    assert f"entry {newest_pk}" in head.stderr
    assert run(path, "audit", "--verify", "--expect-head", printed).returncode == 0
    assert run(path, "audit", "head", user="anna").returncode == 1, "an annotator may not read the audit log"

    with pytest.raises(IntegrityError):  # issue #10 item 11: the three hashes NULL in one UPDATE
        with g.store.engine.begin() as db:
            db.execute(text("UPDATE audit_events SET content_digest = NULL, prev_hash = NULL, entry_hash = NULL"))
    with g.store.engine.begin() as db:
        db.execute(text("UPDATE audit_events SET content_digest = '', entry_hash = '' WHERE pk = 5"))
    broken = run(path, "audit", "--verify")
    assert broken.returncode == 1
    assert "BROKEN at entry 5: hash field(s) content_digest, entry_hash empty or missing" in broken.stderr


def test_purge_dry_run_plans_ahead_and_a_real_purge_acts_on_today(home: tuple[Settings, GovStore], tmp_path: Path) -> None:
    path, _ = home
    planned = run(path, "purge", "--dry-run", "--as-of", "2031-10-03")
    assert planned.returncode == 0, planned.stderr
    assert "Would purge on 2031-10-03" in planned.stdout and "consent expired" in planned.stdout
    assert planned.stdout.count(".flac") == 6 and "nothing was changed" in planned.stdout
    assert run(path, "purge", "--as-of", "2031-10-03").returncode == 2, "--as-of only plans"
    assert "nothing to purge" in run(path, "purge").stdout

    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    (tmp_path / "withdraw.csv").write_text(
        "consent_id,speaker_id,form_version,permitted_uses,granted_on,expires_on,withdrawn_on\n"
        f"c-spk-0003,spk-0003,v3,model_training;evaluation,2026-09-01,2031-09-01,{yesterday}\n")
    import_consent_file(home[1].store, tmp_path / "withdraw.csv")
    assert run(path, "purge", user="anna").returncode == 1
    done = run(path, "purge")
    assert done.returncode == 0, done.stderr
    assert "Purged on" in done.stdout and "dlg002.flac" in done.stdout and "consent withdrawn" in done.stdout
    assert "nothing to purge" in run(path, "purge").stdout
    history = run(path, "consent", "show", "--speaker", "spk-0003")
    assert history.returncode == 0 and history.stdout.count("c-spk-0003") == 2 and yesterday in history.stdout


def test_pii_detect_and_show(home: tuple[Settings, GovStore], tmp_path: Path) -> None:
    path, g = home
    names = tmp_path / "names.txt"
    names.write_text("Friday\n")  # a word the dialogues use, standing in for a name
    first = run(path, "pii", "detect", "--protocol", "en-dialogue-accents", "--names", str(names))
    assert first.returncode == 0, first.stderr
    # expected from the ground truth: one span per "Friday"; the dialogues hold no digits, addresses or number runs
    truth = [t["text"] for stem in g.recordings for t in json.loads((g.dialogues / f"{stem}.turns.json").read_text())]
    tokens = [re.sub(r"[^a-z]", "", word.lower()) for text in truth for word in text.split()]
    assert not any(re.search(r"\d|@", text) for text in truth)
    fridays = tokens.count("friday")
    assert fridays == 2  # dlg001 and dlg006
    assert f"6 revision(s) of en-dialogue-accents v1 scanned, {fridays} new span(s) marked" in first.stdout, first.stdout
    again = run(path, "pii", "detect", "--protocol", "en-dialogue-accents", "--names", str(names))
    assert "0 new span(s)" in again.stdout
    shown = run(path, "pii", "show", "--revision", str(g.revisions["dlg001"] + 1))  # dlg001's draft
    assert shown.returncode == 0 and "Friday" in shown.stdout and "detector:names" in shown.stdout
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    bad = run(path, "pii", "detect", "--protocol", "en-dialogue-accents", "--names", str(empty))
    assert bad.returncode == 2 and "holds no names" in bad.stderr
    assert run(path, "pii", "detect", "--protocol", "en-dialogue-accents", user="anna").returncode == 1
