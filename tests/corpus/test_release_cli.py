"""`turnscribe corpus` as a script runs it, signed in with real accounts: outputs, roles and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from sqlalchemy import select

from store import models
from tests.corpus.conftest import PASSWORD, PROTOCOL_ID, Corpus, stored_entries

BIN = Path(sys.executable).parent / "turnscribe"


def run(corpus: Corpus, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    settings = corpus.store.settings
    env = dict(os.environ, TURNSCRIBE_HOME=str(settings.home), TURNSCRIBE_DATABASE_URL=settings.database_url,
               TURNSCRIBE_USER=user, TURNSCRIBE_PASSWORD=PASSWORD)
    return subprocess.run([str(BIN), "corpus", *args], capture_output=True, text=True, env=env, timeout=300)


def test_release_list_show_diff_verify_pull(corpus: Corpus, tmp_path: Path) -> None:
    refused = run(corpus, "connie", "release", "--protocol", PROTOCOL_ID, "--name", "v1")
    assert refused.returncode == 1 and "may not release" in refused.stderr
    bad = run(corpus, "manny", "release", "--protocol", PROTOCOL_ID, "--name", "v1", "--split", "0.9,0.2,0.1")
    assert bad.returncode == 2 and "sum to 1" in bad.stderr
    unknown = run(corpus, "manny", "release", "--protocol", "no-such-plan", "--name", "v1")
    assert unknown.returncode == 2 and "no protocol no-such-plan is registered" in unknown.stderr

    made = run(corpus, "manny", "release", "--protocol", PROTOCOL_ID, "--name", "v1", "--date", "2026-11-01", "--split", "0.6,0.2,0.2")
    assert made.returncode == 0, made.stderr
    with corpus.store.session() as session:
        release_id = session.scalar(select(models.Release.release_id).where(models.Release.name == "v1"))
    assert f"id {release_id}" in made.stdout and "6 recordings" in made.stdout and "11 speakers" in made.stdout
    assert "Speakers new to each split" in made.stdout and "(this is the first release)" in made.stdout
    again = run(corpus, "manny", "release", "--protocol", PROTOCOL_ID, "--name", "v1", "--date", "2026-11-02", "--split", "0.6,0.2,0.2")
    assert again.returncode == 0 and "already holds exactly this state" in again.stdout
    other = run(corpus, "manny", "release", "--protocol", PROTOCOL_ID, "--name", "v1", "--seed", "3")
    assert other.returncode == 1 and "immutable" in other.stderr
    second = run(corpus, "manny", "release", "--protocol", PROTOCOL_ID, "--name", "v2", "--seed", "3")
    assert second.returncode == 0 and "No speaker changed split" in second.stdout and "11 kept the split" in second.stdout
    third = run(corpus, "manny", "release", "--protocol", PROTOCOL_ID, "--name", "v3", "--date", "2026-11-01", "--split", "0.6,0.2,0.2",
                "--seed", "3", "--reassign-splits")  # v1 but for the seed, splits assigned afresh
    assert third.returncode == 0, third.stderr
    changed = json.loads(run(corpus, "connie", "diff", "v1", "v3", "--format", "json").stdout)
    splits = {name: {e["recording"]: e["split"] for e in stored_entries(corpus.store, name)} for name in ("v1", "v3")}
    moved = sorted((k for k in splits["v1"] if splits["v1"][k] != splits["v3"][k]), key=lambda k: int(k[4:]))
    assert moved, "seed 3 moves recordings between splits (else this diff checks nothing)"
    assert changed["counts"]["recordings added"] == 0 and changed["recordings"]["split_changed"] == moved

    listed = run(corpus, "connie", "list")
    assert listed.returncode == 0 and "v1" in listed.stdout and release_id[:16] in listed.stdout
    card = run(corpus, "connie", "show", "v1")
    assert card.returncode == 0 and card.stdout.startswith("# v1") and "## Coverage against the protocol" in card.stdout
    as_json = json.loads(run(corpus, "connie", "show", "v1", "--format", "json").stdout)
    assert as_json["release"]["release_id"] == release_id

    verified = run(corpus, "connie", "verify", "v1")
    assert verified.returncode == 0 and "6 recording(s) re-hashed" in verified.stdout and "no drift" in verified.stdout

    pulled = run(corpus, "connie", "pull", "v1", "--format", "kaldi", "--out", str(tmp_path / "k"))
    assert pulled.returncode == 0, pulled.stderr
    assert "6 recordings" in pulled.stdout
    kaldi = tmp_path / "k" / "kaldi"
    assert sorted(p.name for p in kaldi.iterdir()) == sorted({e["split"] for e in stored_entries(corpus.store, "v1")})
    wavs = dict(line.split(maxsplit=1) for scp in kaldi.glob("*/wav.scp") for line in scp.read_text().splitlines())
    assert sorted(wavs) == sorted(f"rec-{pk}" for pk in corpus.recordings.values())
    assert all(sf.info(path).samplerate == 16000 for path in wavs.values())
    truth = [t["text"] for d in corpus.recordings for t in json.loads((corpus.dialogues / f"{d}.turns.json").read_text())]
    text = [line.split(maxsplit=1)[1] for f in kaldi.glob("*/text") for line in f.read_text().splitlines()]
    assert sorted(text) == sorted(" ".join(t.split()) for t in truth), "every approved turn, as approved"
    again_pull = run(corpus, "connie", "pull", "v1", "--format", "kaldi", "--out", str(tmp_path / "k"))
    assert again_pull.returncode == 2 and "not an empty folder" in again_pull.stderr
    unknown = run(corpus, "connie", "pull", "v1", "--format", "flac", "--out", str(tmp_path / "f"))
    assert unknown.returncode == 2 and "formats: lhotse" in unknown.stderr
    annotator = run(corpus, "annie", "pull", "v1", "--format", "jsonl", "--out", str(tmp_path / "a"))
    assert annotator.returncode == 1 and "may not pull release" in annotator.stderr and not (tmp_path / "a").exists()

    missing = run(corpus, "connie", "diff", "v1", "v0")
    assert missing.returncode == 2 and "no release named 'v0'" in missing.stderr


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # refused on the name alone: one database is enough
def test_unsafe_release_names_are_refused_and_never_reach_the_terminal_raw(corpus: Corpus) -> None:
    for name in ("..", "-dash", "v1\x1b[2J\x1b]0;pwned\x07", "a/b", "x" * 129):
        refused = run(corpus, "manny", "release", "--protocol", PROTOCOL_ID, "--name", name)
        assert refused.returncode == 2, (name, refused.stderr)
        assert "use 1-128 letters, digits" in " ".join(refused.stderr.split())
        assert "\x1b" not in refused.stderr + refused.stdout and "\x07" not in refused.stderr
    escaped = run(corpus, "manny", "show", "v1\x1b[2J")  # an unknown name is echoed, escaped
    assert escaped.returncode == 2 and "\\x1b[2J" in escaped.stderr and "\x1b" not in escaped.stderr
    with corpus.store.session() as session:
        assert session.scalars(select(models.Release)).all() == []
