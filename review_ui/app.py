"""The review workbench (`turnscribe ui`): one Streamlit app, pages shown by role.

The navigation only hides what a role cannot use; every page checks the permission
again on the server (`session_auth.require_page`) and every action checks it once more
in the domain function it calls.
"""

from __future__ import annotations

import streamlit as st

from store.settings import enforce_offline
from review_ui.session_auth import current_principal, sign_out

enforce_offline()
st.set_page_config(page_title="Turnscribe workbench", layout="wide")

principal = current_principal()
sign_in_page = st.Page("pages/sign_in.py", title="Account", url_path="account", default=True)
if principal is None:
    pages = st.navigation([sign_in_page])
else:
    work = []
    if principal.can("annotate"):
        work.append(st.Page("pages/my_queue.py", title="My queue", url_path="queue"))
    if principal.can("review"):
        work.append(st.Page("pages/review_queue.py", title="Review queue", url_path="review"))
    if principal.can("annotate") or principal.can("review"):
        work.append(st.Page("pages/editor.py", title="Editor", url_path="editor"))
    manage = []
    if principal.can("see_coverage"):
        manage.append(st.Page("pages/coverage_funnel.py", title="Coverage", url_path="coverage"))
    if principal.can("see_quality"):
        manage.append(st.Page("pages/quality.py", title="Quality", url_path="quality"))
    sections = {"Account": [sign_in_page]}
    if work:
        sections["Work"] = work
    if manage:
        sections["Manage"] = manage
    pages = st.navigation(sections)
    st.sidebar.caption(f"Signed in as {principal.username}")
    if st.sidebar.button("Sign out"):
        sign_out()
        st.rerun()
pages.run()
