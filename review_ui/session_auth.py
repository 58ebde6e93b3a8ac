"""Who is signed in to this browser session, re-checked against the store on every run.

Only the username lives in Streamlit's session state; the roles are read again from the
store (`load_principal`) on each script run, so a disabled account or a removed role
takes effect at once and nothing the browser sends can grant a role.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from store.accounts import AuthenticationFailed, PermissionDenied, Principal, authenticate, load_principal, require
from store.db import Store, open_store
from store.settings import Settings, enforce_offline, load_settings

USER_KEY = "signed_in_user"


@st.cache_resource(show_spinner=False)
def _open(home: str, url: str) -> Store:
    return open_store(Settings(home=Path(home), database_url=url))


def get_store() -> Store:
    """The store named by TURNSCRIBE_HOME / TURNSCRIBE_DATABASE_URL, opened once per server process."""
    enforce_offline()
    settings = load_settings()
    return _open(str(settings.home), settings.database_url)


def sign_in(username: str, password: str) -> Principal:
    """Check the password (argon2) and remember the username in this browser session."""
    with get_store().session() as session:
        try:
            principal = authenticate(session, username.strip(), password)
        finally:
            session.commit()  # the sign-in attempt is audited either way
    st.session_state[USER_KEY] = principal.username
    return principal


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def current_principal() -> Principal | None:
    """The signed-in user with roles as the store has them now, or None."""
    username = st.session_state.get(USER_KEY)
    if not username:
        return None
    with get_store().session() as session:
        try:
            return load_principal(session, username)
        except AuthenticationFailed:
            sign_out()
            return None


def require_page(permission: str | None = None) -> Principal:
    """Stop the page unless someone is signed in and (when given) holds `permission`."""
    principal = current_principal()
    if principal is None:
        st.warning("Please sign in.")
        st.stop()
    if permission is not None:
        try:
            require(principal, permission)
        except PermissionDenied as denied:
            st.error(f"Not allowed: {denied}")
            st.stop()
    return principal
