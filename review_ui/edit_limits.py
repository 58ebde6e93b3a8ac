"""What one save from the editor may hold, beyond the turn type's own rules (`store.turns`).

The editor's messages come from a browser, so anything can arrive: megabytes of text in a turn,
a hundred thousand turns, control characters, words out of order. The turn type already refuses
non-finite or negative times, end before start, words outside their turn and malformed speaker
labels; this adds the bounds a person's transcript never reaches and the text rules exports need,
checked before the turns are parsed (a refused save costs little) and named precisely. Nothing is
stored for a refused save: the caller raises before its transaction writes.

Speaker labels are free (renaming a speaker for the whole task makes new ones), but short, and a
task has a bounded number of them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from store.turns import TurnJson, TurnValidationError

MAX_TURNS = 20_000  # a one-hour dialogue has about 1,500
MAX_TURN_CHARS = 50_000  # about an hour of one speaker's speech
MAX_TEXT_CHARS = 2_000_000  # all turns together
MAX_WORDS = 10_000  # per turn
MAX_SPEAKER_CHARS = 64
MAX_SPEAKERS = 64  # distinct labels in one save
WORD_OVERLAP_S = 0.02  # a word may start this much before the previous one ends (rounding of model times), no more
SHOWN = 5  # problems named before "and N more"


def _control(text: str) -> str:
    """The control characters (and lone surrogates) in `text` other than whitespace (which is normalised)."""
    return "".join(sorted({c for c in text if not c.isspace() and unicodedata.category(c) in ("Cc", "Cs")}))


def _text_problems(where: str, text: Any, limit: int) -> list[str]:
    if not isinstance(text, str):
        return []  # the turn type names it
    problems = [f"{where}: text of {len(text):,} characters is longer than {limit:,}"] if len(text) > limit else []
    bad = _control(text[: limit + 1])
    if bad:
        problems.append(f"{where}: text holds control characters {', '.join(f'U+{ord(c):04X}' for c in bad)}")
    return problems


def check_size(turns: Any) -> None:
    """Refuse (TurnValidationError) turns beyond this module's bounds or with control characters, before parsing."""
    if not isinstance(turns, Sequence) or isinstance(turns, (str, bytes)):
        return  # the turn type names it
    if len(turns) > MAX_TURNS:
        raise TurnValidationError([f"{len(turns):,} turns is more than one save may hold ({MAX_TURNS:,})"])
    problems: list[str] = []
    total, speakers = 0, set()
    for i, turn in enumerate(turns):
        if not isinstance(turn, Mapping):
            continue
        text, speaker, words = turn.get("text"), turn.get("speaker"), turn.get("words")
        total += len(text) if isinstance(text, str) else 0
        problems += _text_problems(f"turn {i}", text, MAX_TURN_CHARS)
        if isinstance(speaker, str):
            speakers.add(speaker.strip())
            if len(speaker) > MAX_SPEAKER_CHARS:
                problems.append(f"turn {i}: speaker label of {len(speaker):,} characters is longer than {MAX_SPEAKER_CHARS}")
        if isinstance(words, list):
            if len(words) > MAX_WORDS:
                problems.append(f"turn {i}: {len(words):,} words is more than {MAX_WORDS:,}")
            else:
                problems += [p for j, w in enumerate(words) if isinstance(w, Mapping)
                             for p in _text_problems(f"turn {i} word {j}", w.get("text"), MAX_TURN_CHARS)]
        if len(problems) > SHOWN:
            break
    if total > MAX_TEXT_CHARS:
        problems.append(f"{total:,} characters of text is more than one save may hold ({MAX_TEXT_CHARS:,})")
    if len(speakers) > MAX_SPEAKERS:
        problems.append(f"{len(speakers)} speaker labels is more than {MAX_SPEAKERS}")
    if problems:
        raise TurnValidationError(problems[:SHOWN] + ([f"and {len(problems) - SHOWN} more"] if len(problems) > SHOWN else []))


def check_word_order(turns: list[TurnJson]) -> None:
    """Refuse parsed turns whose words are out of time order or overlap the word before by more than rounding."""
    problems = [f"turn {i} word {j}: {b['text']!r} at {b['start']:.3f} s starts before {a['text']!r} "
                f"({a['start']:.3f}-{a['end']:.3f} s) ends: words follow one another"
                for i, turn in enumerate(turns) for j, (a, b) in enumerate(zip(turn["words"], turn["words"][1:]), start=1)
                if b["start"] < a["start"] or b["start"] < a["end"] - WORD_OVERLAP_S]
    if problems:
        raise TurnValidationError(problems[:SHOWN] + ([f"and {len(problems) - SHOWN} more"] if len(problems) > SHOWN else []))
