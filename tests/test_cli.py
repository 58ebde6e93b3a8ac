"""The `turnscribe` console script end to end, as a script would run it: outputs and exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from sqlalchemy import select

from store import models
from store.accounts import add_user
from store.db import Store, open_store
from store.settings import load_settings
from tests.conftest import EN_PROTOCOL

BIN = Path(sys.executable).parent / "turnscribe"
ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "streamlit", "faster_whisper", "ctranslate2", "lhotse", "datasets")
"""What a command that needs none of them must not pay for at start-up."""


PASSWORD = "correct horse battery"


def run(home: Path, *args: str, database_url: str | None = None, user: str | None = None,
        **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TURNSCRIBE_HOME=str(home), COLUMNS="200")  # wide enough that no table header wraps
    for key in ("TURNSCRIBE_DATABASE_URL", "TURNSCRIBE_USER", "TURNSCRIBE_PASSWORD"):
        env.pop(key, None)
    env.update(env_extra)
    if database_url is not None:
        env["TURNSCRIBE_DATABASE_URL"] = database_url
    if user is not None:
        env.update(TURNSCRIBE_USER=user, TURNSCRIBE_PASSWORD=PASSWORD)
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=300)


def add_accounts(store: Store, **roles: str) -> None:
    """Accounts with PASSWORD, e.g. add_accounts(store, mia="manager")."""
    with store.session() as session:
        for username, role in roles.items():
            add_user(session, username, PASSWORD, [role], actor="test")
        session.commit()


def audit_rows(store: Store, **where: str) -> list[tuple[str, str, str]]:
    """(actor, action, subject) of the audit events matching every column=value given, oldest first."""
    query = select(models.AuditEvent.actor, models.AuditEvent.action, models.AuditEvent.subject)
    for column, value in where.items():
        query = query.where(getattr(models.AuditEvent, column) == value)
    with store.session() as session:
        return [tuple(r) for r in session.execute(query.order_by(models.AuditEvent.pk))]  # type: ignore[misc]


def ingest_summary(stdout: str) -> dict[str, str]:
    """The ingest summary table (accepted, rejected, skipped, faults, hours), parsed from its header and its one row."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("┃") and "accepted" in line)
    names = [cell.strip() for cell in lines[header].strip("┃ ").split("┃")]
    row = next(line for line in lines[header + 1:] if line.startswith("│"))
    return dict(zip(names, (cell.strip() for cell in row.strip("│ ").split("│")), strict=True))


_HELP_AND_MODULES = f"""
import sys
sys.argv = ["turnscribe", "--help"]
import turnscribe
try:
    turnscribe.app()
except SystemExit as exit:
    print("exit", exit.code)
print("loaded", *sorted(m for m in {HEAVY!r} if m in sys.modules))
"""


def test_help_is_instant_and_lists_stages(tmp_path: Path) -> None:
    """Instant: importing the console script and printing its help loads no model, UI or dataset library."""
    env = dict(os.environ, TURNSCRIBE_HOME=str(tmp_path), COLUMNS="120")
    result = subprocess.run([sys.executable, "-c", _HELP_AND_MODULES], capture_output=True, text=True, env=env,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    *help_text, status, loaded = result.stdout.splitlines()
    assert status == "exit 0" and loaded == "loaded", loaded
    for group in ("protocol", "collect", "pretranscribe", "models", "review", "corpus", "governance", "users", "demo"):
        assert any(line.strip("│ ").startswith(group + " ") for line in help_text), group


def test_register_consent_ingest_coverage(store: Store, tmp_path: Path, dialogues: Path) -> None:
    home, url = store.settings.home, store.settings.database_url
    add_accounts(store, mia="manager", ann="annotator")
    assert run(home, "protocol", "register", str(EN_PROTOCOL), database_url=url, user="mia").returncode == 0
    again = run(home, "protocol", "register", str(EN_PROTOCOL), database_url=url, user="mia")
    assert again.returncode == 0 and "already registered" in again.stdout
    assert run(home, "collect", "consent", "import", str(dialogues / "consent.csv"), database_url=url, user="mia").returncode == 0

    rows = (dialogues / "manifest.jsonl").read_text().splitlines()
    bad = json.loads(rows[0])
    bad.update(path="../../etc/passwd", session_id="evil")
    (dialogues / "m.jsonl").write_text("\n".join(rows[:2] + [json.dumps(bad)]) + "\n")
    ingest = run(home, "collect", "ingest", "--protocol", "en-dialogue-accents", str(dialogues / "m.jsonl"), database_url=url, user="mia")
    assert ingest.returncode == 1, ingest.stderr
    assert "escapes the manifest's folder" in ingest.stderr
    hours = sum(sf.info(dialogues / json.loads(row)["path"]).duration for row in rows[:2]) / 3600
    assert ingest_summary(ingest.stdout) == {"accepted": "2", "rejected": "1", "skipped (already in store)": "0",
                                             "faults": "0", "hours accepted": f"{hours:.3f}"}, ingest.stdout

    out = tmp_path / "coverage.csv"
    png = tmp_path / "coverage.png"
    cov = run(home, "collect", "coverage", "--protocol", "en-dialogue-accents", "--format", "csv",
              "--out", str(out), "--png", str(png), database_url=url, user="mia")
    assert cov.returncode == 0, cov.stderr
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    total = next(r for r in table if r["scope"] == "total")
    assert total["target_hours"] == "300.0" and int(total["sessions"]) == 2 and int(total["speakers"]) == 4
    assert float(total["hours"]) == pytest.approx(hours, abs=1e-3)
    assert png.stat().st_size > 10_000

    unknown = run(home, "collect", "coverage", "--protocol", "nope", database_url=url, user="mia")
    assert unknown.returncode == 2 and "no protocol nope is registered" in unknown.stderr
    listed = run(home, "protocol", "list", database_url=url, user="ann")  # any role may read the plans
    assert listed.returncode == 0 and "en-dialogue-accents" in listed.stdout

    # every change is in the manager's name; nothing in the log is anonymous
    assert audit_rows(store, action="protocol_registered") == [("mia", "protocol_registered", "protocol:en-dialogue-accents")]
    assert {actor for actor, _, _ in audit_rows(store, action="consent_import")} == {"mia"}
    ingested = [a for a in audit_rows(store) if a[1].startswith("ingest_")]
    assert len(ingested) == 3 and {actor for actor, _, _ in ingested} == {"mia"}
    assert {actor for actor, _, _ in audit_rows(store)} == {"test", "mia", "ann"}


# (command, a role that lacks the right, the permission named in the refusal); {p}: the protocol file,
# {c}: the consent file, {m}: a manifest, {d}: a folder
REFUSALS = [
    (("protocol", "register", "{p}"), "annotator", "register protocol"),
    (("collect", "consent", "import", "{c}"), "reviewer", "import consent"),
    (("collect", "ingest", "--protocol", "en-dialogue-accents", "{m}"), "annotator", "ingest"),
    (("collect", "coverage", "--protocol", "en-dialogue-accents"), "consumer", "see coverage"),
    (("collect", "duplicates", "--protocol", "en-dialogue-accents"), "reviewer", "find duplicates"),
    (("pretranscribe", "--protocol", "en-dialogue-accents"), "annotator", "pretranscribe"),
    (("eval", "--reference", "{d}", "--protocol", "en-dialogue-accents"), "annotator", "see quality"),
    (("models", "list"), "consumer", "see quality"),
    (("models", "import", "{d}"), "reviewer", "manage models"),
    (("models", "use", "tiny.en", "--protocol", "en-dialogue-accents"), "annotator", "manage models"),
    (("models", "eval", "--protocol", "en-dialogue-accents"), "annotator", "see quality"),
    (("users", "list"), "manager", "manage users"),
    (("users", "disable", "ann"), "manager", "manage users"),
    (("review", "cut", "--protocol", "en-dialogue-accents"), "reviewer", "assign"),
    (("corpus", "release", "--protocol", "en-dialogue-accents", "--name", "v1"), "consumer", "release"),
    (("governance", "purge", "--dry-run"), "consumer", "purge"),
    (("governance", "audit", "head"), "annotator", "audit"),
]


def _fill(args: tuple[str, ...], dialogues: Path) -> list[str]:
    return [a.format(p=EN_PROTOCOL, c=dialogues / "consent.csv", m=dialogues / "manifest.jsonl", d=dialogues) for a in args]


def test_every_store_command_signs_in_checks_its_right_and_audits_the_refusal(store: Store, dialogues: Path) -> None:
    from typer.testing import CliRunner

    from turnscribe import app

    add_accounts(store, **{role: role for role in ("annotator", "reviewer", "manager", "consumer")})
    runner = CliRunner()  # in-process: the real command tree, a second or so less per call than a new process

    def invoke(argv: list[str], user: str = "") -> tuple[int, str]:
        env = {"TURNSCRIBE_HOME": str(store.settings.home), "TURNSCRIBE_DATABASE_URL": store.settings.database_url,
               "TURNSCRIBE_USER": user, "TURNSCRIBE_PASSWORD": PASSWORD if user else ""}
        result = runner.invoke(app, argv, env=env)
        return result.exit_code, result.output

    for args, role, permission in REFUSALS:
        argv = _fill(args, dialogues)
        code, output = invoke(argv)
        assert code == 1 and "set TURNSCRIBE_USER" in output, (args, output)
        code, output = invoke(argv, role)
        assert code == 1 and f"may not {permission}" in output, (args, output)
        assert audit_rows(store, action="permission_denied")[-1] == (
            role, "permission_denied", f"permission:{permission.replace(' ', '_')}"), args
    assert len(audit_rows(store, action="permission_denied")) == len(REFUSALS)
    with store.session() as session:  # nothing was changed by any refused command
        assert session.scalars(select(models.Protocol)).all() == [] and session.scalars(select(models.Consent)).all() == []
    # `transcribe` works on loose files and never opens the store: it needs no account
    assert invoke(["transcribe", "--help"])[0] == 0


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # tests/store/test_accounts.py shares the count on both databases
def test_wrong_passwords_are_throttled_across_processes_then_lock(store: Store) -> None:
    add_accounts(store, boss="admin", ann="annotator")
    home, url = store.settings.home, store.settings.database_url

    def attempt(password: str, **policy: str) -> subprocess.CompletedProcess[str]:
        return run(home, "protocol", "list", database_url=url, TURNSCRIBE_USER="ann", TURNSCRIBE_PASSWORD=password,
                   **policy)

    slow = {"TURNSCRIBE_SIGN_IN_FIRST_DELAY_S": "600"}
    wrong = attempt("not the password", **slow)
    assert wrong.returncode == 1 and "unknown user or wrong password" in wrong.stderr
    right = attempt(PASSWORD, **slow)  # another process, the right password, inside the delay
    assert right.returncode == 1 and "too many wrong passwords for 'ann': try again in" in right.stderr
    assert attempt(PASSWORD, TURNSCRIBE_SIGN_IN_FIRST_DELAY_S="0").returncode == 0  # the delay over: in, and reset

    quick = {"TURNSCRIBE_SIGN_IN_FIRST_DELAY_S": "0", "TURNSCRIBE_SIGN_IN_LOCK_AFTER": "3"}
    for _ in range(3):
        assert attempt("not the password", **quick).returncode == 1
    locked = attempt(PASSWORD, **quick)
    assert locked.returncode == 1 and "is locked after 3 wrong passwords" in locked.stderr
    assert "turnscribe users enable ann" in locked.stderr
    unlock = run(home, "users", "enable", "ann", user="boss", database_url=url)
    assert unlock.returncode == 0, unlock.stderr
    assert attempt(PASSWORD, **quick).returncode == 0
    actions = [action for _, action, _ in audit_rows(store, subject="user:ann")]
    assert actions.count("sign_in_failed") == 4 and actions.count("sign_in_throttled") == 2
    assert actions.count("account_locked") == 1 and "user_enabled" in actions


def _released_sessions(dialogues_manifest: Path) -> list[str]:
    """The demo releases the first half of the committed dialogues (in manifest, i.e. ingest, order)."""
    sessions = [json.loads(line)["session_id"] for line in dialogues_manifest.read_text().splitlines() if line.strip()]
    return sessions[: len(sessions) // 2]


def test_demo_runs_in_a_fresh_home_and_again(tmp_path: Path, dialogues: Path) -> None:
    from lhotse import load_manifest
    from lhotse.qa import validate_recordings_and_supervisions

    home = tmp_path / "fresh"
    first = run(home, "demo", "--no-serve")
    assert first.returncode == 0, first.stderr
    assert "Crossed cells" in first.stdout and "dlg002" in first.stdout
    hours = sum(sf.info(path).duration for path in dialogues.glob("dlg*.flac")) / 3600
    assert ingest_summary(first.stdout) == {"accepted": "6", "rejected": "0", "skipped (already in store)": "0",
                                            "faults": "0", "hours accepted": f"{hours:.3f}"}, first.stdout
    assert (home / "reports" / "coverage.png").stat().st_size > 10_000
    released = _released_sessions(dialogues / "manifest.jsonl")
    assert "release demo-v1 built" in first.stderr and f"{len(released)} recording(s)" in first.stderr

    scp = sorted((home / "pulls" / "demo-v1-kaldi" / "kaldi").glob("*/wav.scp"))
    wavs = [line.split(maxsplit=1) for path in scp for line in path.read_text().splitlines()]
    assert len(wavs) == len(released) and len({key for key, _ in wavs}) == len(released)
    durations = sorted(round(sf.info(path).duration, 2) for _, path in wavs)
    assert all(sf.info(path).samplerate == 16000 for _, path in wavs)
    assert durations == sorted(round(sf.info(dialogues / f"{s}.flac").duration, 2) for s in released)

    lhotse_dir = home / "pulls" / "demo-v1-lhotse" / "lhotse"
    seen = 0
    for recordings_path in sorted(lhotse_dir.glob("recordings_*.jsonl.gz")):
        recordings = load_manifest(recordings_path)
        supervisions = load_manifest(lhotse_dir / recordings_path.name.replace("recordings_", "supervisions_"))
        validate_recordings_and_supervisions(recordings, supervisions, read_data=True)
        assert {s.recording_id for s in supervisions} <= set(recordings.ids)
        seen += len(recordings)
    assert seen == len(released) and {key for key, _ in wavs} == {r.id for p in lhotse_dir.glob("recordings_*")
                                                                   for r in load_manifest(p)}

    second = run(home, "demo", "--no-serve")
    assert second.returncode == 0, second.stderr
    assert ingest_summary(second.stdout) == {"accepted": "0", "rejected": "0", "skipped (already in store)": "6",
                                             "faults": "0", "hours accepted": "0.000"}, second.stdout
    assert "release demo-v1 already built (same content)" in second.stderr


def test_the_demo_refuses_a_store_with_accounts_of_its_own(tmp_path: Path) -> None:
    home = tmp_path / "real"
    store = open_store(load_settings(home))
    add_accounts(store, boss="admin")
    refused = run(home, "demo", "--no-serve")
    assert refused.returncode == 2 and "accounts of its own (boss)" in refused.stderr
    with store.session() as session:  # nothing added: no demo account with a printed password, no protocol
        assert session.scalars(select(models.User.username)).all() == ["boss"]
        assert session.scalars(select(models.Protocol)).all() == []
    store.close()
