"""Local accounts, roles and what each role may do: one place, checked on the server side.

The workbench and the CLI both ask `authorize(session, user, permission)` before acting
(which audits a refusal), so a role's rights never depend on which screen or command was
used. Sign-in is throttled per account in the database (`SignInPolicy`), so separate
processes share one count of wrong passwords.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.audit import record_event
from store.clock import utcnow
from store.db import take_sqlite_write_lock
from store.settings import SignInPolicy

ROLES = ("admin", "manager", "annotator", "reviewer", "consumer")

# permission -> roles holding it
PERMISSIONS: dict[str, frozenset[str]] = {
    "annotate": frozenset({"annotator"}),
    "review": frozenset({"reviewer", "manager"}),
    "assign": frozenset({"manager", "admin"}),
    "see_coverage": frozenset({"manager", "admin"}),
    "see_quality": frozenset({"manager", "admin"}),
    "manage_users": frozenset({"admin"}),
    "release": frozenset({"manager"}),
    "erase": frozenset({"manager"}),
    "purge": frozenset({"manager"}),
    "audit": frozenset({"manager", "admin"}),
    "list_releases": frozenset({"manager", "consumer", "admin"}),
    "pull_release": frozenset({"manager", "consumer"}),
    "register_protocol": frozenset({"manager"}),
    "read_protocols": frozenset(ROLES),  # the plan and its guidelines: everyone who works on it
    "import_consent": frozenset({"manager"}),
    "ingest": frozenset({"manager"}),
    "find_duplicates": frozenset({"manager"}),
    "pretranscribe": frozenset({"manager"}),
    "manage_models": frozenset({"manager"}),  # import model bundles, choose a protocol's default models
}

MIN_PASSWORD_LENGTH = 10
MIN_DISTINCT_CHARACTERS = 5
# refused whatever their length: the passwords tried first (lower-cased, compared whole)
COMMON_PASSWORDS = frozenset({
    "password", "password1", "password12", "password123", "password1234", "passw0rd", "p@ssw0rd", "p@ssword",
    "1234567890", "12345678910", "0123456789", "9876543210", "qwertyuiop", "qwerty123", "qwerty1234", "1q2w3e4r5t",
    "1qaz2wsx3edc", "iloveyou", "letmein123", "welcome123", "welcome1", "changeme", "changeme123", "administrator",
    "admin12345", "abc1234567", "abcdefghij", "trustno1", "football123", "sunshine123", "monkey1234", "dragon1234",
    "princess123", "baseball123", "superman123", "starwars123", "turnscribe", "turnscribe1", "turnscribe123",
})

_hasher = PasswordHasher()

GROUP_VALUE = r"[A-Za-z0-9][A-Za-z0-9._+@-]{0,127}"
"""A site, group or speaker id as manifests declare it and as a person's group names it."""
GROUP = re.compile(r"([a-z][a-z0-9_]{0,63}):(" + GROUP_VALUE + ")")
"""A conflict-of-interest group: `<kind>:<value>`, e.g. site:lyon, speaker:spk-0001, group:acme."""


class AccountError(ValueError):
    """A bad username, role or password when creating or changing an account."""


class AuthenticationFailed(PermissionError):
    """Unknown user, wrong password or a disabled account (deliberately not told apart)."""


class PermissionDenied(PermissionError):
    """The signed-in user's roles do not hold the permission an action needs."""


class SignInThrottled(AuthenticationFailed):
    """Too many wrong passwords in a row: sign-ins to the account are refused for a while (or it is locked)."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Principal:
    """Who is acting: a signed-in person with their roles (never taken from the client)."""

    username: str
    roles: frozenset[str]
    groups: frozenset[str] = frozenset()

    def can(self, permission: str) -> bool:
        return bool(self.roles & PERMISSIONS[permission])


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(password: str, username: str) -> None:
    """The minimum password policy: long enough, varied enough, not common, not the username. Raises AccountError."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        raise AccountError(f"the password must use at least {MIN_DISTINCT_CHARACTERS} different characters")
    if password.lower() in COMMON_PASSWORDS:
        raise AccountError("that password is among the most commonly used ones; choose another")
    if len(username) >= 3 and username.lower() in password.lower():
        raise AccountError("the password must not contain the username")


def _get_user(session: Session, username: str) -> models.User:
    user = session.get(models.User, username)
    if user is None:
        raise AccountError(f"no account named {username!r}")
    return user


def add_user(session: Session, username: str, password: str, roles: list[str], *,
             actor: str, display_name: str = "", groups: list[str] | None = None) -> models.User:
    """Create an account; refuses unknown roles, weak passwords and taken names. `actor` is who creates it."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise AccountError(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    if not roles:
        raise AccountError("an account needs at least one role")
    if not username or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise AccountError(f"username {username!r}: use letters, digits, '.', '-' or '_'")
    check_password(password, username)
    if session.get(models.User, username) is not None:
        raise AccountError(f"user {username!r} already exists")
    for group in groups or []:
        check_group(group)
    user = models.User(username=username, display_name=display_name or username,
                       password_hash=hash_password(password), roles=sorted(set(roles)),
                       groups=sorted(set(groups or [])), active=True)
    session.add(user)
    record_event(session, actor, "user_added", f"user:{username}", {"roles": user.roles, "groups": user.groups})
    return user


def check_group(group: str) -> None:
    """Refuse a group that no conflict rule could ever match."""
    if not GROUP.fullmatch(group):
        raise AccountError(f"group {group[:60]!r}: write <kind>:<value>, e.g. site:lyon, group:acme or speaker:spk-0001 "
                           "(kind: lower-case letters, digits, '_'; value: letters, digits, '.', '_', '+', '-', '@')")


def update_groups(session: Session, username: str, *, add: list[str], remove: list[str], actor: str) -> models.User:
    """Add and remove a person's conflict-of-interest groups (audited with the groups before and after)."""
    user = session.get(models.User, username)
    if user is None:
        raise AccountError(f"no user {username!r}")
    for group in add:
        check_group(group)
    before = list(user.groups or [])
    missing = sorted(set(remove) - set(before))
    if missing:
        raise AccountError(f"{username} is not in group(s) {', '.join(missing)} (groups: {', '.join(before) or 'none'})")
    user.groups = sorted((set(before) | set(add)) - set(remove))
    record_event(session, actor, "user_groups_changed", f"user:{username}",
                 {"before": before, "after": user.groups, "added": sorted(set(add) - set(before)), "removed": sorted(set(remove))})
    return user


def principal_of(user: models.User) -> Principal:
    return Principal(user.username, frozenset(user.roles), frozenset(user.groups or []))


def set_password(session: Session, actor: str, username: str, password: str) -> None:
    """Give an account a new password (policy checked); its wrong-password count and lock are cleared."""
    user = _get_user(session, username)
    check_password(password, username)
    user.password_hash = hash_password(password)
    _clear_throttle(user)
    record_event(session, actor, "password_changed", f"user:{username}", {"by_self": actor == username})


def set_active(session: Session, actor: str, username: str, active: bool) -> None:
    """Disable an account, or enable it again (which also lifts a sign-in lock). The last admin stays enabled."""
    user = _get_user(session, username)
    if not active and "admin" in (user.roles or []) and user.active:
        admins = [u for u in users_with_role(session, "admin") if u.username != username]
        if not admins:
            raise AccountError(f"{username!r} is the only enabled admin; enable or add another admin first")
    was_locked = user.locked_until is not None
    user.active = active
    if active:
        _clear_throttle(user)
    record_event(session, actor, "user_enabled" if active else "user_disabled", f"user:{username}",
                 {"lock_lifted": True} if active and was_locked else {})


def _clear_throttle(user: models.User) -> None:
    user.failed_sign_ins, user.last_failed_sign_in_at, user.locked_until = 0, None, None


def _as_utc(at: dt.datetime) -> dt.datetime:
    """SQLite hands timestamps back naive (they were stored as UTC)."""
    return at.replace(tzinfo=dt.timezone.utc) if at.tzinfo is None else at


def refused_until(user: models.User, policy: SignInPolicy) -> tuple[dt.datetime | None, bool]:
    """Until when sign-ins to `user` are refused, and whether that is a lock (not a delay); (None, False) if free."""
    if user.locked_until is not None:
        return _as_utc(user.locked_until), True
    if user.failed_sign_ins and user.last_failed_sign_in_at is not None:
        delay = policy.delay_after(user.failed_sign_ins)
        return _as_utc(user.last_failed_sign_in_at) + dt.timedelta(seconds=delay), False
    return None, False


def _refuse_if_throttled(session: Session, user: models.User, policy: SignInPolicy, now: dt.datetime) -> None:
    until, locked = refused_until(user, policy)
    if until is None or now >= until:
        return
    wait = (until - now).total_seconds()
    record_event(session, user.username, "sign_in_throttled", f"user:{user.username}",
                 {"failures": user.failed_sign_ins, "locked": locked, "until": until.isoformat()})
    if locked:
        raise SignInThrottled(f"account {user.username!r} is locked after {user.failed_sign_ins} wrong passwords in a row "
                              f"until {until:%Y-%m-%d %H:%M:%S} UTC (an admin can lift it: turnscribe users enable "
                              f"{user.username})", wait)
    raise SignInThrottled(f"too many wrong passwords for {user.username!r}: try again in {math.ceil(wait)} s", wait)


def _count_failure(session: Session, user: models.User, policy: SignInPolicy, now: dt.datetime) -> int:
    """One more wrong password, counted in SQL so concurrent processes never lose one; locks at the limit."""
    user.failed_sign_ins = models.User.failed_sign_ins + 1  # type: ignore[assignment]
    user.last_failed_sign_in_at = now
    session.flush()
    session.refresh(user, ["failed_sign_ins"])
    if user.failed_sign_ins >= policy.lock_after:
        user.locked_until = now + dt.timedelta(seconds=policy.lock_s)
        record_event(session, user.username, "account_locked", f"user:{user.username}",
                     {"failures": user.failed_sign_ins, "until": user.locked_until.isoformat()})
    return user.failed_sign_ins


def authenticate(session: Session, username: str, password: str, *,
                 policy: SignInPolicy | None = None, now: dt.datetime | None = None) -> Principal:
    """Check a password under the sign-in throttle and record the outcome in the audit log.

    The caller commits whatever happens (the attempt, the failure count and any lock must
    persist). A throttled or locked account is refused without looking at the password.
    """
    policy = policy or SignInPolicy()
    now = now or utcnow()
    take_sqlite_write_lock(session)  # concurrent attempts on one account are judged one after the other
    user = session.get(models.User, username, with_for_update=True)
    if user is None or not user.active:
        record_event(session, username or "?", "sign_in_failed", f"user:{username}",
                     {"reason": "unknown user" if user is None else "disabled"})
        raise AuthenticationFailed("unknown user or wrong password")
    _refuse_if_throttled(session, user, policy, now)
    try:
        ok = _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        failures = _count_failure(session, user, policy, now)
        record_event(session, username, "sign_in_failed", f"user:{username}", {"reason": "wrong password", "failures": failures})
        raise AuthenticationFailed("unknown user or wrong password")
    if user.failed_sign_ins or user.locked_until is not None:
        _clear_throttle(user)
    record_event(session, username, "sign_in", f"user:{username}", {})
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return principal_of(user)


def require(principal: Principal, permission: str) -> None:
    """Raise PermissionDenied unless the principal's roles hold `permission`."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    if not principal.can(permission):
        raise PermissionDenied(
            f"{principal.username} ({', '.join(sorted(principal.roles)) or 'no role'}) may not {permission.replace('_', ' ')}"
        )


def authorize(session: Session, principal: Principal, permission: str) -> None:
    """`require`, with a refusal recorded in the audit log (in the caller's transaction: commit it)."""
    try:
        require(principal, permission)
    except PermissionDenied:
        record_event(session, principal.username, "permission_denied", f"permission:{permission}",
                     {"roles": sorted(principal.roles)})
        raise


def load_principal(session: Session, username: str) -> Principal:
    """The current roles of an already signed-in user (re-read on every action, so revocation bites)."""
    user = session.get(models.User, username)
    if user is None or not user.active:
        raise AuthenticationFailed(f"account {username!r} does not exist or is disabled")
    return principal_of(user)


def users_with_role(session: Session, role: str) -> list[models.User]:
    users = session.scalars(select(models.User).where(models.User.active.is_(True)).order_by(models.User.username))
    return [u for u in users if role in (u.roles or [])]
