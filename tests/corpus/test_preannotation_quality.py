"""The quality page's pre-annotation figures per cell and condition: the grouping checked against the manifest
(which dialogue is noisy, who speaks in it), on SQLite and PostgreSQL. In the corpus fixture the model misheard the
first word of every turn of the noisy dialogues and nothing else."""

from __future__ import annotations

import json

import pytest

from asr.evaluation import WordCounts, word_counts
from protocols.registry import get_protocol
from review_ui.preannotation_quality import preannotation_by_group
from tests.corpus.conftest import PROTOCOL_ID, Corpus, misheard, with_words
from tests.factories import manifest_rows


def test_preannotation_wer_per_condition_value_and_cell(corpus: Corpus) -> None:
    rows = {r["session_id"]: r for r in manifest_rows(corpus.dialogues)}
    counts: dict[str, WordCounts] = {}
    for session_id, row in rows.items():
        truth = with_words(json.loads((corpus.dialogues / f"{session_id}.turns.json").read_text()))
        model = misheard(truth) if row["noise_condition"] == "noisy" else truth
        counts[session_id] = word_counts(" ".join(t["text"] for t in truth), " ".join(t["text"] for t in model))

    def expected(member: callable) -> float:  # type: ignore[valid-type]
        chosen = [counts[s] for s, r in rows.items() if member(r)]
        total = sum(chosen, WordCounts())
        return total.errors / total.reference_words

    with corpus.store.session() as session:
        grouped = preannotation_by_group(session, *get_protocol(session, PROTOCOL_ID))
    got = {(r["dimension"], r["value"]): r for r in grouped.ranked()}
    assert grouped.overall.files == len(rows)
    assert got[("noise_condition", "quiet")]["wer"] == 0.0
    assert got[("noise_condition", "noisy")]["wer"] == pytest.approx(expected(lambda r: r["noise_condition"] == "noisy"), abs=1e-4)
    assert got[("device", "headset")]["files"] == sum(r["device"] == "headset" for r in rows.values())
    us = got[("accent", "us_general")]
    assert us["files"] == 3 and us["wer"] == pytest.approx(
        expected(lambda r: any(s["demographics"]["accent"] == "us_general" for s in r["speakers"])), abs=1e-4)
    cell = got[("age_band × gender × accent", "45-59 × male × caribbean")]  # only dlg003's first speaker
    assert cell["files"] == 1 and cell["wer"] == pytest.approx(expected(lambda r: r["session_id"] == "dlg003"), abs=1e-4)
    ranked = [r["wer"] for r in grouped.ranked()]
    assert ranked == sorted(ranked, reverse=True) and ranked[0] > 0, "worst first"
