"""The funnel and the dataset card are views of collection/coverage.py: same filter, same figures (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf
from sqlalchemy import select

from collection.coverage import STAGES, compute_coverage, recording_stages, recordings_at_stage
from collection.intake import ingest_manifest
from corpus.releases.build import build_release
from protocols.registry import get_protocol
from review_ui.funnel import coverage_funnel
from store import models
from store.accounts import Principal, add_user, authenticate
from store.db import Store
from tests.corpus.conftest import PASSWORD, PROTOCOL_ID, with_words
from tests.factories import import_consent_file, manifest_rows, register_en

MODEL = {"dlg001", "dlg002", "dlg003", "dlg004", "dlg005"}  # dlg006 is only collected
DRAFTED = {"dlg002", "dlg003"}  # a person's draft: in review
APPROVED = {"dlg001", "dlg003", "dlg005"}  # what a release can take


@dataclass
class Staged:
    store: Store
    recordings: dict[str, int]  # session id -> recording pk
    hours: dict[str, float]  # session id -> duration in hours, read from the audio files
    manager: Principal


@pytest.fixture
def staged(store: Store, dialogues: Path) -> Staged:
    """The six dialogues at different review stages, so every stage counts a different set."""
    register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    ingest_manifest(store, PROTOCOL_ID, dialogues / "manifest.jsonl", actor="test")
    hours = {r["session_id"]: sf.info(dialogues / r["path"]).duration / 3600 for r in manifest_rows(dialogues)}
    recordings: dict[str, int] = {}
    with store.session() as session:
        for pk, session_id in session.execute(select(models.Recording.pk, models.Session.session_id)
                                              .join(models.Session, models.Session.pk == models.Recording.session_pk)):
            recordings[session_id] = pk
            turns = with_words(json.loads((dialogues / f"{session_id}.turns.json").read_text()))
            for wanted, kind, stage in ((MODEL, "model", "model"), (DRAFTED, "person", "draft"), (APPROVED, "person", "approved")):
                if session_id in wanted:
                    session.add(models.TranscriptRevision(recording_pk=pk, author_kind=kind, author=f"{kind}-1",
                                                          author_params={}, turns=turns, stage=stage))
        add_user(session, "manny", PASSWORD, ["manager"], actor="test")
        session.commit()
        manager = authenticate(session, "manny", PASSWORD)
        session.commit()
    return Staged(store, recordings, hours, manager)


def _pks(staged: Staged, session_ids: set[str]) -> frozenset[int]:
    return frozenset(staged.recordings[s] for s in session_ids)


def test_funnel_stages_are_coverage_over_the_recordings_at_each_stage(staged: Staged) -> None:
    by_hand = {"collected": set(staged.recordings), "preannotated": MODEL, "in_review": DRAFTED | APPROVED, "approved": APPROVED,
               "released": set()}
    with staged.store.session() as session:
        row, protocol = get_protocol(session, PROTOCOL_ID)
        funnel = coverage_funnel(session, row, protocol)
        stages = recording_stages(session, row.pk)
        reports = {name: compute_coverage(session, row, protocol, recordings_at_stage(stages, name)) for name in STAGES}
    total, cells = funnel[0], funnel[1:]
    for name in STAGES:
        assert recordings_at_stage(stages, name) == _pks(staged, by_hand[name]), name
        want_total = reports[name].scope("total")[0]
        assert total.hours[name] == pytest.approx(sum(staged.hours[s] for s in by_hand[name]), abs=1e-9), name
        assert (total.hours[name], total.speakers[name]) == (want_total.hours, want_total.speakers), name
        want_cells = {r.values: (r.hours, r.speakers) for r in reports[name].scope("cell")}
        assert {c.values: (c.hours[name], c.speakers[name]) for c in cells} == want_cells, name
    assert len({round(total.hours[name], 9) for name in STAGES}) == len(STAGES), "every stage counts a different set"


def test_released_stage_counts_what_a_release_holds(staged: Staged) -> None:
    build_release(staged.store, staged.manager, PROTOCOL_ID, "v1", on=dt.date(2026, 11, 1),
                  ratios={"train": 0.6, "dev": 0.2, "test": 0.2})
    with staged.store.session() as session:
        row, protocol = get_protocol(session, PROTOCOL_ID)
        stages = recording_stages(session, row.pk)
        total = coverage_funnel(session, row, protocol)[0]
    assert recordings_at_stage(stages, "released") == _pks(staged, APPROVED)
    assert total.hours["released"] == pytest.approx(sum(staged.hours[s] for s in APPROVED), abs=1e-9)


def test_card_coverage_is_coverage_over_the_released_recordings(staged: Staged) -> None:
    card = build_release(staged.store, staged.manager, PROTOCOL_ID, "v1", on=dt.date(2026, 11, 1),
                         ratios={"train": 0.6, "dev": 0.2, "test": 0.2}).release.card
    with staged.store.session() as session:
        row, protocol = get_protocol(session, PROTOCOL_ID)
        released = compute_coverage(session, row, protocol, _pks(staged, APPROVED))
    assert card["totals"]["recordings"] == len(APPROVED)
    want = {(r.scope, r.label): r for r in released.rows}
    got = {(c["scope"], c["label"]): c for c in card["coverage"]}
    assert set(got) == set(want)
    assert got[("total", "total")]["hours"] == round(sum(staged.hours[s] for s in APPROVED), 4)
    for key, expected in want.items():
        percent = None if expected.percent is None else round(expected.percent, 1)
        assert (got[key]["hours"], got[key]["speakers"], got[key]["sessions"], got[key]["percent"]) == (
            round(expected.hours, 4), expected.speakers, expected.sessions, percent), key
