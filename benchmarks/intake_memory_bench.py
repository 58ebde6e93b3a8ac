"""Intake peak memory against file length, and against bare soundfile reading the whole file.

Run: `.venv/bin/python benchmarks/intake_memory_bench.py [--hours 0.5,1,3] [--bare-max-hours 3]`.
Target (issue #10 item 14): peak memory flat in the file's length, under 500 MB for a
3-hour 48 kHz stereo file. Each file is a 48 kHz stereo PCM-16 WAV tiled from a committed
dialogue. Each step runs in its own process, so its peak RSS (ru_maxrss) is its own:

- ingest: `ingest_manifest` into a fresh SQLite store under a copy of the English
  protocol whose duration limit is raised to 4 h, so the file is hashed, decoded,
  measured, written as a working copy and stored (the whole intake path);
- refused: the same file under the protocol as committed (1 h limit): refused from its
  header before decoding;
- bare: `soundfile.read(path, dtype="float32")`, the whole file in memory (what intake
  did before; float32 is the lightest whole read).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DIALOGUES = ROOT / "collection" / "synthetic" / "dialogues"
PROTOCOL = ROOT / "protocols" / "en_dialogue_accents.yaml"
RATE = 48000


def write_long_wav(path: Path, hours: float) -> Path:
    """A 48 kHz stereo WAV of `hours`, written a block at a time (the generator never holds the file)."""
    import soxr

    speech, rate = sf.read(DIALOGUES / "dlg001.flac", dtype="float32")
    block = np.repeat(soxr.resample(speech, rate, RATE)[:, None], 2, axis=1)
    frames = int(hours * 3600 * RATE)
    with sf.SoundFile(path, "w", samplerate=RATE, channels=2, subtype="PCM_16") as out:
        while frames > 0:
            out.write(block[:frames])
            frames -= len(block)
    return path


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def step_ingest(wav: Path, home: Path, limit_hours: float | None) -> dict[str, object]:
    """Ingest one row naming `wav` into a fresh store; limit_hours=None keeps the protocol's own limit."""
    from collection.consent import import_consents
    from collection.intake import ingest_manifest
    from protocols.loader import parse_protocol
    from protocols.registry import register_protocol
    from store.db import open_store
    from store.do_not_collect import DoNotCollect
    from store.settings import Settings

    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'turnscribe.db'}"))
    text = PROTOCOL.read_text()
    if limit_hours is not None:
        text = text.replace("max_duration_s: 3600", f"max_duration_s: {int(limit_hours * 3600)}")
    blocked = DoNotCollect.for_store(store)
    with store.session() as session:
        protocol = register_protocol(session, parse_protocol(text, "bench"), actor="bench").row
        import_consents(session, DIALOGUES / "consent.csv", blocked, actor="bench")
        session.commit()
    row = json.loads((DIALOGUES / "manifest.jsonl").read_text().splitlines()[0])
    row.update(path=wav.name, session_id="bench")
    manifest = wav.parent / "bench.jsonl"
    manifest.write_text(json.dumps(row) + "\n")
    before = _peak_mb()
    started = time.perf_counter()
    report = ingest_manifest(store, protocol.protocol_id, manifest, actor="bench")
    outcome = report.outcomes[0]
    return {"seconds": round(time.perf_counter() - started, 1), "peak_mb": round(_peak_mb(), 1),
            "peak_before_mb": round(before, 1), "status": outcome.status,
            "why": "; ".join(r.message for r in outcome.reasons)[:120]}


def step_bare(wav: Path) -> dict[str, object]:
    started = time.perf_counter()
    samples, _ = sf.read(wav, dtype="float32")
    return {"seconds": round(time.perf_counter() - started, 1), "peak_mb": round(_peak_mb(), 1), "frames": len(samples)}


def _in_process(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, __file__, "--step", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", default="0.5,1,3")
    parser.add_argument("--bare-max-hours", type=float, default=3.0, help="skip the bare whole-file read above this")
    parser.add_argument("--step", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        kind, *rest = args.step
        if kind == "bare":
            result = step_bare(Path(rest[0]))
        else:
            result = step_ingest(Path(rest[0]), Path(rest[1]), float(rest[2]) if rest[2] != "none" else None)
        print(json.dumps(result))
        return
    print(f"{'hours':>6} {'file GB':>8} | {'ingest MB':>9} {'s':>6} {'status':>9} | {'refused MB':>10} {'s':>5} | "
          f"{'bare read MB':>12} {'s':>5} | ingest/bare")
    for hours in (float(h) for h in args.hours.split(",")):
        with tempfile.TemporaryDirectory(prefix="intake-bench-") as tmp:
            folder = Path(tmp)
            wav = write_long_wav(folder / f"long-{hours:g}h.wav", hours)
            size_gb = wav.stat().st_size / 1e9
            ingest = _in_process("ingest", str(wav), str(folder / "home-ingest"), "4")
            shutil.rmtree(folder / "home-ingest", ignore_errors=True)
            refused = _in_process("ingest", str(wav), str(folder / "home-refused"), "none")
            bare = _in_process("bare", str(wav)) if hours <= args.bare_max_hours else {"peak_mb": float("nan"), "seconds": float("nan")}
            ratio = ingest.get("peak_mb", float("nan")) / bare["peak_mb"] if bare.get("peak_mb") else float("nan")  # type: ignore[operator]
            print(f"{hours:>6g} {size_gb:>8.2f} | {ingest.get('peak_mb')!s:>9} {ingest.get('seconds')!s:>6} "
                  f"{ingest.get('status')!s:>9} | {refused.get('peak_mb')!s:>10} {refused.get('seconds')!s:>5} | "
                  f"{bare.get('peak_mb')!s:>12} {bare.get('seconds')!s:>5} | {ratio:.3f}", flush=True)
            if refused.get("status") != "rejected" or ingest.get("error") or refused.get("error"):
                print(f"   ingest: {ingest}\n   refused: {refused}", flush=True)
            elif hours > 1:
                print(f"   refused: {refused['why']}", flush=True)


if __name__ == "__main__":
    main()
