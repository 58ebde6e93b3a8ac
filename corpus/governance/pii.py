"""Personal information in transcripts: find it, mark it, and redact released copies.

Spans are ranges of the words of one turn's text, stored by `store.pii_spans` (the one
implementation, which the editor uses too): marked by people in the editor (`mark_span`,
`unmark_span`) or found by detectors (`detect_revision`): phone numbers (digits
written or spelled, "five five five oh one two three"), e-mail addresses (written, or
spoken: "john dot smith at example dot com"), longer numbers and long runs of number words
(card and account numbers) and names from a configurable list. A release made with
`--redact-pii` runs the detectors and freezes each revision's spans into its manifest;
pulls then redact with `redact_turns` (the words become one tag such as "[phone]") and
`redacted_intervals` + `silence_spans` (silence or a tone over the words' times) —
always on copies; stored originals are never changed.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.pii_spans import (  # noqa: F401  (re-exported: governance's PII API is one module)
    KINDS, PiiError, Span, add_spans, mark_span, spans_for_revision, turn_tokens, unmark_span,
)

_EDGE_PUNCT = ".,!?;:\"'()[]{}<>…“”‘’«»"
UNITS = {"zero": 0, "oh": 0, "o": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
         "six": 6, "seven": 7, "eight": 8, "nine": 9}
MULTIPLIERS = {"double": 2, "triple": 3}
OTHER_NUMBER_WORDS = {"ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                      "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty",
                      "ninety", "hundred", "thousand", "million"}
PHONE_DIGITS = (7, 15)  # E.164 allows at most 15 digits; more is a card or account number
NUMBER_WORDS_MIN = 5  # a run of at least this many number words is a number to redact
TLDS = {"com", "org", "net", "edu", "gov", "mil", "int", "io", "info", "biz", "eu"}  # and every two-letter country code
LOCAL_JOINERS = {"dot", "underscore", "dash", "hyphen", "minus", "plus"}
_DIGIT_TOKEN = re.compile(r"^\+?[\d().\-/]*\d[\d().\-/]*$")
_EMAIL_TOKEN = re.compile(r"^[\w.+\-]+@[\w\-]+(\.[\w\-]+)+$")
_WORDISH = re.compile(r"^[\w.+\-]+$")


def normalise(token: str) -> str:
    token = token.strip().lower().strip(_EDGE_PUNCT)
    return token[:-2] if token.endswith(("'s", "’s")) else token


# --- detectors (pure: a token list in, (start, end, kind) out) ------------------------------

def _digit_value(tokens: list[str], i: int) -> int:
    """How many digits token i stands for (0: not part of a digit string)."""
    token = tokens[i]
    if _DIGIT_TOKEN.match(token):
        return sum(c.isdigit() for c in token)
    if token in UNITS:
        return 1
    if token in MULTIPLIERS and i + 1 < len(tokens) and tokens[i + 1] in UNITS:
        return MULTIPLIERS[token] - 1  # "double five": the five counts once itself
    return 0


def _is_number_word(token: str) -> bool:
    parts = token.split("-")
    return all(p in UNITS or p in OTHER_NUMBER_WORDS or p in MULTIPLIERS for p in parts) and bool(token)


def detect_numbers(tokens: list[str]) -> list[tuple[int, int, str]]:
    """Phone numbers (7-15 digits, written or spelled), and longer digit strings or runs of number words (cards, accounts)."""
    found, i, n = [], 0, len(tokens)
    while i < n:
        if not (_digit_value(tokens, i) or _is_number_word(tokens[i])):
            i += 1
            continue
        j = i
        while j < n and (_digit_value(tokens, j) or _is_number_word(tokens[j])):
            j += 1
        start = i
        while start < j and tokens[start] in ("oh", "o"):  # "oh, five five five ..." starts at the five
            start += 1
        run = range(start, j)
        digits_only = all(_digit_value(tokens, k) for k in run)
        digits = sum(_digit_value(tokens, k) for k in run)
        if digits_only and PHONE_DIGITS[0] <= digits <= PHONE_DIGITS[1]:
            found.append((start, j, "phone"))
        elif digits_only and digits > PHONE_DIGITS[1]:
            found.append((start, j, "number"))
        elif not digits_only and j - start >= NUMBER_WORDS_MIN:
            found.append((start, j, "number"))
        i = j
    return found


def _is_domain_end(token: str) -> bool:
    return token in TLDS or (len(token) == 2 and token.isalpha())


def detect_emails(tokens: list[str]) -> list[tuple[int, int, str]]:
    """Written addresses, and spoken ones: <local> at <domain> dot <tld> (the local part may be joined by "dot", "underscore", "dash"...)."""
    found = [(i, i + 1, "email") for i, t in enumerate(tokens) if _EMAIL_TOKEN.match(t)]
    n = len(tokens)
    for i, token in enumerate(tokens):
        if token != "at" or i == 0 or i + 1 >= n or not _WORDISH.match(tokens[i - 1]) or not _WORDISH.match(tokens[i + 1]):
            continue
        start = i - 1
        while start >= 2 and tokens[start - 1] in LOCAL_JOINERS and _WORDISH.match(tokens[start - 2]):
            start -= 2
        end, dots = i + 2, 0
        if "." in tokens[i + 1] and _is_domain_end(tokens[i + 1].rsplit(".", 1)[-1]):
            dots = 1  # "john at example.com"
        while end + 1 < n and tokens[end] == "dot" and _WORDISH.match(tokens[end + 1]):
            end, dots = end + 2, dots + 1
        if dots and _is_domain_end(tokens[end - 1].rsplit(".", 1)[-1]):
            found.append((start, end, "email"))
    return found


def load_names(path: Path) -> list[str]:
    """A names list: one name per line (several words allowed), '#' starts a comment; refuses an empty list."""
    if not path.is_file():
        raise PiiError(f"names list {path} does not exist")
    names = [line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [name for name in names if name]
    if not names:
        raise PiiError(f"names list {path} holds no names (one per line)")
    return names


def detect_names(tokens: list[str], names: Iterable[str]) -> list[tuple[int, int, str]]:
    """Occurrences of listed names (case-insensitive, multi-word, longest first)."""
    patterns = sorted({tuple(normalise(t) for t in name.split()) for name in names if name.split()}, key=len, reverse=True)
    found, i = [], 0
    while i < len(tokens):
        match = next((p for p in patterns if tuple(tokens[i : i + len(p)]) == p), None)
        if match:
            found.append((i, i + len(match), "name"))
            i += len(match)
        else:
            i += 1
    return found


def detect_turns(turns: Sequence[dict[str, Any]], names: Iterable[str] = ()) -> list[Span]:
    """Every detector over every turn (each span says which detector found it)."""
    names = list(names)
    spans = []
    for index, turn in enumerate(turns):
        tokens = [normalise(t) for t in turn_tokens(turn)]
        for detector, hits in (("numbers", detect_numbers(tokens)), ("email", detect_emails(tokens)),
                               ("names", detect_names(tokens, names) if names else [])):
            spans += [Span(index, s, e, kind, f"detector:{detector}") for s, e, kind in hits]
    return sorted(set(spans))


# --- stored spans (storage itself lives in store.pii_spans) ---------------------------------

def detect_revision(session: Session, revision_pk: int, names: Iterable[str] = (), *, actor: str) -> int:
    """Run the detectors over one revision and store the spans not stored yet (idempotent); how many were added.

    Detectors store their spans here: the `governance pii detect` command (`detect_protocol`),
    and a release made with `--redact-pii` for each revision it takes.
    """
    revision = session.get(models.TranscriptRevision, revision_pk)
    if revision is None:
        raise PiiError(f"no transcript revision {revision_pk}")
    return add_spans(session, revision_pk, detect_turns(revision.turns or [], names), actor=actor, event="pii_detect")


# --- redaction (pure, on copies) ------------------------------------------------------------

def token_times(turn: dict[str, Any]) -> list[tuple[float, float] | None]:
    """Each text token's (start, end) from the timed word it matches; None where the text was edited.

    Text and words are aligned on normalised forms (difflib), so a turn whose text was
    built from its words maps one to one, and an edited turn keeps the times of the
    words it still shares with the model output.
    """
    tokens = [normalise(t) for t in turn_tokens(turn)]
    words = turn.get("words") or []
    times: list[tuple[float, float] | None] = [None] * len(tokens)
    matcher = difflib.SequenceMatcher(a=tokens, b=[normalise(str(w.get("text", ""))) for w in words], autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            word = words[block.b + k]
            times[block.a + k] = (float(word["start"]), float(word["end"]))
    return times


def _range_interval(turn: dict[str, Any], times: list[tuple[float, float] | None], start: int, end: int) -> tuple[float, float]:
    """The audio of tokens [start, end): their words' times; an edited (untimed) edge reaches to the
    neighbouring timed words — the gap between them, or the neighbours themselves when there is no gap."""
    timed_before = [t for t in times[:start] if t is not None]
    timed_after = [t for t in times[end:] if t is not None]
    turn_start, turn_end = float(turn["start"]), float(turn["end"])
    if times[start] is not None:
        begin = times[start][0]  # type: ignore[index]
    else:
        begin = timed_before[-1][1] if timed_before else turn_start
    if times[end - 1] is not None:
        finish = times[end - 1][1]  # type: ignore[index]
    else:
        finish = timed_after[0][0] if timed_after else turn_end
    if finish <= begin:  # inserted words with no gap to put them in: take the neighbours too
        begin = timed_before[-1][0] if timed_before else turn_start
        finish = timed_after[0][1] if timed_after else turn_end
    return begin, finish


def _merged_ranges(spans: Iterable[Span], turn_index: int, count: int) -> list[tuple[int, int, str]]:
    """Overlapping or touching spans of one turn as one range; the earliest (then longest) span names it."""
    ranges = sorted(((s.word_start, s.word_end, s.kind) for s in spans if s.turn_index == turn_index),
                    key=lambda r: (r[0], -r[1]))
    merged: list[list[Any]] = []
    for start, end, kind in ranges:
        start, end = max(0, start), min(end, count)
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, kind])
    return [(s, e, k) for s, e, k in merged]


def _turn_redactions(turn: dict[str, Any], spans: list[Span], index: int) -> list[tuple[int, int, str, float, float]]:
    """(token start, token end, kind, begin s, end s) of each merged span of one turn."""
    ranges = _merged_ranges(spans, index, len(turn_tokens(turn)))
    if not ranges:
        return []
    times = token_times(turn)
    return [(start, end, kind, *_range_interval(turn, times, start, end)) for start, end, kind in ranges]


def redact_turns(turns: Sequence[dict[str, Any]], spans: Iterable[Span]) -> list[dict[str, Any]]:
    """A copy of the turns where each span's words become one tag ("[phone]"); text rebuilt, times kept.

    In the timed words, every word inside a redacted time range (also a model word the
    annotator edited away) becomes that one tag word over the range, so neither the text
    nor the word list keeps the information.
    """
    spans = list(spans)
    out = []
    for index, turn in enumerate(turns):
        words = [dict(w) for w in turn.get("words") or []]
        redactions = _turn_redactions(turn, spans, index)
        new = {**turn, "words": words}
        if redactions:
            tokens = turn_tokens(turn)
            for start, end, kind, _, _ in reversed(redactions):
                tokens[start:end] = [f"[{kind}]"]
            for _, _, kind, begin, finish in redactions:
                inside = [w for w in words if float(w["start"]) < finish and float(w["end"]) > begin]
                probability = min((float(w.get("probability") or 0.0) for w in inside), default=1.0)
                words = [w for w in words if not any(w is x for x in inside)]
                words.append({"text": f"[{kind}]", "start": begin, "end": finish, "probability": probability})
            new["words"] = sorted(words, key=lambda w: (float(w["start"]), float(w["end"])))
            new["text"] = " ".join(tokens)
        out.append(new)
    return out


def redacted_intervals(turns: Sequence[dict[str, Any]], spans: Iterable[Span]) -> list[tuple[float, float]]:
    """The audio time ranges to silence, merged; untimed text reaches to the neighbouring timed words."""
    spans = list(spans)
    intervals = sorted((begin, finish) for index, turn in enumerate(turns)
                       for _, _, _, begin, finish in _turn_redactions(turn, spans, index))
    merged: list[list[float]] = []
    for start, end in intervals:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def silence_spans(samples: np.ndarray, sample_rate: int, intervals: Iterable[tuple[float, float]],
                  mode: str = "silence", fade_s: float = 0.005) -> np.ndarray:
    """A copy of the audio with each interval replaced by silence or a 1 kHz tone at -20 dBFS.

    The original fades out just before an interval and back in just after it (and the
    tone fades in and out inside it), so the cuts do not click. Works on float or
    integer samples, mono (n,) or multichannel (n, channels); the input is not modified.
    """
    if mode not in ("silence", "tone"):
        raise ValueError(f"mode must be 'silence' or 'tone', not {mode!r}")
    if sample_rate <= 0:
        raise ValueError(f"sample rate must be positive, got {sample_rate}")
    n = samples.shape[0]
    gain = np.ones(n, dtype=np.float64)
    tone = np.zeros(n, dtype=np.float64)
    fade = max(1, int(round(fade_s * sample_rate)))
    full_scale = float(np.iinfo(samples.dtype).max) if np.issubdtype(samples.dtype, np.integer) else 1.0
    for start, end in intervals:
        if not (math.isfinite(start) and math.isfinite(end)) or end <= start:
            raise ValueError(f"not a time interval: ({start}, {end})")
        i0, i1 = max(0, int(math.floor(start * sample_rate))), min(n, int(math.ceil(end * sample_rate)))
        if i0 >= i1:
            continue
        gain[i0:i1] = 0.0
        before = np.arange(max(0, i0 - fade), i0)
        gain[before] = np.minimum(gain[before], (i0 - before) / fade)
        after = np.arange(i1, min(n, i1 + fade))
        gain[after] = np.minimum(gain[after], (after - i1 + 1) / fade)
        if mode == "tone":
            t = np.arange(i0, i1) / sample_rate
            ramp = np.minimum(1.0, np.minimum(np.arange(1, i1 - i0 + 1), np.arange(i1 - i0, 0, -1)) / fade)
            tone[i0:i1] = 10 ** (-20 / 20) * np.sin(2 * np.pi * 1000.0 * t) * ramp * full_scale
    shape = (n,) + (1,) * (samples.ndim - 1)
    mixed = samples.astype(np.float64) * gain.reshape(shape) + tone.reshape(shape)
    if np.issubdtype(samples.dtype, np.integer):
        info = np.iinfo(samples.dtype)
        mixed = np.clip(np.round(mixed), info.min, info.max)
    return mixed.astype(samples.dtype)


def revisions_to_scan(session: Session, protocol_pk: int) -> list[int]:
    """The revisions `governance pii detect` scans: every approved one (a release takes the newest), every
    reference transcript, and each recording's newest revision (the one review will approve next)."""
    recordings = select(models.Recording.pk).where(models.Recording.protocol_pk == protocol_pk,
                                                   models.Recording.status == "accepted")
    rows = session.execute(select(models.TranscriptRevision.pk, models.TranscriptRevision.recording_pk,
                                  models.TranscriptRevision.stage)
                           .where(models.TranscriptRevision.recording_pk.in_(recordings))).all()
    newest: dict[int, int] = {}
    chosen = set()
    for pk, recording_pk, stage in rows:
        newest[recording_pk] = max(pk, newest.get(recording_pk, pk))
        if stage in ("approved", "reference"):
            chosen.add(pk)
    return sorted(chosen | set(newest.values()))


def detect_protocol(session: Session, protocol_pk: int, names: Iterable[str] = (), *, actor: str) -> tuple[int, int]:
    """Detect personal information in every revision of a protocol a release may take; (revisions, spans added)."""
    names = list(names)
    revisions = revisions_to_scan(session, protocol_pk)
    added = sum(detect_revision(session, pk, names, actor=actor) for pk in revisions)
    return len(revisions), added
