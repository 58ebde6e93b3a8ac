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

from store.db import Store
from tests.conftest import EN_PROTOCOL

BIN = Path(sys.executable).parent / "turnscribe"
ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "streamlit", "faster_whisper", "ctranslate2", "lhotse", "datasets")
"""What a command that needs none of them must not pay for at start-up."""


def run(home: Path, *args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TURNSCRIBE_HOME=str(home), COLUMNS="200")  # wide enough that no table header wraps
    env.pop("TURNSCRIBE_DATABASE_URL", None)
    if database_url is not None:
        env["TURNSCRIBE_DATABASE_URL"] = database_url
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=300)


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
    for group in ("protocol", "collect", "pretranscribe", "review", "corpus", "governance", "users", "demo"):
        assert any(line.strip("│ ").startswith(group + " ") for line in help_text), group


def test_register_consent_ingest_coverage(store: Store, tmp_path: Path, dialogues: Path) -> None:
    home, url = store.settings.home, store.settings.database_url
    assert run(home, "protocol", "register", str(EN_PROTOCOL), database_url=url).returncode == 0
    again = run(home, "protocol", "register", str(EN_PROTOCOL), database_url=url)
    assert again.returncode == 0 and "already registered" in again.stdout
    assert run(home, "collect", "consent", "import", str(dialogues / "consent.csv"), database_url=url).returncode == 0

    rows = (dialogues / "manifest.jsonl").read_text().splitlines()
    bad = json.loads(rows[0])
    bad.update(path="../../etc/passwd", session_id="evil")
    (dialogues / "m.jsonl").write_text("\n".join(rows[:2] + [json.dumps(bad)]) + "\n")
    ingest = run(home, "collect", "ingest", "--protocol", "en-dialogue-accents", str(dialogues / "m.jsonl"), database_url=url)
    assert ingest.returncode == 1, ingest.stderr
    assert "escapes the manifest's folder" in ingest.stderr
    hours = sum(sf.info(dialogues / json.loads(row)["path"]).duration for row in rows[:2]) / 3600
    assert ingest_summary(ingest.stdout) == {"accepted": "2", "rejected": "1", "skipped (already in store)": "0",
                                             "faults": "0", "hours accepted": f"{hours:.3f}"}, ingest.stdout

    out = tmp_path / "coverage.csv"
    png = tmp_path / "coverage.png"
    cov = run(home, "collect", "coverage", "--protocol", "en-dialogue-accents", "--format", "csv",
              "--out", str(out), "--png", str(png), database_url=url)
    assert cov.returncode == 0, cov.stderr
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    total = next(r for r in table if r["scope"] == "total")
    assert total["target_hours"] == "300.0" and int(total["sessions"]) == 2 and int(total["speakers"]) == 4
    assert float(total["hours"]) == pytest.approx(hours, abs=1e-3)
    assert png.stat().st_size > 10_000

    unknown = run(home, "collect", "coverage", "--protocol", "nope", database_url=url)
    assert unknown.returncode == 2 and "no protocol nope is registered" in unknown.stderr


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
