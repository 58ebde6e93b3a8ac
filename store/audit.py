"""The append-only audit log: what entered the store, who changed what, and when.

Every event is chained to the one before it by hash, so a changed, deleted or reordered
row is detectable (`corpus.governance.audit_verify.verify_chain`):

    body_digest    = sha256(canonical JSON {subject, details})
    content_digest = sha256(canonical JSON {at, actor, action, body})
    entry_hash     = sha256(prev_hash + content_digest)      (the first prev_hash: 64 zeros)

The three hash columns are NOT NULL; events older than the chain were sealed by
migration 0008 into a leading segment that starts at LEGACY_GENESIS instead.

The body is digested separately so that an erasure can blank an event's subject and
details (they may name a speaker or an audio hash) while keeping `body` in the blanked
details: the entry still verifies, and who/what/when stay protected by the digest.

`record_event` only prepares an event; it joins the chain when the caller's transaction
commits (a `before_commit` hook), under a lock that serialises appenders on both
databases. The lock is therefore held for the commit alone, however long the caller's
transaction ran, and an event of a rolled-back transaction never exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy import select, text
from sqlalchemy.orm import Session, SessionTransaction

from store import models
from store.clock import utcnow
from store.db import take_sqlite_write_lock

GENESIS = "0" * 64
# where migration 0008 sealed the events written before the chain existed (never written since)
LEGACY_GENESIS = hashlib.sha256(b"turnscribe: audit events from before the hash chain").hexdigest()
# pg_advisory_xact_lock key serialising appends to the chain ("TSAUDIT" as an int)
CHAIN_LOCK_KEY = 0x54534155444954
_PENDING = "turnscribe.audit.pending"  # session.info key: events waiting for the commit


def canonical_json(value: Any) -> str:
    """One byte-exact text per JSON value: what the JSON column round-trips to, keys sorted."""
    return _canonical(json.loads(json.dumps(value)))


def _canonical(value: Any) -> str:
    """`canonical_json` of a value already in JSON form (as loaded from a JSON column)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _sha256(textual: str) -> str:
    return hashlib.sha256(textual.encode("utf-8")).hexdigest()


def timestamp_text(at: dt.datetime) -> str:
    """ISO UTC with microseconds; SQLite hands timestamps back naive (they were stored as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.timezone.utc)
    return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def body_digest(subject: str, details: dict[str, Any]) -> str:
    """`details` must be in JSON form (record_event normalises it; the database returns it so)."""
    return _sha256(_canonical({"subject": subject, "details": details}))


def content_digest(at: dt.datetime, actor: str, action: str, body: str) -> str:
    return _sha256(_canonical({"at": timestamp_text(at), "actor": actor, "action": action, "body": body}))


def link_hash(prev_hash: str, digest: str) -> str:
    return _sha256(prev_hash + digest)


def _lock_chain(session: Session) -> None:
    """Hold the right to append until this transaction ends, before the chain's tail is read.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: the database write lock — a
    transaction that already wrote holds it (the driver begins transactions at the first
    write), otherwise BEGIN IMMEDIATE takes it, so the tail read is never a stale snapshot.
    """
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    else:
        take_sqlite_write_lock(session)


def record_event(session: Session, actor: str, action: str, subject: str, details: dict[str, Any]) -> models.AuditEvent:
    """Record one audit event in the caller's transaction: it is chained and stored when that transaction commits.

    The event's time is now; its place in the chain (and its pk) comes at commit, so the
    chain lock is held only for the commit itself, never while the caller still works.
    A rolled-back transaction leaves no event.
    """
    at = utcnow()
    details = json.loads(json.dumps(details))
    entry = models.AuditEvent(
        at=at, actor=actor, action=action, subject=subject, details=details,
        content_digest=content_digest(at, actor, action, body_digest(subject, details)),
    )
    session.connection()  # begin the session's transaction now, so its end (commit or not) settles the event
    session.info.setdefault(_PENDING, []).append(entry)
    return entry


def pending_events(session: Session) -> list[models.AuditEvent]:
    """The events recorded in the session's open transaction (stored at its commit), oldest first."""
    return list(session.info.get(_PENDING, []))


@sa_event.listens_for(Session, "before_commit")
def _chain_pending_events(session: Session) -> None:
    """Append the transaction's events to the chain, last thing before the commit.

    The caller's own changes are flushed first (their row locks come before the chain
    lock, so waiting for the chain cannot deadlock); then the chain lock, so no other
    writer can append between reading the tail and committing. UNIQUE(prev_hash) is the
    safety net: a forked chain cannot be committed.
    """
    pending: list[models.AuditEvent] = session.info.pop(_PENDING, [])
    if not pending:
        return
    session.flush()
    _lock_chain(session)
    tail = session.scalar(  # an emptied hash (tampering, which verification names) is stepped over, not forked from
        select(models.AuditEvent.entry_hash).where(models.AuditEvent.entry_hash != "")
        .order_by(models.AuditEvent.pk.desc()).limit(1)
    )
    previous = tail or GENESIS
    for entry in pending:
        entry.prev_hash = previous
        entry.entry_hash = previous = link_hash(previous, entry.content_digest or "")
    session.add_all(pending)
    session.flush()


@sa_event.listens_for(Session, "after_transaction_end")
def _drop_pending_events(session: Session, transaction: SessionTransaction) -> None:
    """Events of a transaction that did not commit are not recorded."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def blank_event(event: models.AuditEvent, tombstone_id: str) -> bool:
    """Remove an event's personal data for an erasure, keeping what verification needs.

    Returns False when an earlier erasure already blanked it. Sealed legacy events are
    blanked the same way.
    """
    if is_blanked(event):
        return False
    body = body_digest(event.subject, event.details or {})
    event.subject = f"erased:{tombstone_id}"
    event.details = {"erased": tombstone_id, "body": body}
    return True


def is_blanked(event: Any) -> bool:
    """Whether an erasure blanked this event (`blank_event`'s shape exactly)."""
    details = event.details
    return (isinstance(details, dict) and set(details) == {"erased", "body"}
            and event.subject == f"erased:{details['erased']}")
