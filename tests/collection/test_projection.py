"""The coverage projection against a hand-computed example, the site/device/noise filters, and their CLI
(SQLite and PostgreSQL). Expected figures come from the audio files' durations and the manifest, not from
collection/coverage.py."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import pytest
import soundfile as sf
from sqlalchemy import select, update
from typer.testing import CliRunner

from collection.coverage import CoverageRow, RecordingFilter, compute_coverage
from collection.intake import ingest_manifest
from collection.projection import coverage_projection, project
from tests.conftest import EN_PROTOCOL
from protocols.registry import get_protocol
from store import models
from store.accounts import add_user
from store.db import Store
from tests.factories import import_consent_file, manifest_rows, register_en
from turnscribe import app

AS_OF = dt.date(2026, 11, 30)
DEADLINE = dt.date(2027, 1, 15)
RECENT = {"dlg001", "dlg002"}  # ingested in the four weeks up to AS_OF; the others long before
TOTAL_TARGET_H, CELL_TARGET_H = 0.08, 0.01
PASSWORD = "correct-horse-battery"


def small_plan() -> str:
    """The English plan with targets a handful of dialogues can approach, and a deadline."""
    text = EN_PROTOCOL.read_text()
    text = text.replace("total: {hours: 300, speakers: 480}", f"total: {{hours: {TOTAL_TARGET_H}}}")
    text = text.replace("default: {hours: 6.25, speakers: 10}", f"default: {{hours: {CELL_TARGET_H}}}")
    return text.replace("guidelines: |", f"deadline: {DEADLINE.isoformat()}\nguidelines: |")


@pytest.fixture
def collected(store: Store, dialogues: Path) -> tuple[Store, dict[str, float], list[dict]]:
    register_en(store, small_plan())
    import_consent_file(store, dialogues / "consent.csv")
    ingest_manifest(store, "en-dialogue-accents", dialogues / "manifest.jsonl", actor="test")
    rows = manifest_rows(dialogues)
    seconds = {r["session_id"]: sf.info(dialogues / r["path"]).duration for r in rows}
    with store.session() as session:
        for session_id in seconds:
            when = dt.datetime(2026, 9, 1, 9, tzinfo=dt.timezone.utc)
            if session_id in RECENT:  # dlg002 late on the day of the projection: the window includes that day
                when = dt.datetime(2026, 11, 20, 9, tzinfo=dt.timezone.utc) if session_id == "dlg001" else \
                    dt.datetime(2026, 11, 30, 23, 59, tzinfo=dt.timezone.utc)
            pk = session.scalar(select(models.Recording.pk).join(models.Session, models.Session.pk == models.Recording.session_pk)
                                .where(models.Session.session_id == session_id))
            session.execute(update(models.Recording).where(models.Recording.pk == pk).values(ingested_at=when))
        add_user(session, "manny", PASSWORD, ["manager"], actor="test")
        session.commit()
    return store, seconds, rows


def by_hand(gap_h: float, recent_h: float, weeks: int = 4) -> dt.date:
    return AS_OF + dt.timedelta(days=math.ceil(7 * gap_h / (recent_h / weeks)))


def test_projection_matches_a_hand_computed_example(collected: tuple[Store, dict[str, float], list[dict]]) -> None:
    store, seconds, rows = collected
    with store.session() as session:
        row, protocol = get_protocol(session, "en-dialogue-accents")
        found = coverage_projection(session, row, protocol, as_of=AS_OF, weeks=4)
    assert found.deadline == DEADLINE
    total = found.rows[0]
    hours = sum(seconds.values()) / 3600
    recent = sum(seconds[s] for s in RECENT) / 3600
    assert (total.scope, total.hours, total.recent_hours) == ("total", pytest.approx(hours), pytest.approx(recent))
    assert total.rate_hours_per_week == pytest.approx(recent / 4)
    assert total.projected_on == by_hand(TOTAL_TARGET_H - hours, recent)
    assert total.status == ("will miss" if total.projected_on > DEADLINE else "on track")
    # the week buckets: the window is 3 Nov to 30 Nov included; dlg001 came in the week of 17 Nov, dlg002 on 30 Nov
    assert [w for w, _ in found.weekly_hours] == [dt.date(2026, 11, 3) + dt.timedelta(weeks=i) for i in range(4)]
    assert [round(h, 9) for _, h in found.weekly_hours] == [0.0, 0.0, round(seconds["dlg001"] / 3600, 9),
                                                             round(seconds["dlg002"] / 3600, 9)]

    cells = {c.values: c for c in found.rows[1:]}
    speaker_cell = {}  # a speaker's (age_band, gender, accent) -> their share of the dialogue, in hours
    recent_cell = {}
    for r in rows:
        for speaker in r["speakers"]:
            d = speaker["demographics"]
            key = (d["age_band"], d["gender"], d["accent"])
            share = seconds[r["session_id"]] / len(r["speakers"]) / 3600
            speaker_cell[key] = speaker_cell.get(key, 0.0) + share
            recent_cell[key] = recent_cell.get(key, 0.0) + (share if r["session_id"] in RECENT else 0.0)
    for key, got in speaker_cell.items():
        cell = cells[key]
        assert cell.hours == pytest.approx(got), key
        gap = max(0.0, CELL_TARGET_H - got)
        if recent_cell[key] == 0:
            assert (cell.status, cell.projected_on, cell.misses_deadline) == ("never at this rate", None, True), key
        else:
            assert cell.projected_on == by_hand(gap, recent_cell[key]), key
            assert cell.status == ("will miss" if cell.projected_on > DEADLINE else "on track"), key
    untouched = [c for c in cells.values() if c.values not in speaker_cell]
    assert untouched and all(c.status == "never at this rate" and c.hours == 0 for c in untouched)
    # order: every cell that misses the deadline comes before every cell that makes it
    statuses = [c.misses_deadline for c in found.rows[1:]]
    assert statuses == sorted(statuses, reverse=True)


def test_project_edge_cases() -> None:
    row = CoverageRow("cell", ("a",), ("x",), hours=2.0, speakers=1, sessions=1, target_hours=2.0, target_speakers=None)
    assert project(row, 0.5, 4, AS_OF, DEADLINE).status == "met"
    behind = CoverageRow("cell", ("a",), ("x",), hours=0.5, speakers=1, sessions=1, target_hours=2.0, target_speakers=None)
    on_time = project(behind, 1.0, 4, AS_OF, DEADLINE)  # 0.25 h a week, 1.5 h to go: 6 weeks
    assert (on_time.projected_on, on_time.status) == (AS_OF + dt.timedelta(days=42), "on track")
    late = project(behind, 0.25, 4, AS_OF, DEADLINE)  # 24 weeks
    assert (late.projected_on, late.status, late.misses_deadline) == (AS_OF + dt.timedelta(days=168), "will miss", True)
    crawl = project(behind, 1e-9, 4, AS_OF, None)  # past year 9999: never, not an overflow
    assert (crawl.projected_on, crawl.status) == (None, "never at this rate")
    speakers_only = CoverageRow("cell", ("a",), ("x",), hours=0.0, speakers=0, sessions=0, target_hours=None, target_speakers=3)
    assert project(speakers_only, 0.0, 4, AS_OF, DEADLINE).status == "no hours target"


def test_filters_count_only_the_chosen_site_device_or_noise(collected: tuple[Store, dict[str, float], list[dict]]) -> None:
    store, seconds, rows = collected
    with store.session() as session:
        row, protocol = get_protocol(session, "en-dialogue-accents")
        for field, value in (("device", "phone"), ("noise_condition", "noisy"), ("device", "laptop")):
            want = sum(seconds[r["session_id"]] for r in rows if r[field] == value) / 3600
            report = compute_coverage(session, row, protocol, where=RecordingFilter(**{field: value}))
            assert report.scope("total")[0].hours == pytest.approx(want), (field, value)
            assert report.where == {field: value}
        nowhere = compute_coverage(session, row, protocol, where=RecordingFilter(site="lyon"))
        assert nowhere.scope("total")[0].hours == 0.0  # no manifest declared a site


def _cli(store: Store, *args: str):  # type: ignore[no-untyped-def]
    env = {"TURNSCRIBE_HOME": str(store.settings.home), "TURNSCRIBE_DATABASE_URL": store.settings.database_url,
           "TURNSCRIBE_USER": "manny", "TURNSCRIBE_PASSWORD": PASSWORD}
    return CliRunner().invoke(app, ["collect", *args, "--protocol", "en-dialogue-accents"], env=env)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_projection_and_filter_cli(collected: tuple[Store, dict[str, float], list[dict]]) -> None:
    store, seconds, rows = collected
    result = _cli(store, "projection", "--as-of", AS_OF.isoformat(), "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["schema"] == "turnscribe.collect.projection/1"
    total = document["rows"][0]
    assert total["label"] == "total" and total["projected_on"] == by_hand(
        TOTAL_TARGET_H - sum(seconds.values()) / 3600, sum(seconds[s] for s in RECENT) / 3600).isoformat()
    assert document["rows"][1]["status"] == "never at this rate"  # misses first
    table = _cli(store, "projection", "--as-of", AS_OF.isoformat())
    assert table.exit_code == 0 and "deadline 2027-01-15" in table.stdout.replace("\n", " ")
    phone = _cli(store, "coverage", "--device", "phone", "--format", "json")
    assert phone.exit_code == 0, phone.output
    want = sum(seconds[r["session_id"]] for r in rows if r["device"] == "phone") / 3600
    assert json.loads(phone.stdout)["rows"][0]["hours"] == pytest.approx(want)
    unknown = _cli(store, "coverage", "--device", "tin-can")
    assert unknown.exit_code == 2 and "unknown device 'tin-can'" in unknown.output
    bad_day = _cli(store, "projection", "--as-of", "30/11/2026")
    assert bad_day.exit_code == 2 and "YYYY-MM-DD" in bad_day.output
