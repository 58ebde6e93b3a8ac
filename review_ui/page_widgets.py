"""Streamlit pieces that more than one workbench page uses: the protocol picker and the buttons that open a task in the editor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import streamlit as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from store import models

EDITOR_PAGE = "views/editor.py"


def pick_protocol(session: Session) -> models.Protocol | None:
    """A registered protocol version, chosen in the sidebar."""
    rows = session.scalars(select(models.Protocol).order_by(models.Protocol.protocol_id, models.Protocol.version.desc())).all()
    if not rows:
        return None
    return st.sidebar.selectbox("Protocol", rows, format_func=lambda r: f"{r.protocol_id} v{r.version}")


class ListedTask(Protocol):
    task_pk: int
    title: str


def open_in_editor(task_pk: int) -> None:
    """Remember the task for the editor page (which checks again that it may be opened)."""
    st.session_state["task_pk"] = task_pk
    st.session_state["go_to_editor"] = True


def editor_buttons(items: Sequence[ListedTask], verb: str) -> None:
    """A button per listed task ("<verb> task <pk>: <title>") that opens it in the editor page."""
    for item in items:
        st.button(f"{verb} task {item.task_pk}: {item.title}", key=f"{verb.lower()}-{item.task_pk}",
                  on_click=open_in_editor, args=(item.task_pk,))
    if st.session_state.pop("go_to_editor", False):
        st.switch_page(EDITOR_PAGE)
