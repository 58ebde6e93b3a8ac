"""The one turn type: its JSON form, its rules, and revisions stored before it (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from store import models
from store.db import Store
from store.turns import Turn, TurnValidationError, Word, load_stored, turns_from_json
from tests.factories import register_en

CANONICAL = {"speaker": "SPEAKER_00", "start": 0.5, "end": 1.25, "text": "hi there",
             "words": [{"text": "hi", "start": 0.5, "end": 0.8, "probability": 0.91},
                       {"text": "there", "start": 0.85, "end": 1.25, "probability": 0.4}]}


def turn(**fields: Any) -> dict[str, Any]:
    return {"speaker": "A", "start": 0.0, "end": 1.0, "text": "x", **fields}


def problems(data: Any, **options: Any) -> list[str]:
    with pytest.raises(TurnValidationError) as caught:
        turns_from_json(data, **options)
    return caught.value.problems


def test_the_json_form_is_architectures_and_round_trips() -> None:
    loaded = Turn.from_json(CANONICAL)
    assert loaded == Turn("SPEAKER_00", 0.5, 1.25, "hi there", (Word("hi", 0.5, 0.8, 0.91), Word("there", 0.85, 1.25, 0.4)))
    assert loaded.to_json() == CANONICAL and list(loaded.to_json()) == ["speaker", "start", "end", "text", "words"]
    assert list(loaded.to_json()["words"][0]) == ["text", "start", "end", "probability"]
    person_word = Turn.from_json(turn(words=[{"text": "x", "start": 0.1, "end": 0.2}])).words[0]
    assert person_word.probability == 1.0, "a word without a probability is a person's: fully sure"


def test_typed_and_spread_words_say_so_and_unmarked_words_keep_the_old_json() -> None:
    marked = turn(text="x y", words=[{"text": "x", "start": 0.1, "end": 0.2, "probability": 1.0, "typed": True},
                                     {"text": "y", "start": 0.2, "end": 0.4, "probability": 0.0, "spread": True}])
    loaded = Turn.from_json(marked)
    assert [(w.typed, w.spread) for w in loaded.words] == [(True, False), (False, True)]
    assert loaded.to_json() == marked, "the marks round-trip"
    assert Turn.from_json(CANONICAL).to_json() == CANONICAL, "words without marks are written as before"
    assert problems([turn(words=[{"text": "x", "start": 0, "end": 1, "typed": "yes"}])]) == [
        "turn 0 word 0: typed must be true or false, not 'yes'"]


def test_text_and_label_ends_are_normalised() -> None:
    loaded = Turn.from_json(turn(speaker="  B ", text="  good\n morning \t you ",
                                 words=[{"text": " good ", "start": 0.0, "end": 0.4, "probability": 0.9}]))
    assert (loaded.speaker, loaded.text, loaded.words[0].text) == ("B", "good morning you", "good")
    assert Turn("B", 0, 1, " a  b ").text == "a b", "the constructor normalises like from_json"


@pytest.mark.parametrize("label", ["a b", "a\tb", "a/b", "a\\b", "a\x00b", "a\u200bb"])
def test_a_speaker_label_has_no_whitespace_control_character_or_slash(label: str) -> None:
    found = problems([turn(speaker=label)])
    assert len(found) == 1 and found[0].startswith(f"turn 0: speaker label {label!r} may not contain")
    with pytest.raises(TurnValidationError):
        Turn(label, 0.0, 1.0)


def test_every_problem_of_every_turn_is_named() -> None:
    bad = [turn(start=math.nan), turn(start=2.0, end=1.0), turn(speaker=""), turn(end=12.0),
           turn(colour="red"), {"speaker": "A", "start": 0.0, "end": 1.0}, turn(start=True),
           turn(words=[{"text": "x", "start": 0.5, "end": 0.2, "probability": 0.5}, {"text": "y", "start": 0, "end": 1, "probability": 2}]),
           turn(words="x y"), "a turn"]
    assert problems(bad, duration_s=10.0) == [
        "turn 0: start and end must be finite numbers of seconds",
        "turn 1: start 2.000 s must be >= 0 and not after end 1.000 s",
        "turn 2: speaker must be a non-empty label",
        "turn 3: end 12.000 s is past the end of the audio (10.000 s)",
        "turn 4: unknown field(s) colour",
        "turn 5: missing text",
        "turn 6: start and end must be finite numbers of seconds",
        "turn 7 word 0: start/end must be numbers with start <= end",
        "turn 7 word 1: probability must be a number from 0 to 1, not 2",
        "turn 8: 'words' must be a list",
        "turn 9: must be an object, not str",
    ]
    assert problems({"turns": []}) == ["turns must be a list, not dict"]


def test_inside_the_recording_allows_rounding_only() -> None:
    assert turns_from_json([turn(end=10.04)], duration_s=10.0)[0].end == 10.04  # model output rounded up
    assert problems([turn(end=10.06)], duration_s=10.0) == ["turn 0: end 10.060 s is past the end of the audio (10.000 s)"]
    assert problems([turn(start=-0.1)]) == ["turn 0: start -0.100 s must be >= 0 and not after end 1.000 s"]


def test_an_instant_is_a_models_turn_but_not_a_persons() -> None:
    assert turns_from_json([turn(start=1.0, end=1.0)])[0].duration == 0.0
    assert problems([turn(start=1.0, end=1.0)], positive_length=True) == ["turn 0: start 1.000 s must be >= 0 and before end 1.000 s"]


def test_a_persons_turn_holds_its_words_to_the_millisecond() -> None:
    words = [{"text": "hi", "start": 0.5, "end": 0.8}, {"text": "there", "start": 0.85, "end": 1.25}]
    assert problems([turn(start=0.6, end=1.25, text="hi there", words=words)], words_inside=True) == [
        "turn 0 word 0: 'hi' at 0.500-0.800 s lies outside its turn (0.600-1.250 s)"]
    assert problems([turn(start=0.5, end=1.0, text="hi there", words=words)], words_inside=True) == [
        "turn 0 word 1: 'there' at 0.850-1.250 s lies outside its turn (0.500-1.000 s)"]
    assert turns_from_json([turn(start=0.5004, end=1.2496, text="hi there", words=words)], words_inside=True), "rounding only"
    assert turns_from_json([turn(start=0.6, end=1.0, text="hi there", words=words)])[0].words == tuple(
        Word.from_json(w) for w in words), "a model's or an import's turn is not held to it"


# What the code before the turn type could store (checked in its history): the pre-annotation
# (asr/turns.py build_turns: exactly these keys, Whisper's stripped words with probabilities,
# instants possible), the editor's saves (review_ui/editing.py validate_turns: label and text
# only stripped at the ends, so inner spaces, slashes and newlines went in), and turns without
# `words` written straight into the table (benchmarks and fixtures built them from *.turns.json).
# It refused unknown keys on every path, so none can be in a store.
OLD_MODEL = [{"speaker": "SPEAKER_01", "start": 0.0, "end": 2.2, "text": "one two",
              "words": [{"text": "one", "start": 0.9, "end": 1.2, "probability": 0.8123},
                        {"text": "two", "start": 1.5, "end": 2.2, "probability": 0.4}]},
             {"speaker": "SPEAKER_00", "start": 3.0, "end": 3.0, "text": "", "words": []}]
OLD_PERSON = [{"speaker": "Speaker 2", "start": 0.5, "end": 1.5, "text": "well  then\nok", "words": []},
              {"speaker": "spk/0001", "start": 1.5, "end": 2.5, "text": "fine", "words": []}]
OLD_NO_WORDS = [{"speaker": "spk-0001", "start": 0.991, "end": 4.096, "text": "Hello, I'd like a table."}]


def test_revisions_stored_before_the_turn_type_load_unchanged(store: Store) -> None:
    protocol_row, _ = register_en(store)
    with store.session() as session:
        recording = models.Recording(protocol_pk=protocol_row.pk, sha256="0" * 64, source_name="old.wav", status="accepted",
                                     duration_s=5.0)
        session.add(recording)
        session.flush()
        pks = []
        for author_kind, turns in (("model", OLD_MODEL), ("person", OLD_PERSON), ("model", OLD_NO_WORDS)):
            revision = models.TranscriptRevision(recording_pk=recording.pk, author_kind=author_kind, author="old", turns=turns)
            session.add(revision)
            session.flush()
            pks.append(revision.pk)
        session.commit()
    with store.session() as session:
        model, person, no_words = (session.get(models.TranscriptRevision, pk) for pk in pks)
        assert model.as_turn_json() == OLD_MODEL
        assert person.as_turn_json() == OLD_PERSON, "labels and text kept exactly as the old editor saved them"
        assert [t.speaker for t in person.as_turns()] == ["Speaker 2", "spk/0001"]
        assert no_words.as_turn_json() == [{**OLD_NO_WORDS[0], "words": []}]
        assert model.as_turns()[1].duration == 0.0
    with store.session() as session:  # loading never writes back
        assert [session.get(models.TranscriptRevision, pk).turns for pk in pks] == [OLD_MODEL, OLD_PERSON, OLD_NO_WORDS]
    with pytest.raises(TurnValidationError, match="speaker label 'Speaker 2' may not contain"):
        turns_from_json(OLD_PERSON)  # new input is held to the label rule


def test_a_stored_revision_with_broken_numbers_or_unknown_keys_is_refused_by_name() -> None:
    with pytest.raises(TurnValidationError) as caught:
        load_stored([{**OLD_NO_WORDS[0], "start": 9.0}, {**OLD_NO_WORDS[0], "colour": "red"}])
    assert caught.value.problems == ["turn 0: start 9.000 s must be >= 0 and not after end 4.096 s",
                                     "turn 1: unknown field(s) colour"]
