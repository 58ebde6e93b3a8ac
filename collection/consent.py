"""Consent as dated events, and the one answer to "is this consent in force?".

Every consent row is an event with its own dates: a grant on `granted_on` and, when
`withdrawn_on` is set, a withdrawal on that date. What is in force on a day is the
latest event dated on or before it (a withdrawal beats a grant of the same day; rows
of the same date and kind: the one recorded last, i.e. a correction). So a grant dated
before a withdrawal can never put it out of force, whatever order files are imported
in; re-consent needs a new consent id or a grant dated after the withdrawal.

`judge_consent` is the only place that decides whether consent covers something; it
answers with `ConsentCode`s (intake, releases, retention and `governance consent show`
all call it). Importing rows already recorded changes nothing and says "unchanged".
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from collection.tabular import read_rows
from protocols.schema import Protocol
from store import models
from store.audit import record_event
from store.do_not_collect import CONSENT, SPEAKER, DoNotCollect
from store.field_limits import identifier_problem, text_problem

FIELDS = ("consent_id", "speaker_id", "form_version", "permitted_uses", "granted_on", "expires_on", "withdrawn_on")
_VALUES = ("speaker_id", "form_version", "permitted_uses", "granted_on", "expires_on", "withdrawn_on")
MAX_FORM = 64  # a permitted use, like the form_version column


class ConsentCode(str, Enum):
    """Why consent does not cover something. The value is an id-free label (release cards count by it)."""

    NO_CONSENT = "no consent record"
    OTHER_SPEAKER = "consent of another speaker"
    NOT_YET_VALID = "consent granted too late"
    WITHDRAWN = "consent withdrawn"
    EXPIRED = "consent expired"
    FORM_NOT_ACCEPTED = "consent on a form the protocol does not accept"
    USE_NOT_PERMITTED = "consent does not permit the protocol's uses"


@dataclass(frozen=True)
class ConsentProblem:
    code: ConsentCode
    message: str


@dataclass(frozen=True)
class ConsentVerdict:
    """What one consent reference is worth for one speaker: the record in force and every problem."""

    consent_id: str
    record: models.Consent | None  # the grant or withdrawal in force on the day judged (None: nothing yet)
    problems: tuple[ConsentProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def codes(self) -> set[ConsentCode]:
        return {p.code for p in self.problems}


@dataclass(frozen=True)
class _Event:
    on: dt.date
    withdrawal: bool
    record: models.Consent

    def key(self) -> tuple[dt.date, bool, int]:
        return (self.on, self.withdrawal, self.record.pk or 0)


def _events(history: Iterable[models.Consent]) -> list[_Event]:
    events = []
    for record in history:
        events.append(_Event(record.granted_on, False, record))
        if record.withdrawn_on is not None:
            events.append(_Event(record.withdrawn_on, True, record))
    return sorted(events, key=_Event.key)


def in_force(history: Sequence[models.Consent], on: dt.date) -> tuple[models.Consent | None, dt.date | None]:
    """The record in force on `on` and, when that event is a withdrawal, its date (None: a grant or nothing)."""
    latest = None
    for event in _events(history):
        if event.on > on:
            break
        latest = event
    if latest is None:
        return None, None
    return latest.record, (latest.on if latest.withdrawal else None)


def judge_consent(
    history: Sequence[models.Consent], consent_ref: str, speaker_id: str, *, on: dt.date,
    protocol: Protocol | None = None, recorded_on: dt.date | None = None,
) -> ConsentVerdict:
    """Whether consent `consent_ref` (its whole `history`) covers `speaker_id` on day `on`.

    `protocol` adds its accepted forms and required uses. `recorded_on` (intake) also
    requires that the recording was made under consent in force that day; `on` is then
    the day of intake: consent valid when recorded but expired since is refused, as the
    next purge would delete the recording.
    """
    if not history:
        return ConsentVerdict(consent_ref, None, (ConsentProblem(
            ConsentCode.NO_CONSENT, f"no consent record '{consent_ref}' for speaker {speaker_id}"),))
    problems: dict[ConsentCode, str] = {}
    days = [recorded_on, on] if recorded_on is not None and recorded_on != on else [on]
    record: models.Consent | None = None
    for day in days:
        record, withdrawn = in_force(history, day)
        for problem in _problems_on(history, record, withdrawn, consent_ref, speaker_id, day, protocol,
                                    recorded_on is not None and day == on and day != recorded_on):
            problems.setdefault(problem.code, problem.message)
    return ConsentVerdict(consent_ref, record, tuple(ConsentProblem(c, m) for c, m in problems.items()))


def _problems_on(history: Sequence[models.Consent], record: models.Consent | None, withdrawn: dt.date | None,
                 consent_ref: str, speaker_id: str, day: dt.date, protocol: Protocol | None,
                 at_intake_after_recording: bool) -> list[ConsentProblem]:
    if record is None:
        first = min(r.granted_on for r in history)
        return [ConsentProblem(ConsentCode.NOT_YET_VALID, f"consent '{consent_ref}' was granted on {first}, after {day}")]
    problems = []
    if record.speaker_id != speaker_id:
        problems.append(ConsentProblem(ConsentCode.OTHER_SPEAKER,
                                       f"consent '{consent_ref}' belongs to speaker {record.speaker_id}, not {speaker_id}"))
    if withdrawn is not None:
        problems.append(ConsentProblem(ConsentCode.WITHDRAWN, f"speaker {speaker_id} withdrew consent '{consent_ref}' on {withdrawn}"))
        return problems
    if record.expires_on is not None and record.expires_on < day:
        message = f"consent '{consent_ref}' expired on {record.expires_on}"
        if at_intake_after_recording:
            message += (" (valid when recorded, expired before this intake: a purge would delete the recording; "
                        "import a renewed consent first)")
        problems.append(ConsentProblem(ConsentCode.EXPIRED, message))
    if protocol is not None:
        if record.form_version not in protocol.consent.form_versions:
            problems.append(ConsentProblem(ConsentCode.FORM_NOT_ACCEPTED,
                                           f"consent '{consent_ref}' is on form {record.form_version}; the protocol requires "
                                           f"{' or '.join(protocol.consent.form_versions)}"))
        missing = sorted(set(protocol.consent.permitted_uses) - set(record.permitted_uses))
        if missing:
            problems.append(ConsentProblem(ConsentCode.USE_NOT_PERMITTED,
                                           f"consent '{consent_ref}' does not permit {', '.join(missing)}"))
    return problems


def consent_histories(session: Session, consent_ids: Iterable[str] | None = None) -> dict[str, list[models.Consent]]:
    """consent id -> its records in the order recorded (all ids when `consent_ids` is None)."""
    query = select(models.Consent).order_by(models.Consent.pk)
    histories: dict[str, list[models.Consent]] = defaultdict(list)
    if consent_ids is None:
        for record in session.scalars(query):
            histories[record.consent_id].append(record)
        return dict(histories)
    wanted = sorted(set(consent_ids))
    for start in range(0, len(wanted), 500):
        for record in session.scalars(query.where(models.Consent.consent_id.in_(wanted[start:start + 500]))):
            histories[record.consent_id].append(record)
    return dict(histories)


# --- importing consent files ------------------------------------------------------------------------------


@dataclass
class ConsentImport:
    """What an import did: rows added, rows already recorded, rows refused (line, why), rows recorded but not in force."""

    added: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    not_in_force: list[tuple[int, str]] = field(default_factory=list)


def _date(value: object, name: str, required: bool) -> dt.date | None:
    if value in (None, ""):
        if required:
            raise ValueError(f"'{name}' is required")
        return None
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be a date as YYYY-MM-DD, got {value!r}")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"'{name}' must be a date as YYYY-MM-DD, got {value!r}") from None


def _text(data: dict[str, object], name: str, identifier: bool = False) -> str:
    """A text field within its column's limits (store.field_limits); speaker ids are safe identifiers."""
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, (str, int, type(None))):
        raise ValueError(f"'{name}' must be text, got {type(value).__name__}")
    text = "" if value is None else str(value).strip()
    if not text:
        raise ValueError(f"'{name}' is required")
    problem = (identifier_problem if identifier else text_problem)(name, text, models.Consent.__table__.c[name])
    if problem:
        raise ValueError(problem)
    return text


def _uses(value: object) -> list[str]:
    if isinstance(value, list):
        items = value
    elif isinstance(value, str) or value is None:
        items = (value or "").split(";")
    else:
        raise ValueError(f"'permitted_uses' must be a list or text separated by ';', got {type(value).__name__}")
    if any(not isinstance(u, str) for u in items):
        raise ValueError("'permitted_uses' must hold text only")
    uses = sorted({u.strip() for u in items if u.strip()})
    if any(len(u) > MAX_FORM or any(c.isspace() or not c.isprintable() for c in u) for u in uses):
        raise ValueError(f"'permitted_uses' must be names of at most {MAX_FORM} characters without whitespace or control characters")
    if not uses:
        raise ValueError("'permitted_uses' is empty")
    return uses


def parse_consent(data: dict[str, object]) -> dict[str, object]:
    """Validate one consent row into the columns of `models.Consent` (ValueError says what is wrong)."""
    unknown = sorted(str(k) for k in set(data) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown column(s) {unknown}; expected {list(FIELDS)}")
    consent_id, speaker_id = _text(data, "consent_id"), _text(data, "speaker_id", identifier=True)
    form_version = _text(data, "form_version")
    granted = _date(data.get("granted_on"), "granted_on", True)
    expires = _date(data.get("expires_on"), "expires_on", False)
    withdrawn = _date(data.get("withdrawn_on"), "withdrawn_on", False)
    assert granted is not None
    if expires and expires < granted:
        raise ValueError("'expires_on' is before 'granted_on'")
    if withdrawn and withdrawn < granted:
        raise ValueError("'withdrawn_on' is before 'granted_on'")
    return {"consent_id": consent_id, "speaker_id": speaker_id, "form_version": form_version,
            "permitted_uses": _uses(data.get("permitted_uses")), "granted_on": granted, "expires_on": expires,
            "withdrawn_on": withdrawn}


def _already_recorded(values: dict[str, object], history: Sequence[models.Consent]) -> bool:
    """The same row is recorded, or this is the grant of a recorded withdrawal (the same row, undated withdrawal)."""
    def same(record: models.Consent, keys: Sequence[str]) -> bool:
        return all(getattr(record, k) == values[k] for k in keys)
    grant_keys = [k for k in _VALUES if k != "withdrawn_on"]
    return any(same(r, _VALUES) or (values["withdrawn_on"] is None and r.withdrawn_on is not None and same(r, grant_keys))
               for r in history)


def _not_in_force_note(values: dict[str, object], history: Sequence[models.Consent]) -> str | None:
    """Why a new row, once recorded, is still not what is in force (None: it is)."""
    probe = models.Consent(**values, pk=1 << 62)  # recorded last: only its dates can keep it out of force
    latest = max((e for e in _events([*history, probe])), key=_Event.key)
    if latest.record is probe:
        return None
    current = latest.record
    if latest.withdrawal:
        return (f"recorded, not in force: consent {values['consent_id']} was withdrawn on {latest.on}; a grant dated "
                f"{values['granted_on']} cannot restore it (re-consent needs a new consent id or a grant dated after the withdrawal)")
    return f"recorded as history, not in force: the grant of {current.granted_on} is newer"


def import_consents(session: Session, path: Path, blocked: DoNotCollect, *, actor: str) -> ConsentImport:
    """Record every consent row of a CSV/JSONL file not recorded yet; bad rows are refused with the reason.

    Rows naming a speaker or consent id erased on request (the do-not-collect list) are
    refused and nothing about them is stored.
    """
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
        if blocked.listed(session, SPEAKER, str(values["speaker_id"])) or blocked.listed(session, CONSENT, str(values["consent_id"])):
            result.errors.append((row.line, "refused: this speaker or consent id was erased on request (do-not-collect list); "
                                            "nothing was stored"))
            continue
        history = list(session.scalars(select(models.Consent).where(models.Consent.consent_id == values["consent_id"])
                                       .order_by(models.Consent.pk)))
        owner = history[0].speaker_id if history else values["speaker_id"]
        if owner != values["speaker_id"]:
            result.errors.append((row.line, f"consent {values['consent_id']} belongs to speaker {owner}, not {values['speaker_id']}"))
            continue
        if _already_recorded(values, history):
            result.unchanged += 1
            continue
        note = _not_in_force_note(values, history)
        session.add(models.Consent(**values, source=f"{path.name}:{row.line}"[:1024]))
        session.flush()
        result.added += 1
        if note:
            result.not_in_force.append((row.line, note))
    record_event(session, actor, "consent_import", path.name[:256], {
        "added": result.added, "unchanged": result.unchanged, "errors": len(result.errors),
        "not_in_force": len(result.not_in_force)})
    return result
