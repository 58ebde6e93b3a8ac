"""TurnJson edits as pure functions: each returns a new, start-sorted list and never mutates its input.

The editor page applies these to the turns held in the browser session and saves the
result as a whole new revision, so an edit can be tested without Streamlit or a store.
A "word" of a turn is a whitespace-separated token of its text; the timed `words` of
the pre-annotation are kept with a turn while they still spell its text, and split or
joined with it.
"""

from __future__ import annotations

import copy

from store.turns import TurnJson

# A word below this model probability is shown as one the model was unsure of.
UNSURE_BELOW = 0.6
MIN_TURN_S = 0.01


class EditError(ValueError):
    """An edit that cannot apply to these turns (no such turn, a time outside the turn, ...)."""


def _copy(turns: list[TurnJson]) -> list[TurnJson]:
    return copy.deepcopy(turns)


def _sorted(turns: list[TurnJson]) -> list[TurnJson]:
    return sorted(turns, key=lambda t: (t["start"], t["end"]))


def _at(turns: list[TurnJson], index: int) -> TurnJson:
    if not 0 <= index < len(turns):
        raise EditError(f"turn {index} does not exist (there are {len(turns)} turns)")
    return turns[index]


def _tokens(text: str) -> list[str]:
    return text.split()


def words_match_text(turn: TurnJson) -> bool:
    """Whether the timed words still spell the turn's text (false once a person retyped it)."""
    words = turn.get("words") or []
    return bool(words) and [w["text"].strip() for w in words] == _tokens(turn.get("text", ""))


def unsure_words(turn: TurnJson, below: float = UNSURE_BELOW) -> list[int]:
    """Indices of the text's words the model gave a probability under `below`."""
    if not words_match_text(turn):
        return []
    return [i for i, w in enumerate(turn["words"]) if float(w.get("probability", 1.0)) < below]


def _split_parts(turn: TurnJson, cut_token: int, cut_time: float) -> tuple[TurnJson, TurnJson]:
    tokens = _tokens(turn.get("text", ""))
    aligned = words_match_text(turn)
    first = {**turn, "end": round(cut_time, 3), "text": " ".join(tokens[:cut_token]),
             "words": turn["words"][:cut_token] if aligned else []}
    second = {**turn, "start": round(cut_time, 3), "text": " ".join(tokens[cut_token:]),
              "words": turn["words"][cut_token:] if aligned else []}
    return first, second


def split_at_time(turns: list[TurnJson], index: int, at: float) -> list[TurnJson]:
    """Split turn `index` at time `at`: timed words go by their midpoint, else the text by time share."""
    turns = _copy(turns)
    turn = _at(turns, index)
    if not turn["start"] + MIN_TURN_S <= at <= turn["end"] - MIN_TURN_S:
        raise EditError(f"turn {index} runs {turn['start']:.2f}-{turn['end']:.2f} s; {at:.2f} s is not inside it")
    tokens = _tokens(turn.get("text", ""))
    if words_match_text(turn):
        cut = sum(1 for w in turn["words"] if (w["start"] + w["end"]) / 2 < at)
    else:
        share = (at - turn["start"]) / (turn["end"] - turn["start"])
        cut = round(share * len(tokens))
    first, second = _split_parts(turn, cut, at)
    return _sorted(turns[:index] + [first, second] + turns[index + 1 :])


def split_at_word(turns: list[TurnJson], index: int, word: int) -> list[TurnJson]:
    """Split turn `index` before its `word`-th word (0-based), at that word's start time when known."""
    turns = _copy(turns)
    turn = _at(turns, index)
    tokens = _tokens(turn.get("text", ""))
    if not 1 <= word < len(tokens):
        raise EditError(f"turn {index} has {len(tokens)} words; split before word 1..{len(tokens) - 1}, not {word}")
    if words_match_text(turn):
        at = float(turn["words"][word]["start"])
    else:
        at = turn["start"] + (turn["end"] - turn["start"]) * word / len(tokens)
    at = min(max(at, turn["start"] + MIN_TURN_S), turn["end"] - MIN_TURN_S)
    first, second = _split_parts(turn, word, at)
    return _sorted(turns[:index] + [first, second] + turns[index + 1 :])


def merge_with_next(turns: list[TurnJson], index: int) -> list[TurnJson]:
    """Join turn `index` and the one after it into one turn of the first one's speaker."""
    turns = _copy(turns)
    first, second = _at(turns, index), None
    if index + 1 >= len(turns):
        raise EditError(f"turn {index} is the last turn; there is no next turn to merge with")
    second = turns[index + 1]
    aligned = words_match_text(first) and words_match_text(second)
    merged = {**first, "start": min(first["start"], second["start"]), "end": max(first["end"], second["end"]),
              "text": " ".join(t for t in (first.get("text", ""), second.get("text", "")) if t),
              "words": (first["words"] + second["words"]) if aligned else []}
    return _sorted(turns[:index] + [merged] + turns[index + 2 :])


def add_turn(turns: list[TurnJson], speaker: str, start: float, end: float, text: str = "") -> list[TurnJson]:
    """Insert a new turn (sorted into place by its start)."""
    if not speaker.strip():
        raise EditError("a new turn needs a speaker label")
    if not 0 <= start < end:
        raise EditError(f"a new turn needs 0 <= start < end, got {start:.2f}-{end:.2f} s")
    new = {"speaker": speaker.strip(), "start": round(start, 3), "end": round(end, 3), "text": text.strip(), "words": []}
    return _sorted(_copy(turns) + [new])


def delete_turn(turns: list[TurnJson], index: int) -> list[TurnJson]:
    turns = _copy(turns)
    _at(turns, index)
    return turns[:index] + turns[index + 1 :]


def relabel(turns: list[TurnJson], index: int, speaker: str) -> list[TurnJson]:
    """Give turn `index` another speaker label."""
    if not speaker.strip():
        raise EditError("the speaker label may not be empty")
    turns = _copy(turns)
    _at(turns, index)["speaker"] = speaker.strip()
    return turns


def nudge(turns: list[TurnJson], index: int, edge: str, delta: float, *, limit: float | None = None) -> list[TurnJson]:
    """Move the `edge` ("start" or "end") of turn `index` by `delta` seconds, inside 0..limit."""
    if edge not in ("start", "end"):
        raise EditError(f"edge must be 'start' or 'end', not {edge!r}")
    turns = _copy(turns)
    turn = _at(turns, index)
    moved = round(turn[edge] + delta, 3)
    if edge == "start" and not 0 <= moved <= turn["end"] - MIN_TURN_S:
        raise EditError(f"turn {index}'s start cannot move to {moved:.2f} s (end is {turn['end']:.2f} s)")
    if edge == "end" and (moved < turn["start"] + MIN_TURN_S or (limit is not None and moved > limit)):
        raise EditError(f"turn {index}'s end cannot move to {moved:.2f} s (start {turn['start']:.2f} s, audio ends at {limit} s)")
    turn[edge] = moved
    return _sorted(turns)


def with_text(turn: TurnJson, text: str) -> TurnJson:
    """The turn with a person's text; timed words are dropped once they no longer spell it."""
    changed = {**copy.deepcopy(turn), "text": text.strip()}
    if not words_match_text(changed):
        changed["words"] = []
    return changed
