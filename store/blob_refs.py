"""Which blob digests rows still point at: what may be deleted after a failure or an erasure."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.blobs import BlobStore

CHUNK = 500  # bound parameters per query, well under SQLite's and PostgreSQL's limits


def _chunks(values: set[str]) -> Iterator[list[str]]:
    ordered = sorted(values)
    for i in range(0, len(ordered), CHUNK):
        yield ordered[i : i + CHUNK]


def unreferenced_blobs(session: Session, digests: set[str]) -> set[str]:
    """The digests no recording (original or working copy) or voice profile points at."""
    used: set[str] = set()
    for column in (models.Recording.sha256, models.Recording.working_sha256, models.VoiceProfile.sha256):
        for chunk in _chunks(digests):
            used.update(d for d in session.scalars(select(column).where(column.in_(chunk))) if d)
    return digests - used


def remove_unreferenced(blobs: BlobStore, session: Session, digests: set[str]) -> set[str]:
    """Delete the blob files among `digests` that no committed row references; the digests removed."""
    removed = set()
    for digest in unreferenced_blobs(session, digests):
        path = blobs.path_for(digest)
        if path.exists():
            path.unlink()
            removed.add(digest)
    return removed
