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


# --- stability across releases ------------------------------------------------------------------------

def test_three_growing_releases_never_move_a_speaker_and_stay_near_the_targets() -> None:
    """Release 2 and 3 add sessions (new and returning speakers); every speaker keeps their first split."""
    units = _corpus(3000, 6000, seed=4)
    ratios = {"train": 0.8, "dev": 0.1, "test": 0.1}
    tolerance = 0.05  # the protocol's default `release.split_tolerance`
    first_split: dict[str, str] = {}
    for n, seed in ((1000, 0), (2000, 1), (3000, 2)):  # a different seed each time: only new speakers may depend on it
        result = assign_splits(units[:n], DIMS, ratios, seed, kept=dict(first_split))
        for speaker, split in result.by_speaker.items():
            assert first_split.setdefault(speaker, split) == split, f"{speaker} moved at release of {n} sessions"
        placed = [u for u in units[:n] if u.session_id in result.by_session]
        assert len(placed) + len(result.left_out) == n
        for unit in placed:
            assert {result.by_speaker[s] for s in unit.speakers} == {result.by_session[unit.session_id]}
        assert all(len(splits) >= 2 for splits in result.left_out.values())  # left out: it would join two kept splits
        assert len(result.left_out) < 0.05 * n
        for split, target in ratios.items():
            assert abs(result.achieved["hours"][split] - target) <= tolerance, (n, split, result.achieved["hours"])


def test_without_kept_splits_a_larger_release_moves_speakers() -> None:
    """The finding: a fresh assignment of a larger corpus moves earlier dev/test speakers (what `kept` prevents)."""
    units = _corpus(2000, 4000, seed=4)
    before = assign_splits(units[:1000], DIMS, None, seed=0).by_speaker
    after = assign_splits(units, DIMS, None, seed=0).by_speaker
    assert any(after[s] != split for s, split in before.items() if split in ("dev", "test"))
    kept = assign_splits(units, DIMS, None, seed=0, kept=before).by_speaker
    assert all(kept[s] == split for s, split in before.items() if s in kept)


def test_a_session_joining_speakers_kept_in_different_splits_is_left_out() -> None:
    kept = {"a": "dev", "b": "train", "c": "test"}
    units = [SplitUnit("s1", 1.0, {"a": {}, "x": {}}),  # x joins a's group: dev
             SplitUnit("s2", 1.0, {"x": {}, "b": {}}),  # would join dev (through x) and train: left out
             SplitUnit("s3", 1.0, {"b": {}, "y": {}}),  # y joins train
             SplitUnit("s4", 1.0, {"c": {}, "a": {}}),  # test and dev: left out
             SplitUnit("s5", 1.0, {"z": {}, "w": {}})]  # new speakers, placed by deficit
    result = assign_splits(units, [], None, seed=0, kept=kept)
    assert result.left_out == {"s2": ["dev", "train"], "s4": ["dev", "test"]}
    assert result.by_session == {"s1": "dev", "s3": "train", "s5": result.by_session["s5"]}
    assert result.by_speaker["x"] == "dev" and result.by_speaker["y"] == "train" and "c" not in result.by_speaker
    assert result.kept == {"a": "dev", "b": "train"}
    with pytest.raises(SplitError, match="earlier split"):
        assign_splits(units, [], None, 0, kept={"a": "validation"})
