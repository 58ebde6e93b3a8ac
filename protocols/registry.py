"""Protocol versions in the store: registered once, never edited, looked up by id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.audit import record_event
from protocols.schema import Protocol


class ProtocolConflict(ValueError):
    """The same id and version was registered before with different content."""


class UnknownProtocol(LookupError):
    """No registered protocol matches the id (and version)."""


@dataclass(frozen=True)
class Registered:
    row: models.Protocol
    protocol: Protocol
    created: bool


ADDED_LATER = ("review", "deadline", "vocabulary")
"""Optional protocol fields added after plans were registered: left out of the digest while unset (or empty)."""


def spec_hash(protocol: Protocol) -> str:
    dumped = protocol.model_dump(mode="json")
    for later in ADDED_LATER:  # plans without these fields keep the digest they were registered with
        if dumped.get(later) in (None, []):
            dumped.pop(later, None)
    canonical = json.dumps(dumped, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def register_protocol(session: Session, protocol: Protocol, *, actor: str) -> Registered:
    """Store a protocol version; the same content again is a no-op, a changed one must bump `version`.

    A new version becomes every command's default, so who registered it is audited.
    """
    digest = spec_hash(protocol)
    existing = session.scalar(
        select(models.Protocol).where(
            models.Protocol.protocol_id == protocol.id, models.Protocol.version == protocol.version
        )
    )
    if existing is not None:
        if existing.spec_sha256 != digest:
            raise ProtocolConflict(
                f"protocol {protocol.id} version {protocol.version} is already registered with different "
                f"content; recordings are counted against it, so give the changed plan version "
                f"{latest_version(session, protocol.id) + 1}"
            )
        return Registered(existing, protocol, created=False)
    row = models.Protocol(
        protocol_id=protocol.id,
        version=protocol.version,
        title=protocol.title,
        spec=protocol.model_dump(mode="json"),
        spec_sha256=digest,
    )
    session.add(row)
    session.flush()
    record_event(session, actor, "protocol_registered", f"protocol:{protocol.id}",
                 {"version": protocol.version, "sha256": digest, "protocol_pk": row.pk})
    return Registered(row, protocol, created=True)


def latest_version(session: Session, protocol_id: str) -> int:
    rows = session.scalars(select(models.Protocol.version).where(models.Protocol.protocol_id == protocol_id))
    return max(rows, default=0)


def get_protocol(session: Session, protocol_id: str, version: int | None = None) -> tuple[models.Protocol, Protocol]:
    """The row and parsed spec of a protocol version (the newest when `version` is None)."""
    query = select(models.Protocol).where(models.Protocol.protocol_id == protocol_id)
    if version is not None:
        query = query.where(models.Protocol.version == version)
    row = session.scalars(query.order_by(models.Protocol.version.desc())).first()
    if row is None:
        known = sorted(set(session.scalars(select(models.Protocol.protocol_id))))
        wanted = f"{protocol_id} version {version}" if version is not None else protocol_id
        raise UnknownProtocol(
            f"no protocol {wanted} is registered (registered: {', '.join(known) or 'none'}); "
            "register it with `turnscribe protocol register FILE`"
        )
    return row, Protocol.model_validate(row.spec)
