"""Pre-annotation speed and memory, measured in one run on the same audio.

Run: `.venv/bin/python benchmarks/pretranscribe_bench.py [--long-minutes 60] [--model tiny.en] [--device auto]`.
Reports (issue #3 targets):
1. our ASR stage's time / bare faster-whisper's, same model, audio and settings (target <= 1.10);
2. sequential vs faster-whisper's BatchedInferencePipeline: WER and time on the committed dialogues;
3. end-to-end real-time factor, ASR + embedded diarizer (target <= 0.15 on a 2-core CPU with tiny.en int8);
4. peak resident memory pre-annotating one long recording in a child process (target < 2.5 GB for an hour).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asr.evaluation import normalize  # noqa: E402
from asr.models import resolve_model  # noqa: E402
from asr.preannotate import Preannotator, PreannotationSettings  # noqa: E402
from asr.transcriber import Transcriber, options_for  # noqa: E402
from benchmarks.decoding_bench import bare_model  # noqa: E402
from collection.decoding import decode, to_working_rate  # noqa: E402
from collection.synthetic import DIALOGUES_DIR  # noqa: E402
from store.settings import enforce_offline  # noqa: E402

NAMES = [f"dlg00{i}" for i in range(1, 7)]


def dialogues() -> dict[str, np.ndarray]:
    out = {}
    for name in NAMES:
        decoded = decode(DIALOGUES_DIR / f"{name}.flac")
        out[name] = to_working_rate(decoded.samples, decoded.sample_rate)
    return out


def reference_text(name: str) -> str:
    return normalize(" ".join(t["text"] for t in json.loads((DIALOGUES_DIR / f"{name}.turns.json").read_text())))


def asr_overhead(audio: dict[str, np.ndarray], transcriber: Transcriber, repeats: int) -> tuple[float, float]:
    """Best-of-`repeats` seconds for ours and for bare WhisperModel.transcribe with identical arguments."""
    opts = transcriber.options
    kwargs = dict(language="en", beam_size=opts.beam_size, word_timestamps=True, vad_filter=opts.vad_filter,
                  compression_ratio_threshold=opts.compression_ratio_threshold, log_prob_threshold=opts.log_prob_threshold,
                  no_speech_threshold=opts.no_speech_threshold, condition_on_previous_text=opts.condition_on_previous_text,
                  hallucination_silence_threshold=opts.hallucination_silence_threshold,
                  temperature=list(opts.temperatures))
    plain = bare_model(transcriber)
    ours, bare = float("inf"), float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for x in audio.values():
            segments, _ = plain.transcribe(x, **kwargs)
            [w for s in segments for w in (s.words or [])]
        bare = min(bare, time.perf_counter() - start)
        start = time.perf_counter()
        for x in audio.values():
            transcriber.transcribe(x, language="en", speech_regions=[(0.0, len(x) / 16000)])
        ours = min(ours, time.perf_counter() - start)
    return ours, bare


def wer_of(transcriber: Transcriber, audio: dict[str, np.ndarray]) -> tuple[float, float, int]:
    import jiwer

    errors = words = n_words = 0
    start = time.perf_counter()
    for name, x in audio.items():
        result = transcriber.transcribe(x, language="en")
        ref = reference_text(name)
        out = jiwer.process_words(ref, normalize(" ".join(w["text"] for w in result.words)))
        errors += out.substitutions + out.deletions + out.insertions
        words += len(ref.split())
        n_words += len(result.words)
    return errors / words, time.perf_counter() - start, n_words


def long_recording_child(minutes: float, model: str, device: str) -> None:
    """Runs in a child process: pre-annotate `minutes` of tiled dialogue, print peak RSS and RTF."""
    audio = dialogues()
    rng = np.random.default_rng(0)
    target = int(minutes * 60 * 16000)
    pieces, total = [], 0
    while total < target:
        x = audio[NAMES[rng.integers(len(NAMES))]]
        pieces.append(x)
        total += len(x)
    long = np.concatenate(pieces)[:target]
    del pieces, audio
    with tempfile.TemporaryDirectory() as tmp:
        pre = Preannotator(PreannotationSettings(asr_model=model, device=device), Path(tmp))
        result = pre(long, num_speakers=2, language="en")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(json.dumps({"peak_gb": peak, "rtf": result.real_time_factor, "turns": len(result.turns),
                      "audio_min": len(long) / 16000 / 60}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    enforce_offline()
    if args.child:
        long_recording_child(args.long_minutes, args.model, args.device)
        return
    audio = dialogues()
    seconds = sum(len(x) for x in audio.values()) / 16000
    with tempfile.TemporaryDirectory() as tmp:
        model = resolve_model(args.model, Path(tmp))
        sequential = Transcriber(model, options_for(args.model), device=args.device)
        print(f"model {args.model} on {sequential.device.device}/{sequential.device.compute_type}, "
              f"{len(audio)} dialogues, {seconds:.0f} s of audio")
        ours, bare = asr_overhead(audio, sequential, args.repeats)
        print(f"1. ASR stage: ours {ours:.2f} s, bare faster-whisper {bare:.2f} s, ratio {ours / bare:.3f} (target <= 1.10)")
        batched = Transcriber(model, options_for(args.model, batched=True), device=args.device)
        for name, t in (("sequential", sequential), ("batched", batched)):
            wer, spent, n = wer_of(t, audio)
            print(f"2. {name:10s} WER {100 * wer:5.1f}%  {n} words  RTF {spent / seconds:.3f}")
        pre = Preannotator(PreannotationSettings(asr_model=args.model, device=args.device), Path(tmp))
        pre(audio[NAMES[0]], num_speakers=2, language="en")  # warm-up
        start = time.perf_counter()
        for x in audio.values():
            pre(x, num_speakers=2, language="en")
        rtf = (time.perf_counter() - start) / seconds
        print(f"3. end-to-end (ASR + embedded diarizer) RTF {rtf:.3f} (target <= 0.15)")
    child = subprocess.run([sys.executable, __file__, "--child", "--long-minutes", str(args.long_minutes),
                            "--model", args.model, "--device", args.device], capture_output=True, text=True, check=False)
    if child.returncode != 0:
        print(f"4. long recording failed: {child.stderr[-2000:]}")
        return
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"4. {figures['audio_min']:.0f} min recording: peak RSS {figures['peak_gb']:.2f} GB (target < 2.5 GB), "
          f"RTF {figures['rtf']:.3f}, {figures['turns']} turns")


if __name__ == "__main__":
    main()
