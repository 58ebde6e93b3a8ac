"""The `turnscribe` console script end to end, as a script would run it: outputs and exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import EN_PROTOCOL

BIN = Path(sys.executable).parent / "turnscribe"


def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TURNSCRIBE_HOME=str(home))
    env.pop("TURNSCRIBE_DATABASE_URL", None)
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=300)


def test_help_is_instant_and_lists_stages(tmp_path: Path) -> None:
    result = run(tmp_path, "--help")
    assert result.returncode == 0
    for group in ("protocol", "collect", "demo"):
        assert group in result.stdout


def test_register_consent_ingest_coverage(tmp_path: Path, dialogues: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "protocol", "register", str(EN_PROTOCOL)).returncode == 0
    again = run(home, "protocol", "register", str(EN_PROTOCOL))
    assert again.returncode == 0 and "already registered" in again.stdout
    assert run(home, "collect", "consent", "import", str(dialogues / "consent.csv")).returncode == 0

    rows = (dialogues / "manifest.jsonl").read_text().splitlines()
    bad = json.loads(rows[0])
    bad.update(path="../../etc/passwd", session_id="evil")
    (dialogues / "m.jsonl").write_text("\n".join(rows[:2] + [json.dumps(bad)]) + "\n")
    ingest = run(home, "collect", "ingest", "--protocol", "en-dialogue-accents", str(dialogues / "m.jsonl"))
    assert ingest.returncode == 1, ingest.stderr
    assert "escapes the manifest's folder" in ingest.stderr
    assert "│ 2 " in ingest.stdout and "│ 1 " in ingest.stdout

    out = tmp_path / "coverage.csv"
    png = tmp_path / "coverage.png"
    cov = run(home, "collect", "coverage", "--protocol", "en-dialogue-accents", "--format", "csv",
              "--out", str(out), "--png", str(png))
    assert cov.returncode == 0, cov.stderr
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    total = next(r for r in table if r["scope"] == "total")
    assert total["target_hours"] == "300.0" and int(total["sessions"]) == 2
    assert png.stat().st_size > 10_000

    unknown = run(home, "collect", "coverage", "--protocol", "nope")
    assert unknown.returncode == 2 and "no protocol nope is registered" in unknown.stderr


def test_demo_runs_in_a_fresh_home_and_again(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    first = run(home, "demo", "--no-serve")
    assert first.returncode == 0, first.stderr
    assert "Crossed cells" in first.stdout and "dlg002" in first.stdout
    assert (home / "reports" / "coverage.png").exists()
    assert "release demo-v1 built" in first.stderr and "3 recording(s)" in first.stderr
    assert list((home / "pulls" / "demo-v1-kaldi").rglob("wav.scp")) and list((home / "pulls" / "demo-v1-lhotse").rglob("*.jsonl.gz"))
    second = run(home, "demo", "--no-serve")
    assert second.returncode == 0 and "│ 0        │ 0        │ 6" in second.stdout
    assert "release demo-v1 already built (same content)" in second.stderr
