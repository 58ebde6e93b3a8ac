"""A protocol's `vocabulary:` (names, places, terms for the recogniser): what is accepted and how mistakes read."""

from __future__ import annotations

import hashlib
import json

import pytest

from protocols.loader import ProtocolError, parse_protocol
from protocols.registry import spec_hash
from tests.conftest import EN_PROTOCOL


def _with_vocabulary(block: str) -> str:
    return EN_PROTOCOL.read_text() + block


def _problems(text: str) -> list[str]:
    with pytest.raises(ProtocolError) as info:
        parse_protocol(text, "plan.yaml")
    return [str(p) for p in info.value.problems]


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_a_vocabulary_is_kept_as_written() -> None:
    protocol = parse_protocol(_with_vocabulary("vocabulary: [Okonkwo, Llandudno, \"St Mary's Hospital\", ECG]\n"))
    assert protocol.vocabulary == ["Okonkwo", "Llandudno", "St Mary's Hospital", "ECG"]


def test_a_plan_without_vocabulary_keeps_its_registered_digest() -> None:
    protocol = parse_protocol(EN_PROTOCOL.read_text())
    assert protocol.vocabulary == []
    dumped = protocol.model_dump(mode="json")
    for key in ("vocabulary", "review", "deadline"):  # none existed when the plan was first registered
        assert not dumped.pop(key)
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    assert spec_hash(protocol) == hashlib.sha256(canonical.encode()).hexdigest()
    with_terms = parse_protocol(_with_vocabulary("vocabulary: [Okonkwo]\n"))
    assert spec_hash(with_terms) != spec_hash(protocol)


def test_each_bad_term_is_named_by_its_index_and_line() -> None:
    text = _with_vocabulary(
        "vocabulary:\n"
        "  - Okonkwo\n"
        "  - \"\"\n"
        "  - \" Crewe\"\n"
        "  - 1984\n"
        "  - \"two\\nlines\"\n"
        f"  - {'x' * 65}\n"
        "  - okonkwo\n"
    )
    problems = _problems(text)
    by_path = {p.split(": ")[1]: p for p in problems}
    assert set(by_path) == {"vocabulary[1]", "vocabulary[2]", "vocabulary[3]", "vocabulary[4]", "vocabulary[5]"}, problems
    assert "an empty term" in by_path["vocabulary[1]"]
    assert "white space" in by_path["vocabulary[2]"] and f"line {_line_of(text, ' Crewe')}" in by_path["vocabulary[2]"]
    assert "valid string" in by_path["vocabulary[3]"] and f"line {_line_of(text, '1984')}" in by_path["vocabulary[3]"]
    assert "control character" in by_path["vocabulary[4]"]
    assert "65 characters" in by_path["vocabulary[5]"] and "at most 64" in by_path["vocabulary[5]"]


def test_a_term_listed_twice_in_another_case_is_refused_at_its_line() -> None:
    text = _with_vocabulary("vocabulary:\n  - Okonkwo\n  - Crewe\n  - OKONKWO\n")
    (problem,) = _problems(text)
    assert problem.startswith(f"line {_line_of(text, 'OKONKWO')}: vocabulary[2]: ")
    assert "'OKONKWO' is listed twice (as 'Okonkwo' before)" in problem


def test_a_vocabulary_longer_than_the_decoder_reads_is_refused() -> None:
    terms = [f"Term{i:03d}" for i in range(60)]  # 60 x 7 characters + 59 x ", " = 538: accepted
    assert parse_protocol(_with_vocabulary(f"vocabulary: [{', '.join(terms)}]\n")).vocabulary == terms
    terms = [f"Term{i:03d}" for i in range(70)]  # 70 x 7 + 69 x 2 = 628 characters
    (problem,) = _problems(_with_vocabulary(f"vocabulary: [{', '.join(terms)}]\n"))
    assert "vocabulary: the terms take 628 characters together (at most 600" in problem
