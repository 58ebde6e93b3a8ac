"""Coverage numbers against values computed by hand from the manifest, on both databases."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path

import pytest
import soundfile as sf

from collection.coverage import compute_coverage
from collection.coverage_formats import coverage_csv, coverage_heatmap, coverage_json
from collection.intake import ingest_manifest
from store.db import Store
from tests.factories import import_consent_file, manifest_rows, register_en


@pytest.fixture
def report(store: Store, dialogues: Path):  # type: ignore[no-untyped-def]
    row, protocol = register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    ingest_manifest(store, protocol.id, dialogues / "manifest.jsonl", actor="test")
    with store.session() as session:
        return compute_coverage(session, row, protocol)


def _expected(dialogues: Path, key) -> dict:  # type: ignore[no-untyped-def]
    hours: dict = defaultdict(float)
    speakers: dict = defaultdict(set)
    sessions: dict = defaultdict(set)
    for rec in manifest_rows(dialogues):
        duration = sf.info(dialogues / rec["path"]).duration
        for spk in rec["speakers"]:
            k = key(rec, spk)
            hours[k] += duration / len(rec["speakers"]) / 3600
            speakers[k].add(spk["speaker_id"])
            sessions[k].add(rec["session_id"])
    return {k: (hours[k], len(speakers[k]), len(sessions[k])) for k in hours}


def test_marginals_and_cells_match_a_hand_count(report, dialogues: Path) -> None:  # type: ignore[no-untyped-def]
    total = report.scope("total")[0]
    durations = sum(sf.info(dialogues / r["path"]).duration for r in manifest_rows(dialogues))
    assert total.hours == pytest.approx(durations / 3600)
    assert (total.speakers, total.sessions, total.target_hours) == (11, 6, 300)

    marginals = {(r.dimensions[0], r.values[0]): r for r in report.scope("marginal")}
    for dim in ("gender", "accent", "age_band"):
        for (value,), (hours, speakers, sessions) in _expected(dialogues, lambda rec, s: (s["demographics"][dim],)).items():
            got = marginals[(dim, value)]
            assert (got.speakers, got.sessions) == (speakers, sessions)
            assert got.hours == pytest.approx(hours)
    for (value,), (hours, _, sessions) in _expected(dialogues, lambda rec, s: (rec["noise_condition"],)).items():
        assert marginals[("noise_condition", value)].hours == pytest.approx(hours)
        assert marginals[("noise_condition", value)].sessions == sessions
    assert marginals[("gender", "female")].target_hours == 150

    cells = {r.values: r for r in report.scope("cell")}
    assert len(cells) == 48, "every targeted cell is listed, collected or not"
    dims = ("age_band", "gender", "accent")
    for key, (hours, speakers, _) in _expected(dialogues, lambda rec, s: tuple(s["demographics"][d] for d in dims)).items():
        assert cells[key].hours == pytest.approx(hours) and cells[key].speakers == speakers
    assert cells[("18-29", "male", "us_general")].hours == 0


def test_most_behind_first_and_gaps(report) -> None:  # type: ignore[no-untyped-def]
    cells = report.scope("cell")
    percents = [c.percent for c in cells]
    assert percents == sorted(percents)
    first = cells[0]
    assert first.percent == 0 and first.gap_hours == first.target_hours
    collected = next(c for c in cells if c.hours > 0)
    assert collected.gap_hours == pytest.approx(collected.target_hours - collected.hours)


def test_declared_quiet_but_noisy_is_listed(report) -> None:  # type: ignore[no-untyped-def]
    assert [m["session_id"] for m in report.mismatches] == ["dlg002"]
    assert "declared 'quiet'" in report.mismatches[0]["noise_mismatch"]


def test_csv_json_and_png_outputs(report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = list(csv.DictReader(io.StringIO(coverage_csv(report))))
    assert len(rows) == len(report.rows) and rows[0]["scope"] == "total"
    data = json.loads(coverage_json(report))
    assert data["protocol"] == "en-dialogue-accents" and len(data["rows"]) == len(report.rows)
    png = coverage_heatmap(report, tmp_path / "coverage.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
