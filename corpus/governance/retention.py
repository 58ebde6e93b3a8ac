"""Retention purge: recordings the protocol's retention period or a participant's consent no longer allows.

A recording goes when it is older than its protocol's `consent.retention.days` (counted
from the session's recording date, else its ingest date), or when a participant's consent
in force was withdrawn or has expired. It goes through the erasure machinery
(`corpus.governance.erasure.run_erasure`), one tombstone per reason; the speakers and their consent
history stay (a withdrawal is not an erasure request). Blob files no row references any
more (left by an erasure interrupted after its commit) go too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store import models
from store.accounts import Principal, require
from store.db import Store
from corpus.governance.erasure import ErasureReport, ErasureTargets, delete_blobs, orphan_blobs, run_erasure

WITHDRAWN, EXPIRED, RETENTION = "consent withdrawn", "consent expired", "retention"
PRIORITY = (WITHDRAWN, EXPIRED, RETENTION)  # a recording with several reasons is listed under the first


@dataclass(frozen=True)
class PurgeItem:
    """One recording that must go, and why (in words a data-protection officer can check)."""

    recording_pk: int
    source_name: str
    reason: str
    why: str


@dataclass
class PurgeReport:
    items: list[PurgeItem] = field(default_factory=list)
    erasures: list[ErasureReport] = field(default_factory=list)
    orphan_blobs: int = 0  # blob files no row references (an interrupted erasure's leftovers)
    dry_run: bool = False


def _retention_items(session: Session, today: dt.date) -> list[PurgeItem]:
    items = []
    for protocol in session.scalars(select(models.Protocol)):
        days = int(protocol.spec["consent"]["retention"]["days"])
        rows = session.execute(
            select(models.Recording.pk, models.Recording.source_name, models.Recording.ingested_at, models.Session.recorded_on)
            .outerjoin(models.Session, models.Session.pk == models.Recording.session_pk)
            .where(models.Recording.protocol_pk == protocol.pk)
        )
        for pk, source, ingested_at, recorded_on in rows:
            since = recorded_on or ingested_at.date()
            if since + dt.timedelta(days=days) < today:
                what = "recorded" if recorded_on else "ingested"
                items.append(PurgeItem(pk, source, RETENTION,
                                       f"{what} on {since}; {protocol.protocol_id}@{protocol.version} keeps recordings {days} days"))
    return items


def _consent_items(session: Session, today: dt.date) -> list[PurgeItem]:
    newest = (select(func.max(models.Consent.pk).label("pk")).group_by(models.Consent.consent_id)).subquery()
    rows = session.execute(
        select(models.Recording.pk, models.Recording.source_name, models.SessionParticipant.speaker_id, models.Consent)
        .join(models.SessionParticipant, models.SessionParticipant.session_pk == models.Recording.session_pk)
        .join(models.Consent, models.Consent.consent_id == models.SessionParticipant.consent_id)
        .join(newest, newest.c.pk == models.Consent.pk)
        .order_by(models.Recording.pk)
    )
    items = []
    for pk, source, speaker_id, consent in rows:
        if consent.withdrawn_on is not None and consent.withdrawn_on <= today:
            items.append(PurgeItem(pk, source, WITHDRAWN,
                                   f"speaker {speaker_id} withdrew consent {consent.consent_id} on {consent.withdrawn_on}"))
        elif consent.expires_on is not None and consent.expires_on < today:
            items.append(PurgeItem(pk, source, EXPIRED,
                                   f"consent {consent.consent_id} of speaker {speaker_id} expired on {consent.expires_on}"))
    return items


def purge_candidates(session: Session, today: dt.date | None = None) -> list[PurgeItem]:
    """Every recording that must go on `today`, once, under its most pressing reason."""
    today = today or dt.date.today()
    chosen: dict[int, PurgeItem] = {}
    for item in _consent_items(session, today) + _retention_items(session, today):
        current = chosen.get(item.recording_pk)
        if current is None or PRIORITY.index(item.reason) < PRIORITY.index(current.reason):
            chosen[item.recording_pk] = item
    return sorted(chosen.values(), key=lambda i: (PRIORITY.index(i.reason), i.recording_pk))


def purge(store: Store, principal: Principal, *, today: dt.date | None = None, dry_run: bool = False) -> PurgeReport:
    """Erase what retention and consent no longer allow (permission "purge"); a dry run only lists it."""
    require(principal, "purge")
    with store.session() as session:
        items = purge_candidates(session, today)
    batches = [(reason, ErasureTargets({i.recording_pk for i in items if i.reason == reason})) for reason in PRIORITY]
    batches = [(reason, targets) for reason, targets in batches if targets.recording_pks]
    report = PurgeReport(items=items, dry_run=dry_run)
    if batches:
        report.erasures = run_erasure(store, principal, batches, dry_run=dry_run, action="purge")
    orphans = orphan_blobs(store)
    report.orphan_blobs = len(orphans) if dry_run else delete_blobs(store, orphans)
    return report
