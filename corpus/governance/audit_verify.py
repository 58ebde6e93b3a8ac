"""Checking the audit log's hash chain (`turnscribe governance audit --verify`).

The walk goes in insertion (pk) order and stops at the first entry that does not hold:
its content no longer matches its digest (edited), its link does not follow the entry
before it (deleted, inserted or reordered rows), a hash field is empty or missing (the
columns are NOT NULL, so only tampering empties them), or it was blanked without a
tombstone — or with one, beyond the number of entries that erasure's own (chained) event
says it blanked. Events older than the chain were sealed by migration 0008 into a leading
segment starting at LEGACY_GENESIS; the live chain may start (at GENESIS) once, after it.
Cutting entries off the end leaves a valid shorter chain: compare `head` with a value
kept outside the database (`--expect-head`) to detect that too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.audit import GENESIS, LEGACY_GENESIS, body_digest, content_digest, is_blanked, link_hash


@dataclass
class ChainReport:
    """The outcome of one verification: ok, or the first broken entry and why."""

    ok: bool = True
    checked: int = 0  # entries walked (legacy included)
    chained: int = 0  # entries whose digest and link verified (legacy included)
    legacy: int = 0  # entries written before the chain existed, sealed by migration 0008, at the start only
    blanked: int = 0  # entries an erasure blanked (their tombstone exists)
    head: str = GENESIS  # entry_hash of the last verified entry
    broken_pk: int | None = None
    problem: str = ""

    def summary(self) -> str:
        if self.ok:
            return (f"audit chain intact: {self.chained} chained entries ({self.blanked} blanked by erasures, "
                    f"{self.legacy} sealed from before the chain); head {self.head}")
        return f"audit chain BROKEN at entry {self.broken_pk}: {self.problem}"


def _link_problem(session: Session, event: Any, expected: str, started: bool) -> str:
    """Why an entry's prev_hash is not the hash of the entry before it."""
    follows = session.scalar(select(models.AuditEvent.pk).where(models.AuditEvent.entry_hash == event.prev_hash))
    if follows is not None:
        return f"link broken: it follows entry {follows}, not the entry before it (rows reordered)"
    if not started:
        return "link broken: the chain does not start at the first entry (entries before it were deleted)"
    return f"link broken: the entry it follows (hash {event.prev_hash}) is missing (an entry was deleted)"


def _check(session: Session, event: Any, expected_prev: str, started: bool,
           tombstones: set[str]) -> str:
    """The problem with one chained entry, or '' when it verifies."""
    missing = [name for name in ("content_digest", "prev_hash", "entry_hash") if not getattr(event, name)]
    if missing:
        return f"hash field(s) {', '.join(missing)} empty or missing (removed)"
    if is_blanked(event):
        if event.details["erased"] not in tombstones:
            return f"blanked as erased by {event.details['erased']!r}, but no such tombstone exists (content removed)"
        body = str(event.details["body"])
    else:
        body = body_digest(event.subject, event.details if event.details is not None else {})
    if content_digest(event.at, event.actor, event.action, body) != event.content_digest:
        return "content changed: when/who/what/subject/details no longer match the digest recorded with it"
    if event.prev_hash != expected_prev:
        return _link_problem(session, event, expected_prev, started)
    if link_hash(event.prev_hash, event.content_digest) != event.entry_hash:
        return "entry hash does not match its link and digest (edited)"
    return ""


ERASURE_ACTIONS = ("erase", "purge")  # their details say how many entries the erasure blanked


def _erasure_marks_problem(marks: dict[str, list[int]], expected: dict[str, int]) -> tuple[int | None, str]:
    """Entries blanked under a tombstone must be exactly as many as its (chained) erasure event says.

    Without this, someone with write access could "blank" any entry under an existing
    tombstone and hide what it said.
    """
    for tombstone_id, pks in sorted(marks.items()):
        if len(pks) != expected.get(tombstone_id, 0):
            return pks[-1], (f"{len(pks)} entries carry the erasure mark of {tombstone_id}, but its audited erasure "
                             f"blanked {expected.get(tombstone_id, 0)} (entries {', '.join(map(str, pks[:10]))})")
    return None, ""


def verify_chain(session: Session, *, batch: int = 2000) -> ChainReport:
    """Walk the whole audit log once (streamed) and report the first entry that does not verify."""
    report = ChainReport()
    tombstones = set(session.scalars(select(models.Tombstone.tombstone_id)))
    marks: dict[str, list[int]] = defaultdict(list)  # tombstone id -> pks of entries blanked under it
    expected: dict[str, int] = {}  # tombstone id -> entries its erasure event says it blanked
    started = False
    sealed_prefix = False  # walking the legacy segment migration 0008 sealed
    ev = models.AuditEvent  # plain rows, not ORM objects: the walk reads every entry once
    query = select(ev.pk, ev.at, ev.actor, ev.action, ev.subject, ev.details, ev.content_digest, ev.prev_hash,
                   ev.entry_hash).order_by(ev.pk).execution_options(yield_per=batch)
    for event in session.execute(query):
        report.checked += 1
        if is_blanked(event):
            marks[str(event.details["erased"])].append(event.pk)
        if not started and event.prev_hash == LEGACY_GENESIS:
            sealed_prefix = True
            expected_prev = LEGACY_GENESIS
        elif sealed_prefix and event.prev_hash == GENESIS:  # the live chain starts after the sealed segment
            sealed_prefix = False
            expected_prev = GENESIS
        else:
            expected_prev = report.head if started else GENESIS
        problem = _check(session, event, expected_prev, started, tombstones)
        if problem:
            report.ok, report.broken_pk, report.problem = False, event.pk, problem
            return report
        started = True
        report.chained += 1
        report.legacy += sealed_prefix
        report.blanked += is_blanked(event)
        report.head = event.entry_hash or GENESIS
        if event.action in ERASURE_ACTIONS and event.subject.startswith("tombstone:"):
            counts = (event.details or {}).get("counts") or {}
            expected[event.subject.removeprefix("tombstone:")] = int(counts.get("audit_events_blanked", 0))
    broken_pk, problem = _erasure_marks_problem(marks, expected)
    if problem:
        report.ok, report.broken_pk, report.problem = False, broken_pk, problem
    return report
