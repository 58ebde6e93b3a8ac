"""Which blob digests rows still point at: what may be deleted after a failure or an erasure."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

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


@dataclass
class BlobRemoval:
    """What happened to the files of unreferenced digests: removed, or left with the error that kept them."""

    removed: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)  # digest -> the error


def remove_unreferenced(blobs: BlobStore, session: Session, digests: set[str]) -> BlobRemoval:
    """Delete the blob files among `digests` that no committed row references; a file that resists is reported."""
    result = BlobRemoval()
    for digest in sorted(unreferenced_blobs(session, digests)):
        path = blobs.path_for(digest)
        try:
            if path.exists() or path.is_symlink():
                path.unlink()
                result.removed.add(digest)
        except OSError as exc:
            result.failed[digest] = f"{path}: {exc.strerror or exc}"
    return result
