"""Generated hostile manifests and protocol files: no traceback, every row accepted or refused with a reason,
and nothing already stored changes (issue #10's property-based suite; consent files: tests/collection/test_consent.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from collection.intake import ACCEPTED, FAULT, REJECTED, SKIPPED, ingest_manifest
from protocols.loader import ProtocolError, parse_protocol
from store import models
from store.db import Store
from tests.conftest import EN_PROTOCOL
from tests.factories import import_consent_file, manifest_rows, register_en

_hostile_text = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.sampled_from(["../../etc/passwd", "/etc/passwd", "dlg001.flac/..", "a\x00b", "\x1b[2J", "spk 0001", "spk/0001",
                     "x" * 5000, "", " ", "2026-02-30", "9999-99-99", "NaN", "-1"]),
)
_hostile_value = st.one_of(_hostile_text, st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                           st.floats(allow_nan=True, allow_infinity=True), st.lists(st.integers(), max_size=3),
                           st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
_row_fields = ["path", "session_id", "device", "noise_condition", "scenario", "language", "recorded_on", "speakers", "extra",
               "speaker", "speaker", "speaker"]  # "speaker": one field of one listed speaker
_speaker_fields = ["speaker_id", "consent_ref", "demographics", "age_band", "accent"]


def _stored(store: Store) -> list[tuple[Any, ...]]:
    """Every stored recording, session and speaker row as plain values, in key order."""
    with store.session() as session:
        recordings = session.execute(select(models.Recording.pk, models.Recording.sha256, models.Recording.status)
                                     .order_by(models.Recording.pk)).all()
        sessions = session.execute(select(models.Session.pk, models.Session.session_id).order_by(models.Session.pk)).all()
        speakers = session.execute(select(models.Speaker.id, models.Speaker.created_at).order_by(models.Speaker.id)).all()
    return [("recording", *r) for r in recordings] + [("session", *s) for s in sessions] + [("speaker", *s) for s in speakers]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(mutations=st.lists(st.tuples(st.integers(0, 5), st.sampled_from(_row_fields), st.integers(0, 1),
                                    st.sampled_from(_speaker_fields), _hostile_value), min_size=1, max_size=4),
       garbage=st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
                                min_size=1, max_size=30), max_size=2))
def test_generated_manifests_are_accepted_or_refused_row_by_row(store: Store, dialogues: Path,
                                                                mutations: list[tuple[int, str, int, str, Any]],
                                                                garbage: list[str]) -> None:
    if not getattr(store, "_hostile_ready", False):
        register_en(store)
        import_consent_file(store, dialogues / "consent.csv")
        store._hostile_ready = True  # type: ignore[attr-defined]
    base = manifest_rows(dialogues)
    rows: list[dict[str, Any]] = []
    for index, field, who, speaker_field, value in mutations:  # each mutated row is a copy of a committed one
        row = json.loads(json.dumps(base[index]))
        if field == "speaker":
            row["speakers"][who % len(row["speakers"])][speaker_field] = value
        else:
            row[field] = value
        rows.append(row)
    lines = [json.dumps(r) for r in rows] + [g for g in garbage if g.strip()]
    manifest = dialogues / "hostile.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    before = _stored(store)
    report = ingest_manifest(store, "en-dialogue-accents", manifest, actor="test")
    assert len(report.outcomes) == len(lines), "every row has an outcome, none is dropped"
    for outcome in report.outcomes:
        assert outcome.status in (ACCEPTED, REJECTED, SKIPPED, FAULT)
        if outcome.status in (REJECTED, FAULT):
            assert outcome.reasons and all(r.message.strip() for r in outcome.reasons), outcome
    after = _stored(store)
    assert [r for r in after if r in before] == before, "nothing stored before was changed or removed"
    assert not any(".." in Path(str(r[2])).parts for r in after if r[0] == "session"), "no path trick became a session"


_PLAN = EN_PROTOCOL.read_text()
_PLAN_LINES = _PLAN.splitlines()


@settings(max_examples=150, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, len(_PLAN_LINES) - 1), st.sampled_from(["drop", "replace", "insert", "value"]),
                                st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)),
                      min_size=1, max_size=5))
def test_generated_protocol_files_are_loaded_or_refused_with_located_problems(edits: list[tuple[int, str, str]]) -> None:
    lines = list(_PLAN_LINES)
    for at, how, text in edits:
        at %= max(len(lines), 1)
        if how == "drop" and lines:
            del lines[at]
        elif how == "replace" and lines:
            lines[at] = text
        elif how == "insert":
            lines.insert(at, text)
        elif lines and ":" in lines[at]:
            lines[at] = lines[at].split(":", 1)[0] + ": " + json.dumps(text)
    try:
        protocol = parse_protocol("\n".join(lines) + "\n", "plan.yaml")
    except ProtocolError as exc:
        assert exc.problems and all(p.message.strip() for p in exc.problems)
        assert all(p.line is None or 1 <= p.line <= len(lines) + 1 for p in exc.problems), exc.problems
        return
    assert protocol.id and protocol.version >= 1 and protocol.cell_targets() is not None
