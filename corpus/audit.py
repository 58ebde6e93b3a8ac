"""The append-only audit log: what entered the store, who changed what, and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from corpus import models


def record_event(session: Session, actor: str, action: str, subject: str, details: dict[str, Any]) -> models.AuditEvent:
    """Append one audit event in the caller's transaction (it commits with the change it records)."""
    event = models.AuditEvent(actor=actor, action=action, subject=subject, details=details)
    session.add(event)
    return event
