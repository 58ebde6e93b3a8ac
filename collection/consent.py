"""Consent as data with a history: every import appends; the newest record per consent id rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collection.tabular import read_rows
from store import models
from store.audit import record_event
from store.field_limits import identifier_problem, text_problem
from protocols.schema import Protocol

FIELDS = ("consent_id", "speaker_id", "form_version", "permitted_uses", "granted_on", "expires_on", "withdrawn_on")


@dataclass
class ConsentImport:
    added: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def _date(value: object, name: str, required: bool) -> dt.date | None:
    if value in (None, ""):
        if required:
            raise ValueError(f"'{name}' is required")
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"'{name}' must be a date as YYYY-MM-DD, got {value!r}") from None


def _uses(value: object) -> list[str]:
    items = value if isinstance(value, list) else str(value or "").split(";")
    uses = sorted({str(u).strip() for u in items if str(u).strip()})
    if not uses:
        raise ValueError("'permitted_uses' is empty")
    return uses


def _within_limits(data: dict[str, object]) -> None:
    """The consent row's ids fit their columns on every database; a speaker id is a safe identifier."""
    columns = models.Consent.__table__.c
    for problem in (text_problem("consent_id", str(data["consent_id"]).strip(), columns.consent_id),
                    identifier_problem("speaker_id", str(data["speaker_id"]).strip(), columns.speaker_id),
                    text_problem("form_version", str(data["form_version"]).strip(), columns.form_version)):
        if problem:
            raise ValueError(problem)


def parse_consent(data: dict[str, object]) -> dict[str, object]:
    """Validate one consent row into the columns of `models.Consent`."""
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; expected {list(FIELDS)}")
    for name in ("consent_id", "speaker_id", "form_version"):
        if not str(data.get(name) or "").strip():
            raise ValueError(f"'{name}' is required")
    _within_limits(data)
    granted = _date(data.get("granted_on"), "granted_on", True)
    expires = _date(data.get("expires_on"), "expires_on", False)
    withdrawn = _date(data.get("withdrawn_on"), "withdrawn_on", False)
    if expires and granted and expires < granted:
        raise ValueError("'expires_on' is before 'granted_on'")
    return {
        "consent_id": str(data["consent_id"]).strip(),
        "speaker_id": str(data["speaker_id"]).strip(),
        "form_version": str(data["form_version"]).strip(),
        "permitted_uses": _uses(data.get("permitted_uses")),
        "granted_on": granted,
        "expires_on": expires,
        "withdrawn_on": withdrawn,
    }


def current_consent(session: Session, consent_id: str) -> models.Consent | None:
    """The record in force for a consent id: the newest one appended."""
    newest = select(func.max(models.Consent.pk)).where(models.Consent.consent_id == consent_id).scalar_subquery()
    return session.scalar(select(models.Consent).where(models.Consent.pk == newest))


def import_consents(session: Session, path: Path, actor: str = "cli") -> ConsentImport:
    """Append every new or changed consent record from a CSV/JSONL file; bad rows are reported."""
    result = ConsentImport()
    for row in read_rows(path):
        if row.data is None:
            result.errors.append((row.line, row.error or "unreadable row"))
            continue
        try:
            values = parse_consent(row.data)
        except ValueError as exc:
            result.errors.append((row.line, str(exc)))
            continue
        current = current_consent(session, str(values["consent_id"]))
        if current is not None and current.speaker_id != values["speaker_id"]:
            result.errors.append(
                (row.line, f"consent {values['consent_id']} belongs to speaker {current.speaker_id}, not {values['speaker_id']}")
            )
            continue
        if current is not None and all(getattr(current, k) == v for k, v in values.items()):
            result.unchanged += 1
            continue
        session.add(models.Consent(**values, source=f"{path.name}:{row.line}"))
        result.added += 1
    record_event(
        session, actor, "consent_import", str(path.name),
        {"added": result.added, "unchanged": result.unchanged, "errors": len(result.errors)},
    )
    return result


def consent_problems(
    record: models.Consent | None, consent_ref: str, speaker_id: str, protocol: Protocol, on: dt.date
) -> list[str]:
    """Why this consent does not cover a recording under `protocol` made on date `on` (empty: it does)."""
    if record is None:
        return [f"no consent record '{consent_ref}' for speaker {speaker_id}"]
    problems = []
    if record.speaker_id != speaker_id:
        problems.append(f"consent '{consent_ref}' belongs to speaker {record.speaker_id}, not {speaker_id}")
    if record.withdrawn_on is not None:
        problems.append(f"speaker {speaker_id} withdrew consent '{consent_ref}' on {record.withdrawn_on}")
    if record.form_version not in protocol.consent.form_versions:
        problems.append(
            f"consent '{consent_ref}' is on form {record.form_version}; the protocol requires "
            f"{' or '.join(protocol.consent.form_versions)}"
        )
    missing = sorted(set(protocol.consent.permitted_uses) - set(record.permitted_uses))
    if missing:
        problems.append(f"consent '{consent_ref}' does not permit {', '.join(missing)}")
    if record.granted_on > on:
        problems.append(f"consent '{consent_ref}' was granted on {record.granted_on}, after the recording ({on})")
    if record.expires_on is not None and record.expires_on < on:
        problems.append(f"consent '{consent_ref}' expired on {record.expires_on}")
    return problems
