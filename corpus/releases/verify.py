"""Verify a release against the store (re-hash everything) and diff two releases.

An entry an erasure replaced by `{"erased": <tombstone id>}` is reported as erased,
not as drift, when that tombstone exists: the release id still verifies because it
commits to each entry's digest (`recording_digests`), which the erasure keeps.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.blobs import sha256_file
from store.db import Store
from store.release_keys import recording_pk
from corpus.releases.diff import diff_entries
from corpus.releases.build import (ReleaseError, find_release, free_page_cache, load_header, release_entries, release_id_of,
                            sha256_json)


@dataclass(frozen=True)
class Finding:
    recording: str  # "rec-<pk>", or "release" for the manifest as a whole
    problem: str


@dataclass
class VerifyReport:
    name: str
    release_id: str
    checked: int = 0
    erased: list[tuple[str, str]] = field(default_factory=list)  # (entry position, tombstone id)
    drift: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drift


def _check_blob(store: Store, digest: str | None, what: str, key: str, report: VerifyReport) -> None:
    if not digest:
        report.drift.append(Finding(key, f"{what}: no hash in the manifest"))
        return
    path = store.blobs.path_for(digest)
    if not path.is_file():
        report.drift.append(Finding(key, f"{what} blob {digest[:12]} is missing"))
    elif sha256_file(path) != digest:
        report.drift.append(Finding(key, f"{what} blob {digest[:12]} no longer hashes to its name (content changed)"))


def _check_entries(session: Session, store: Store, entries: list[tuple[str, dict[str, Any]]], report: VerifyReport) -> None:
    """A batch of live entries against the store: recording rows, blobs (re-hashed) and transcripts."""
    rec, rev = models.Recording, models.TranscriptRevision
    pks = [pk for key, _ in entries if (pk := recording_pk(key)) is not None]
    recordings = {r.pk: r for r in session.execute(select(rec.pk, rec.sha256, rec.working_sha256, rec.status).where(rec.pk.in_(pks)))}
    revisions = {r.pk: r for r in session.execute(select(rev.pk, rev.recording_pk, rev.turns)
                                                  .where(rev.pk.in_([e["revision_pk"] for _, e in entries])))}
    for key, entry in entries:
        pk = recording_pk(key)
        recording = recordings.get(pk) if pk is not None else None
        if recording is None:
            report.drift.append(Finding(key, "recording row is gone (and no erasure marker says why)"))
        else:
            if (recording.sha256, recording.working_sha256) != (entry["sha256"], entry["working_sha256"]):
                report.drift.append(Finding(key, "the store's recording row names other audio hashes than the manifest"))
            if recording.status != "accepted":
                report.drift.append(Finding(key, f"recording is now {recording.status}"))
        _check_blob(store, entry["sha256"], "original audio", key, report)
        _check_blob(store, entry["working_sha256"], "working copy", key, report)
        revision = revisions.get(entry["revision_pk"])
        if revision is None:
            report.drift.append(Finding(key, f"transcript revision {entry['revision_pk']} is gone"))
        elif sha256_json(revision.turns) != entry["revision_sha256"]:
            report.drift.append(Finding(key, f"transcript revision {entry['revision_pk']} changed since the release"))
        elif pk is not None and revision.recording_pk != pk:
            report.drift.append(Finding(key, f"transcript revision {entry['revision_pk']} belongs to another recording"))


def _check_stream(session: Session, store: Store, release_pk: int, digests: list[str], tombstones: set[str],
                  live_speakers: set[str], report: VerifyReport, batch: int) -> int:
    """Check every entry row of a release against its digest and the store, a batch at a time; how many entries."""
    pending: list[tuple[str, dict[str, Any]]] = []
    count = 0
    for i, entry in enumerate(release_entries(session, release_pk, batch)):
        count += 1
        if "erased" in entry:
            if entry["erased"] in tombstones and set(entry) == {"erased"}:
                report.erased.append((str(i), str(entry["erased"])))
            else:
                report.drift.append(Finding(f"entry {i}", f"erasure marker names no tombstone ({entry['erased']!r})"))
            continue
        key = str(entry.get("recording", f"entry {i}"))
        report.checked += 1
        if i >= len(digests) or sha256_json(entry) != digests[i]:
            report.drift.append(Finding(key, "the manifest entry was edited after the release"))
        live_speakers |= {s["speaker_id"] for s in entry["speakers"]}
        pending.append((key, entry))
        if len(pending) >= batch:
            _check_entries(session, store, pending, report)
            free_page_cache(session)
            pending = []
    _check_entries(session, store, pending, report)
    return count


def verify_release(store: Store, name: str, batch: int = 200) -> VerifyReport:
    """Re-hash the manifest, every blob and every transcript of release `name`; list drift and erasures.

    The release's entry rows are read a batch at a time (release_entries), so a large
    release verifies in flat memory; the header (speaker index, one digest per entry) is
    read whole.
    """
    with store.session() as session:
        release = find_release(session, name)
        report = VerifyReport(name, release.release_id)
        head = load_header(session, release.pk)
        digests = head.get("recording_digests") or []
        if release_id_of(head) != release.release_id:
            report.drift.append(Finding("release", "the manifest header or its entry digests no longer hash to the release id"))
        tombstones = set(session.scalars(select(models.Tombstone.tombstone_id)))
        live_speakers: set[str] = set()
        try:
            count = _check_stream(session, store, release.pk, digests, tombstones, live_speakers, report, batch)
        except ReleaseError as exc:  # an entry row is missing: drift, reported with the rest
            report.drift.append(Finding("release", str(exc)))
            count = len(digests)
        if count != len(digests):
            report.drift.append(Finding("release", f"{count} entries but {len(digests)} entry digests"))
        stored = set(session.scalars(select(models.ReleaseSpeaker.speaker_id).where(models.ReleaseSpeaker.release_pk == release.pk)))
        if live_speakers - stored:
            report.drift.append(Finding("release", f"{len(live_speakers - stored)} released speaker(s) lack a ReleaseSpeaker row"))
        listed = set(head.get("speakers") or {})
        if live_speakers - listed:
            report.drift.append(Finding("release", f"{len(live_speakers - listed)} speaker(s) of live entries are missing from the speaker index"))
        if (listed - live_speakers) and not report.erased:
            report.drift.append(Finding("release", f"{len(listed - live_speakers)} indexed speaker(s) appear in no entry"))
    return report


def diff_releases(store: Store, before: str, after: str) -> dict[str, Any]:
    """The diff summary of two stored releases, their entries read from their rows."""
    with store.session() as session:
        a, b = find_release(session, before), find_release(session, after)
        return diff_entries(release_entries(session, a.pk), release_entries(session, b.pk)).summary(before, after)
