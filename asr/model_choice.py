"""A protocol's default models, kept in the store (`turnscribe models use`), and what each bundle is used for.

The protocol's YAML stays as registered: the default model is a choice made later, on
evidence (`models eval`), so it is a row in `protocol_model_choices` (newest per
protocol id and role wins, history kept) rather than a new protocol version.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from asr.model_bundles import EMBEDDED_DIARIZER, Bundle
from store import models
from store.audit import record_event

DEFAULTS = {"asr": "tiny.en", "diarization": EMBEDDED_DIARIZER}
"""What a protocol uses until `models use` chooses otherwise."""


@dataclass(frozen=True)
class Choice:
    role: str
    bundle: str
    checksum: str | None  # None: the built-in default, never chosen
    chosen_by: str | None


def protocol_choices(session: Session, protocol_id: str) -> dict[str, Choice]:
    """The models in force for `protocol_id` per role: the newest choice, else the built-in default."""
    choice = models.ProtocolModelChoice
    newest = (select(func.max(choice.pk)).where(choice.protocol_id == protocol_id).group_by(choice.role))
    found = {row.role: Choice(row.role, row.bundle, row.checksum, row.chosen_by)
             for row in session.scalars(select(choice).where(choice.pk.in_(newest)))}
    return {role: found.get(role, Choice(role, name, None, None)) for role, name in DEFAULTS.items()}


def set_choice(session: Session, protocol_id: str, bundle: Bundle, *, actor: str) -> Choice:
    """Make `bundle` the protocol's default for its role (audited); the caller commits."""
    session.add(models.ProtocolModelChoice(protocol_id=protocol_id, role=bundle.role, bundle=bundle.name,
                                           checksum=bundle.checksum, chosen_by=actor))
    record_event(session, actor, "models_use", f"protocol:{protocol_id}",
                 {"role": bundle.role, "bundle": bundle.name, "checksum": bundle.checksum})
    return Choice(bundle.role, bundle.name, bundle.checksum, actor)


def protocols_using(session: Session) -> dict[str, list[str]]:
    """bundle name -> the protocol ids whose default it is (built-in defaults included for every registered protocol)."""
    ids = sorted(set(session.scalars(select(models.Protocol.protocol_id))))
    using: dict[str, list[str]] = defaultdict(list)
    for protocol_id in ids:
        for choice in protocol_choices(session, protocol_id).values():
            using[choice.bundle].append(protocol_id)
    return dict(using)


def preannotations_by_checksum(session: Session) -> dict[str, int]:
    """How many stored pre-annotations each bundle checksum produced (ASR and diarizer bundles alike)."""
    rev = models.TranscriptRevision
    counts: dict[str, int] = defaultdict(int)
    for column in (rev.asr_bundle_sha256, rev.diarizer_bundle_sha256):
        for checksum, n in session.execute(select(column, func.count()).where(column.is_not(None)).group_by(column)):
            counts[checksum] += n
    return dict(counts)
