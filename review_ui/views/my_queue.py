"""My queue: the signed-in annotator's own tasks with audio length and due state."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from review_ui.page_widgets import editor_buttons
from review_ui.session_auth import get_store, require_page

<<<<<<<< HEAD:review_ui/views/my_queue.py
========
EDITOR_PAGE = "views/editor.py"
>>>>>>>> 45d53d0 (Transcriber's editor (issue #11): a bundled bidirectional Streamlit component owns the editing loop in the browser (text, split at the cursor, merge, speaker 1-9, next/previous, nudge and drag boundaries, undo/redo, find/replace, rename speaker, speed, loop, seek); debounced acknowledged saves with the optimistic version check; drafts in localStorage by task+version; server-side web sessions (cookie token, hashed, expiry, revoked on sign-out); deep links /editor?task=N&turn=M signed out; address bar names task and turn; pages/ renamed views/ so Streamlit's folder discovery never bypasses app.py; browser tests (every shortcut right after typing, Next, reload, closed tab, jk r, deep link, session, editing loop, no request off the server); editor bench):review_ui/views/my_tasks.py

def render_my_queue() -> None:
    from review_ui.tasks import queue_for

    principal = require_page("annotate")
    st.title("My queue")
    with get_store().session() as session:
        items = queue_for(session, principal)
    if not items:
        st.info("Nothing to do: no open tasks are assigned to you.")
        return
    table = pd.DataFrame([{"task": i.task_pk, "recording": i.title, "audio (min)": round(i.audio_s / 60, 1), "state": i.state,
                           "due": i.due_at.strftime("%Y-%m-%d %H:%M") if i.due_at else "", "overdue": "⚠ overdue" if i.overdue else ""}
                          for i in items])
    st.dataframe(table, hide_index=True)
    editor_buttons(items, "Open")


if __name__ == "__main__":
    render_my_queue()
