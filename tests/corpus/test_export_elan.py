"""ELAN: `corpus pull --format eaf` read back with pympi-ling, the library linguists' scripts use."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from corpus.exports.pull import pull_release
from corpus.releases.build import build_release
from store import models
from store.accounts import authenticate
from tests.corpus.conftest import PASSWORD, PROTOCOL_ID, Corpus, stored_entries

ON = dt.date(2026, 11, 1)


def _approved(corpus: Corpus, name: str) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    with corpus.store.session() as session:
        return {e["recording"]: session.get(models.TranscriptRevision, e["revision_pk"]).turns
                for e in stored_entries(corpus.store, name)}


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # the writer never touches the database
def test_eaf_has_a_tier_per_speaker_with_every_turn_read_by_pympi(corpus: Corpus, tmp_path: Path) -> None:
    from pympi.Elan import Eaf

    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v1", on=ON)
    report = pull_release(corpus.store, corpus.consumer, "v1", "eaf", tmp_path / "out", audio="include")
    files = sorted((tmp_path / "out" / "eaf").rglob("*.eaf"))
    assert len(files) == 6 == report.files
    approved = _approved(corpus, "v1")
    for path in files:
        eaf = Eaf(str(path))
        turns = approved[path.stem]
        speakers = sorted({t["speaker"] for t in turns})
        assert sorted(eaf.get_tier_names()) == sorted([*speakers, *(f"{s}/personal-data" for s in speakers)])
        for speaker in speakers:
            assert eaf.get_parameters_for_tier(f"{speaker}/personal-data")["PARENT_REF"] == speaker
            assert eaf.get_parameters_for_tier(speaker)["PARTICIPANT"] == speaker
            assert eaf.get_annotation_data_for_tier(f"{speaker}/personal-data") == []
        got = sorted((s, a[0], a[1], a[2]) for s in speakers for a in eaf.get_annotation_data_for_tier(s))
        # the synthetic dialogues' turns of one speaker never overlap, so each turn is one annotation
        assert got == sorted((t["speaker"], round(t["start"] * 1000), round(t["end"] * 1000), t["text"]) for t in turns)
        assert eaf.linguistic_types["personal-data"]["CONSTRAINTS"] == "Included_In"
        media = eaf.media_descriptors[0]["RELATIVE_MEDIA_URL"]
        assert (path.parent / media).resolve() == (tmp_path / "out" / "audio" / path.parent.name / f"{path.stem}.wav").resolve()


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_eaf_personal_data_tier_marks_the_redacted_span(corpus: Corpus, tmp_path: Path) -> None:
    from pympi.Elan import Eaf

    from corpus.governance.pii import mark_span

    with corpus.store.session() as session:
        annie = authenticate(session, "annie", PASSWORD)
        approved = session.scalar(select(models.TranscriptRevision).where(
            models.TranscriptRevision.recording_pk == corpus.recordings["dlg001"], models.TranscriptRevision.stage == "approved"))
        mark_span(session, annie, approved.pk, 0, 5, 7, "other")
        session.commit()
        first = approved.turns[0]
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "private", on=ON, redact_pii=True)
    pull_release(corpus.store, corpus.consumer, "private", "eaf", tmp_path / "out", audio="cut")
    key = f"rec-{corpus.recordings['dlg001']}"
    eaf = Eaf(str(next((tmp_path / "out" / "eaf").rglob(f"{key}.eaf"))))
    speaker = first["speaker"]
    marks = eaf.get_annotation_data_for_tier(f"{speaker}/personal-data")
    # the span is words 5-6 of turn 0: its time runs from word 5's start to word 6's end
    assert marks == [(round(first["words"][5]["start"] * 1000), round(first["words"][6]["end"] * 1000), "other")]
    said = first["text"].split()
    turn0 = min(eaf.get_annotation_data_for_tier(speaker))
    assert turn0[2] == " ".join([*said[:5], "[other]", *said[7:]])
    assert turn0[0] <= marks[0][0] < marks[0][1] <= turn0[1]
    assert eaf.media_descriptors == []  # cut audio: no whole recording to point at
