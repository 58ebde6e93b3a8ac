"""RTTM (who spoke when), STM (reference text) and CTM (word times): the one reader and writer.

These are the turn type's forms in the files speech tools read (SCTK, pyannote.metrics,
dscore). The module sits on the ground floor with `store.turns` rather than in asr/
(where ARCHITECTURE.md lists the io) because floors below asr/ write these files too:
collection/'s synthetic ground truth (RTTM + STM) and diarization/'s results (RTTM).

Lines, times in seconds with millisecond precision, channel 1:

- RTTM: ``SPEAKER <uri> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>``
- STM: ``<uri> 1 <speaker> <start> <end> <text>``, by start time; turns without text are left out
- CTM: ``<uri> 1 <start> <duration> <word> [<confidence>]``, by start time; empty or instant words left out
"""

from __future__ import annotations

from collections.abc import Iterable

from store.turns import Turn, Word, normalise_text


def rttm_line(uri: str, start: float, end: float, speaker: str) -> str:
    """One RTTM line (a negative duration is written as 0)."""
    return f"SPEAKER {uri} 1 {start:.3f} {max(0.0, end - start):.3f} <NA> <NA> {speaker} <NA> <NA>\n"


def turns_to_rttm(turns: Iterable[Turn], uri: str) -> str:
    """One RTTM line per turn, in the order given."""
    return "".join(rttm_line(uri, t.start, t.end, t.speaker) for t in turns)


def turns_to_stm(turns: Iterable[Turn], uri: str) -> str:
    """STM lines sorted by begin time (stable); the text on one line."""
    return "".join(f"{uri} 1 {t.speaker} {t.start:.3f} {t.end:.3f} {normalise_text(t.text)}\n"
                   for t in sorted(turns, key=lambda t: t.start) if t.text.strip())


def words_to_ctm(turns: Iterable[Turn], uri: str) -> str:
    """CTM lines of every turn's timed words, sorted by start, with the model's confidence."""
    words = sorted((w for t in turns for w in t.words if w.end > w.start and w.text), key=lambda w: w.start)
    return "".join(f"{uri} 1 {w.start:.3f} {w.end - w.start:.3f} {w.text} {w.probability:.3f}\n" for w in words)


def _fields(text: str, comment: str = ";;") -> Iterable[list[str]]:
    for line in text.splitlines():
        if line.strip() and not line.startswith(comment):
            yield line.split()


def read_rttm(text: str) -> dict[str, list[Turn]]:
    """RTTM `SPEAKER` lines -> turns without text, per file id, in file order."""
    out: dict[str, list[Turn]] = {}
    for parts in _fields(text):
        if len(parts) >= 8 and parts[0] == "SPEAKER":
            start = float(parts[3])
            out.setdefault(parts[1], []).append(Turn(parts[7], start, start + float(parts[4])))
    return out


def read_stm(text: str) -> dict[str, list[Turn]]:
    """STM lines -> turns with their text, per file id, in file order (`;;` comment lines skipped)."""
    out: dict[str, list[Turn]] = {}
    for line in text.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) >= 5 and not line.startswith(";;"):
            out.setdefault(parts[0], []).append(Turn(parts[2], float(parts[3]), float(parts[4]), parts[5] if len(parts) > 5 else ""))
    return out


def read_ctm(text: str) -> dict[str, list[Word]]:
    """CTM lines -> timed words per file id (confidence 1.0 when the line has none)."""
    out: dict[str, list[Word]] = {}
    for parts in _fields(text):
        if len(parts) >= 5:
            start = float(parts[2])
            score = float(parts[5]) if len(parts) > 5 else 1.0
            out.setdefault(parts[0], []).append(Word(parts[4], start, start + float(parts[3]), score))
    return out

