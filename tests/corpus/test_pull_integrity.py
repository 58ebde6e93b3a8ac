"""Pulls that must not export what was not released, nor leave anything half-written when the disk fails.

Issue #10 item 12 (audio hashed as it is linked, copied or cut; a mismatch is exit 3 with
the output removed) and the pull half of the fault-injection check (a full disk, a
folder under a file, a read-only folder: exit 4, one line, nothing left behind).
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from corpus.exports.pull import ReleaseDrift, pull_release
from corpus.releases.build import build_release
from store import models
from tests.corpus.conftest import PASSWORD, PROTOCOL_ID, Corpus, stored_entries

BIN = Path(sys.executable).parent / "turnscribe"
ON = dt.date(2026, 11, 1)


@pytest.fixture
def released(corpus: Corpus) -> Corpus:
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v1", on=ON, ratios={"train": 0.6, "dev": 0.2, "test": 0.2})
    return corpus


def _corrupt_one_sample(corpus: Corpus, position: int) -> Path:
    """Change one audio sample of a released working copy in place: still a valid WAV, no longer the released bytes."""
    blob = corpus.store.blobs.path_for(stored_entries(corpus.store, "v1")[position]["working_sha256"])
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x40
    blob.write_bytes(bytes(data))
    return blob


def _pulls(corpus: Corpus) -> int:
    with corpus.store.session() as session:
        return len(session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "release_pull")).all())


@pytest.mark.parametrize("audio", ["link", "include", "cut"])
def test_a_changed_audio_blob_is_refused_and_the_output_removed(released: Corpus, tmp_path: Path, audio: str) -> None:
    key = stored_entries(released.store, "v1")[3]["recording"]
    _corrupt_one_sample(released, 3)
    with pytest.raises(ReleaseDrift, match=f"{key}: audio blob .* hashes to .*not the released"):
        pull_release(released.store, released.consumer, "v1", "lhotse", tmp_path / "out", audio=audio)
    assert not (tmp_path / "out").exists(), "a refused pull leaves nothing behind"
    assert _pulls(released) == 0


def _run(corpus: Corpus, *args: str, limit: int | None = None) -> subprocess.CompletedProcess[str]:
    settings = corpus.store.settings
    env = dict(os.environ, TURNSCRIBE_HOME=str(settings.home), TURNSCRIBE_DATABASE_URL=settings.database_url,
               TURNSCRIBE_USER="connie", TURNSCRIBE_PASSWORD=PASSWORD)

    def full_disk() -> None:  # files may not grow past `limit` bytes: EFBIG, as ENOSPC on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([str(BIN), "corpus", *args], capture_output=True, text=True, env=env, timeout=300,
                          preexec_fn=full_disk if limit else None)


# PostgreSQL: the file-size limit then falls on the pull's own files, not on the database's.
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_pull_cli_drift_is_exit_3_and_faults_are_exit_4_with_nothing_left(released: Corpus, tmp_path: Path) -> None:
    full = _run(released, "pull", "v1", "--format", "kaldi", "--audio", "include", "--out", str(tmp_path / "full"),
                limit=256 * 1024)  # every working copy is larger
    assert full.returncode == 4, full.stderr
    assert "File too large" in full.stderr and "Traceback" not in full.stderr
    assert not (tmp_path / "full").exists()

    (tmp_path / "a-file").write_text("not a folder")
    under = _run(released, "pull", "v1", "--format", "jsonl", "--out", str(tmp_path / "a-file" / "out"))
    assert under.returncode == 4 and "Traceback" not in under.stderr and "a-file" in under.stderr
    assert (tmp_path / "a-file").read_text() == "not a folder"

    if os.geteuid() != 0:  # root writes through permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        refused = _run(released, "pull", "v1", "--format", "jsonl", "--out", str(locked / "out"))
        assert refused.returncode == 4 and "Permission denied" in refused.stderr and "Traceback" not in refused.stderr

    _corrupt_one_sample(released, 0)
    drift = _run(released, "pull", "v1", "--format", "kaldi", "--audio", "link", "--out", str(tmp_path / "k"))
    assert drift.returncode == 3 and "not the released" in drift.stderr and "Traceback" not in drift.stderr
    assert not (tmp_path / "k").exists()
    assert _pulls(released) == 0
