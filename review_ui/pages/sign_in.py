"""Sign-in page: local accounts, argon2 passwords, one message for every kind of failure."""

from __future__ import annotations

import streamlit as st

from store.accounts import AuthenticationFailed
from review_ui.session_auth import current_principal, sign_in, sign_out


def render_sign_in() -> None:
    principal = current_principal()
    if principal is not None:
        st.title("Turnscribe workbench")
        st.write(f"Signed in as **{principal.username}** ({', '.join(sorted(principal.roles))}).")
        if st.button("Sign out"):
            sign_out()
            st.rerun()
        return
    st.title("Sign in")
    with st.form("sign-in"):
        username = st.text_input("Username")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            sign_in(username, password)
        except AuthenticationFailed:
            st.error("Unknown user or wrong password.")
            return
        st.rerun()


if __name__ == "__main__":
    render_sign_in()
