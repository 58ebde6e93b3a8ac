"""The editor's working copy of a task's turns in the browser session, and saving it.

Edits live in session state until saved; every save goes through `save_draft`/`submit`
(a new revision). A conflict is kept in the state and shown with both versions; the
working copy is never replaced behind the user's back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from store.accounts import PermissionDenied, Principal
from review_ui.editing import SaveConflict, TaskView, TurnValidationError, save_draft, submit
from review_ui.session_auth import get_store

AUTOSAVE_S = 30
MAX_INTERVAL = dt.timedelta(minutes=5)  # longer gaps between saves are not counted as work
COLUMNS = ["speaker", "start", "end", "text"]


def now_utc() -> dt.datetime:
    """Aware UTC now (work intervals and autosave timing)."""
    return dt.datetime.now(dt.timezone.utc)


def fresh_state(view: TaskView) -> dict[str, Any]:
    """A working copy of the stored version, as first opened."""
    return {"turns": view.turns, "saved": view.turns, "version": view.version, "selected": 0, "gen": 0, "since": now_utc(),
            "opened_at": now_utc(), "conflict": None, "saved_at": None, "stale": False}


def edit_state(view: TaskView) -> dict[str, Any]:
    """This browser's working copy of the task's turns.

    It is never replaced behind the user's back: when the task was saved elsewhere since,
    the page says so and offers to load that version (saving on the old base is a conflict).
    """
    key = f"edit:{view.task_pk}"
    state = st.session_state.get(key)
    if state is None:
        state = st.session_state[key] = fresh_state(view)
    state["stale"] = state["version"] != view.version and state["conflict"] is None
    return state


def set_turns(state: dict[str, Any], turns: list[dict[str, Any]], selected: int | None = None) -> None:
    """Replace the working turns after an edit; the table is redrawn from them (new widget generation)."""
    state["turns"] = turns
    state["selected"] = max(0, min(selected if selected is not None else state["selected"], len(turns) - 1))
    state["gen"] += 1


def save(principal: Principal, view: TaskView, state: dict[str, Any], stage: str = "draft") -> bool:
    """Store the working turns as a draft (or submit them); a conflict is kept for the page to show."""
    started = max(state["since"], now_utc() - MAX_INTERVAL)
    action = submit if stage == "submitted" else save_draft
    with get_store().session() as session:
        try:
            revision = action(session, principal, view.task_pk, state["version"], state["turns"], started_at=started)
        except SaveConflict as conflict:
            state["conflict"] = conflict
            st.rerun()  # the conflict panel sits at the top of the page
        except (TurnValidationError, PermissionDenied) as problem:
            st.error(f"Not saved: {problem}")
            return False
    state.update(version=revision.author_params["task_version"], saved=list(revision.turns), turns=list(revision.turns),
                 since=now_utc(), saved_at=now_utc(), conflict=None)
    return True


def conflict_panel(principal: Principal, view: TaskView, state: dict[str, Any]) -> None:
    """Both versions side by side, and an explicit choice: keep mine on top of theirs, or take theirs."""
    conflict: SaveConflict = state["conflict"]
    st.error(f"Conflict: {conflict}")
    theirs, yours = st.columns(2)
    theirs.markdown(f"**Theirs** — saved by {conflict.theirs_author} (version {conflict.theirs_version})")
    theirs.dataframe(pd.DataFrame(conflict.theirs_turns, columns=COLUMNS), hide_index=True)
    yours.markdown(f"**Yours** — based on version {conflict.base_version}, not stored yet")
    yours.dataframe(pd.DataFrame(conflict.yours_turns, columns=COLUMNS), hide_index=True)
    keep, take = st.columns(2)
    if keep.button("Keep mine (save on top of theirs)"):
        state.update(version=conflict.theirs_version, turns=conflict.yours_turns, conflict=None)
        save(principal, view, state)
        state["gen"] += 1
        st.rerun()
    if take.button("Take theirs (discard mine)"):
        state.update(version=conflict.theirs_version, turns=conflict.theirs_turns, saved=conflict.theirs_turns, conflict=None)
        state["gen"] += 1
        st.rerun()


def save_bar(principal: Principal, view: TaskView, state: dict[str, Any]) -> None:
    """Save draft, submit, the saved/unsaved status, and the timed autosave."""
    draft_col, submit_col, status_col = st.columns([1, 1, 3])
    if draft_col.button("Save draft", disabled=state["turns"] == state["saved"]):
        if save(principal, view, state):
            st.rerun()
    if submit_col.button("Submit", type="primary"):
        if save(principal, view, state, stage="submitted"):
            st.session_state.pop("task_pk", None)
            st.session_state.pop(f"edit:{view.task_pk}", None)
            st.success("Submitted. Thank you!")
            st.stop()
    saved_at = state["saved_at"]
    status_col.caption(("Unsaved changes" if state["turns"] != state["saved"] else "All changes saved")
                       + (f" · last saved {saved_at:%H:%M:%S}" if saved_at else "") + f" · version {state['version']}")

    @st.fragment(run_every=AUTOSAVE_S)
    def autosave() -> None:
        if autosave_due(state, now_utc()) and save(principal, view, state):
            st.rerun()  # refresh the saved/unsaved status outside this fragment

    autosave()


def autosave_due(state: dict[str, Any], now: dt.datetime) -> bool:
    """Unsaved edits, no open conflict, and AUTOSAVE_S since the last save (not on every click: each save is a revision)."""
    quiet_since = state["saved_at"] or state["opened_at"]
    return (state["turns"] != state["saved"] and state["conflict"] is None
            and (now - quiet_since).total_seconds() >= AUTOSAVE_S)
