"""Splits: speaker-disjoint through shared sessions, stratified, reproducible, with precise errors."""

from __future__ import annotations

import random

import pytest

from corpus.releases.splits import SplitError, SplitUnit, assign_splits, parse_ratios

DIMS = ["gender", "accent"]


def _corpus(n_sessions: int, n_speakers: int, seed: int = 1) -> list[SplitUnit]:
    """Two-speaker sessions drawn from a speaker pool (so speakers recur), with varied durations."""
    rng = random.Random(seed)
    people = {f"s{i:04d}": {"gender": rng.choice(["female", "male"]), "accent": rng.choice(["a", "b", "c", "d"])}
              for i in range(n_speakers)}
    units = []
    for i in range(n_sessions):
        pair = rng.sample(sorted(people), 2)
        units.append(SplitUnit(f"sess{i:05d}", rng.uniform(0.05, 0.5), {p: people[p] for p in pair}))
    return units


def test_no_speaker_is_in_two_splits_even_through_chains_of_sessions() -> None:
    units = [SplitUnit("a", 1.0, {"x": {}, "y": {}}), SplitUnit("b", 1.0, {"y": {}, "z": {}}),
             SplitUnit("c", 1.0, {"z": {}, "w": {}}), SplitUnit("d", 1.0, {"p": {}, "q": {}})]
    for seed in range(10):
        result = assign_splits(units, [], {"train": 0.5, "dev": 0.25, "test": 0.25}, seed)
        assert result.by_session["a"] == result.by_session["b"] == result.by_session["c"]
        assert set(result.by_speaker) == {"x", "y", "z", "w", "p", "q"}


def test_large_corpus_is_disjoint_stratified_and_near_the_target_shares() -> None:
    units = _corpus(3000, 6000)
    result = assign_splits(units, DIMS, {"train": 0.8, "dev": 0.1, "test": 0.1}, seed=0)
    for unit in units:
        assert {result.by_speaker[s] for s in unit.speakers} == {result.by_session[unit.session_id]}
    for split, target in result.ratios.items():
        assert result.achieved["hours"][split] == pytest.approx(target, abs=0.02)
    for key, shares in result.achieved.items():
        if key.startswith(("gender=", "accent=")):
            assert shares["test"] == pytest.approx(0.1, abs=0.03), key


def test_same_seed_same_splits_other_seed_other_splits() -> None:
    units = _corpus(400, 900)
    first = assign_splits(units, DIMS, None, seed=5)
    assert assign_splits(list(reversed(units)), DIMS, None, seed=5).by_session == first.by_session, "input order does not matter"
    assert assign_splits(units, DIMS, None, seed=6).by_session != first.by_session


def test_a_split_with_ratio_zero_stays_empty_and_nothing_is_lost() -> None:
    units = _corpus(100, 300)
    result = assign_splits(units, DIMS, {"train": 0.9, "dev": 0.0, "test": 0.1}, seed=0)
    assert "dev" not in set(result.by_session.values()) and len(result.by_session) == 100
    assert assign_splits([], DIMS, None, 0).by_session == {}


@pytest.mark.parametrize("text,message", [
    ("0.8,0.1", "sum to 1"), ("0.8,0.3,-0.1", "negative"), ("train=0.8,val=0.2", "unknown split 'val'"),
    ("0.8,abc,0.1", "not a number"), ("", "empty"),
])
def test_bad_ratios_are_refused_precisely(text: str, message: str) -> None:
    with pytest.raises(SplitError, match=message):
        parse_ratios(text)
    assert parse_ratios("train=0.7,dev=0.2,test=0.1") == {"train": 0.7, "dev": 0.2, "test": 0.1}
