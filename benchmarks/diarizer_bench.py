"""DER, JER and real-time factor of the embedded diarizer on a folder of dialogues.

`python benchmarks/diarizer_bench.py [--vad webrtc] [DIR]` (default: the committed synthetic set),
scored with pyannote.metrics (no collar, overlap scored), num_speakers=2.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from typing import Any

from diarization.embedded import SAMPLE_RATE, EmbeddedDiarizer, EmbeddedOptions
# ---------------------------------------------------------------------------------


def measure(options: EmbeddedOptions | None = None, directory: Any = None) -> dict[str, Any]:
    """DER and JER (pyannote.metrics, no collar, overlap scored) and the real-time factor of
    this diarizer on the committed synthetic dialogues, with num_speakers=2."""
    import os
    import time
    from pathlib import Path

    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
    from pyannote.core import Annotation, Segment
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    from collection.decoding import decode, to_working_rate
    from collection.synthetic import DIALOGUES_DIR

    folder = Path(directory) if directory is not None else DIALOGUES_DIR
    diarizer = EmbeddedDiarizer(options)
    der = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    jer = JaccardErrorRate(collar=0.0, skip_overlap=False)
    files: dict[str, dict[str, float]] = {}
    seconds = audio_seconds = 0.0
    for flac in sorted(folder.glob("*.flac")):
        uri = flac.stem
        decoded = decode(flac)
        audio = to_working_rate(decoded.samples, decoded.sample_rate)
        if not files:
            diarizer(audio[: 2 * SAMPLE_RATE], num_speakers=2)  # warm-up (first-call allocations)
        start = time.perf_counter()
        result = diarizer(audio, num_speakers=2)
        elapsed = time.perf_counter() - start
        seconds += elapsed
        audio_seconds += len(audio) / SAMPLE_RATE
        reference = load_rttm(flac.with_suffix(".rttm"))[uri]
        hypothesis = Annotation(uri=uri)
        for segment in result.segments:
            hypothesis[Segment(segment.start, segment.end)] = segment.speaker
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "uem was approximated": the extents are the file's
            parts = der(reference, hypothesis, detailed=True)
            files[uri] = {"der": parts["diarization error rate"], "jer": jer(reference, hypothesis),
                          "missed": parts["missed detection"], "false_alarm": parts["false alarm"],
                          "confusion": parts["confusion"], "total": parts["total"], "seconds": elapsed,
                          "rtf": elapsed / (len(audio) / SAMPLE_RATE)}
    return {"files": files, "der": abs(der), "jer": abs(jer), "rtf": seconds / max(audio_seconds, 1e-9),
            "options": asdict(diarizer.options)}


def main(argv: list[str] | None = None) -> None:
    """Print per-file and total DER, JER and RTF."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("directory", nargs="?",
                        help="dialogues as <id>.flac + <id>.rttm (default: the committed set)")
    parser.add_argument("--vad", choices=("silero", "webrtc"), default="silero")
    args = parser.parse_args(argv)
    report = measure(EmbeddedOptions(vad=args.vad), args.directory)
    print(f"{'file':10s} {'DER':>7s} {'JER':>7s} {'miss':>6s} {'FA':>6s} {'conf':>6s} {'ref s':>6s} {'RTF':>7s}")
    for uri, row in report["files"].items():
        print(f"{uri:10s} {row['der']:7.2%} {row['jer']:7.2%} {row['missed']:6.2f} {row['false_alarm']:6.2f} "
              f"{row['confusion']:6.2f} {row['total']:6.1f} {row['rtf']:7.4f}")
    print(f"{'total':10s} {report['der']:7.2%} {report['jer']:7.2%} {'':27s} {report['rtf']:7.4f}")


if __name__ == "__main__":
    main()
