"""PII: detectors on concrete sentences, marks and their carry-over, redaction of text and audio copies."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import func, select

from store import models
from store.accounts import PermissionDenied, Principal
from store.blobs import BlobStore
from store.db import Store
from corpus.governance.pii import (
    PiiError,
    Span,
    detect_protocol,
    detect_turns,
    load_names,
    mark_span,
    redact_turns,
    redacted_intervals,
    silence_spans,
    spans_for_revision,
)
from tests.factories import register_en
from tests.review_ui.conftest import words_for


def turn(text: str, start: float = 0.0, end: float | None = None, speaker: str = "A") -> dict:
    t = {"speaker": speaker, "start": start, "end": end if end is not None else start + 0.4 * len(text.split()), "text": text}
    return {**t, "words": words_for(t)}


def found(text: str, names: tuple[str, ...] = ()) -> list[tuple[int, int, str]]:
    return [(s.word_start, s.word_end, s.kind) for s in detect_turns([turn(text)], names)]


@pytest.mark.parametrize(("text", "expected"), [
    ("Call me on five five five oh one two three four please", [(3, 11, "phone")]),
    ("My number is 555-0134, thanks.", [(3, 4, "phone")]),
    ("It's (020) 7946 0958 at work", [(1, 4, "phone")]),
    ("Oh, five double five one two three four.", [(1, 8, "phone")]),
    ("The card is four one one one one one one one one one one one one one one one.", [(3, 19, "number")]),
    ("Account forty two seventeen eighty nine sixty.", [(1, 7, "number")]),
    ("A table for five, please, around six thirty.", []),
    ("See you in twenty twenty six, room one oh four.", []),
])
def test_number_and_phone_detectors(text: str, expected: list) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Write to john dot smith at example dot com today.", [(2, 9, "email")]),
    ("Email: Jane.Doe@Example.org.", [(1, 2, "email")]),
    ("It's john at example.com, yes.", [(1, 4, "email")]),
    ("Send it to maria underscore l at mail dot co dot uk", [(3, 12, "email")]),
    ("Look at this dot over there.", []),
    ("Let's meet at noon at the station.", []),
])
def test_email_detector(text: str, expected: list) -> None:
    assert found(text) == expected


def test_names_from_a_list_are_found_case_insensitively_and_whole(tmp_path: Path) -> None:
    path = tmp_path / "names.txt"
    path.write_text("# staff and callers\nMaria Lopez\n\njohn  # first names too\nJo\n")
    names = load_names(path)
    assert names == ["Maria Lopez", "john", "Jo"]
    assert found("I spoke with maria LOPEZ and John's brother, not Joanna.", tuple(names)) == [(3, 5, "name"), (6, 7, "name")]
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(PiiError, match="holds no names"):
        load_names(tmp_path / "empty.txt")
    with pytest.raises(PiiError, match="does not exist"):
        load_names(tmp_path / "missing.txt")


def test_each_span_says_which_detector_found_it() -> None:
    spans = detect_turns([turn("ok"), turn("mail john at example dot com or call five five five one two one two")], ["John"])
    assert {(s.turn_index, s.kind, s.source) for s in spans} == {
        (1, "email", "detector:email"), (1, "name", "detector:names"), (1, "phone", "detector:numbers")}


def test_redaction_replaces_words_by_one_tag_and_keeps_times() -> None:
    turns = [turn("Call me on five five five oh one two three four please", 1.0),
             turn("mail john at example dot com", 10.0, speaker="B")]
    original = copy.deepcopy(turns)
    spans = [Span(0, 3, 11, "phone"), Span(1, 1, 6, "email"), Span(1, 1, 2, "name")]
    redacted = redact_turns(turns, spans)
    assert turns == original, "the input is not modified"
    assert [t["text"] for t in redacted] == ["Call me on [phone] please", "mail [email]"]
    tag = redacted[0]["words"][3]
    assert (tag["text"], tag["start"], tag["end"]) == ("[phone]", turns[0]["words"][3]["start"], turns[0]["words"][10]["end"])
    assert [w["text"] for w in redacted[0]["words"]] == ["Call", "me", "on", "[phone]", "please"]
    assert redacted[1]["words"][1]["end"] == turns[1]["words"][5]["end"]
    assert [(t["speaker"], t["start"], t["end"]) for t in redacted] == [(t["speaker"], t["start"], t["end"]) for t in turns]


def test_redacted_intervals_are_word_times_merged_and_whole_turns_without_words() -> None:
    turns = [turn("one two three four five", 0.0, 5.0), {"speaker": "B", "start": 7.0, "end": 9.0, "text": "my name is Ann"}]
    spans = [Span(0, 1, 2, "x"), Span(0, 2, 3, "x"), Span(0, 4, 5, "x"), Span(1, 3, 4, "name")]
    words = turns[0]["words"]
    assert redacted_intervals(turns, spans) == [(words[1]["start"], words[2]["end"]), (words[4]["start"], words[4]["end"]),
                                                (7.0, 9.0)]
    assert redact_turns(turns, spans)[1]["text"] == "my name is [name]"


def test_an_edited_turn_is_redacted_in_its_text_its_model_words_and_its_audio() -> None:
    model = turn("My number is five five five oh one three four thanks", 0.0, 5.0)
    edited = {**model, "text": "My number is 555-0134, thanks."}  # the annotator rewrote the digits, words kept
    spans = detect_turns([edited])
    assert [(s.word_start, s.word_end, s.kind) for s in spans] == [(3, 4, "phone")]
    redacted = redact_turns([edited], spans)[0]
    assert redacted["text"] == "My number is [phone] thanks."
    assert [w["text"] for w in redacted["words"]] == ["My", "number", "is", "[phone]", "thanks"], "no spoken digit survives"
    words = model["words"]
    assert redacted_intervals([edited], spans) == [(words[2]["end"], words[10]["start"])]


def test_a_name_typed_in_where_the_model_heard_nothing_takes_its_neighbours_audio() -> None:
    words = [{"text": t, "start": float(i), "end": float(i + 1), "probability": 0.9} for i, t in enumerate(["call", "me", "now"])]
    edited = {"speaker": "A", "start": 0.0, "end": 3.0, "text": "call me John now", "words": words}
    spans = detect_turns([edited], ["john"])
    assert redacted_intervals([edited], spans) == [(1.0, 3.0)]
    assert redact_turns([edited], spans)[0]["text"] == "call me [name] now"


def _sine(seconds: float, rate: int, freq: float = 220.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * rate)) / rate)).astype(np.float32)


def test_silence_replaces_only_the_intervals_with_short_fades() -> None:
    rate = 16000
    audio = _sine(2.0, rate)
    before = audio.copy()
    out = silence_spans(audio, rate, [(0.5, 1.0)])
    assert np.array_equal(audio, before), "the input is not modified"
    assert out.dtype == audio.dtype and out.shape == audio.shape
    assert not out[8000:16000].any()
    fade = int(0.005 * rate)
    assert np.array_equal(out[: 8000 - fade], audio[: 8000 - fade]) and np.array_equal(out[16000 + fade :], audio[16000 + fade :])
    assert np.max(np.abs(np.diff(out))) <= np.max(np.abs(np.diff(audio))) + 1e-6, "no step larger than the signal's own"


def test_tone_is_1khz_at_minus_20_dbfs_on_int16_stereo() -> None:
    rate = 16000
    audio = (np.stack([_sine(1.0, rate), _sine(1.0, rate, 330.0)], axis=1) * 32767).astype(np.int16)
    out = silence_spans(audio, rate, [(0.25, 0.75)], mode="tone")
    middle = out[5000:11000, 0].astype(np.float64) / 32767
    assert 20 * np.log10(np.max(np.abs(middle))) == pytest.approx(-20.0, abs=0.1)
    spectrum = np.abs(np.fft.rfft(middle))
    assert np.fft.rfftfreq(len(middle), 1 / rate)[np.argmax(spectrum)] == pytest.approx(1000.0, abs=3)
    assert not np.array_equal(out[:, 0], out[:, 1]) and np.array_equal(out[5000:11000, 0], out[5000:11000, 1])
    with pytest.raises(ValueError, match="mode must be"):
        silence_spans(audio, rate, [(0.1, 0.2)], mode="beep")
    with pytest.raises(ValueError, match="not a time interval"):
        silence_spans(audio, rate, [(0.3, 0.2)])


def test_silencing_a_copy_leaves_the_original_blob_unchanged(tmp_path: Path, dialogues: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    digest = blobs.put_file(dialogues / "dlg001.flac")
    original = blobs.path_for(digest)
    samples, rate = sf.read(original, dtype="float32")
    copy_path = tmp_path / "released.flac"
    sf.write(copy_path, silence_spans(samples, rate, [(1.0, 2.0)], mode="tone"), rate)
    assert hashlib.sha256(original.read_bytes()).hexdigest() == digest
    assert not original.stat().st_mode & 0o222
    assert hashlib.sha256(copy_path.read_bytes()).hexdigest() != digest


# --- stored spans (SQLite and PostgreSQL) ------------------------------------------------------

def _revision(store: Store, turns: list[dict], parent: int | None = None, stage: str = "model", recording: int | None = None) -> int:
    with store.session() as session:
        if recording is None:
            protocol = session.scalar(select(models.Protocol))
            rec = models.Recording(protocol_pk=protocol.pk, status="accepted", source_name="x.flac", sha256="a" * 64)
            session.add(rec)
            session.flush()
            recording = rec.pk
        revision = models.TranscriptRevision(recording_pk=recording, parent_pk=parent, author_kind="person",
                                             author="anna", turns=turns, stage=stage)
        session.add(revision)
        session.commit()
        return revision.pk


TURNS = [turn("Hello, this is Maria Lopez speaking."), turn("My number is five five five one two three four.", 3.0)]


def test_detection_is_stored_once_and_marks_are_checked(store: Store) -> None:
    row, _ = register_en(store)
    pk = _revision(store, TURNS)
    with store.session() as session:
        assert detect_protocol(session, row.pk, ["Maria Lopez"], actor="test") == (1, 2)
        assert detect_protocol(session, row.pk, ["Maria Lopez"], actor="test") == (1, 0), "idempotent"
        session.commit()
    annotator = Principal("anna", frozenset({"annotator"}))
    with store.session() as session:
        with pytest.raises(PermissionDenied, match="may not mark"):
            mark_span(session, Principal("carl", frozenset({"consumer"})), pk, 0, 0, 1, "name")
        with pytest.raises(PiiError, match="no turn 5"):
            mark_span(session, annotator, pk, 5, 0, 1, "name")
        with pytest.raises(PiiError, match=r"turn 0 has 6 words; \[4, 7\)"):
            mark_span(session, annotator, pk, 0, 4, 7, "name")
        with pytest.raises(PiiError, match="unknown kind 'secret'"):
            mark_span(session, annotator, pk, 0, 0, 1, "secret")
        with pytest.raises(PiiError, match="no transcript revision 999"):
            mark_span(session, annotator, 999, 0, 0, 1, "name")
        first = mark_span(session, annotator, pk, 0, 2, 3, "other")
        again = mark_span(session, annotator, pk, 0, 2, 3, "other")
        session.commit()
        assert first.pk == again.pk
        assert session.scalar(select(func.count()).select_from(models.PiiSpan)) == 3
        assert spans_for_revision(session, pk) == [
            Span(0, 2, 3, "other", "anna"), Span(0, 3, 5, "name", "detector:names"), Span(1, 3, 10, "phone", "detector:numbers")]
        assert session.scalar(select(func.count()).select_from(models.AuditEvent).where(
            models.AuditEvent.action == "pii_mark")) == 1


def test_marks_follow_their_words_into_later_revisions(store: Store) -> None:
    register_en(store)
    draft = _revision(store, TURNS, stage="draft")
    with store.session() as session:
        recording = session.get(models.TranscriptRevision, draft).recording_pk
        mark_span(session, Principal("anna", frozenset({"annotator"})), draft, 0, 3, 5, "name")
        mark_span(session, Principal("anna", frozenset({"annotator"})), draft, 1, 3, 10, "phone")
        session.commit()
    submitted = _revision(store, TURNS, parent=draft, stage="submitted", recording=recording)
    edited = [turn("Good morning."), turn("Hello, this is Maria Lopez here."), turn("My number is withheld.")]
    approved = _revision(store, edited, parent=submitted, stage="approved", recording=recording)
    with store.session() as session:
        spans = spans_for_revision(session, approved)
    assert spans == [Span(1, 3, 5, "name", "anna")], "the name moved to turn 1; the edited-away number is dropped"
    assert redact_turns(edited, spans)[1]["text"] == "Hello, this is [name] here."
