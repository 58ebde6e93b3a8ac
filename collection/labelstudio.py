"""Label Studio exports brought in: each annotation becomes a person's TranscriptRevision.

Teams moving from Label Studio hand over its JSON export (a list of tasks with their
annotations). A task's audio is found under `--audio-root` (a local-files URL, a `file://`
URL or a relative path) and matched by content hash to a recording already ingested:
Label Studio knows nothing of speakers' demographics or consent, so audio comes in through
`collect ingest` and its manifest, never through this import. Authors are mapped
explicitly (Label Studio user id or e-mail -> a Turnscribe account).

Three templates are read: speaker segmentation with a transcription per region (`labels`
+ `textarea` results sharing a region id; what `corpus pull --format labelstudio` writes),
whole-audio transcription (a `textarea` without times: one turn over the recording), and
paragraphs (the task's dialogue list with `author`, `text`, `start`, `end`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from store import models
from store.accounts import Principal, require
from store.audit import record_event
from store.blobs import sha256_file
from store.turns import TIME_TOLERANCE_S, TurnValidationError, turns_from_json

LOCAL_FILES = "/data/local-files/?d="
MAX_FILE_BYTES = 512 * 1024 * 1024
WHOLE_AUDIO_SPEAKER = "speaker"  # the whole-audio template names no speaker


class LabelStudioError(ValueError):
    """The file as a whole cannot be read (not JSON, not a task list) or the author map is wrong."""


class TaskRefused(ValueError):
    """One task or annotation that cannot come in; the others still do."""


@dataclass
class Outcome:
    task: Any
    annotation: Any
    status: str  # "imported", "unchanged" or "refused"
    recording_pk: int | None = None
    revision_pk: int | None = None
    turns: int = 0
    reason: str = ""


@dataclass
class ImportReport:
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


def read_tasks(path: Path) -> list[dict[str, Any]]:
    """The tasks of a Label Studio JSON export (a list of task objects)."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise LabelStudioError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB; export the project in parts")
    try:
        tasks = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelStudioError(f"{path}: not a Label Studio JSON export ({exc})") from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) and isinstance(t.get("data"), dict) for t in tasks):
        raise LabelStudioError(f"{path}: expected a JSON list of tasks, each with a 'data' object "
                               "(Label Studio's JSON export, not JSON-MIN or CSV)")
    return tasks


def audio_file(data: dict[str, Any], root: Path) -> Path:
    """The task's audio under `root`: a local-files URL, a file:// URL or a relative path; never outside root."""
    value = data.get("audio")
    if not isinstance(value, str) or not value:
        raise TaskRefused("the task has no data.audio")
    if value.startswith(LOCAL_FILES):
        relative = unquote(value[len(LOCAL_FILES):])
    elif value.startswith("file://"):
        relative = unquote(value[len("file://"):])
    elif "://" in value or value.startswith("/data/upload/"):
        raise TaskRefused(f"audio {value!r} is not a local file; copy the files under --audio-root and use "
                          "local-files URLs or relative paths")
    else:
        relative = value
    root = root.resolve()
    path = Path(os.path.normpath(root / relative))  # not resolved: a pull links its audio into the store's blobs
    if not path.is_relative_to(root):
        raise TaskRefused(f"audio {value!r} lies outside --audio-root")
    if not path.is_file():
        raise TaskRefused(f"audio {value!r}: no such file under {root}")
    return path


def _completed_by(annotation: dict[str, Any]) -> list[str]:
    """The keys an author may be mapped by: the Label Studio user id and, when the export has it, the e-mail."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        return [str(v) for v in (who.get("id"), who.get("email")) if v not in (None, "")]
    return [] if who in (None, "") else [str(who)]


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TaskRefused(f"{what} is not a number: {value!r}")
    return float(value)


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return " ".join(str(value or "").split())


def turns_from_regions(result: list[Any], duration: float) -> list[dict[str, Any]]:
    """Turns from a segmentation (+ per-region transcription) or a whole-audio transcription result."""
    regions: dict[str, dict[str, Any]] = {}
    whole: list[str] = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise TaskRefused("a result item is not an object with a 'value'")
        value, kind = item["value"], item.get("type")
        if kind not in ("labels", "textarea"):
            continue  # ratings, choices and other controls have no counterpart in a transcript
        if "start" not in value and kind == "textarea":
            whole.append(_text(value.get("text")))
            continue
        region = regions.setdefault(str(item.get("id")), {"speaker": None, "text": ""})
        start, end = _number(value.get("start"), "start"), _number(value.get("end"), "end")
        if region.setdefault("start", start) != start or region.setdefault("end", end) != end:
            raise TaskRefused(f"region {item.get('id')}: its speaker and transcription results disagree on its times")
        if kind == "labels":
            labels = value.get("labels") or []
            if len(labels) != 1:
                raise TaskRefused(f"region {item.get('id')}: expected one speaker label, got {labels!r}")
            region["speaker"] = str(labels[0])
        else:
            region["text"] = _text(value.get("text"))
    turns = []
    for region_id, region in regions.items():
        if region["speaker"] is None:
            raise TaskRefused(f"region {region_id} has a transcription but no speaker label")
        turns.append({"speaker": region["speaker"], "start": region["start"], "end": region["end"],
                      "text": region["text"], "words": []})
    if whole and not turns:
        turns = [{"speaker": WHOLE_AUDIO_SPEAKER, "start": 0.0, "end": duration, "text": " ".join(whole), "words": []}]
    return _checked(turns, duration)


def turns_from_paragraphs(data: dict[str, Any], duration: float) -> list[dict[str, Any]]:
    """Turns from the paragraphs template's dialogue list (the first list of objects with text and author)."""
    for value in data.values():
        if isinstance(value, list) and value and all(isinstance(p, dict) and "text" in p and "author" in p for p in value):
            return _checked([{"speaker": str(p["author"]), "start": _number(p.get("start"), "start"),
                              "end": _number(p.get("end"), "end"), "text": _text(p["text"]), "words": []}
                             for p in value], duration)
    return []


def _checked(turns: list[dict[str, Any]], duration: float) -> list[dict[str, Any]]:
    """Turns in time order, each inside the recording with a positive length and a speaker."""
    for turn in turns:
        if not turn["speaker"].strip():
            raise TaskRefused("a turn has an empty speaker label")
        if not 0.0 <= turn["start"] < turn["end"] <= duration + TIME_TOLERANCE_S:  # Label Studio rounds region ends
            raise TaskRefused(f"turn {turn['start']:.3f}-{turn['end']:.3f} s is not inside the recording (0-{duration:.3f} s)")
        turn["end"] = min(turn["end"], duration)
    try:  # and the rest of the one turn type's rules (label form, finite times, text)
        checked = turns_from_json(turns, duration_s=duration, positive_length=True)
    except TurnValidationError as bad:
        raise TaskRefused("; ".join(bad.problems)) from bad
    return sorted((t.to_json() for t in checked), key=lambda t: (t["start"], t["end"], t["speaker"]))


def _recording(session: Session, path: Path) -> models.Recording:
    digest = sha256_file(path)
    recording = session.scalars(select(models.Recording).where(
        models.Recording.status == "accepted",
        or_(models.Recording.sha256 == digest, models.Recording.working_sha256 == digest))).first()
    if recording is None:
        raise TaskRefused(f"{path.name}: this audio is not in the store; ingest it first with `turnscribe collect "
                          "ingest` and a manifest (speakers, consent)")
    return recording


def check_authors(session: Session, authors: dict[str, str]) -> None:
    unknown = sorted({u for u in authors.values() if session.get(models.User, u) is None})
    if unknown:
        raise LabelStudioError(f"--author maps to account(s) that do not exist: {', '.join(unknown)}")


def import_labelstudio(session: Session, principal: Principal, path: Path, audio_root: Path,
                       authors: dict[str, str]) -> ImportReport:
    """Add a submitted revision per finished annotation; the same annotation again is a no-op. The caller commits."""
    require(principal, "assign")
    tasks = read_tasks(path)
    check_authors(session, authors)
    report = ImportReport()
    for task in tasks:
        task_id = task.get("id")
        annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        try:
            recording = _recording(session, audio_file(task["data"], audio_root))
        except TaskRefused as exc:
            report.outcomes.append(Outcome(task_id, None, "refused", reason=str(exc)))
            continue
        for annotation in annotations:
            outcome = Outcome(task_id, annotation.get("id"), "refused", recording.pk)
            try:
                _add_revision(session, principal, task, annotation, recording, authors, outcome)
            except TaskRefused as exc:
                outcome.reason = str(exc)
            report.outcomes.append(outcome)
    return report


def _add_revision(session: Session, principal: Principal, task: dict[str, Any], annotation: dict[str, Any],
                  recording: models.Recording, authors: dict[str, str], outcome: Outcome) -> None:
    keys = _completed_by(annotation)
    username = next((authors[k] for k in keys if k in authors), None)
    if username is None:
        raise TaskRefused(f"its author {' / '.join(keys) or '(none)'} is not mapped; "
                          f"add --author {keys[0] if keys else 'ID'}=USERNAME")
    duration = float(recording.duration_s or 0.0)
    result = annotation.get("result") or []
    if not isinstance(result, list):
        raise TaskRefused("its 'result' is not a list")
    turns = turns_from_regions(result, duration) or turns_from_paragraphs(task["data"], duration)
    if not turns:
        raise TaskRefused("it has no speaker regions, transcription or paragraphs")
    origin = {"source": "labelstudio", "task": task.get("id"), "annotation": annotation.get("id"),
              "completed_by": keys, "updated_at": annotation.get("updated_at")}
    revisions = session.scalars(select(models.TranscriptRevision).where(
        models.TranscriptRevision.recording_pk == recording.pk).order_by(models.TranscriptRevision.pk)).all()
    outcome.turns = len(turns)
    for revision in revisions:
        if revision.author_params.get("labelstudio") == origin and revision.turns == turns:
            outcome.status, outcome.revision_pk = "unchanged", revision.pk
            return
    revision = models.TranscriptRevision(
        recording_pk=recording.pk, parent_pk=revisions[-1].pk if revisions else None, author_kind="person",
        author=username, author_params={"labelstudio": origin}, turns=turns, stage="submitted")
    session.add(revision)
    session.flush()
    record_event(session, principal.username, "labelstudio_import", f"recording:{recording.pk}",
                 {"revision": revision.pk, "author": username, "task": task.get("id"),
                  "annotation": annotation.get("id"), "turns": len(turns)})
    outcome.status, outcome.revision_pk = "imported", revision.pk
