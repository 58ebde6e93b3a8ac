"""Server-side web sessions on SQLite and PostgreSQL: a token signs in until it expires or is
revoked, a disabled account ends it, and the store holds only the token's hash."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import select

from store import models
from store.accounts import add_user
from store.db import Store
from store.web_sessions import SESSION_TTL, open_web_session, principal_for_token, revoke_web_session


def test_a_token_signs_in_until_it_expires_or_is_revoked(store: Store) -> None:
    t0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone.utc)
    with store.session() as session:
        add_user(session, "ann1", "correct horse battery", ["annotator"], actor="test")
        token = open_web_session(session, "ann1", now=t0)
        other = open_web_session(session, "ann1", now=t0)
        session.commit()
    with store.session() as session:
        assert {r.token_sha256 for r in session.scalars(select(models.WebSession))} == \
            {hashlib.sha256(t.encode()).hexdigest() for t in (token, other)}, "only hashes are stored"
        assert principal_for_token(session, token, now=t0 + dt.timedelta(hours=1)).username == "ann1"
        assert principal_for_token(session, token, now=t0 + SESSION_TTL) is None, "expired"
        assert principal_for_token(session, token + "x", now=t0) is None and principal_for_token(session, None) is None
        assert revoke_web_session(session, token) and not revoke_web_session(session, token), "revoked once"
        session.commit()
    with store.session() as session:
        assert principal_for_token(session, token, now=t0) is None, "signed out for good"
        assert principal_for_token(session, other, now=t0).username == "ann1", "another browser's session is its own"
        session.get(models.User, "ann1").active = False
        session.commit()
        assert principal_for_token(session, other, now=t0) is None, "a disabled account ends every session"
        actions = session.scalars(select(models.AuditEvent.action).where(models.AuditEvent.subject == "user:ann1")).all()
        assert actions.count("web_session_opened") == 2 and actions.count("web_session_revoked") == 1
