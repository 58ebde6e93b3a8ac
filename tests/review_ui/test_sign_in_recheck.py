"""A fragment rerun (an editor save) may trust its tab's own sign-in check for SIGN_IN_RECHECK_S
(`session_auth.recent_principal`), on SQLite and PostgreSQL: a sign-out served by this server process
ends that trust at once, so does the session's expiry, and a change made by another process (a session
revoked from outside, as `turnscribe users disable` does to an account) is seen within the bound."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from streamlit.testing.v1 import AppTest

from review_ui import session_auth
from review_ui.session_auth import TOKEN_KEY
from store.web_sessions import open_web_session, revoke_web_session
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_app_pages import TIMEOUT, app_env  # noqa: F401 - the pages open the test store by environment


def recheck_page() -> None:
    import streamlit as st

    from review_ui.session_auth import recent_principal

    who = recent_principal()
    st.markdown(f"who={who.username if who is not None else None}")


def sign_out_page() -> None:
    from review_ui.session_auth import sign_out

    sign_out()


def tab(token: str, script=recheck_page) -> AppTest:  # type: ignore[no-untyped-def]
    at = AppTest.from_function(script, default_timeout=TIMEOUT)
    at.session_state[TOKEN_KEY] = token
    return at


def who(at: AppTest) -> str:
    at.run()
    return at.markdown[0].value


def token_for(app_env: ReviewStore, username: str, ttl: dt.timedelta = dt.timedelta(hours=1)) -> str:  # noqa: F811
    with app_env.store.session() as session:
        token = open_web_session(session, username, ttl=ttl)
        session.commit()
    return token


def test_a_sign_out_in_another_tab_ends_a_remembered_sign_in_at_once(app_env: ReviewStore) -> None:  # noqa: F811
    app_env.add_user("ann1", "annotator")
    token = token_for(app_env, "ann1")
    editor_tab = tab(token)
    assert who(editor_tab) == "who=ann1"
    tab(token, sign_out_page).run()  # another tab of the same browser signs out (same server process)
    assert who(editor_tab) == "who=None", "no save is answered for a session signed out in this process"


def test_a_change_made_by_another_process_is_seen_within_the_bound_and_expiry_at_once(
        app_env: ReviewStore, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    app_env.add_user("ann1", "annotator")
    token = token_for(app_env, "ann1")
    editor_tab = tab(token)
    assert who(editor_tab) == "who=ann1"
    with app_env.store.session() as session:  # revoked by another process: this one served no sign-out
        assert revoke_web_session(session, token)
        session.commit()
    assert who(editor_tab) == "who=ann1", "within SIGN_IN_RECHECK_S the tab's own check is trusted (the store not asked)"
    monkeypatch.setattr(session_auth, "SIGN_IN_RECHECK_S", 0.2)
    time.sleep(0.25)
    assert who(editor_tab) == "who=None", "after the bound the store is asked again"

    short = token_for(app_env, "ann1", ttl=dt.timedelta(seconds=1))
    monkeypatch.setattr(session_auth, "SIGN_IN_RECHECK_S", 60.0)
    expiring_tab = tab(short)
    assert who(expiring_tab) == "who=ann1"
    time.sleep(1.1)
    assert who(expiring_tab) == "who=None", "a session that expired is never trusted, whatever the bound"
