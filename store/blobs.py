"""Content-addressed audio storage: ``blobs/sha256/ab/<hash>``, written once, read-only."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class BlobStore:
    """Stores bytes under their SHA-256; an existing blob is never rewritten."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"not a sha256 hex digest: {digest!r}")
        return self.root / "sha256" / digest[:2] / digest

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).exists()

    def put_bytes(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if not self.exists(digest):
            self._store(digest, [data])
        return digest

    def put_file(self, path: Path, digest: str | None = None) -> str:
        """Copy a file in (streamed); `digest` skips re-hashing when the caller already has it."""
        digest = digest or sha256_file(path)
        if not self.exists(digest):
            with open(path, "rb") as src:
                self._store(digest, iter(lambda: src.read(CHUNK), b""))
        return digest

    def _store(self, digest: str, chunks: Iterable[bytes]) -> None:
        """Write to a temp file, verify the hash, make it read-only, then rename into place."""
        target = self.path_for(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        check = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as out:
                for block in chunks:
                    check.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            if check.hexdigest() != digest:
                raise ValueError(f"content changed while being stored (expected sha256 {digest})")
            os.chmod(tmp, 0o444)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def open(self, digest: str):  # type: ignore[no-untyped-def]
        return open(self.path_for(digest), "rb")
