"""Word timings for a known text: Whisper's own cross-attention alignment, offline.

When a person corrects a turn, the model's word times no longer fit its text. The same
Whisper model that transcribed the recording then forces the new text onto the turn's
audio with faster-whisper's `find_alignment` (CTranslate2's `align`: dynamic time
warping over the alignment heads' cross-attention), the method behind its
`word_timestamps`. When that cannot run (no text, too little or too much audio) the
caller gets `AlignmentFailed` and may `spread` the words evenly instead, marked as such.

Whisper's cross-attention peaks come late: on the committed synthetic dialogues
(dlg001, dlg003, dlg005; ground-truth word times from espeak-ng) tiny.en's boundaries
lagged the true ones by a median 77 ms (starts) and 75 ms (ends), so `WHISPER_LAG_S`
is taken off. `align_turn` then fits the words to the turn, whose bounds hold its
speech (ARCHITECTURE.md): the first word starts at the turn's start, the last ends at
its end. Measured by `benchmarks/alignment_bench.py` on that set and on one never tuned on.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.models import ModelDirectory
from asr.transcriber import load_whisper

SAMPLE_RATE = 16000
MAX_SPAN_S = 30.0  # one Whisper window; longer turns are not aligned
MIN_FRAMES_PER_TOKEN = 1  # the encoder's 20 ms frames each text token needs at least
WHISPER_LAG_S = 0.07  # how late Whisper's cross-attention boundaries come (see the module docstring)


class AlignmentFailed(ValueError):
    """The text could not be aligned to the audio; the message says why."""


@dataclass(frozen=True)
class AlignedWord:
    """A whitespace-separated token of the text, its span in seconds and the model's probability of it."""

    text: str
    start: float
    end: float
    probability: float


def read_span(path: Path, start_s: float, end_s: float) -> np.ndarray:
    """Samples `start_s`..`end_s` of a 16 kHz mono working copy, read by seeking (never the whole file)."""
    with sf.SoundFile(path) as audio:
        if audio.samplerate != SAMPLE_RATE or audio.channels != 1:
            raise AlignmentFailed(f"{path} is not 16 kHz mono ({audio.samplerate} Hz, {audio.channels} channels)")
        first = max(0, int(round(start_s * SAMPLE_RATE)))
        audio.seek(min(first, audio.frames))
        return audio.read(max(0, int(round(end_s * SAMPLE_RATE)) - first), dtype="float32")


def spread(text: str, start: float, end: float) -> list[AlignedWord]:
    """The tokens of `text` laid end to end over `start`..`end`, each a share by its length (no probability: 0)."""
    tokens = text.split()
    total = sum(len(t) + 1 for t in tokens)
    out, at = [], start
    for token in tokens:
        step = (end - start) * (len(token) + 1) / total
        out.append(AlignedWord(token, round(at, 3), round(min(at + step, end), 3), 0.0))
        at += step
    return out


def _token_spans(text: str) -> list[tuple[int, int]]:
    spans, position = [], 0
    for token in text.split():
        position = text.index(token, position)
        spans.append((position, position + len(token)))
        position += len(token)
    return spans


class WordAligner:
    """A loaded Whisper model that times a given text in a stretch of audio; reusable across calls."""

    def __init__(self, model: ModelDirectory, device: str = "auto", compute_type: str | None = None,
                 cpu_threads: int = 2) -> None:
        self.model_dir = model
        self.whisper, self.device = load_whisper(model, device, compute_type, False, cpu_threads)

    def _tokenizer(self, language: str | None):  # type: ignore[no-untyped-def]
        from faster_whisper.tokenizer import Tokenizer

        multilingual = self.whisper.model.is_multilingual
        return Tokenizer(self.whisper.hf_tokenizer, multilingual, task="transcribe",
                         language=(language or "en") if multilingual else None)

    def align(self, audio: np.ndarray, text: str, *, offset_s: float = 0.0, language: str | None = None) -> list[AlignedWord]:
        """Each whitespace-separated token of `text` timed in `audio` (16 kHz mono), times offset by `offset_s`."""
        from faster_whisper.audio import pad_or_trim

        text = " ".join(text.split())
        if not text:
            raise AlignmentFailed("there is no text to align")
        duration = len(audio) / SAMPLE_RATE
        if duration > MAX_SPAN_S:
            raise AlignmentFailed(f"{duration:.1f} s of audio is longer than one Whisper window ({MAX_SPAN_S:.0f} s)")
        tokenizer = self._tokenizer(language)
        ids = tokenizer.encode(" " + text)
        features = self.whisper.feature_extractor(np.ascontiguousarray(audio, dtype=np.float32))
        frames = features.shape[-1] - 1
        if frames // 2 < MIN_FRAMES_PER_TOKEN * (len(ids) + 1):
            raise AlignmentFailed(f"{duration:.2f} s of audio is too short for {len(text.split())} word(s)")
        try:
            encoded = self.whisper.encode(pad_or_trim(features[:, :frames]))
            pieces = self.whisper.find_alignment(tokenizer, [ids], encoded, frames)[0]
        except (RuntimeError, ValueError, IndexError) as exc:
            raise AlignmentFailed(f"the model could not align the text: {exc}") from exc
        return self._to_tokens(text, pieces, offset_s, duration)

    @staticmethod
    def _to_tokens(text: str, pieces: list[dict], offset_s: float, duration: float) -> list[AlignedWord]:
        """Whisper's word pieces (split at its own punctuation rules) gathered back into the text's tokens.

        A piece belongs to the token holding its first visible character; pieces that are
        punctuation only time nothing (as in faster-whisper's own word timestamps).
        """
        spans = _token_spans(" " + text)
        times: list[list[tuple[float, float, float]]] = [[] for _ in spans]
        punct: list[list[tuple[float, float, float]]] = [[] for _ in spans]
        position = 0
        for piece in pieces:
            word = piece["word"]
            visible = position + len(word) - len(word.lstrip())
            position += len(word)
            if not word.strip():
                continue
            k = next((i for i, (a, b) in enumerate(spans) if a <= visible < b), None)
            if k is None:
                continue
            entry = (float(piece["start"]), float(piece["end"]), float(piece["probability"]))
            (punct if word.strip() in string.punctuation else times)[k].append(entry)
        if position != len(text) + 1:
            raise AlignmentFailed("the model's tokens do not spell the text back")
        out = []
        for (a, b), own, marks in zip(spans, times, punct):
            entries = own or marks
            if not entries:
                raise AlignmentFailed(f"no alignment for {(' ' + text)[a:b]!r}")
            start = min(max(min(e[0] for e in entries) - WHISPER_LAG_S, 0.0), duration)
            end = min(max(max(e[1] for e in entries) - WHISPER_LAG_S, start), duration)
            probability = float(np.mean([e[2] for e in entries]))
            out.append(AlignedWord((" " + text)[a:b], round(offset_s + start, 3), round(offset_s + end, 3),
                                   round(min(max(probability, 0.0), 1.0), 4)))
        return out


def fit_to_turn(words: list[AlignedWord], start: float, end: float) -> list[AlignedWord]:
    """The words inside `start`..`end`, in order, the first starting at `start` and the last ending at `end`."""
    out: list[AlignedWord] = []
    floor = start
    for i, word in enumerate(words):
        s = start if i == 0 else min(max(word.start, floor), end)
        e = end if i == len(words) - 1 else min(max(word.end, s), end)
        out.append(AlignedWord(word.text, round(s, 3), round(e, 3), word.probability))
        floor = e
    return out


def align_turn(aligner: WordAligner, path: Path, start: float, end: float, text: str,
               language: str | None = None) -> list[AlignedWord]:
    """`text` timed inside the turn `start`..`end` of the working copy at `path` (reads only that span)."""
    if end - start > MAX_SPAN_S:
        raise AlignmentFailed(f"the turn lasts {end - start:.1f} s, longer than one Whisper window ({MAX_SPAN_S:.0f} s)")
    audio = read_span(path, start, end)
    return fit_to_turn(aligner.align(audio, text, offset_s=start, language=language), start, end)
