"""Intake manifests: which file, which session, who spoke (with demographics and consent).

JSONL: one object per recording with a ``speakers`` list. CSV: one row per
(recording, speaker); rows that share a ``path`` form one recording. Demographic
columns are named after the protocol's dimensions.

Session attributes (`recorded_by`, `site`, and those the protocol's `session.attributes`
names) are fields of the recording in JSONL and columns in CSV (never demographics);
assignment reads them to keep people away from sessions they have a conflict with. A
value is 1-128 letters, digits, '.', '_', '+', '-' or '@', starting with a letter or digit.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collection.tabular import read_rows
from protocols.schema import STANDARD_SESSION_ATTRIBUTES
from store import models
from store.accounts import GROUP_VALUE  # a declared value must be nameable as a person's group
from store.field_limits import MAX_CHANNEL, identifier_problem, text_problem

RECORDING_FIELDS = ("path", "session_id", "device", "noise_condition", "scenario", "language", "recorded_on")
SPEAKER_FIELDS = ("speaker_id", "consent_ref", "channel")
ATTRIBUTE_VALUE = re.compile(GROUP_VALUE)


@dataclass(frozen=True)
class SpeakerEntry:
    speaker_id: str
    consent_ref: str
    demographics: dict[str, str]
    channel: int | None = None


@dataclass
class ManifestItem:
    """One recording to ingest, as the manifest declared it."""

    line: int
    path: str
    session_id: str
    device: str
    noise_condition: str
    scenario: str = ""
    language: str = ""
    recorded_on: dt.date | None = None
    speakers: list[SpeakerEntry] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)  # session attributes (recorded_by, site, ...)

    def declared(self) -> dict[str, Any]:
        """The row as given, for the record kept with every recording (accepted or not)."""
        return {
            "line": self.line, "path": self.path, "session_id": self.session_id, "device": self.device,
            "noise_condition": self.noise_condition, "scenario": self.scenario, "language": self.language,
            "recorded_on": self.recorded_on.isoformat() if self.recorded_on else None,
            **dict(sorted(self.attributes.items())),
            "speakers": [
                {"speaker_id": s.speaker_id, "consent_ref": s.consent_ref, "demographics": s.demographics,
                 **({"channel": s.channel} if s.channel is not None else {})}
                for s in self.speakers
            ],
        }


@dataclass(frozen=True)
class ManifestProblem:
    line: int
    path: str
    message: str


class UnsafePath(ValueError):
    """A manifest path that points outside the manifest's folder (or is absolute when not allowed)."""


def resolve_audio_path(manifest_dir: Path, raw: str, allow_absolute: bool = False) -> Path:
    """Resolve a manifest path; refuse `..` escapes, symlink escapes and unwanted absolute paths."""
    if not raw:
        raise UnsafePath("empty path")
    candidate = Path(raw)
    if candidate.is_absolute():
        if not allow_absolute:
            raise UnsafePath(f"absolute path '{raw}' is not allowed (use --allow-absolute-paths)")
        return candidate.resolve()
    root = manifest_dir.resolve()
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise UnsafePath(f"path '{raw}' escapes the manifest's folder {root}")
    return resolved


def _text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    return "" if value is None else str(value).strip()


def _refuse(*problems: str | None) -> None:
    """Raise the first field-limit problem (store.field_limits), so the row is refused before anything is stored."""
    for problem in problems:
        if problem:
            raise ValueError(problem)


def _speaker(data: dict[str, Any], demographics: dict[str, Any]) -> SpeakerEntry:
    speaker_id = _text(data, "speaker_id")
    if not speaker_id:
        raise ValueError("speaker_id is required for every speaker")
    channel_text = _text(data, "channel")
    try:
        channel = int(channel_text) if channel_text else None
    except ValueError:
        raise ValueError(f"channel must be a 1-based integer, got {channel_text[:40]!r}") from None
    if channel is not None and not 1 <= channel <= MAX_CHANNEL:
        raise ValueError(f"channel must be between 1 and {MAX_CHANNEL}, got {channel_text[:40]}")
    entry = SpeakerEntry(
        speaker_id=speaker_id,
        consent_ref=_text(data, "consent_ref"),
        demographics={str(k).strip(): str(v).strip() for k, v in demographics.items() if str(v).strip()},
        channel=channel,
    )
    _refuse(identifier_problem("speaker_id", speaker_id, models.Speaker.__table__.c.id),
            text_problem("consent_ref", entry.consent_ref, models.SessionParticipant.__table__.c.consent_id))
    demographic = models.SpeakerDemographic.__table__.c
    for dim, value in entry.demographics.items():
        _refuse(text_problem("demographic dimension", dim, demographic.dimension),
                text_problem(f"demographic {dim[:40]!r}", value, demographic.value))
    return entry


def _item_problems(item: ManifestItem) -> None:
    session = models.Session.__table__.c
    _refuse(text_problem("path", item.path, models.Recording.__table__.c.source_name),
            identifier_problem("session_id", item.session_id, session.session_id),
            *(text_problem(name, getattr(item, name), session[name]) for name in ("device", "noise_condition", "scenario", "language")))


def _attributes(data: dict[str, Any], names: tuple[str, ...]) -> dict[str, str]:
    """The session attributes of a row, validated (an empty value is no value)."""
    out = {}
    for name in names:
        value = data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a text value, got {type(value).__name__}")
        if not ATTRIBUTE_VALUE.fullmatch(value.strip()):
            raise ValueError(f"{name} {value.strip()[:40]!r}: use 1-128 letters, digits, '.', '_', '+', '-' or '@', "
                             "starting with a letter or digit")
        out[name] = value.strip()
    return out


def _item(line: int, data: dict[str, Any], attributes: tuple[str, ...]) -> ManifestItem:
    missing = [name for name in ("path", "session_id", "device", "noise_condition") if not _text(data, name)]
    if missing:
        raise ValueError(f"missing required field(s): {', '.join(missing)}")
    recorded = _text(data, "recorded_on")
    try:
        recorded_on = dt.date.fromisoformat(recorded) if recorded else None
    except ValueError:
        raise ValueError(f"recorded_on must be YYYY-MM-DD, got {recorded!r}") from None
    item = ManifestItem(
        line=line, path=_text(data, "path"), session_id=_text(data, "session_id"),
        device=_text(data, "device"), noise_condition=_text(data, "noise_condition"),
        scenario=_text(data, "scenario"), language=_text(data, "language"), recorded_on=recorded_on,
        attributes=_attributes(data, attributes),
    )
    _item_problems(item)
    return item


def read_manifest(path: Path, attributes: tuple[str, ...] = STANDARD_SESSION_ATTRIBUTES) -> tuple[list[ManifestItem], list[ManifestProblem]]:
    """Parse a manifest; rows that cannot be understood are returned as problems, never dropped.

    `attributes`: the session attributes a row may declare (the protocol's `session.session_attributes()`).
    """
    items: dict[str, ManifestItem] = {}
    problems: list[ManifestProblem] = []
    is_csv = path.suffix.lower() == ".csv"
    for row in read_rows(path):
        if row.data is None:
            problems.append(ManifestProblem(row.line, "", row.error or "unreadable row"))
            continue
        data = row.data
        raw_path = _text(data, "path")
        try:
            item = _item(row.line, data, attributes)
            if is_csv:
                extra = {k: v for k, v in data.items() if k not in RECORDING_FIELDS + SPEAKER_FIELDS + attributes}
                speakers = [_speaker(data, extra)]
            else:
                unknown = sorted(set(data) - set(RECORDING_FIELDS) - set(attributes) - {"speakers"})
                if unknown:
                    raise ValueError(f"unknown field(s) {unknown}")
                listed = data.get("speakers")
                if not isinstance(listed, list) or not listed:
                    raise ValueError("'speakers' must be a non-empty list")
                speakers = [_speaker(s, s.get("demographics") or {}) for s in listed]
                _refuse(_repeated_speaker(speakers))
        except (ValueError, AttributeError) as exc:
            problems.append(ManifestProblem(row.line, raw_path, str(exc)))
            continue
        previous = items.get(item.path)
        if previous is None:
            item.speakers = speakers
            items[item.path] = item
            continue
        if not is_csv:
            problems.append(ManifestProblem(row.line, raw_path, f"duplicate row: '{item.path}' is already listed on line {previous.line}"))
            continue
        conflict = _csv_conflict(previous, item, speakers)
        if conflict:
            problems.append(ManifestProblem(row.line, raw_path, conflict))
            continue
        previous.speakers.extend(speakers)
    return list(items.values()), problems


def _repeated_speaker(speakers: list[SpeakerEntry]) -> str | None:
    """A speaker listed twice in one recording's row (one person cannot take part twice)."""
    seen: set[str] = set()
    for speaker in speakers:
        if speaker.speaker_id in seen:
            return f"speaker {speaker.speaker_id} is listed twice in this row"
        seen.add(speaker.speaker_id)
    return None


def _csv_conflict(previous: ManifestItem, item: ManifestItem, speakers: list[SpeakerEntry]) -> str | None:
    for name in ("session_id", "device", "noise_condition", "scenario", "language", "recorded_on"):
        if getattr(previous, name) != getattr(item, name):
            return f"'{item.path}' has {name}={getattr(item, name)!r} here but {getattr(previous, name)!r} on line {previous.line}"
    for name in sorted(set(previous.attributes) | set(item.attributes)):
        if previous.attributes.get(name) != item.attributes.get(name):
            return (f"'{item.path}' has {name}={item.attributes.get(name)!r} here but {previous.attributes.get(name)!r} "
                    f"on line {previous.line}")
    if any(s.speaker_id == speakers[0].speaker_id for s in previous.speakers):
        return f"duplicate row: speaker {speakers[0].speaker_id} of '{item.path}' is already listed (line {previous.line})"
    return None
