"""Who is signed in to this browser, re-checked against the store on every run.

Signing in opens a server-side session (`store.web_sessions`): the browser keeps its token
in a cookie, so a reload or a reopened tab is still signed in until the session expires
or is revoked by signing out. Only the username and the token live in Streamlit's session
state; the roles are read again from the store (`load_principal`) on each script run, so a
disabled account, a removed role or a sign-out in another tab takes effect at once and
nothing the browser sends can grant a role.
"""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from store.accounts import (AuthenticationFailed, PermissionDenied, Principal, SignInThrottled, authenticate, authorize,
                            load_principal)
from store.db import Store, open_store
from store.settings import Settings, SignInPolicy, current_settings, enforce_offline
from store.web_sessions import SESSION_TTL, open_web_session, principal_for_token, revoke_web_session

USER_KEY = "signed_in_user"
TOKEN_KEY = "web_session_token"
COOKIE = "turnscribe_session"
JUST_SIGNED_IN = "just_signed_in"  # the account page then forwards to the person's first work page


@st.cache_resource(show_spinner=False)
def _open(home: str, url: str, sign_in: SignInPolicy) -> Store:
    return open_store(Settings(home=Path(home), database_url=url, sign_in=sign_in))


def get_store() -> Store:
    """The store named by TURNSCRIBE_HOME / TURNSCRIBE_DATABASE_URL, opened once per server process, with the
    sign-in policy of the TURNSCRIBE_SIGN_IN_* environment (an operator's longer delays hold in the browser too)."""
    enforce_offline()
    settings = current_settings()
    return _open(str(settings.home), settings.database_url, settings.sign_in)


def sign_in(username: str, password: str) -> Principal:
    """Check the password (argon2, under the sign-in throttle), open a server-side session and remember it in this browser."""
    store = get_store()
    with store.session() as session:
        try:
            principal = authenticate(session, username.strip(), password, policy=store.settings.sign_in)
            token = open_web_session(session, principal.username)
        finally:
            session.commit()  # the sign-in attempt is audited either way
    st.session_state[USER_KEY] = principal.username
    st.session_state[TOKEN_KEY] = token
    st.session_state[JUST_SIGNED_IN] = True
    return principal


def sign_out() -> None:
    """Revoke the server-side session (every tab holding it is signed out) and forget this browser's state."""
    token = st.session_state.get(TOKEN_KEY) or _cookie()
    if token:
        with get_store().session() as session:
            revoke_web_session(session, token)
            session.commit()
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    st.session_state[TOKEN_KEY] = ""  # the cookie writer clears the browser's copy


def _cookie() -> str | None:
    try:
        value = st.context.cookies.get(COOKIE)
    except Exception:  # no browser behind this run (AppTest)
        return None
    return value if isinstance(value, str) else None


def current_principal() -> Principal | None:
    """The signed-in user with roles as the store has them now, or None.

    A run with a session token (from this tab's sign-in or the browser's cookie after a
    reload) is checked against the store; a run with only a username (tests, no browser)
    is checked against the account.
    """
    token = st.session_state.get(TOKEN_KEY)
    if token is None:
        token = _cookie()
    username = st.session_state.get(USER_KEY)
    with get_store().session() as session:
        if token:
            principal = principal_for_token(session, token)
            if principal is None:
                st.session_state.pop(USER_KEY, None)
                st.session_state[TOKEN_KEY] = ""
                return None
            st.session_state[USER_KEY], st.session_state[TOKEN_KEY] = principal.username, token
            return principal
        if not username:
            return None
        try:
            return load_principal(session, username)
        except AuthenticationFailed:
            st.session_state.pop(USER_KEY, None)
            return None


def write_session_cookie() -> None:
    """Keep the browser's cookie equal to this tab's session token (cleared after signing out).

    Written from a zero-height same-origin frame into the page's own document, so a reload
    sends it with the next connection (`st.context.cookies`).
    """
    token = st.session_state.get(TOKEN_KEY)
    if token is None:
        return
    max_age = int(SESSION_TTL.total_seconds()) if token else 0
    script = (f"<script>window.parent.document.cookie = {json.dumps(f'{COOKIE}={token}')} + "
              f"'; Path=/; Max-Age={max_age}; SameSite=Strict';</script>")
    with st.sidebar:
        components.html(script, height=0)


def sign_in_form() -> None:
    """The sign-in form; on success the same page runs again (a deep link opens what it names)."""
    with st.form("sign-in"):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            sign_in(username, password)
        except SignInThrottled as throttled:  # how long to wait, or that an admin must unlock it
            st.error(str(throttled))
            return
        except AuthenticationFailed:
            st.error("Unknown user or wrong password.")
            return
        st.rerun()


def require_page(permission: str | None = None) -> Principal:
    """Stop the page unless someone is signed in and (when given) holds `permission`.

    Signed out, the page shows the sign-in form in place, so a link to it works.
    """
    principal = current_principal()
    if principal is None:
        st.warning("Please sign in.")
        sign_in_form()
        st.stop()
    if permission is not None:
        with get_store().session() as session:
            try:
                authorize(session, principal, permission)
            except PermissionDenied as denied:
                session.commit()  # the refusal is audited
                st.error(f"Not allowed: {denied}")
                st.stop()
    return principal
