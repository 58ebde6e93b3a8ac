"""Data-subject erasure: a speaker's audio, transcripts and derived data leave the store.

A voice cannot be cut out of a mixed dialogue, so every recording a speaker takes part
in goes whole (both blobs, voice profiles, revisions, tasks, comments, work time, PII
spans). Everything happens in one database transaction; blobs are deleted only after the
commit and only when no remaining row references them (they are content-addressed and
may be shared). What stays is a tombstone with a random id and counts — no speaker id,
no hash — and, in past releases, `{"erased": <tombstone id>}` where a recording was (its
release_entries row is updated in place; the other rows, the manifest header and the
card are scrubbed of the erased identifiers), so the ML teams know which releases to
retrain. Audit events naming the speaker or the erased audio are blanked
(`store.audit.blank_event`), which keeps the chain verifiable.

The retention purge (`corpus.governance.retention`) erases recordings through the same machinery.

A speaker erasure puts the speaker id, their consent ids and the erased audio hashes on
the do-not-collect list (keyed hashes only, `store.do_not_collect`), so intake and
consent import refuse them when an old manifest or consent file is run again. Speakers
left without any recording lose their demographic rows (data minimisation: they only
served coverage and releases). After the commit, the pulls of the amended releases are
rewritten under the home and listed elsewhere (`corpus.governance.erased_pulls`); a blob
file that cannot be deleted is reported with the command that finishes the job
(`turnscribe governance delete-blobs`).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Text, cast, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from corpus.governance.erased_pulls import PullNotice, settle_pulls
from store import models
from store.accounts import Principal, require
from store.audit import blank_event, canonical_json, record_event
from store.blob_refs import remove_unreferenced, unreferenced_blobs
from store.db import Store
from store.do_not_collect import AUDIO, CONSENT, SPEAKER, DoNotCollect

CHUNK = 500  # IN-list size: far below PostgreSQL's and SQLite's bound-parameter limits
SQL_PREFILTER_MAX = 40  # beyond this many identifiers the audit log is scanned once in Python
ORPHAN_MIN_AGE = dt.timedelta(hours=1)


class ErasureError(ValueError):
    """The erasure cannot be done as asked (unknown speaker, nothing to erase)."""


@dataclass
class ErasureReport:
    """What an erasure removed (or, in a dry run, would remove)."""

    reason: str
    dry_run: bool
    tombstone_id: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    releases_affected: list[str] = field(default_factory=list)
    blobs_deleted: int = 0
    blobs_failed: dict[str, str] = field(default_factory=dict)  # digest -> why its file is still there
    pulls: list[PullNotice] = field(default_factory=list)

    def finish_command(self) -> str:
        """The command that deletes the blob files this erasure could not (empty when none)."""
        return f"turnscribe governance delete-blobs {' '.join(sorted(self.blobs_failed))}" if self.blobs_failed else ""


@dataclass
class BlobDeletion:
    """What happened to the blob files an erasure freed."""

    deleted: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # digest -> the error


@dataclass
class ErasureTargets:
    """What one erasure takes: whole recordings, and (speaker erasure) the speakers' own records."""

    recording_pks: set[int]
    speaker_ids: set[str] = field(default_factory=set)


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    items = sorted(values)
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def _pks(session: Session, column: Any, key: Any, values: set[Any]) -> set[Any]:
    """`column` of the rows whose `key` is in `values`, in chunks."""
    found: set[Any] = set()
    for chunk in _chunks(values):
        found.update(session.scalars(select(column).where(key.in_(chunk))))
    return found


def _delete(session: Session, model: type, key: Any, values: set[Any]) -> int:
    removed = 0
    for chunk in _chunks(values):
        removed += session.execute(delete(model).where(key.in_(chunk)), execution_options={"synchronize_session": False}).rowcount or 0
    return removed


def _token_pattern(needles: set[str]) -> re.Pattern[str] | None:
    """Matches any needle as a whole token (so 'spk-1' does not match inside 'spk-10')."""
    if not needles:
        return None
    alternation = "|".join(re.escape(n) for n in sorted(needles, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?:{alternation})(?![\w-])")


def recordings_of_speaker(session: Session, speaker_id: str) -> set[int]:
    """Every recording the speaker takes part in: through their sessions, or declared in a rejected row."""
    sessions = select(models.SessionParticipant.session_pk).where(models.SessionParticipant.speaker_id == speaker_id)
    found = set(session.scalars(select(models.Recording.pk).where(models.Recording.session_pk.in_(sessions))))
    declared = session.execute(
        select(models.Recording.pk, models.Recording.declared)
        .where(cast(models.Recording.declared, Text).contains(speaker_id, autoescape=True))
    )
    for pk, row in declared:
        speakers = (row or {}).get("speakers") or []
        if any(isinstance(s, dict) and s.get("speaker_id") == speaker_id for s in speakers):
            found.add(pk)
    return found


def _release_entry_erased(entry: Any, keys: set[str], digests: set[str]) -> bool:
    """Whether a release manifest entry is one of the erased recordings (by its key or its audio hashes)."""
    if not isinstance(entry, dict) or "erased" in entry:
        return False
    return entry.get("recording") in keys or entry.get("sha256") in digests or entry.get("working_sha256") in digests


def _scrub(value: Any, pattern: re.Pattern[str] | None, replacement: str) -> Any:
    """A copy of a JSON value with every string naming an erased identifier replaced."""
    if pattern is None:
        return value
    if isinstance(value, dict):
        return {k: _scrub(v, pattern, replacement) for k, v in value.items() if not pattern.search(str(k))}
    if isinstance(value, list):
        return [_scrub(v, pattern, replacement) for v in value]
    if isinstance(value, str) and pattern.search(value):
        return replacement
    return value


def _mentions(value: Any, pattern: re.Pattern[str]) -> bool:
    """Whether a JSON value names an identifier in one of its strings or keys (numbers never match)."""
    if isinstance(value, str):
        return bool(pattern.search(value))
    if isinstance(value, dict):
        return any(pattern.search(str(k)) or _mentions(v, pattern) for k, v in value.items())
    if isinstance(value, list):
        return any(_mentions(v, pattern) for v in value)
    return False


def _entry_speakers(entry: Any) -> set[str]:
    if not isinstance(entry, dict):
        return set()
    return {s.get("speaker_id") for s in entry.get("speakers") or [] if isinstance(s, dict) and s.get("speaker_id")}


def _amend_entries(session: Session, release_pk: int, keys: set[str], digests: set[str], names: re.Pattern[str] | None,
                   tombstone_id: str) -> tuple[int, int, set[str]]:
    """Replace a release's erased entry rows by markers and scrub the others, reading the rows a batch at a time.

    Returns how many entries were erased, how many rows changed, and the speakers of the
    entries still live (their ReleaseSpeaker rows stay).
    """
    from corpus.releases.build import release_entries

    erased, live_speakers, changes = 0, set(), []
    for position, entry in enumerate(release_entries(session, release_pk)):
        if _release_entry_erased(entry, keys, digests):
            new: Any = {"erased": tombstone_id}
            erased += 1
        else:
            new = _scrub(entry, names, f"erased:{tombstone_id}")
            live_speakers |= _entry_speakers(new)
        if new != entry:
            changes.append({"release_pk": release_pk, "position": position, "entry": new})
    for start in range(0, len(changes), CHUNK):  # ORM bulk UPDATE by primary key, one executemany per chunk
        session.execute(update(models.ReleaseEntry), changes[start:start + CHUNK])
    return erased, len(changes), live_speakers


def _amend_releases(session: Session, targets: ErasureTargets, digests: set[str], names: re.Pattern[str] | None,
                    tombstone_id: str) -> tuple[list[str], int]:
    """Replace erased recordings in past releases' entry rows, scrub headers and cards; the affected names and entries."""
    listed = _pks(session, models.ReleaseSpeaker.release_pk, models.ReleaseSpeaker.speaker_id, targets.speaker_ids)
    keys = {f"rec-{pk}" for pk in targets.recording_pks}  # the release helper's recording key
    affected, entries = [], 0
    for release in session.scalars(select(models.Release).order_by(models.Release.pk)).all():
        erased, rows_changed, remaining = _amend_entries(session, release.pk, keys, digests, names, tombstone_id)
        manifest = release.manifest or {}
        new_manifest = _scrub(manifest, names, f"erased:{tombstone_id}")
        new_card = _scrub(release.card or {}, names, f"erased:{tombstone_id}")
        header_changed = new_manifest != manifest or new_card != (release.card or {})
        if header_changed:
            release.manifest, release.card = new_manifest, new_card
        stale = set(session.scalars(select(models.ReleaseSpeaker.speaker_id).where(
            models.ReleaseSpeaker.release_pk == release.pk))) - remaining if erased else set()
        stale |= targets.speaker_ids if release.pk in listed else set()
        if stale:
            session.execute(delete(models.ReleaseSpeaker).where(
                models.ReleaseSpeaker.release_pk == release.pk, models.ReleaseSpeaker.speaker_id.in_(sorted(stale))))
        if header_changed or rows_changed or release.pk in listed:
            affected.append(release.name)
            entries += erased
    return affected, entries


def _blank_audit(session: Session, names: set[str], subjects: set[str], tombstone_id: str) -> int:
    """Blank every audit event whose subject or details name an erased identifier."""
    pattern = _token_pattern(names)
    query = select(models.AuditEvent).order_by(models.AuditEvent.pk)
    if len(names) <= SQL_PREFILTER_MAX:
        forms = names | {canonical_json(n)[1:-1] for n in names}  # as stored: non-ASCII may be escaped
        text_of = cast(models.AuditEvent.details, Text)
        clauses = [models.AuditEvent.subject.in_(sorted(subjects))] if subjects else []
        clauses += [text_of.contains(n, autoescape=True) for n in forms]
        clauses += [models.AuditEvent.subject.contains(n, autoescape=True) for n in forms]
        if not clauses:
            return 0
        query = query.where(or_(*clauses))
    blanked = 0
    for event in session.scalars(query).all():
        named = event.subject in subjects or (pattern is not None and _mentions([event.subject, event.details], pattern))
        if named and blank_event(event, tombstone_id):
            blanked += 1
    return blanked


@dataclass
class _Scope:
    """Every row and identifier one erasure reaches, gathered before anything is deleted."""

    digests: set[str]  # blobs: originals, working copies, voice profiles
    session_pks: set[int]
    revisions: set[int]
    tasks: set[int]
    consent_ids: set[str]
    participants: set[str]  # every speaker of the erased recordings' sessions

    def names(self, targets: ErasureTargets) -> set[str]:
        """Identifiers that, written anywhere, point at the erased person or audio."""
        return set(targets.speaker_ids) | self.consent_ids | self.digests

    def subjects(self, targets: ErasureTargets) -> set[str]:
        """Audit subjects of the erased records."""
        return ({f"recording:{pk}" for pk in targets.recording_pks} | {f"task:{pk}" for pk in self.tasks}
                | {f"revision:{pk}" for pk in self.revisions})


def _scope(session: Session, targets: ErasureTargets) -> _Scope:
    recs, speakers = targets.recording_pks, targets.speaker_ids
    rows = [row for chunk in _chunks(recs) for row in session.execute(
        select(models.Recording.sha256, models.Recording.working_sha256, models.Recording.session_pk)
        .where(models.Recording.pk.in_(chunk)))]
    participant = models.SessionParticipant
    session_pks = ({r.session_pk for r in rows if r.session_pk is not None}
                   | _pks(session, participant.session_pk, participant.speaker_id, speakers))
    return _Scope(
        digests={d for r in rows for d in (r.sha256, r.working_sha256) if d}
        | _pks(session, models.VoiceProfile.sha256, models.VoiceProfile.recording_pk, recs),
        session_pks=session_pks,
        revisions=_pks(session, models.TranscriptRevision.pk, models.TranscriptRevision.recording_pk, recs),
        tasks=_pks(session, models.Task.pk, models.Task.recording_pk, recs),
        consent_ids=_pks(session, models.Consent.consent_id, models.Consent.speaker_id, speakers)
        | _pks(session, participant.consent_id, participant.speaker_id, speakers),
        participants=_pks(session, participant.speaker_id, participant.session_pk, session_pks),
    )


def _emptied_sessions(session: Session, session_pks: set[int]) -> set[int]:
    """Sessions left without recordings or without participants (nothing of the dialogue remains)."""
    def empty(model: Any, pk: int) -> bool:
        return not session.scalar(select(func.count()).select_from(model).where(model.session_pk == pk))
    return {pk for pk in session_pks if empty(models.Recording, pk) or empty(models.SessionParticipant, pk)}


def _delete_rows(session: Session, targets: ErasureTargets, scope: _Scope) -> dict[str, int]:
    """Delete in foreign-key order; the counts per kind of row."""
    recs, speakers, m = targets.recording_pks, targets.speaker_ids, models
    counts = {"pii_spans": _delete(session, m.PiiSpan, m.PiiSpan.revision_pk, scope.revisions)}
    counts["review_comments"] = (_delete(session, m.ReviewComment, m.ReviewComment.task_pk, scope.tasks)
                                 + _delete(session, m.ReviewComment, m.ReviewComment.revision_pk, scope.revisions))
    counts["work_intervals"] = _delete(session, m.WorkInterval, m.WorkInterval.task_pk, scope.tasks)
    counts["transcript_revisions"] = _delete(session, m.TranscriptRevision, m.TranscriptRevision.pk, scope.revisions)
    counts["tasks"] = _delete(session, m.Task, m.Task.pk, scope.tasks)
    counts["voice_profiles"] = _delete(session, m.VoiceProfile, m.VoiceProfile.recording_pk, recs)
    counts["recordings"] = _delete(session, m.Recording, m.Recording.pk, recs)
    counts["session_participants"] = _delete(session, m.SessionParticipant, m.SessionParticipant.speaker_id, speakers)
    emptied = _emptied_sessions(session, scope.session_pks)
    counts["session_participants"] += _delete(session, m.SessionParticipant, m.SessionParticipant.session_pk, emptied)
    counts["sessions"] = _delete(session, m.Session, m.Session.pk, emptied)
    counts["consents"] = _delete(session, m.Consent, m.Consent.speaker_id, speakers)
    still_taking_part = _pks(session, m.SessionParticipant.speaker_id, m.SessionParticipant.speaker_id, scope.participants)
    counts["speaker_demographics"] = _delete(session, m.SpeakerDemographic, m.SpeakerDemographic.speaker_id,
                                             speakers | (scope.participants - still_taking_part))
    counts["speakers"] = _delete(session, m.Speaker, m.Speaker.id, speakers)
    return counts


def erase_targets(session: Session, targets: ErasureTargets, tombstone: models.Tombstone,
                  blocked: DoNotCollect | None = None) -> tuple[dict[str, int], set[str]]:
    """Delete everything the targets cover in the caller's transaction, amend releases, blank the audit log.

    With `blocked` (a speaker erasure), the speakers, their consent ids and the erased
    audio go on the do-not-collect list. Fills the tombstone's counts and releases;
    returns the counts and the blob digests no remaining row references (to delete
    after the commit).
    """
    scope = _scope(session, targets)
    names = scope.names(targets)
    releases, release_entries = _amend_releases(session, targets, scope.digests, _token_pattern(names),
                                                tombstone.tombstone_id)
    counts = _delete_rows(session, targets, scope)
    counts["release_entries"] = release_entries
    counts["audit_events_blanked"] = _blank_audit(session, names, scope.subjects(targets), tombstone.tombstone_id)
    unreferenced = unreferenced_blobs(session, scope.digests)
    counts["blobs"] = len(unreferenced)
    counts["blobs_shared_kept"] = len(scope.digests) - len(unreferenced)
    if blocked is not None:
        listed = ([(SPEAKER, s) for s in targets.speaker_ids] + [(CONSENT, c) for c in scope.consent_ids]
                  + [(AUDIO, d) for d in scope.digests])
        counts["do_not_collect"] = blocked.add(session, listed, tombstone.tombstone_id)
    tombstone.counts, tombstone.releases_affected = counts, releases
    return counts, unreferenced


def orphan_blobs(store: Store, min_age: dt.timedelta = ORPHAN_MIN_AGE) -> set[str]:
    """Blob files no row references, older than `min_age` (younger ones may belong to an intake still committing).

    They are what an erasure interrupted between its commit and its file deletions left.
    """
    root = store.blobs.root / "sha256"
    cutoff = time.time() - min_age.total_seconds()
    found = {p.name for p in root.glob("??/*") if p.is_file() and not p.name.startswith(".")
             and len(p.name) == 64 and p.stat().st_mtime < cutoff} if root.exists() else set()
    with store.session() as session:
        return unreferenced_blobs(session, found)


def delete_blobs(store: Store, digests: set[str]) -> BlobDeletion:
    """Delete the blob files no row references (checked again after the commit); a file that resists is reported."""
    with store.session() as session:
        removal = remove_unreferenced(store.blobs, session, digests)
    return BlobDeletion(deleted=len(removal.removed), failed=removal.failed)


def new_tombstone(session: Session, principal: Principal, reason: str) -> models.Tombstone:
    tombstone = models.Tombstone(tombstone_id=f"tomb-{secrets.token_hex(8)}", erased_by=principal.username, reason=reason)
    session.add(tombstone)
    session.flush()
    return tombstone


def run_erasure(store: Store, principal: Principal, batches: list[tuple[str, ErasureTargets]], *,
                dry_run: bool, action: str = "erase", blocked: DoNotCollect | None = None) -> list[ErasureReport]:
    """Erase each (reason, targets) batch under its own tombstone, all in one transaction.

    A dry run does the same work and rolls it back, so what it reports is exactly what a
    real run would do. Blob files go after the commit (a crash in between leaves orphan
    blobs, never a row without its audio).
    """
    reports: list[tuple[ErasureReport, set[str]]] = []
    with store.session() as session:
        try:
            for reason, targets in batches:
                tombstone = new_tombstone(session, principal, reason)
                counts, unreferenced = erase_targets(session, targets, tombstone, blocked)
                report = ErasureReport(reason, dry_run, tombstone.tombstone_id, counts, list(tombstone.releases_affected))
                reports.append((report, unreferenced))
                if not dry_run:
                    record_event(session, principal.username, action, f"tombstone:{tombstone.tombstone_id}",
                                 {"reason": reason, "counts": counts, "releases_affected": tombstone.releases_affected})
            if dry_run:
                session.rollback()
                for report, _ in reports:
                    report.tombstone_id = ""
                _settle_pulls(store, principal, [r for r, _ in reports], dry_run=True)
                return [r for r, _ in reports]
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise ErasureError(f"nothing was erased: a record outside the erased recordings still refers to them "
                               f"({str(exc.orig).splitlines()[0]})") from exc
    for report, unreferenced in reports:
        deletion = delete_blobs(store, unreferenced)
        report.blobs_deleted, report.blobs_failed = deletion.deleted, deletion.failed
    if any(r.blobs_failed for r, _ in reports):
        with store.session() as session:
            record_event(session, principal.username, "erase_blobs_failed", f"tombstone:{reports[0][0].tombstone_id}",
                         {"files": sum(len(r.blobs_failed) for r, _ in reports)})
            session.commit()
    _settle_pulls(store, principal, [r for r, _ in reports], dry_run=False)
    return [r for r, _ in reports]


def _settle_pulls(store: Store, principal: Principal, reports: list[ErasureReport], *, dry_run: bool) -> None:
    """Each amended release's pulls go to the first report that names the release."""
    seen: set[str] = set()
    for report in reports:
        fresh = [name for name in report.releases_affected if name not in seen]
        seen.update(fresh)
        report.pulls = settle_pulls(store, principal, fresh, report.tombstone_id, dry_run=dry_run)


def erase_speaker(store: Store, principal: Principal, speaker_id: str, *, reason: str = "erasure request",
                  dry_run: bool = False) -> ErasureReport:
    """Erase one data subject and every recording they take part in (permission "erase")."""
    require(principal, "erase")
    speaker_id = speaker_id.strip()
    if not speaker_id:
        raise ErasureError("give the speaker id to erase")
    with store.session() as session:
        recordings = recordings_of_speaker(session, speaker_id)
        known = (session.get(models.Speaker, speaker_id) is not None or recordings
                 or session.scalar(select(models.Consent.pk).where(models.Consent.speaker_id == speaker_id).limit(1)))
    if not known:
        raise ErasureError(f"no speaker {speaker_id!r} in the store (never ingested, or already erased)")
    blocked = DoNotCollect.for_store(store)
    return run_erasure(store, principal, [(reason, ErasureTargets(recordings, {speaker_id}))], dry_run=dry_run,
                       blocked=blocked)[0]
