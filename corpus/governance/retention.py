"""Retention purge: recordings the protocol's retention period or a participant's consent no longer allows.

A recording goes when it is older than its protocol's `consent.retention.days` (counted
from the session's recording date, else its ingest date), or when a participant's consent
in force was withdrawn or has expired (`collection.consent.judge_consent` decides). It goes
through the erasure machinery (`corpus.governance.erasure.run_erasure`), one tombstone per
reason; the speakers and their consent history stay (a withdrawal is not an erasure
request: the history proves it was honoured), but a speaker left without any recording
loses their demographic rows (data minimisation), and nothing goes on the do-not-collect
list (re-ingest is refused by the consent check itself). Blob files no row references any
more (left by an erasure interrupted after its commit) go too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from collection.consent import ConsentCode, consent_histories, judge_consent
from store import models
from store.accounts import Principal, require
from store.db import Store
from corpus.governance.erasure import ErasureReport, ErasureTargets, delete_blobs, orphan_blobs, run_erasure

WITHDRAWN, EXPIRED, RETENTION = ConsentCode.WITHDRAWN.value, ConsentCode.EXPIRED.value, "retention"
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
    orphans_failed: dict[str, str] = field(default_factory=dict)  # digest -> why its file could not be deleted
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
    """Recordings a participant's consent no longer covers on `today` (collection.consent.judge_consent decides)."""
    rows = session.execute(
        select(models.Recording.pk, models.Recording.source_name, models.SessionParticipant.speaker_id,
               models.SessionParticipant.consent_id)
        .join(models.SessionParticipant, models.SessionParticipant.session_pk == models.Recording.session_pk)
        .order_by(models.Recording.pk, models.SessionParticipant.speaker_id)
    ).all()
    histories = consent_histories(session, {consent_id for *_, consent_id in rows})
    items = []
    for pk, source, speaker_id, consent_id in rows:
        verdict = judge_consent(histories.get(consent_id, []), consent_id, speaker_id, on=today)
        for code, reason in ((ConsentCode.WITHDRAWN, WITHDRAWN), (ConsentCode.EXPIRED, EXPIRED)):
            problem = next((p for p in verdict.problems if p.code is code), None)
            if problem is not None:
                items.append(PurgeItem(pk, source, reason, problem.message))
                break
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
    if dry_run:
        report.orphan_blobs = len(orphans)
    else:
        deletion = delete_blobs(store, orphans)
        report.orphan_blobs, report.orphans_failed = deletion.deleted, deletion.failed
    return report
