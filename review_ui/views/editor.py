"""The turn editor page: the editor component (the whole editing loop runs in the browser),
then the reviewer's panel, the break reminder and the history.

The task comes from the address (`/editor?task=N&turn=M`; the queue puts it there) and
`open_task` checks on the server that this user may open it. Everything that shows the saved
task lives in one `st.fragment`: the state caption, the reviewer's comments above the component,
the component, the "submitted" note, the break reminder, the review panel (its turn list and the
version it accepts) and the history. A message from the component (a save, a window) reruns only
that fragment, not the app (no navigation, sidebar or guidelines), so these show the saved state
after every save without a page load, and the sign-in and the task are checked again in it (the
task's row; the whole task only when the row changed: `editing.refresh_view`). The
history is read only while it is shown. Every message is handled by `bridge.handle` (saves with the optimistic
version check; drafts' spread words go to the process's background aligner) before the component is drawn again with the answer; the audio window, its
peaks and the saved turns are read and sent only while the tab does not hold them yet.
Everything that may come and go is drawn in containers or below the component, so the
component's iframe is never re-created.
"""

from __future__ import annotations

import time

import streamlit as st

from store.accounts import PermissionDenied, Principal
from store.pii_spans import KINDS, spans_for_revision
from store.settings import current_settings
from review_ui import editor_component
from review_ui.alignment_worker import alignment_worker
from review_ui.components.panels import break_reminder, comments_panel, history_panel, review_panel
from review_ui.editing import TaskView, open_task, refresh_view
from review_ui.editor_component.bridge import EditorSession, first_window, handle, window_audio, window_key
from review_ui.editor_component.keymap import load_keymap
from review_ui.script_run import fragment_rerun, run_started
from review_ui.session_auth import current_principal, get_store, require_page

BREAK_CHECK_S = 60.0  # a save's rerun asks the store whether a break is due at most this often


def selected_task_pk() -> int | None:
    """The task the address names (a queue click puts it there); whether it may be opened is checked later."""
    picked = st.session_state.pop("task_pk", None)
    if picked is not None:
        st.query_params.clear()
        st.query_params["task"] = str(picked)
    raw = st.query_params.get("task")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def initial_turn(view: TaskView) -> int:
    """The 1-based turn the address names (clamped), else the first."""
    try:
        wanted = int(st.query_params.get("turn", 1))
    except (TypeError, ValueError):
        wanted = 1
    return max(1, min(wanted, max(1, len(view.turns))))


def _view(principal: Principal, task_pk: int) -> TaskView:
    store = get_store()
    with store.session() as session:
        return open_task(session, principal, store.blobs, task_pk)


def _refreshed(principal: Principal, view: TaskView) -> TaskView:
    """`view` again after a message: the whole task is re-read only when its row no longer matches (`refresh_view`)."""
    store = get_store()
    with store.session() as session:
        return refresh_view(session, principal, store.blobs, view)


def _pii(view: TaskView) -> list[dict[str, object]]:
    """The personal-data spans that hold for the saved revision the editor shows (none before the first save)."""
    if view.revision_pk is None:
        return []
    with get_store().session() as session:
        return [s.to_json() for s in spans_for_revision(session, view.revision_pk)]


def _window_to_send(view: TaskView, state: EditorSession) -> tuple[dict[str, object] | None, bytes | None]:
    """(peaks, WAV) of the window in view, or (None, None) while the tab holds that window: then nothing is read."""
    held = st.session_state.get(f"editor-window-key:{view.task_pk}")  # (window, the key the browser names it by)
    if held is not None and held[0] == state.window and state.have == held[1]:
        return None, None
    audio, peaks = window_audio(view.audio_path, *state.window)
    st.session_state[f"editor-window-key:{view.task_pk}"] = (state.window, window_key(peaks))
    return (peaks, audio) if state.needs_audio(peaks) else (None, None)


def _break_reminder_now(principal: Principal) -> None:
    """The break reminder, asked of the store on every whole run and at most every BREAK_CHECK_S on a save's rerun."""
    last = st.session_state.get("break-checked")
    if fragment_rerun() and last is not None and time.monotonic() - last[0] < BREAK_CHECK_S:
        if last[1]:
            break_reminder(principal, due=True)
        return
    st.session_state["break-checked"] = (time.monotonic(), break_reminder(principal))


@st.fragment
def editor_fragment(principal: Principal, task_pk: int, keymap: dict[str, list[str]], turn: int) -> None:
    """Answer the component's message and draw it again (a message reruns only this); sign-in and task re-checked."""
    started = run_started()
    if fragment_rerun():
        principal = current_principal()  # signed out or disabled meanwhile: the whole app shows the sign-in
        if principal is None:
            st.rerun()
    try:
        view = st.session_state.get(f"editor-view:{task_pk}") or _view(principal, task_pk)
        key = f"turn-editor-{task_pk}"
        state: EditorSession | None = st.session_state.get(f"editor-session:{task_pk}")
        if state is None:
            state = st.session_state[f"editor-session:{task_pk}"] = EditorSession(task_pk, first_window(view, turn - 1))
        handled = handle(get_store(), principal, view, state, st.session_state.get(key), alignment_worker())
        if handled or fragment_rerun():  # the newest version and state, and may this person still open it
            view = _refreshed(principal, state.saved_view if handled and state.saved_view is not None else view)
    except (PermissionDenied, LookupError) as refused:
        st.error(f"This task cannot be opened: {refused}")
        return
    st.session_state[f"editor-view:{task_pk}"] = view
    st.caption(task_caption(view))  # the state and turn count as saved now (drawn on every run: the iframe stays)
    with st.container():
        if view.editable:
            comments_panel(principal, view)
    peaks, audio = _window_to_send(view, state)
    send_turns = state.needs_turns(view.version)
    if handled and state.ack is not None:
        state.ack["server_ms"] = round((time.perf_counter() - started) * 1000, 1)
    editor_component.render(
        key=key, task={"pk": view.task_pk, "title": view.title, "editable": view.editable, "duration": view.duration_s,
                       "lo": view.context_start_s, "hi": min(view.context_end_s, view.duration_s) or view.end_s,
                       "reviewing": view.reviewing, "pii_kinds": list(KINDS)},
        doc={"version": view.version, "turns": view.turns if send_turns else None,
             "turn_ids": view.turn_ids if send_turns else None, "pii": _pii(view) if send_turns else None},
        window=peaks, audio=audio, ack=state.ack, keymap=keymap, initial_turn=turn)
    if state.submitted:
        st.success("Submitted. Thank you!")
    _break_reminder_now(principal)
    if view.reviewable:
        review_panel(principal, view, {"turns": view.turns})  # the turns and version just saved
    history_panel(principal, view)  # read only while shown; then on every save, so it shows the new revision


def task_caption(view: TaskView) -> str:
    return f"Task {view.task_pk} · {view.state} · language {view.language} · {len(view.turns)} turns"


def render_editor() -> None:
    """Open the task (checked on the server), draw the editor fragment, then the panels of a whole run."""
    principal = require_page()
    task_pk = selected_task_pk()
    if task_pk is None:
        st.info("Open a task from your queue.")
        return
    try:
        view = _view(principal, task_pk)
    except (PermissionDenied, LookupError) as refused:
        st.error(f"This task cannot be opened: {refused}")
        return
    st.session_state[f"editor-view:{task_pk}"] = view
    head, guide = st.columns([4, 1], vertical_alignment="center")
    head.title(view.title)
    with guide.popover("Guidelines"):
        st.markdown(view.guidelines or "This protocol has no written transcription guidelines.")
    editor_fragment(principal, task_pk, load_keymap(current_settings().home), initial_turn(view))


if __name__ == "__main__":
    render_editor()
