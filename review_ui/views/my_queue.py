"""My queue: the signed-in annotator's own tasks with audio length and due state."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from review_ui.page_widgets import editor_buttons
from review_ui.session_auth import get_store, require_page


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
