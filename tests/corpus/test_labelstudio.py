"""Label Studio: `corpus pull --format labelstudio` out, `collect import-labelstudio` back in.

The annotations are what Label Studio stores when an annotator submits a prediction as is
(the prediction's result copied into the annotation, `completed_by` the user), so the round
trip must give back every released turn's text, speaker and times.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from corpus.exports.pull import PullError, pull_release
from corpus.releases.build import build_release
from store import models
from tests.corpus.conftest import PASSWORD, PROTOCOL_ID, Corpus, stored_entries
from turnscribe import app

ON = dt.date(2026, 11, 1)
runner = CliRunner()


def _import(corpus: Corpus, tasks: Path, root: Path, *authors: str) -> Any:
    settings = corpus.store.settings
    args = ["collect", "import-labelstudio", str(tasks), "--audio-root", str(root)]
    for pair in authors:
        args += ["--author", pair]
    return runner.invoke(app, args, env={"TURNSCRIBE_HOME": str(settings.home), "TURNSCRIBE_DATABASE_URL": settings.database_url,
                                         "TURNSCRIBE_USER": "manny", "TURNSCRIBE_PASSWORD": PASSWORD})


def _as_annotated(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each task as Label Studio exports it once a person submitted the prediction unchanged."""
    out = []
    for number, task in enumerate(tasks, start=1):
        result = [{**r, "origin": "prediction"} for r in task["predictions"][0]["result"]]
        out.append({"id": number, "data": task["data"], "predictions": task["predictions"],
                    "annotations": [{"id": 100 + number, "completed_by": {"id": 7, "email": "ann@example.org"},
                                     "was_cancelled": False, "result": result, "updated_at": "2026-11-30T10:00:00Z"}]})
    return out


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)  # one import writes a handful of rows; the queries are portable ORM
def test_round_trip_keeps_every_turns_text_speaker_and_times(corpus: Corpus, tmp_path: Path) -> None:
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v1", on=ON)
    out = tmp_path / "pull"
    pull_release(corpus.store, corpus.consumer, "v1", "labelstudio", out, audio="link")
    tasks = json.loads((out / "labelstudio" / "tasks.json").read_text())
    config = ET.fromstring((out / "labelstudio" / "config.xml").read_text())
    assert len(tasks) == 6
    speakers = {label.get("value") for label in config.iter("Label")}
    assert {r["value"]["labels"][0] for t in tasks for r in t["predictions"][0]["result"] if r["type"] == "labels"} == speakers
    for task in tasks:
        results = task["predictions"][0]["result"]
        assert {r["from_name"] for r in results} == {"speaker", "transcription"}  # the config's control names
        assert all(r["to_name"] == "audio" for r in results)
        assert task["data"]["audio"].startswith("/data/local-files/?d=audio/")

    exported = tmp_path / "annotated.json"
    exported.write_text(json.dumps(_as_annotated(tasks)))
    done = _import(corpus, exported, out, "7=annie")
    assert done.exit_code == 0, done.output
    assert "6 revision(s) imported, 0 unchanged, 0 refused" in done.stdout

    with corpus.store.session() as session:
        for entry in stored_entries(corpus.store, "v1"):
            approved = session.get(models.TranscriptRevision, entry["revision_pk"]).turns
            imported = session.scalars(select(models.TranscriptRevision).where(
                models.TranscriptRevision.recording_pk == int(entry["recording"][4:]),
                models.TranscriptRevision.author == "annie")).one()
            assert imported.author_kind == "person" and imported.stage == "submitted"
            assert imported.parent_pk == entry["revision_pk"]  # the newest revision so far: the approved one
            assert imported.author_params["labelstudio"]["completed_by"] == ["7", "ann@example.org"]
            assert [(t["speaker"], t["start"], t["end"], t["text"]) for t in imported.turns] == [
                (t["speaker"], t["start"], t["end"], t["text"]) for t in approved]
        events = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "labelstudio_import")).all()
        assert len(events) == 6 and {e.actor for e in events} == {"manny"}

    again = _import(corpus, exported, out, "7=annie")
    assert again.exit_code == 0 and "0 revision(s) imported, 6 unchanged" in again.stdout


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_import_refuses_what_it_cannot_place_and_keeps_the_rest(corpus: Corpus, tmp_path: Path) -> None:
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v1", on=ON)
    out = tmp_path / "pull"
    pull_release(corpus.store, corpus.consumer, "v1", "labelstudio", out, audio="include")
    tasks = _as_annotated(json.loads((out / "labelstudio" / "tasks.json").read_text()))
    tasks[1]["annotations"][0]["completed_by"] = 99  # nobody mapped
    tasks[2]["data"]["audio"] = "/data/local-files/?d=../../etc/passwd"
    (out / "stranger.wav").write_bytes((out / tasks[3]["data"]["audio"].split("?d=")[1]).read_bytes()[:-2000])
    tasks[3]["data"]["audio"] = "stranger.wav"  # audio the store never ingested
    for part in tasks[4]["annotations"][0]["result"][:2]:  # one region, its speaker and its text
        part["value"]["end"] = 10_000.0  # drawn past the recording's end
    whole = {"id": 1, "from_name": "transcription", "to_name": "audio", "type": "textarea", "value": {"text": ["all of it"]}}
    tasks[5]["annotations"][0]["result"] = [whole]  # the whole-audio transcription template
    exported = tmp_path / "annotated.json"
    exported.write_text(json.dumps(tasks))

    unknown_account = _import(corpus, exported, out, "7=nobody")
    assert unknown_account.exit_code == 2 and "do not exist: nobody" in unknown_account.output
    bad_pair = _import(corpus, exported, out, "7")
    assert bad_pair.exit_code == 2 and "LABEL_STUDIO_USER=USERNAME" in bad_pair.output

    result = _import(corpus, exported, out, "ann@example.org=annie")
    assert result.exit_code == 1, result.output
    assert "2 revision(s) imported, 0 unchanged, 4 refused" in result.stdout
    said = " ".join(result.stderr.split())
    assert "task 2 annotation 102: its author 99 is not mapped; add --author 99=USERNAME" in said
    assert "task 3: audio '/data/local-files/?d=../../etc/passwd' lies outside --audio-root" in said
    assert "task 4: stranger.wav: this audio is not in the store" in said
    assert "task 5 annotation 105: turn" in said and "is not inside the recording" in said
    tasks[4]["annotations"][0]["result"][0]["value"]["end"] = 1.0  # the speaker result alone moved
    exported.write_text(json.dumps(tasks))
    disagree = _import(corpus, exported, out, "ann@example.org=annie")
    assert "its speaker and transcription results disagree on its times" in " ".join(disagree.stderr.split())
    assert "0 revision(s) imported, 2 unchanged, 4 refused" in disagree.stdout
    with corpus.store.session() as session:
        imported = session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.author == "annie")
                                   .order_by(models.TranscriptRevision.pk)).all()
        assert len(imported) == 2
        whole_turns = imported[-1].turns
        recording = session.get(models.Recording, imported[-1].recording_pk)
        assert whole_turns == [{"speaker": "speaker", "start": 0.0, "end": recording.duration_s, "text": "all of it", "words": []}]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_labelstudio_needs_whole_recordings(corpus: Corpus, tmp_path: Path) -> None:
    build_release(corpus.store, corpus.manager, PROTOCOL_ID, "v1", on=ON)
    with pytest.raises(PullError, match="labelstudio needs --audio link or include, not cut"):
        pull_release(corpus.store, corpus.consumer, "v1", "labelstudio", tmp_path / "cut", audio="cut")
    assert not (tmp_path / "cut").exists()
