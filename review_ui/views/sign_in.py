"""Sign-in page: local accounts, argon2 passwords, one message for every wrong name or password.

A throttled or locked account says how long to wait (store/accounts.py SignInThrottled).
"""

from __future__ import annotations

import streamlit as st

from review_ui.session_auth import current_principal, sign_in_form, sign_out


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
    sign_in_form()


if __name__ == "__main__":
    render_sign_in()
