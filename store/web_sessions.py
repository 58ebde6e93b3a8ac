"""Server-side sessions of signed-in browsers: created at sign-in, valid until they expire or are revoked.

The browser keeps a random token (a cookie); the store keeps only its SHA-256, so a copy of
the database does not let anyone sign in. Every page run checks the token again, so signing
out in one tab (or disabling the account) ends every tab of that session at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from sqlalchemy import update
from sqlalchemy.orm import Session

from store import models
from store.accounts import AuthenticationFailed, Principal, load_principal
from store.audit import record_event
from store.clock import utcnow

SESSION_TTL = dt.timedelta(hours=12)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def open_web_session(session: Session, username: str, *, ttl: dt.timedelta = SESSION_TTL,
                     now: dt.datetime | None = None) -> str:
    """A new session for a user who just signed in; returns the token for the browser (caller commits)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    session.add(models.WebSession(token_sha256=_digest(token), username=username, created_at=now, expires_at=now + ttl))
    record_event(session, username, "web_session_opened", f"user:{username}", {"expires_at": (now + ttl).isoformat()})
    return token


def principal_for_token(session: Session, token: str | None, *, now: dt.datetime | None = None) -> Principal | None:
    """Who this browser's token signs in, or None when it is unknown, expired, revoked or its account is disabled."""
    if not isinstance(token, str) or not token:
        return None
    row = session.get(models.WebSession, _digest(token))
    now = now or utcnow()
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
        return None
    try:
        return load_principal(session, row.username)
    except AuthenticationFailed:
        return None


def revoke_web_session(session: Session, token: str | None, *, now: dt.datetime | None = None) -> bool:
    """Sign a browser out for good (caller commits); True when a live session was revoked."""
    if not token:
        return False
    done = session.execute(update(models.WebSession).where(models.WebSession.token_sha256 == _digest(token),
                                                           models.WebSession.revoked_at.is_(None))
                           .values(revoked_at=now or utcnow())).rowcount == 1
    if done:
        username = session.get(models.WebSession, _digest(token)).username
        record_event(session, username, "web_session_revoked", f"user:{username}", {})
    return done
