"""Release build and pull (Lhotse, Kaldi; audio linked) at 1,000 and 10,000 recordings: time and peak memory.

Run: `.venv/bin/python benchmarks/release_bench.py [--sizes 1000,10000] [--database sqlite|postgresql]`.
Target (issue #5): memory flat as the release grows. Each step (release, pull lhotse,
pull kaldi) runs in its own process so its peak RSS is its own; the table gives the
peak's growth over the process's footprint after imports, and the 10k/1k ratios.
The store is filled by bulk inserts (metadata only): every recording is a two-speaker
dialogue with six approved turns and a shared 2 s working-copy WAV.

Reading the figures: a pull reads the release's entry rows (release_entries) and their
turns a batch at a time by primary key and holds one batch in Python; on SQLite it also
frees the connection's page cache between batches (`PRAGMA shrink_memory`), so that
part is flat on both databases. What still grows on SQLite is reading the two header
fields a pull needs (format, created_from) by JSON path: SQLite parses the whole stored
header, which keeps the speaker index and one entry digest per recording (about 100
bytes per recording, ~3 MiB of peak at 10,000). On PostgreSQL that parse is server-side.
Kaldi's export sorts its files in runs of up to 50,000 lines in memory
(corpus/exports/kaldi.py), which grows until a split reaches that many utterances and
then stays. A release build holds its whole manifest (header and entries) plus the
quality figures' working set.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from store import models  # noqa: E402
from store.accounts import add_user, load_principal  # noqa: E402
from store.db import open_store  # noqa: E402
from store.settings import Settings, enforce_offline  # noqa: E402
from protocols.loader import load_protocol  # noqa: E402
from protocols.registry import register_protocol  # noqa: E402

PROTOCOL = Path(__file__).resolve().parent.parent / "protocols" / "en_dialogue_accents.yaml"
PASSWORD = "bench-password-1"
STEPS = ("release", "pull-lhotse", "pull-kaldi")


def _wav() -> bytes:
    buffer = io.BytesIO()
    tone = 0.1 * np.sin(2 * np.pi * 220 * np.arange(32000) / 16000)
    sf.write(buffer, tone.astype(np.float32), 16000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _turns(rng: random.Random, a: str, b: str) -> list[dict]:
    turns, t = [], 0.0
    for i in range(6):
        words = [rng.choice(["yes", "table", "friday", "six", "thirty", "please", "book", "evening"]) for _ in range(5)]
        step = 0.06
        turns.append({"speaker": a if i % 2 == 0 else b, "start": round(t, 3), "end": round(t + 5 * step, 3), "text": " ".join(words),
                      "words": [{"text": w, "start": round(t + j * step, 3), "end": round(t + (j + 1) * step, 3), "probability": 0.9}
                                for j, w in enumerate(words)]})
        t += 0.32
    return turns


def fill(home: Path, url: str, recordings: int, seed: int = 0) -> None:
    """A store with `recordings` accepted, approved two-speaker recordings and valid consent."""
    store = open_store(Settings(home=home, database_url=url))
    protocol = load_protocol(PROTOCOL)
    rng = random.Random(seed)
    working = store.blobs.put_bytes(_wav())
    with store.session() as session:
        row = register_protocol(session, protocol, actor="bench").row
        add_user(session, "manager", PASSWORD, ["manager"], actor="bench")
        add_user(session, "consumer", PASSWORD, ["consumer"], actor="bench")
        session.commit()
        speakers = [f"s{i:07d}" for i in range(max(10, recordings // 5))]
        session.execute(insert(models.Speaker), [{"id": s} for s in speakers])
        session.execute(insert(models.SpeakerDemographic), [
            {"speaker_id": s, "dimension": d.name, "value": rng.choice(d.values)} for s in speakers for d in protocol.demographics])
        session.execute(insert(models.Consent), [
            {"consent_id": f"c-{s}", "speaker_id": s, "form_version": "v3", "permitted_uses": ["model_training"],
             "granted_on": dt.date(2026, 1, 1), "expires_on": dt.date(2031, 1, 1), "withdrawn_on": None} for s in speakers])
        allowed = protocol.allowed_values()
        sessions, participants, recs, revisions = [], [], [], []
        for i in range(recordings):
            a, b = rng.sample(speakers, 2)
            sessions.append({"pk": i + 1, "session_id": f"sess{i:07d}", "protocol_pk": row.pk, "device": rng.choice(allowed["device"]),
                             "noise_condition": rng.choice(allowed["noise_condition"]), "scenario": "booking", "language": "en"})
            participants += [{"session_pk": i + 1, "speaker_id": a, "consent_id": f"c-{a}"},
                             {"session_pk": i + 1, "speaker_id": b, "consent_id": f"c-{b}"}]
            recs.append({"pk": i + 1, "protocol_pk": row.pk, "session_pk": i + 1, "status": "accepted", "reasons": [],
                         "sha256": f"{i:064x}", "working_sha256": working, "source_name": f"r{i}.wav", "sample_rate": 16000,
                         "duration_s": 2.0, "n_speakers": 2, "declared": {}})
            revisions.append({"recording_pk": i + 1, "author_kind": "person", "author": "reviewer", "author_params": {},
                              "turns": _turns(rng, a, b), "stage": "approved"})
        for table, rows in ((models.Session, sessions), (models.SessionParticipant, participants),
                            (models.Recording, recs), (models.TranscriptRevision, revisions)):
            for start in range(0, len(rows), 5000):
                session.execute(insert(table), rows[start:start + 5000])
        session.commit()
    store.close()


def child(step: str, home: Path, url: str, out: Path) -> None:
    """Run one step and print its wall time and peak RSS (this process only) as JSON."""
    from corpus.exports.pull import pull_release
    from corpus.releases.build import build_release

    import corpus.exports.kaldi  # noqa: F401 - imports paid before the baseline
    import corpus.exports.lhotse_manifests  # noqa: F401
    import lhotse  # noqa: F401

    store = open_store(Settings(home=home, database_url=url))
    with store.session() as session:
        principal = load_principal(session, "manager")  # signed in already: no argon2 (64 MiB) in the measured peak
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if step == "release":
        build_release(store, principal, "en-dialogue-accents", "bench", on=dt.date(2026, 11, 1))
    else:
        pull_release(store, principal, "bench", step.removeprefix("pull-"), out, audio="link")
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "baseline_mib": baseline / 1024, "peak_mib": peak / 1024}))


def run_size(recordings: int, database: str, pg_url: str | None) -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        url = pg_url or f"sqlite:///{home / 'turnscribe.db'}"
        t0 = time.perf_counter()
        fill(home, url, recordings)
        print(f"  filled {recordings} recordings in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        results = {}
        for step in STEPS:
            cmd = [sys.executable, __file__, "--child", step, "--home", str(home), "--url", url, "--out", str(Path(tmp) / step)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{step} failed:\n{done.stderr}")
            results[step] = json.loads(done.stdout.strip().splitlines()[-1])
        return results


def _pg_url(recordings: int):  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine, text

    from tests.pg_server import start_postgres

    server = start_postgres()
    name = f"bench{recordings}"
    engine = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server, server.url(name)


def main() -> None:
    enforce_offline()
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--child", choices=STEPS)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--url")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.home, args.url, args.out)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    table: dict[int, dict[str, dict]] = {}
    for size in sizes:
        server = None
        pg_url = None
        if args.database == "postgresql":
            server, pg_url = _pg_url(size)
        try:
            table[size] = run_size(size, args.database, pg_url)
        finally:
            if server is not None:
                server.stop()
    print(f"\nRelease benchmark ({args.database}; recordings of 2 s, 6 turns, 2 speakers; audio linked)")
    print(f"{'step':<14}" + "".join(f"{f'{n} rec: s':>14}{'peak +MiB':>11}" for n in sizes)
          + (f"{'time x':>9}{'mem x':>8}" if len(sizes) > 1 else ""))
    for step in STEPS:
        cells = ""
        for n in sizes:
            r = table[n][step]
            cells += f"{r['seconds']:>14.2f}{r['peak_mib'] - r['baseline_mib']:>11.1f}"
        if len(sizes) > 1:
            a, b = table[sizes[0]][step], table[sizes[-1]][step]
            grow_a = max(a["peak_mib"] - a["baseline_mib"], 0.1)
            cells += f"{b['seconds'] / a['seconds']:>9.1f}{(b['peak_mib'] - b['baseline_mib']) / grow_a:>8.1f}"
        print(f"{step:<14}{cells}")
    print("peak +MiB: peak RSS of the step's process minus its RSS after imports and opening the store"
          + (" (includes SQLite's page cache, up to 64 MiB per connection; pulls free it between batches)."
             if args.database == "sqlite" else "."))


if __name__ == "__main__":
    main()
