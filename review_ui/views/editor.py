"""The turn editor page: the editor component (the whole editing loop runs in the browser),
then the reviewer's panel, the reviewer's comments, the break reminder and the history.

The task comes from the address (`/editor?task=N&turn=M`; the queue puts it there) and
`open_task` checks on the server that this user may open it. Every message the component
sends is handled by `bridge.handle` (saves with the optimistic version check; drafts' spread words go to
the process's background aligner) before the
component is drawn again with the answer; the audio window and the saved turns are sent
only while the tab does not hold them yet (each run would otherwise carry them again). Everything that may come and go is drawn in
containers or below the component, so the component's iframe is never re-created.
"""

from __future__ import annotations

import time

import streamlit as st

from store.accounts import PermissionDenied
from store.pii_spans import KINDS, spans_for_revision
from store.settings import load_settings
from review_ui import editor_component
from review_ui.alignment_worker import alignment_worker
from review_ui.components.panels import break_reminder, comments_panel, history_panel, review_panel
from review_ui.editing import TaskView, open_task
from review_ui.editor_component.bridge import EditorSession, first_window, handle, window_audio
from review_ui.editor_component.keymap import load_keymap
from review_ui.script_run import run_started
from review_ui.session_auth import get_store, require_page


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


def _view(principal, task_pk: int) -> TaskView:  # type: ignore[no-untyped-def]
    with get_store().session() as session:
        return open_task(session, principal, get_store().blobs, task_pk)


def _pii(view: TaskView) -> list[dict[str, object]]:
    """The personal-data spans that hold for the saved revision the editor shows (none before the first save)."""
    if view.revision_pk is None:
        return []
    with get_store().session() as session:
        return [s.to_json() for s in spans_for_revision(session, view.revision_pk)]


def render_editor() -> None:
    """Open the task (checked on the server), answer the component's message, draw it and the panels."""
    started = run_started()
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
    key = f"turn-editor-{task_pk}"
    state: EditorSession | None = st.session_state.get(f"editor-session:{task_pk}")
    if state is None:
        state = st.session_state[f"editor-session:{task_pk}"] = EditorSession(task_pk, first_window(view, initial_turn(view) - 1))
    handled = handle(get_store(), principal, view, state, st.session_state.get(key), alignment_worker())
    if handled:
        view = _view(principal, task_pk)  # the newest version and state after a save or submit
    st.title(view.title)
    info, guide = st.columns([4, 1])
    info.caption(f"Task {view.task_pk} · {view.state} · language {view.language} · {len(view.turns)} turns")
    with guide.popover("Guidelines"):
        st.markdown(view.guidelines or "This protocol has no written transcription guidelines.")
    with st.container():
        if view.editable:
            comments_panel(principal, view)
    audio, peaks = window_audio(view.audio_path, *state.window)
    if handled and state.ack is not None:
        state.ack["server_ms"] = round((time.perf_counter() - started) * 1000, 1)
    editor_component.render(
        key=key, task={"pk": view.task_pk, "title": view.title, "editable": view.editable, "duration": view.duration_s,
                       "lo": view.context_start_s, "hi": min(view.context_end_s, view.duration_s) or view.end_s,
                       "reviewing": view.reviewing, "pii_kinds": list(KINDS)},
        doc={"version": view.version, "turns": view.turns if state.needs_turns(view.version) else None,
             "turn_ids": view.turn_ids if state.needs_turns(view.version) else None, "pii": _pii(view)}, window=peaks,
        audio=audio if state.needs_audio(peaks) else None, ack=state.ack,
        keymap=load_keymap(load_settings().home), initial_turn=initial_turn(view))
    if state.ack and state.ack.get("submitted"):
        st.success("Submitted. Thank you!")
    if view.reviewable:
        review_panel(principal, view, {"turns": view.turns})
    break_reminder(principal)
    history_panel(principal, view)


if __name__ == "__main__":
    render_editor()
