"""Duplicate speakers on the committed synthetic set, against SQLite and PostgreSQL.

The set registers one espeak voice twice (spk-0008 in dlg005, spk-0011 in dlg006) and
lets spk-0006 legitimately take part in dlg003 and dlg004: the first must be flagged,
the second never. The encoder is real (Resemblyzer's packaged weights), not a mock.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from collection import voices
from collection.duplicates import THRESHOLD, find_duplicate_speakers
from collection.duplicates_cli import register
from collection.intake import ingest_manifest
from collection.voices import RecordingVoices, attribute_voices, centre, recording_voices
from store import models
from store.accounts import add_user
from store.db import Store
from tests.factories import import_consent_file, manifest_rows, register_en, write_manifest

PROTOCOL = "en-dialogue-accents"


def _ingested(store: Store, dialogues: Path) -> models.Protocol:
    row, _ = register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    report = ingest_manifest(store, PROTOCOL, dialogues / "manifest.jsonl", actor="test")
    assert report.count("accepted") == 6, report.outcomes
    return row


def _profiles(store: Store) -> int:
    with store.session() as session:
        return int(session.scalar(select(func.count()).select_from(models.VoiceProfile)) or 0)


def test_committed_set_flags_the_double_registration_and_reuses_profiles(
    store: Store, dialogues: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    row = _ingested(store, dialogues)
    found = find_duplicate_speakers(store, row.pk)

    # dlg005 and dlg006 share no participant with another session, so which of their two
    # voices is which id cannot be known from the audio: the flag names both candidates.
    assert len(found) == 1, found
    flag = found[0]
    assert (flag.sessions_a, flag.sessions_b) == (("dlg005",), ("dlg006",))
    assert set(flag.candidates_a) == {"spk-0008", "spk-0009"} and set(flag.candidates_b) == {"spk-0010", "spk-0011"}
    assert not flag.certain and flag.speaker_a == "spk-0008 or spk-0009"
    assert flag.similarity >= THRESHOLD
    assert _profiles(store) == 6

    # Second run: every profile comes from the cache, the encoder is never reached.
    def no_encoder(*_args: object) -> None:
        raise AssertionError("the encoder ran although every recording has a cached profile")

    monkeypatch.setattr(voices, "window_embeddings", no_encoder)
    assert find_duplicate_speakers(store, row.pk) == found
    assert _profiles(store) == 6

    # At any threshold: never the same session, never a pair the same id explains
    # (spk-0006 in dlg003 and dlg004 is attributed to one voice in each), most similar first.
    everything = find_duplicate_speakers(store, row.pk, threshold=-1.0)
    assert len(everything) > 1
    for candidate in everything:
        assert not set(candidate.sessions_a) & set(candidate.sessions_b)
        assert not set(candidate.candidates_a) & set(candidate.candidates_b)
    similarities = [c.similarity for c in everything]
    assert similarities == sorted(similarities, reverse=True)
    assert not any("spk-0006" in c.candidates_a + c.candidates_b for c in found)
    heard_as_0006 = [side for c in everything for side in (c.candidates_a, c.candidates_b) if "spk-0006" in side]
    assert heard_as_0006 and set(heard_as_0006) == {("spk-0006",)}, "spk-0006's voice is attributed in both sessions"

    # The CLI, on the same store (profiles cached: the encoder stays patched out).
    _check_cli(store, monkeypatch)


def _check_cli(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """`duplicates` on a local app: exit 1 and the table when flagged, JSON, exit 0 when nothing is."""
    monkeypatch.setenv("TURNSCRIBE_HOME", str(store.settings.home))
    monkeypatch.setenv("TURNSCRIBE_DATABASE_URL", store.settings.database_url)
    with store.session() as session:
        add_user(session, "mia", "correct horse battery", ["manager"], actor="test")
        add_user(session, "ann", "correct horse battery", ["annotator"], actor="test")
        session.commit()
    monkeypatch.setenv("TURNSCRIBE_PASSWORD", "correct horse battery")
    monkeypatch.setenv("TURNSCRIBE_USER", "ann")
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # a second command keeps `duplicates` a named subcommand
    runner = CliRunner()

    refused = runner.invoke(app, ["duplicates", "--protocol", PROTOCOL])  # speaker ids and voices: managers only
    assert refused.exit_code == 1 and "may not find duplicates" in refused.output
    monkeypatch.setenv("TURNSCRIBE_USER", "mia")
    table = runner.invoke(app, ["duplicates", "--protocol", PROTOCOL], env={"COLUMNS": "200"})
    assert table.exit_code == 1, table.output
    for text in ("speaker A", "similarity", "spk-0008 or spk-0009", "spk-0010 or spk-0011", "dlg005", "dlg006"):
        assert text in table.stdout, table.stdout
    assert "spk-0006" not in table.stdout

    as_json = runner.invoke(app, ["duplicates", "--protocol", PROTOCOL, "--format", "json"])
    assert as_json.exit_code == 1, as_json.output
    payload = json.loads(as_json.stdout)
    assert payload["threshold"] == THRESHOLD
    assert [(c["sessions_a"], c["sessions_b"], c["certain"]) for c in payload["candidates"]] == [(["dlg005"], ["dlg006"], False)]

    strict = runner.invoke(app, ["duplicates", "--protocol", PROTOCOL, "--threshold", "0.99"])
    assert strict.exit_code == 0, strict.output
    assert "no duplicate speakers" in strict.stdout

    unknown = runner.invoke(app, ["duplicates", "--protocol", "no-such-protocol"])
    assert unknown.exit_code == 2


def test_reviewed_transcripts_name_the_duplicate_exactly(store: Store, dialogues: Path) -> None:
    row = _ingested(store, dialogues)
    with store.session() as session:
        for recording in session.scalars(select(models.Recording)):
            turns = json.loads((dialogues / recording.source_name.replace(".flac", ".turns.json")).read_text())
            session.add(models.TranscriptRevision(recording_pk=recording.pk, author_kind="person",
                                                  author="reviewer-1", turns=turns))
        session.commit()

    found = find_duplicate_speakers(store, row.pk)
    assert [(c.speaker_a, c.speaker_b, c.certain) for c in found] == [("spk-0008", "spk-0011", True)]
    assert (found[0].sessions_a, found[0].sessions_b) == (("dlg005",), ("dlg006",))
    sources = {p.source.split(":")[0] for p in _all_profiles(store)}
    assert sources == {"transcript"}


def _all_profiles(store: Store) -> list[models.VoiceProfile]:
    with store.session() as session:
        return list(session.scalars(select(models.VoiceProfile)))


def test_one_channel_per_participant_names_the_voices(store: Store, dialogues: Path) -> None:
    """A stereo original with a participant per channel needs no clustering and no attribution."""
    mono, rate = sf.read(dialogues / "dlg001.flac", dtype="float32")
    stereo = np.zeros((len(mono), 2), np.float32)
    for line in (dialogues / "dlg001.rttm").read_text().splitlines():
        fields = line.split()
        start, end = int(float(fields[3]) * rate), int((float(fields[3]) + float(fields[4])) * rate)
        stereo[start:end, 0 if fields[7] == "spk-0001" else 1] = mono[start:end]
    sf.write(dialogues / "dlg001-stereo.flac", stereo, rate)
    row = json.loads(json.dumps(manifest_rows(dialogues)[0]))
    row.update(path="dlg001-stereo.flac", session_id="dlg001-stereo")
    row["speakers"][0]["channel"], row["speakers"][1]["channel"] = 1, 2
    protocol_row, _ = register_en(store)
    import_consent_file(store, dialogues / "consent.csv")
    report = ingest_manifest(store, PROTOCOL, write_manifest(dialogues / "stereo.jsonl", [row]), actor="test")
    assert report.count("accepted") == 1, report.outcomes

    (recording,) = recording_voices(store, protocol_row.pk)
    assert recording.source == "channels" and recording.ids == ("spk-0001", "spk-0002")
    attributed = attribute_voices(centre([recording]))
    assert [(a.candidates, a.certain) for a in attributed] == [(("spk-0001",), True), (("spk-0002",), True)]


def _unit(*values: float) -> np.ndarray:
    vector = np.zeros(4, np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def test_attribution_follows_the_id_shared_between_sessions() -> None:
    """spk-b is in s1 and s2: its voice is the pair that matches; the rest follows, s3 stays open."""
    x, y, z, w, v = _unit(1), _unit(0, 1), _unit(0, 0, 1), _unit(0, 0, 0, 1), _unit(1, 1)
    recordings = [
        RecordingVoices(1, "s1", ("spk-a", "spk-b"), np.stack([y, x]), None, (10, 10), "clusters"),
        RecordingVoices(2, "s2", ("spk-b", "spk-c"), np.stack([z, y]), None, (10, 10), "clusters"),
        RecordingVoices(3, "s3", ("spk-d", "spk-e"), np.stack([w, v]), None, (10, 10), "clusters"),
    ]
    got = {(a.session_id, a.index): (a.candidates, a.certain) for a in attribute_voices(recordings)}
    assert got[("s1", 0)] == (("spk-b",), True) and got[("s1", 1)] == (("spk-a",), True)
    assert got[("s2", 1)] == (("spk-b",), True) and got[("s2", 0)] == (("spk-c",), True)
    assert got[("s3", 0)] == (("spk-d", "spk-e"), False) and got[("s3", 1)] == (("spk-d", "spk-e"), False)
