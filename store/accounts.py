"""Local accounts, roles and what each role may do: one place, checked on the server side.

The workbench and the CLI both ask `require(user, permission)` before acting, so a
role's rights never depend on which screen or command was used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models
from store.audit import record_event

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
}

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


def add_user(session: Session, username: str, password: str, roles: list[str], *,
             display_name: str = "", groups: list[str] | None = None, actor: str = "cli") -> models.User:
    """Create an account; refuses unknown roles, short passwords and taken names."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise AccountError(f"unknown role(s) {', '.join(unknown)}; roles are {', '.join(ROLES)}")
    if not roles:
        raise AccountError("an account needs at least one role")
    if not username or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise AccountError(f"username {username!r}: use letters, digits, '.', '-' or '_'")
    if len(password) < 8:
        raise AccountError("the password must be at least 8 characters long")
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


def authenticate(session: Session, username: str, password: str) -> Principal:
    """Check a password and record the sign-in (or the failed attempt) in the audit log."""
    user = session.get(models.User, username)
    ok = False
    if user is not None and user.active:
        try:
            ok = _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            ok = False
    record_event(session, username or "?", "sign_in" if ok else "sign_in_failed", f"user:{username}", {})
    if not ok:
        raise AuthenticationFailed("unknown user or wrong password")
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


def load_principal(session: Session, username: str) -> Principal:
    """The current roles of an already signed-in user (re-read on every action, so revocation bites)."""
    user = session.get(models.User, username)
    if user is None or not user.active:
        raise AuthenticationFailed(f"account {username!r} does not exist or is disabled")
    return principal_of(user)


def users_with_role(session: Session, role: str) -> list[models.User]:
    users = session.scalars(select(models.User).where(models.User.active.is_(True)).order_by(models.User.username))
    return [u for u in users if role in (u.roles or [])]
