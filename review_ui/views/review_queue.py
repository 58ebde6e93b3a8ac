"""Review queue: submitted work waiting for this reviewer; opening a task shows it read-only with accept / send back."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from review_ui.page_widgets import editor_buttons
from review_ui.session_auth import get_store, require_page


def render_review_queue() -> None:
    from review_ui.review import review_queue

    principal = require_page("review")
    st.title("Review queue")
    with get_store().session() as session:
        items = review_queue(session, principal)
    if not items:
        st.info("Nothing waiting for review.")
        return
    st.dataframe(pd.DataFrame([{"task": i.task_pk, "recording": i.title, "audio (min)": round(i.audio_s / 60, 1), "state": i.state}
                               for i in items]), hide_index=True)
    editor_buttons(items, "Review")


if __name__ == "__main__":
    render_review_queue()
