"""The turn editor: waveform and speaker timeline of the window in view, a player for the
selected turn, the turns as an editable table, turn operations, drafts, submit and history.

The task comes from session state or the `?task=` query parameter, and `open_task` checks
on the server that this user may open it; edits live in session state until saved, and
every save goes through `save_draft`/`submit` (a new revision, conflicts surfaced).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from store.accounts import PermissionDenied
from review_ui import turn_ops
from review_ui.components.audio_window import clip_wav, envelope
from review_ui.components.draft import conflict_panel, edit_state, fresh_state, save_bar, set_turns
from review_ui.components.unsure_words import marked_text_html
from review_ui.components.panels import break_reminder, comments_panel, history_panel, review_panel
from review_ui.components.shortcuts import SHORTCUT_HELP, editor_surface
from review_ui.components.turn_tools import navigation, operations, turn_table
from review_ui.components.waveform import svg_height, waveform_svg
from review_ui.editing import TaskView, open_task
from review_ui.session_auth import get_store, require_page

CONTEXT_S = 2.0  # played before and after the selected turn


def selected_task_pk() -> int | None:
    """The task asked for (session state, else `?task=`); whether it may be opened is checked later."""
    raw = st.session_state.get("task_pk") or st.query_params.get("task")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def waveform_and_player(view: TaskView, state: dict[str, Any]) -> None:
    """Draw only the window around the selected turn and play that turn with a little context (never the whole file)."""
    turns = state["turns"]
    width = st.select_slider("View (seconds)", options=[10, 30, 60, 120], value=30, key="view-width")
    lo, hi = view.context_start_s, min(view.context_end_s, view.duration_s) or view.end_s
    turn = turns[state["selected"]] if turns else {"start": view.start_s, "end": min(view.start_s + 5, hi)}
    centre = (turn["start"] + turn["end"]) / 2
    view_start = max(lo, min(centre - width / 2, hi - width))
    view_end = min(hi, view_start + width)
    env = envelope(view.audio_path, view_start, view_end)
    clip_start, clip_end = max(lo, turn["start"] - CONTEXT_S), min(hi, turn["end"] + CONTEXT_S)
    editor_surface(waveform_svg(env, turns, state["selected"] if turns else None), svg_height(turns),
                   clip_start_s=clip_start, replay_at_s=turn["start"] - clip_start, view_start_s=env.start_s, view_end_s=env.end_s)
    st.audio(clip_wav(view.audio_path, clip_start, clip_end), format="audio/wav")
    st.caption(f"Playing {clip_start:.1f}-{clip_end:.1f} s · {SHORTCUT_HELP}")


def render_editor() -> None:
    """The editor page: open the task (checked on the server), then the player, controls, table and saving."""
    principal = require_page()
    task_pk = selected_task_pk()
    if task_pk is None:
        st.info("Open a task from your queue.")
        return
    with get_store().session() as session:
        try:
            view = open_task(session, principal, get_store().blobs, task_pk)
        except (PermissionDenied, LookupError) as refused:
            st.error(f"This task cannot be opened: {refused}")
            st.session_state.pop("task_pk", None)
            return
    state = edit_state(view)
    st.title(view.title)
    info_col, guide_col = st.columns([4, 1])
    info_col.caption(f"Task {view.task_pk} · {view.state} · language {view.language} · {len(state['turns'])} turns")
    with guide_col.popover("Guidelines"):
        st.markdown(view.guidelines or "This protocol has no written transcription guidelines.")
    break_reminder(principal)
    if view.editable:
        comments_panel(principal, view)
    if state["conflict"] is not None:
        conflict_panel(principal, view, state)
    elif state["stale"]:
        st.warning(f"This task was saved elsewhere since you opened it (now version {view.version}, yours is based on "
                   f"version {state['version']}). Saving will show both versions.")
        if st.button("Load the newest saved version (drops your unsaved changes)"):
            st.session_state[f"edit:{view.task_pk}"] = fresh_state(view)
            st.rerun()
    if state["turns"]:
        navigation(principal, view, state)
    waveform_and_player(view, state)
    if state["turns"]:
        st.markdown(marked_text_html(state["turns"][state["selected"]]), unsafe_allow_html=True)
        if view.editable:
            operations(view, state)
    turn_table(view, state)
    if view.editable:
        if not state["turns"] and st.button("Add first turn"):
            set_turns(state, turn_ops.add_turn([], "spk-1", view.start_s, min(view.start_s + 2.0, view.end_s)), 0)
            st.rerun()
        save_bar(principal, view, state)
    elif view.reviewable:
        review_panel(principal, view, state)
    history_panel(principal, view)


if __name__ == "__main__":
    render_editor()
