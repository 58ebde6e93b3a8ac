"""Accounts on SQLite and PostgreSQL: the sign-in throttle and lock, the password policy, enable/disable, audited refusals.

The throttle's clock is passed in (`now=`), so the real policy's delays and lock are
checked exactly without sleeping.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import select

from store import models
from store.accounts import (
    AccountError,
    AuthenticationFailed,
    PermissionDenied,
    SignInThrottled,
    add_user,
    authenticate,
    authorize,
    check_password,
    set_active,
    set_password,
)
from store.db import Store, open_store
from store.settings import SignInPolicy, load_sign_in_policy

PASSWORD = "correct horse battery"
T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.timezone.utc)


def _users(store: Store, *names_roles: tuple[str, str]) -> None:
    with store.session() as session:
        for name, role in names_roles:
            add_user(session, name, PASSWORD, [role], actor="test")
        session.commit()


def _attempt(store: Store, username: str, password: str, at: dt.datetime, policy: SignInPolicy | None = None) -> str:
    """'ok', 'wrong' or 'throttled', committed as the CLI and the workbench commit it."""
    with store.session() as session:
        try:
            authenticate(session, username, password, policy=policy, now=at)
            return "ok"
        except SignInThrottled:
            return "throttled"
        except AuthenticationFailed:
            return "wrong"
        finally:
            session.commit()


def _actions(store: Store, subject: str) -> list[str]:
    with store.session() as session:
        return list(session.scalars(select(models.AuditEvent.action).where(models.AuditEvent.subject == subject)
                                    .order_by(models.AuditEvent.pk)))


def test_the_real_policy_doubles_the_delay_from_one_second_to_a_minute_then_locks_for_15_minutes(store: Store) -> None:
    _users(store, ("ann", "annotator"))
    expected_delays = [1, 2, 4, 8, 16, 32, 60, 60, 60]  # 2**(n-1) s, at most 60 s, after failures 1..9
    at = T0
    for delay in expected_delays:
        assert _attempt(store, "ann", "wrong password!", at) == "wrong"
        # refused with the right password until the delay has passed, even a moment before it ends
        assert _attempt(store, "ann", PASSWORD, at + dt.timedelta(seconds=delay - 0.01)) == "throttled"
        at += dt.timedelta(seconds=delay)
    assert _attempt(store, "ann", "wrong password!", at) == "wrong"  # the 10th in a row locks the account
    with store.session() as session:
        user = session.get(models.User, "ann")
        assert user.failed_sign_ins == 10
        assert user.locked_until.replace(tzinfo=dt.timezone.utc) == at + dt.timedelta(seconds=900)
    assert _attempt(store, "ann", PASSWORD, at + dt.timedelta(seconds=899)) == "throttled"
    assert _attempt(store, "ann", PASSWORD, at + dt.timedelta(seconds=900)) == "ok"
    with store.session() as session:
        user = session.get(models.User, "ann")
        assert (user.failed_sign_ins, user.locked_until, user.last_failed_sign_in_at) == (0, None, None)
    actions = _actions(store, "user:ann")
    assert actions.count("sign_in_failed") == 10 and actions.count("sign_in_throttled") == 10
    assert actions.count("account_locked") == 1 and actions[-1] == "sign_in"


def test_a_right_password_after_the_delay_resets_the_count(store: Store) -> None:
    _users(store, ("ann", "annotator"))
    for i in range(3):
        assert _attempt(store, "ann", "nope", T0 + dt.timedelta(seconds=10 * i)) == "wrong"
    assert _attempt(store, "ann", PASSWORD, T0 + dt.timedelta(seconds=30)) == "ok"
    assert _attempt(store, "ann", "nope", T0 + dt.timedelta(seconds=31)) == "wrong"
    # one failure since the reset: one second's delay again, not eight
    assert _attempt(store, "ann", PASSWORD, T0 + dt.timedelta(seconds=32)) == "ok"


def test_throttled_attempts_do_not_look_at_the_password(store: Store) -> None:
    _users(store, ("ann", "annotator"))
    assert _attempt(store, "ann", "nope", T0) == "wrong"
    for _ in range(5):  # hammering during the delay neither succeeds nor lengthens it
        assert _attempt(store, "ann", "nope", T0 + dt.timedelta(seconds=0.5)) == "throttled"
    with store.session() as session:
        assert session.get(models.User, "ann").failed_sign_ins == 1


def test_the_count_is_shared_by_separate_connections_and_never_loses_an_attempt(store: Store) -> None:
    _users(store, ("ann", "annotator"))
    other = open_store(store.settings)  # a second engine: what a second process has
    policy = SignInPolicy(first_delay_s=300)
    outcomes: list[str] = []
    try:
        def attack(target: Store) -> None:
            outcomes.append(_attempt(target, "ann", "nope", models.utcnow(), policy))

        threads = [threading.Thread(target=attack, args=(s,)) for s in (store, other) * 4]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.close()
    # the attempts are judged one after the other: the first is counted, the others find the delay running
    assert sorted(outcomes) == ["throttled"] * 7 + ["wrong"]
    with store.session() as session:
        assert session.get(models.User, "ann").failed_sign_ins == 1


def test_enable_lifts_a_lock_and_disable_refuses_even_the_right_password(store: Store) -> None:
    _users(store, ("root", "admin"), ("ann", "annotator"))
    policy = SignInPolicy(first_delay_s=0, lock_after=2, lock_s=3600)
    for _ in range(2):
        assert _attempt(store, "ann", "nope", T0, policy) == "wrong"
    assert _attempt(store, "ann", PASSWORD, T0, policy) == "throttled"
    with store.session() as session:
        set_active(session, "root", "ann", True)
        session.commit()
    assert _attempt(store, "ann", PASSWORD, T0, policy) == "ok"
    with store.session() as session:
        set_active(session, "root", "ann", False)
        session.commit()
    assert _attempt(store, "ann", PASSWORD, T0, policy) == "wrong"
    with store.session() as session:
        with pytest.raises(AccountError, match="only enabled admin"):
            set_active(session, "root", "root", False)
    assert _actions(store, "user:ann") == ["user_added", "sign_in_failed", "account_locked", "sign_in_failed",
                                           "sign_in_throttled", "user_enabled", "sign_in", "user_disabled", "sign_in_failed"]


def test_password_changes_follow_the_policy_and_are_audited(store: Store) -> None:
    _users(store, ("ann", "annotator"))
    with store.session() as session:
        with pytest.raises(AccountError, match="at least 10"):
            set_password(session, "ann", "ann", "short1!")
        set_password(session, "ann", "ann", "a brand new secret")
        session.commit()
    assert _attempt(store, "ann", PASSWORD, T0) == "wrong"
    assert _attempt(store, "ann", "a brand new secret", T0 + dt.timedelta(seconds=1)) == "ok"
    with store.session() as session:
        event = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "password_changed")).one()
        assert (event.actor, event.details) == ("ann", {"by_self": True})
        assert "brand" not in str(event.details)


@pytest.mark.parametrize(("password", "why"), [
    ("short-one", "at least 10 characters"),
    ("aaaaaaaaaaaa", "at least 5 different characters"),
    ("ababababcdcd", "at least 5 different characters"),
    ("Password123", "most commonly used"),
    ("qwertyuiop", "most commonly used"),
    ("my-ann-password", "must not contain the username"),
    ("xANNx-secret", "must not contain the username"),
])
def test_the_password_policy_names_what_is_wrong(password: str, why: str) -> None:
    with pytest.raises(AccountError, match=why):
        check_password(password, "ann")


def test_a_good_password_passes_and_short_usernames_do_not_count() -> None:
    check_password("correct horse battery", "ann")
    check_password("ml-team-secret-1", "ml")  # a two-letter name is not searched for


def test_refused_rights_are_audited(store: Store) -> None:
    _users(store, ("connie", "consumer"))
    with store.session() as session:
        principal = authenticate(session, "connie", PASSWORD)
        with pytest.raises(PermissionDenied):
            authorize(session, principal, "erase")
        authorize(session, principal, "pull_release")
        session.commit()
    with store.session() as session:
        denied = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "permission_denied")).one()
    assert (denied.actor, denied.subject, denied.details) == ("connie", "permission:erase", {"roles": ["consumer"]})


def test_the_policy_reads_its_overrides_and_refuses_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_sign_in_policy() == SignInPolicy(first_delay_s=1.0, max_delay_s=60.0, lock_after=10, lock_s=900.0)
    monkeypatch.setenv("TURNSCRIBE_SIGN_IN_FIRST_DELAY_S", "0.05")
    monkeypatch.setenv("TURNSCRIBE_SIGN_IN_LOCK_AFTER", "3")
    assert load_sign_in_policy() == SignInPolicy(first_delay_s=0.05, lock_after=3)
    monkeypatch.setenv("TURNSCRIBE_SIGN_IN_LOCK_AFTER", "three")
    with pytest.raises(ValueError, match="TURNSCRIBE_SIGN_IN_LOCK_AFTER='three' is not a number"):
        load_sign_in_policy()
    monkeypatch.setenv("TURNSCRIBE_SIGN_IN_LOCK_AFTER", "0")
    with pytest.raises(ValueError, match="lock_after must be at least 1"):
        load_sign_in_policy()
