"""The review workbench (`turnscribe ui`): one Streamlit app, pages shown by role.

The navigation only hides what a role cannot use; every page checks the permission
again on the server (`session_auth.require_page`) and every action checks it once more
in the domain function it calls. Signed out, the editor's address still works: it shows
the sign-in form and then opens the task it names (`/editor?task=N`). Signing in lands
on the person's first work page (an annotator's queue).
"""

from __future__ import annotations

import sys

import streamlit as st

from store.settings import enforce_offline
from review_ui.serve import ExtraPage
from review_ui import warm_imports
from review_ui.script_run import mark_run_start
from review_ui.session_auth import JUST_SIGNED_IN, current_principal, sign_out, write_session_cookie

mark_run_start()  # the editor reports the server's time from here to each save's acknowledgement
enforce_offline()
warm_imports.start()
st.set_page_config(page_title="Turnscribe workbench", layout="wide")

principal = current_principal()
if principal is None:
    pages = st.navigation([st.Page("views/sign_in.py", title="Account", url_path="account", default=True),
                           st.Page("views/editor.py", title="Editor", url_path="editor")], position="hidden")
else:
    work = [spec for spec, allowed in (
        (("views/my_queue.py", "My queue", "queue"), principal.can("annotate")),
        (("views/review_queue.py", "Review queue", "review"), principal.can("review")),
        (("views/editor.py", "Editor", "editor"), principal.can("annotate") or principal.can("review"))) if allowed]
    manage = [spec for spec, allowed in (
        (("views/coverage_funnel.py", "Coverage", "coverage"), principal.can("see_coverage")),
        (("views/quality.py", "Quality", "quality"), principal.can("see_quality"))) if allowed]
    # pages of higher floors (the releases), passed by `turnscribe ui` after `--`
    data = [(str(page.path), page.title, page.url_path)
            for page in map(ExtraPage.from_argument, sys.argv[1:]) if principal.can(page.permission)]
    landing = (work or manage or data or [None])[0]  # what "/" opens once signed in: the first work page
    made = {spec: st.Page(spec[0], title=spec[1], url_path=spec[2], default=spec is landing) for spec in work + manage + data}
    account = st.Page("views/sign_in.py", title="Account", url_path="account", default=landing is None)
    sections = {"Account": [account]}
    if work:
        sections["Work"] = [made[spec] for spec in work]
    if manage:
        sections["Manage"] = [made[spec] for spec in manage]
    if data:
        sections["Data"] = [made[spec] for spec in data]
    pages = st.navigation(sections)
    if st.session_state.pop(JUST_SIGNED_IN, False) and pages is account and landing is not None:
        st.switch_page(made[landing])
    st.sidebar.caption(f"Signed in as {principal.username}")
    if st.sidebar.button("Sign out"):
        sign_out()
        st.rerun()
write_session_cookie()
pages.run()
