"""Coverage query time at 100,000 recordings (SQLite and PostgreSQL) and ingest throughput.

Run: `.venv/bin/python benchmarks/coverage_bench.py [--recordings 100000] [--files 120]`.
Targets (issue #2): coverage under 1 s on both databases; at least 20 short files/s ingested.
The store is filled with bulk inserts (not through intake) so the query is what is timed;
the throughput part runs the real intake on short WAV files cut from the committed dialogues.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from collection.consent import import_consents  # noqa: E402
from store.do_not_collect import DoNotCollect  # noqa: E402
from collection.coverage import compute_coverage, fetch_rows, participants_query  # noqa: E402
from collection.intake import ingest_manifest  # noqa: E402
from collection.synthetic import DIALOGUES_DIR  # noqa: E402
from store import models  # noqa: E402
from store.db import Store, open_store  # noqa: E402
from store.settings import Settings, enforce_offline  # noqa: E402
from protocols.loader import parse_protocol  # noqa: E402
from protocols.registry import register_protocol  # noqa: E402
from tests.pg_server import start_postgres  # noqa: E402

PROTOCOL = Path(__file__).resolve().parent.parent / "protocols" / "en_dialogue_accents.yaml"


def four_dimension_protocol():  # type: ignore[no-untyped-def]
    text = PROTOCOL.read_text().replace(
        "dimensions: [age_band, gender, accent]", "dimensions: [age_band, gender, accent, noise_condition]"
    ).replace("      - cell: {age_band: \"60+\", gender: male, accent: caribbean}\n",
              "      - cell: {age_band: \"60+\", gender: male, accent: caribbean, noise_condition: quiet}\n")
    return parse_protocol(text, "bench")


def fill(store: Store, recordings: int, seed: int = 0) -> tuple[models.Protocol, object]:
    """Bulk-insert `recordings` accepted two-speaker recordings with random demographics."""
    protocol = four_dimension_protocol()
    rng = random.Random(seed)
    allowed = protocol.allowed_values()
    n_speakers = max(10, recordings // 10)
    with store.session() as session:
        row = register_protocol(session, protocol, actor="bench").row
        session.commit()
        speakers = [f"s{i:07d}" for i in range(n_speakers)]
        session.execute(insert(models.Speaker), [{"id": s} for s in speakers])
        demo_rows = [
            {"speaker_id": s, "dimension": d.name, "value": rng.choice(d.values)}
            for s in speakers for d in protocol.demographics
        ]
        session.execute(insert(models.SpeakerDemographic), demo_rows)
        sessions, participants, recs = [], [], []
        for i in range(recordings):
            sessions.append({"pk": i + 1, "session_id": f"sess{i:07d}", "protocol_pk": row.pk,
                             "device": rng.choice(allowed["device"]), "noise_condition": rng.choice(allowed["noise_condition"]),
                             "scenario": "booking", "language": "en"})
            a, b = rng.sample(speakers, 2)
            participants += [{"session_pk": i + 1, "speaker_id": a, "consent_id": "c"},
                             {"session_pk": i + 1, "speaker_id": b, "consent_id": "c"}]
            recs.append({"protocol_pk": row.pk, "session_pk": i + 1, "status": "accepted", "reasons": [],
                         "sha256": f"{i:064x}", "source_name": f"r{i}.wav", "duration_s": rng.uniform(60, 900),
                         "n_speakers": 2, "declared": {}})
        for table, rows in ((models.Session, sessions), (models.SessionParticipant, participants), (models.Recording, recs)):
            for start in range(0, len(rows), 20000):
                session.execute(insert(table), rows[start : start + 20000])
        session.commit()
    return row, protocol


def time_coverage(store: Store, row, protocol, repeats: int = 3) -> str:  # type: ignore[no-untyped-def]
    """Best of `repeats` coverage runs, and its ratio to the bare driver reading the participation rows once."""
    best = bare = float("inf")
    for _ in range(repeats):
        with store.session() as session:
            start = time.perf_counter()
            compute_coverage(session, row, protocol)
            best = min(best, time.perf_counter() - start)
            start = time.perf_counter()
            fetch_rows(session, participants_query(row.pk))
            bare = min(bare, time.perf_counter() - start)
    return f"coverage {best:.3f} s (target < 1 s) = {best / bare:.1f}x reading the participations with the bare driver ({bare:.3f} s)"


def short_files(folder: Path, count: int, seconds: float = 12.0) -> Path:
    """`count` distinct short WAV dialogues cut from the committed set, with a manifest."""
    import json

    rows = [json.loads(l) for l in (DIALOGUES_DIR / "manifest.jsonl").read_text().splitlines() if l.strip()]
    audio = {r["path"]: sf.read(DIALOGUES_DIR / r["path"], dtype="float32") for r in rows}
    lines = []
    for i in range(count):
        base = rows[i % len(rows)]
        samples, rate = audio[base["path"]]
        offset = (i // len(rows)) * 160 % max(1, len(samples) - int(seconds * rate))
        name = f"short{i:05d}.wav"
        sf.write(folder / name, samples[offset : offset + int(seconds * rate)], rate, subtype="PCM_16")
        lines.append(json.dumps(dict(base, path=name, session_id=f"short{i:05d}")))
    (folder / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "manifest.jsonl"


def ingest_throughput(home: Path, count: int) -> float:
    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'db.sqlite'}"))
    files = home / "files"
    files.mkdir()
    manifest = short_files(files, count)
    blocked = DoNotCollect.for_store(store)
    with store.session() as session:
        register_protocol(session, parse_protocol(PROTOCOL.read_text(), "en"), actor="bench")
        import_consents(session, DIALOGUES_DIR / "consent.csv", blocked, actor="bench")
        session.commit()
    start = time.perf_counter()
    report = ingest_manifest(store, "en-dialogue-accents", manifest, actor="bench")
    elapsed = time.perf_counter() - start
    assert report.count("accepted") == count, [o for o in report.outcomes if o.status != "accepted"][:3]
    store.close()
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=120)
    args = parser.parse_args()
    enforce_offline()
    print(f"coverage query, {args.recordings} recordings, 4-dimension crossed cells ({dt.date.today()}):")
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = open_store(Settings(home=Path(tmp), database_url=f"sqlite:///{tmp}/bench.db"))
        t0 = time.perf_counter()
        row, protocol = fill(sqlite, args.recordings)
        print(f"  sqlite      fill {time.perf_counter() - t0:6.1f} s   {time_coverage(sqlite, row, protocol)}")
        sqlite.close()
    server = start_postgres()
    try:
        from sqlalchemy import create_engine, text

        admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE bench"))
        admin.dispose()
        with tempfile.TemporaryDirectory() as tmp:
            pg = open_store(Settings(home=Path(tmp), database_url=server.url("bench")))
            t0 = time.perf_counter()
            row, protocol = fill(pg, args.recordings)
            with pg.engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
            print(f"  postgresql  fill {time.perf_counter() - t0:6.1f} s   {time_coverage(pg, row, protocol)}")
            pg.close()
    finally:
        server.stop()
    if args.files <= 0:
        return
    with tempfile.TemporaryDirectory() as tmp:
        rate = ingest_throughput(Path(tmp), args.files)
        print(f"ingest throughput, {args.files} files of 12 s WAV (decode, measure, check, store): {rate:.1f} files/s (target >= 20)")


if __name__ == "__main__":
    main()
