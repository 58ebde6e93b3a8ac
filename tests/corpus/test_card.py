"""The dataset card: sizes, coverage (cross-checked with collection/coverage.py), splits, model WER, consent, Markdown."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from asr.evaluation import normalize
from collection.coverage import compute_coverage
from corpus.releases.card import render_markdown
from corpus.releases.build import build_release
from protocols.registry import get_protocol
from tests.corpus.conftest import PROTOCOL_ID, Corpus

ON = dt.date(2026, 11, 1)


@pytest.fixture
def card(corpus: Corpus) -> dict:
    return build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v1", on=ON, ratios={"train": 0.6, "dev": 0.2, "test": 0.2}).release.card


def test_sizes_and_coverage_match_the_store_when_everything_is_released(corpus: Corpus, card: dict) -> None:
    with corpus.store.session() as session:
        row, protocol = get_protocol(session, PROTOCOL_ID)
        expected = {(r.scope, r.label): r for r in compute_coverage(session, row, protocol).rows}
    assert card["totals"]["recordings"] == 6 and card["totals"]["sessions"] == 6 and card["totals"]["speakers"] == 11
    assert card["totals"]["hours"] == pytest.approx(expected[("total", "total")].hours, abs=1e-4)
    rows = {(c["scope"], c["label"]): c for c in card["coverage"]}
    assert set(rows) == set(expected)
    for key, want in expected.items():
        got = rows[key]
        assert (got["speakers"], got["sessions"]) == (want.speakers, want.sessions), key
        assert got["hours"] == pytest.approx(want.hours, abs=1e-4) and got["target_hours"] == want.target_hours, key
    assert card["distributions"]["noise_condition"]["noisy"]["recordings"] == 3


def test_splits_are_speaker_disjoint_and_add_up(corpus: Corpus, card: dict) -> None:
    sizes = card["splits"]["sizes"]
    assert sum(s["recordings"] for s in sizes.values()) == 6 and sum(s["speakers"] for s in sizes.values()) == 11
    assert sum(s["share"] for s in sizes.values()) == pytest.approx(1.0, abs=1e-3)
    assert card["splits"]["target_ratios"] == {"train": 0.6, "dev": 0.2, "test": 0.2}
    assert all(abs(sum(v.values()) - 1.0) < 1e-3 for v in card["splits"]["share_by_value"].values())


def test_preannotation_wer_says_where_the_model_is_weak(corpus: Corpus, card: dict) -> None:
    pre = card["preannotation"]
    assert list(pre["models"]) == ["whisper:tiny.en+embedded"] and pre["models"]["whisper:tiny.en+embedded"]["recordings"] == 6
    assert pre["models"]["whisper:tiny.en+embedded"]["params"]["asr"]["model"] == "tiny.en"
    groups = {(g["dimension"], g["value"]): g for g in pre["by_group"]}
    # the fixture's model misheard one word per turn in noisy sessions only
    turns = [t for d in ("dlg003", "dlg005", "dlg006") for t in json.loads((corpus.dialogues / f"{d}.turns.json").read_text())]
    words = sum(len(normalize(t["text"]).split()) for t in turns)
    assert groups[("noise_condition", "noisy")]["wer"] == pytest.approx(len(turns) / words, abs=1e-4)
    assert groups[("noise_condition", "quiet")]["wer"] == 0.0
    assert pre["by_group"][0]["wer"] > 0, "weakest groups first"
    assert ("age_band × gender × accent", "30-44 × male × west_midlands") in groups


def test_consent_quality_and_markdown(card: dict) -> None:
    assert card["consent"] == {"form_versions": {"v3": 11}, "permitted_uses": {"evaluation, model_training": 11}}
    quality = card["quality"]
    # the fixture: six recordings, each with one approved revision by "reviewer1"; no task, gold item or double annotation
    assert quality["available"] and quality["approved_recordings"] == 6 and quality["reviewers"] == 1
    assert (quality["gold_items"], quality["double_annotated"], quality["annotators"]) == (0, 0, 0)
    assert quality["gold_wer"] is None and quality["agreement_alpha"] is None
    assert 0 <= quality["median_days_to_approval"] < 1, "approved the day they were ingested"
    markdown = render_markdown(card)
    assert markdown.startswith("# v1\n") and card["release"]["release_id"] in markdown
    for section in ("## Size", "## Splits (speaker-disjoint)", "## Coverage against the protocol", "## Pre-annotation models",
                    "## Consent scopes (speakers)", "## Changes since the previous release", "First release of this protocol."):
        assert section in markdown
    assert "spk-" not in json.dumps(card), "the card names no speaker"
