"""The do-not-collect list: who and what was erased on request, kept as keyed hashes only.

An erasure adds the speaker id, their consent ids and the hashes of the erased audio;
intake and consent import refuse anything that matches, so an erased person does not
come back with the next run of an old manifest. The list never holds a raw id or audio
hash: each entry is HMAC-SHA256 under a secret key made once per store and kept in
`$TURNSCRIBE_HOME/keys/do-not-collect.key` (mode 0600, outside the database, so a
database dump alone cannot be matched against guessed ids). The database keeps the key's
fingerprint: a missing or different key file is an error, never a silent "not listed".
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store import models
from store.db import Store

SPEAKER, CONSENT, AUDIO = "speaker", "consent", "audio"
KINDS = (SPEAKER, CONSENT, AUDIO)
KEY_NAME = "do-not-collect"
_CHECK = b"turnscribe do-not-collect key check"
_CHUNK = 500


class DoNotCollectKeyError(RuntimeError):
    """The key the list was made with is missing or is not this one: the list cannot be checked."""


def key_path(store: Store) -> Path:
    return store.settings.home / "keys" / f"{KEY_NAME}.key"


def _read_or_create_key(path: Path, may_create: bool) -> bytes:
    if not path.exists():
        if not may_create:
            raise FileNotFoundError(path)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        try:
            os.link(temp, path)  # atomic: of two processes creating the key at once, one wins, both read it
        except FileExistsError:
            pass
        finally:
            temp.unlink()
    return bytes.fromhex(path.read_text().strip())


@dataclass(frozen=True)
class DoNotCollect:
    """The list of one store, with its key."""

    key: bytes

    @classmethod
    def for_store(cls, store: Store) -> DoNotCollect:
        """Load the store's key (made on first use); refuse a key that does not match the list's."""
        path = key_path(store)
        with store.session() as session:
            recorded = session.get(models.StoreKey, KEY_NAME)
            if recorded is None:
                key = _read_or_create_key(path, may_create=True)
                session.add(models.StoreKey(name=KEY_NAME, fingerprint=cls(key).fingerprint))
                try:
                    session.commit()
                except IntegrityError:  # another process recorded it first: compare with theirs below
                    session.rollback()
                recorded = session.get(models.StoreKey, KEY_NAME)
                assert recorded is not None
            fingerprint = recorded.fingerprint
        try:
            key = _read_or_create_key(path, may_create=False)
        except FileNotFoundError:
            raise DoNotCollectKeyError(
                f"the do-not-collect key {path} is missing, but this store's list was made with a key (fingerprint "
                f"{fingerprint[:12]}): restore the file from a backup; until then erased speakers cannot be recognised") from None
        except ValueError:
            raise DoNotCollectKeyError(f"the do-not-collect key {path} is not a hex key") from None
        if cls(key).fingerprint != fingerprint:
            raise DoNotCollectKeyError(f"the do-not-collect key {path} is not the one this store's list was made with "
                                       f"(fingerprint {fingerprint[:12]}): restore the right file")
        return cls(key)

    @property
    def fingerprint(self) -> str:
        return hmac.new(self.key, _CHECK, hashlib.sha256).hexdigest()

    def digest(self, kind: str, value: str) -> str:
        """The keyed hash of one identifier (the kind is part of the message: a speaker id never matches audio)."""
        if kind not in KINDS:
            raise ValueError(f"unknown do-not-collect kind {kind!r}")
        return hmac.new(self.key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()

    def any_listed(self, session: Session, items: Iterable[tuple[str, str]]) -> bool:
        """Whether any (kind, value) is on the list (one query)."""
        digests = sorted({self.digest(kind, value) for kind, value in items if value})
        entry = models.DoNotCollectEntry
        return any(session.scalar(select(entry.pk).where(entry.digest.in_(digests[i:i + _CHUNK])).limit(1)) is not None
                   for i in range(0, len(digests), _CHUNK))

    def listed(self, session: Session, kind: str, value: str) -> bool:
        return self.any_listed(session, [(kind, value)])

    def add(self, session: Session, items: Iterable[tuple[str, str]], tombstone_id: str) -> int:
        """Put identifiers on the list in the caller's transaction; how many were new."""
        entry = models.DoNotCollectEntry
        wanted = {self.digest(kind, value): kind for kind, value in items if value}
        present: set[str] = set()
        ordered = sorted(wanted)
        for i in range(0, len(ordered), _CHUNK):
            present.update(session.scalars(select(entry.digest).where(entry.digest.in_(ordered[i:i + _CHUNK]))))
        new = [d for d in ordered if d not in present]
        session.add_all(entry(kind=wanted[d], digest=d, tombstone_id=tombstone_id) for d in new)
        return len(new)
