"""faster-whisper transcription with word timings and the guards dialogue needs.

Whisper fails on dialogue in known ways: text in silence or noise, repetition loops,
words placed where nobody speaks. Guards, each recorded in the result's params:
- faster-whisper's own no-speech, log-probability and compression-ratio thresholds
  (with temperature fallback) and `hallucination_silence_threshold`; its Silero VAD
  gating (`vad_filter`) is available but off: it lost words (MODEL_DEFAULTS);
- words whose alignment collapses to one instant are kept (faster-whisper drops their
  whole segment when word timestamps are on; bare faster-whisper without them keeps it);
- `drop_outside_speech`: words whose span does not touch a speech region (from the
  diarizer or webrtcvad) are dropped;
- `max_repeats`: a phrase repeated back-to-back more than this many times, faster than
  a person speaks, keeps only its first `max_repeats` occurrences (the loop signature).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from asr.devices import DeviceChoice, choose_device
from asr.models import ModelDirectory, ModelUnavailable

log = logging.getLogger(__name__)
Word = dict[str, Any]  # {"text", "start", "end", "probability"}


@dataclass(frozen=True)
class AsrOptions:
    """Every decoding knob; echoed into each pre-annotation's provenance."""

    beam_size: int = 5
    language: str | None = None
    vad_filter: bool = False  # faster-whisper's Silero VAD gate: off, see MODEL_DEFAULTS
    condition_on_previous_text: bool = False
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    per_turn: bool = False
    turn_padding_s: float = 0.2
    vocabulary_via: str = "hotwords"
    compression_ratio_threshold: float = 2.4
    log_prob_threshold: float = -1.0
    no_speech_threshold: float = 0.6
    hallucination_silence_threshold: float | None = 2.0
    drop_outside_speech: bool = True
    max_repeats: int = 3
    batched: bool = False
    batch_size: int = 8
    cpu_threads: int = 2
    chunk_s: float = 600.0
    seed: int = 0  # temperature fallback samples: seeded per recording (`Transcriber.transcribe`), the same audio
    # gives the same words whatever the process transcribed before


CHOSEN_DECODING: dict[str, Any] = {
    "beam_size": 5, "temperatures": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0), "condition_on_previous_text": False,
    "vad_filter": False, "hallucination_silence_threshold": 2.0, "per_turn": False,
}
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    # Chosen with benchmarks/decoding_bench.py on the committed synthetic set (seed 0, 6 dialogues)
    # and checked on the unseen seed-11 set (8 dialogues), int8 on a 2-core CPU, against bare
    # WhisperModel.transcribe (library defaults) per file. The rule: never worse than bare on a
    # file, then the lowest WER. faster-whisper's Silero VAD gate (`vad_filter`) is what lost:
    # with it tiny.en was worse than bare on 4/6 committed and 2/8 unseen files (it cuts short
    # replies and the starts of turns), base on 2/6 and 4/8; without it 0 files on either set,
    # for both models (tiny.en 35.7% vs bare 35.7% committed, 39.6% vs 40.0% unseen; base
    # 26.5%/26.5% and 27.9%/27.9%). The silence it gated is covered by `drop_outside_speech`.
    # Conditioning on previous text and the silence-skip threshold changed no file's WER here;
    # conditioning stays off (it feeds Whisper's loops). Per-turn decoding was worse on 10/14
    # files (tiny.en), beam 1 on 10/14, so neither is used. Full table: decoding_bench's output.
    "tiny.en": dict(CHOSEN_DECODING),
    "base": dict(CHOSEN_DECODING),
}
"""The decoding defaults per shipped model (asr.models.PACKAGED); `AsrOptions`' own equal them."""


def options_for(model: str, **overrides: Any) -> AsrOptions:
    """The decoding defaults chosen for `model` (AsrOptions' own for a model not measured), then `overrides`."""
    return replace(AsrOptions(), **{**MODEL_DEFAULTS.get(model, {}), **overrides})


@dataclass
class AsrResult:
    words: list[Word]
    language: str
    language_probability: float
    duration: float
    dropped: dict[str, int] = field(default_factory=dict)


def collapse_loops(words: list[Word], max_repeats: int, max_rate: float = 6.0) -> tuple[list[Word], int]:
    """Cut back-to-back repeats of a 1–6 word phrase beyond `max_repeats` when they are a decoding loop.

    A loop is told from real repetition ("no, no, no, no") by its timing: Whisper squeezes
    looped words into implausibly short spans, so a run is cut only when it is spoken
    faster than `max_rate` words per second. Returns (kept words, number dropped).
    """
    norm = [w["text"].strip().lower().strip(".,!?") for w in words]
    keep = [True] * len(words)
    i = 0
    while i < len(words):
        best = None
        for n in range(1, 7):
            reps = 1
            while i + (reps + 1) * n <= len(words) and norm[i + reps * n : i + (reps + 1) * n] == norm[i : i + n]:
                reps += 1
            if reps > max_repeats and (best is None or reps * n > best[0] * best[1]):
                best = (reps, n)
        if best is None:
            i += 1
            continue
        reps, n = best
        run = words[i : i + reps * n]
        rate = len(run) / max(run[-1]["end"] - run[0]["start"], 1e-3)
        if rate > max_rate:
            for j in range(i + max_repeats * n, i + reps * n):
                keep[j] = False
        i += reps * n
    kept = [w for w, k in zip(words, keep) if k]
    return kept, len(words) - len(kept)


def chunk_bounds(duration: float, regions: list[tuple[float, float]], chunk_s: float, search_s: float = 30.0) -> list[float]:
    """Cut points about every `chunk_s` seconds, moved into the longest pause nearby.

    faster-whisper computes features for the whole input at once, so an hour in one call
    costs gigabytes; chunks cut inside pauses keep memory bounded and lose no words.
    """
    cuts = [0.0]
    spans: list[tuple[float, float]] = []
    for start, end in sorted(regions):  # overlapping regions (two speakers at once) are one stretch of speech
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    while duration - cuts[-1] > chunk_s:
        target = cuts[-1] + chunk_s
        gaps = [(b[0] - a[1], (a[1] + b[0]) / 2) for a, b in zip(spans, spans[1:])
                if cuts[-1] < (a[1] + b[0]) / 2 < duration and target - search_s <= (a[1] + b[0]) / 2 <= target + search_s]
        cuts.append(max(gaps)[1] if gaps else target)
    return cuts + [duration]


def inside_speech(words: list[Word], regions: Iterable[tuple[float, float]], tolerance: float = 0.2) -> tuple[list[Word], int]:
    """Keep words that touch a speech region (± `tolerance` s)."""
    spans = sorted(regions)
    kept = [w for w in words if any(s - tolerance < w["end"] and w["start"] < e + tolerance for s, e in spans)]
    return kept, len(words) - len(kept)


def load_whisper(model: ModelDirectory, device: str = "auto", compute_type: str | None = None, fallback: bool = False,
                 cpu_threads: int = 2) -> tuple[Any, DeviceChoice]:
    """A faster-whisper `WhisperModel` from a local directory (never the hub) and the device it runs on."""
    choice = choose_device(device, compute_type, fallback)
    try:
        whisper = _word_keeping_model_class()(str(model.path), device=choice.device, compute_type=choice.compute_type,
                               cpu_threads=cpu_threads, local_files_only=True)
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelUnavailable(f"cannot load Whisper model from {model.path}: {exc}") from exc
    expected = whisper.feature_extractor.mel_filters.shape[0]
    if whisper.model.n_mels != expected:
        raise ModelUnavailable(
            f"{model.path} expects {whisper.model.n_mels} mel bins but no preprocessor_config.json says so "
            f"(faster-whisper assumed {expected}); copy the model's preprocessor_config.json into the directory"
        )
    return whisper, choice


def speech_clips(regions: Iterable[tuple[float, float]], duration: float, padding_s: float) -> list[float]:
    """faster-whisper `clip_timestamps` for per-turn decoding: each stretch of speech, padded.

    Regions that overlap or touch after padding (two speakers at once, a quick reply)
    become one clip: a clip is decoded on its own, and a word cut between two clips is lost.
    """
    clips: list[list[float]] = []
    for start, end in sorted(regions):
        start, end = max(0.0, start - padding_s), min(duration, end + padding_s)
        if clips and start <= clips[-1][1]:
            clips[-1][1] = max(clips[-1][1], end)
        elif end > start:
            clips.append([start, end])
    return [round(t, 3) for clip in clips for t in clip]


VOCABULARY_VIA = ("hotwords", "prompt", "both")


def vocabulary_arguments(vocabulary: Sequence[str], via: str) -> dict[str, str]:
    """faster-whisper arguments that show a protocol's vocabulary to the decoder.

    `hotwords` is put before every 30 s window; `initial_prompt` only before the first
    (and the following ones when conditioning on previous text).
    """
    if via not in VOCABULARY_VIA:
        raise ValueError(f"vocabulary_via must be one of {', '.join(VOCABULARY_VIA)}, not {via!r}")
    if not vocabulary:
        return {}
    text = ", ".join(vocabulary)
    return {"hotwords": text} if via == "hotwords" else {"initial_prompt": text} if via == "prompt" else \
        {"hotwords": text, "initial_prompt": text}


FRAME_S = 0.02  # one Whisper output frame: the finest time a word can be given


def _word_keeping_model_class():  # type: ignore[no-untyped-def]
    """faster-whisper's WhisperModel, except that words whose alignment collapses to one instant are kept.

    With word timestamps on, faster-whisper moves a segment's bounds to its words' and then
    skips every segment whose start equals its end, text and all: on dlg001 (tiny.en) that
    lost "Lovely." which the same decoding without word timestamps keeps, and made the
    stage worse than bare faster-whisper. Such a segment and its words get one frame.
    Text decoded in a last window of one frame (20 ms; a vocabulary prompt can make
    tiny.en write there) cannot be aligned, and faster-whisper's alignment crashes on it:
    it gets no words.
    """
    from faster_whisper import WhisperModel

    class WordKeepingWhisperModel(WhisperModel):
        def add_word_timestamps(self, segments, tokenizer, encoder_output, num_frames, *args, **kwargs):  # type: ignore[no-untyped-def]
            # a last window of one frame: faster-whisper's alignment raises IndexError on it (the batched
            # pipeline passes a list of frame counts, one per clip: left to the library)
            if isinstance(num_frames, int) and num_frames < 2:
                for segment in segments or []:
                    for subsegment in segment:
                        subsegment["words"] = []
                return kwargs.get("last_speech_timestamp", args[-1] if args else 0.0)
            last = super().add_word_timestamps(segments, tokenizer, encoder_output, num_frames, *args, **kwargs)
            for segment in segments or []:
                for subsegment in segment:
                    if subsegment.get("words") and subsegment["end"] <= subsegment["start"]:
                        subsegment["end"] = round(subsegment["start"] + FRAME_S, 2)
                        for word in subsegment["words"]:
                            word["end"] = max(word["end"], round(word["start"] + FRAME_S, 2))
            return last

    return WordKeepingWhisperModel


class SamplingWatch:
    """The CTranslate2 model under a `WhisperModel`, noting whether a decode sampled.

    Temperature fallback samples (`sampling_temperature` > 0), and CTranslate2 draws those samples
    from a generator that each of its decoding threads seeds once, on its first draw
    (`static thread_local std::mt19937` in its random.cc): `ctranslate2.set_random_seed` does not
    reach a thread that has already sampled. A loaded model's threads live as long as it does, so
    after one recording sampled, the next recording's samples continued that sequence, and its
    words depended on what the process had transcribed before (tiny.en, the eight dialogues of
    seed 260 in one process: the eighth gave 73 words, 74 when transcribed alone).
    """

    def __init__(self, model: Any) -> None:
        self._model = model
        self.sampled = False

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("sampling_temperature", 1.0) > 0 and kwargs.get("sampling_topk", 1) != 1:
            self.sampled = True
        return self._model.generate(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


class Transcriber:
    """A loaded Whisper model; `transcribe` is safe to call on many recordings in turn, and gives
    each the words it would get in a fresh process (see `SamplingWatch`)."""

    def __init__(self, model: ModelDirectory, options: AsrOptions = AsrOptions(), device: str = "auto",
                 compute_type: str | None = None, fallback: bool = False) -> None:
        self.model_dir, self.options = model, options
        self._load_args = (device, compute_type, fallback)
        self.reloads = 0  # models loaded again because the previous recording sampled
        self._load()

    def _load(self) -> None:
        from faster_whisper import BatchedInferencePipeline

        device, compute_type, fallback = self._load_args
        self.model, self.device = load_whisper(self.model_dir, device, compute_type, fallback, self.options.cpu_threads)
        self.model.model = SamplingWatch(self.model.model)
        self.batched = BatchedInferencePipeline(self.model) if self.options.batched else None

    def _fresh_sampling_threads(self) -> None:
        """Load the model again (new decoding threads, seeded from `options.seed`) when the last
        recording sampled; a recording that never fell back costs nothing."""
        if self.model.model.sampled:
            self._load()
            self.reloads += 1

    def params(self) -> dict[str, Any]:
        import ctranslate2
        import faster_whisper

        return {
            "model": self.model_dir.name, "model_path": str(self.model_dir.path),
            "model_fingerprint": self.model_dir.fingerprint(), "faster_whisper": faster_whisper.__version__,
            "ctranslate2": ctranslate2.__version__, "device": self.device.device,
            "compute_type": self.device.compute_type, "options": asdict(self.options),
        }

    def transcribe(self, audio: np.ndarray, *, language: str | None = None,
                   speech_regions: Iterable[tuple[float, float]] | None = None,
                   vocabulary: Sequence[str] = (),
                   on_progress: Callable[[float], None] | None = None) -> AsrResult:
        """Words with timings and probabilities for 16 kHz mono audio; guards applied.

        `vocabulary` (a protocol's names, places and terms) is shown to the decoder as
        `options.vocabulary_via` says.
        """
        import ctranslate2

        opts = self.options
        ctranslate2.set_random_seed(opts.seed)
        self._fresh_sampling_threads()
        duration = len(audio) / 16000
        regions = list(speech_regions) if speech_regions is not None else None
        if duration > opts.chunk_s:
            cuts = chunk_bounds(duration, regions or [], opts.chunk_s)
            words: list[Word] = []
            dropped: dict[str, int] = {}
            language_probability, detected = 0.0, language or opts.language or ""
            for left, right in zip(cuts, cuts[1:]):
                part = self._transcribe_chunk(
                    audio[int(left * 16000) : int(right * 16000)], language=language, vocabulary=vocabulary,
                    speech_regions=None if regions is None else [(a - left, b - left) for a, b in regions if b > left and a < right],
                    on_progress=(lambda f, l=left, r=right: on_progress((l + f * (r - l)) / duration)) if on_progress else None,
                )
                words += [{**w, "start": round(w["start"] + left, 3), "end": round(w["end"] + left, 3)} for w in part.words]
                for key, n in part.dropped.items():
                    dropped[key] = dropped.get(key, 0) + n
                if part.language_probability > language_probability:
                    language_probability, detected = part.language_probability, part.language
            return AsrResult(words, detected, language_probability, duration, dropped)
        return self._transcribe_chunk(audio, language=language, speech_regions=regions, vocabulary=vocabulary,
                                      on_progress=on_progress)

    def _transcribe_chunk(self, audio: np.ndarray, *, language: str | None,
                          speech_regions: list[tuple[float, float]] | None, vocabulary: Sequence[str],
                          on_progress: Callable[[float], None] | None) -> AsrResult:
        opts = self.options
        kwargs: dict[str, Any] = dict(
            language=language or opts.language, beam_size=opts.beam_size, word_timestamps=True,
            vad_filter=opts.vad_filter, compression_ratio_threshold=opts.compression_ratio_threshold,
            log_prob_threshold=opts.log_prob_threshold, no_speech_threshold=opts.no_speech_threshold,
            temperature=list(opts.temperatures), **vocabulary_arguments(vocabulary, opts.vocabulary_via),
        )
        if opts.per_turn and speech_regions:
            kwargs["clip_timestamps"] = speech_clips(speech_regions, len(audio) / 16000, opts.turn_padding_s)
        if self.batched is not None:
            if "clip_timestamps" in kwargs:  # the batched pipeline takes clips as {"start", "end"} seconds
                flat = kwargs["clip_timestamps"]
                kwargs["clip_timestamps"] = [{"start": a, "end": b} for a, b in zip(flat[::2], flat[1::2])]
            segments, info = self.batched.transcribe(audio, batch_size=opts.batch_size, **kwargs)
        else:
            segments, info = self.model.transcribe(
                audio, condition_on_previous_text=opts.condition_on_previous_text,
                hallucination_silence_threshold=opts.hallucination_silence_threshold, **kwargs,
            )
        words: list[Word] = []
        duration = max(info.duration, 1e-9)
        for segment in segments:  # decoding runs as we iterate
            for w in segment.words or []:
                words.append({"text": w.word.strip(), "start": round(float(w.start), 3),
                              "end": round(float(w.end), 3), "probability": round(float(w.probability), 4)})
            if on_progress is not None:
                on_progress(min(1.0, segment.end / duration))
        words = [w for w in words if w["text"]]
        dropped: dict[str, int] = {}
        words, dropped["repetition_loop"] = collapse_loops(words, opts.max_repeats)
        if opts.drop_outside_speech and speech_regions is not None:
            words, dropped["outside_speech"] = inside_speech(words, speech_regions)
        return AsrResult(words, info.language, float(info.language_probability), float(info.duration), dropped)
