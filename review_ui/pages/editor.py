"""The turn editor: waveform and speaker timeline of the window in view, a player for the
selected turn, the turns as an editable table, turn operations, drafts, submit and history.

The task comes from session state or the `?task=` query parameter, and `open_task` checks
on the server that this user may open it; edits live in session state until saved, and
every save goes through `save_draft`/`submit` (a new revision, conflicts surfaced).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from corpus.accounts import PermissionDenied, Principal
from review_ui import turn_ops
from review_ui.components.audio_window import clip_wav, envelope
from review_ui.components.marks import marked_text_html
from review_ui.components.shortcuts import ACCEPT_LABEL, NEXT_LABEL, PREV_LABEL, SHORTCUT_HELP, editor_surface
from review_ui.components.waveform import svg_height, waveform_svg
from review_ui.editing import SaveConflict, TaskView, TurnValidationError, history, open_task, save_draft, submit
from review_ui.session_auth import get_store, require_page

AUTOSAVE_S = 30
CONTEXT_S = 2.0  # played before and after the selected turn
MAX_INTERVAL = dt.timedelta(minutes=5)  # longer gaps between saves are not counted as work
COLUMNS = ["speaker", "start", "end", "text"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def selected_task_pk() -> int | None:
    """The task asked for (session state, else `?task=`); whether it may be opened is checked later."""
    raw = st.session_state.get("task_pk") or st.query_params.get("task")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _fresh_state(view: TaskView) -> dict[str, Any]:
    return {"turns": view.turns, "saved": view.turns, "version": view.version, "selected": 0, "gen": 0, "since": _now(),
            "opened_at": _now(), "conflict": None, "saved_at": None, "stale": False}


def _edit_state(view: TaskView) -> dict[str, Any]:
    """This browser's working copy of the task's turns.

    It is never replaced behind the user's back: when the task was saved elsewhere since,
    the page says so and offers to load that version (saving on the old base is a conflict).
    """
    key = f"edit:{view.task_pk}"
    state = st.session_state.get(key)
    if state is None:
        state = st.session_state[key] = _fresh_state(view)
    state["stale"] = state["version"] != view.version and state["conflict"] is None
    return state


def _set_turns(state: dict[str, Any], turns: list[dict[str, Any]], selected: int | None = None) -> None:
    state["turns"] = turns
    state["selected"] = max(0, min(selected if selected is not None else state["selected"], len(turns) - 1))
    state["gen"] += 1


def save(principal: Principal, view: TaskView, state: dict[str, Any], stage: str = "draft") -> bool:
    """Store the working turns as a draft (or submit them); a conflict is kept for the page to show."""
    started = max(state["since"], _now() - MAX_INTERVAL)
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
                 since=_now(), saved_at=_now(), conflict=None)
    return True


def _turn_label(i: int, turn: dict[str, Any]) -> str:
    return f"{i}: {turn['speaker']} {turn['start']:.2f}-{turn['end']:.2f}  {turn['text'][:50]}"


def _conflict_panel(principal: Principal, view: TaskView, state: dict[str, Any]) -> None:
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


def _apply_table(state: dict[str, Any], edited: pd.DataFrame) -> None:
    """Carry cell edits from the table into the working turns (a retyped text drops stale word times)."""
    turns, changed = [dict(t) for t in state["turns"]], False
    for i, row in enumerate(edited.to_dict("records")):
        if i >= len(turns):
            break
        turn = turns[i]
        for field in ("speaker", "start", "end"):
            raw = row[field]
            if raw is None or (field != "speaker" and pd.isna(raw)) or (field == "speaker" and not str(raw).strip()):
                st.error(f"Turn {i}: {field} may not be empty; the change was not applied.")
                continue
            value = str(raw).strip() if field == "speaker" else round(float(raw), 3)
            if value != turn[field]:
                turn[field], changed = value, True
        if str(row["text"] or "").strip() != turn["text"]:
            turns[i], changed = turn_ops.with_text(turn, str(row["text"] or "")), True
    if changed:
        _set_turns(state, turns)


def _operations(view: TaskView, state: dict[str, Any]) -> None:
    turns, i = state["turns"], state["selected"]
    turn = turns[i]
    try:
        text = st.text_area("Text of the selected turn", value=turn["text"], key=f"text-{view.task_pk}-{i}-{state['gen']}")
        if text.strip() != turn["text"]:
            _set_turns(state, turns[:i] + [turn_ops.with_text(turn, text)] + turns[i + 1 :])
            st.rerun()
        split_col, word_col, speaker_col = st.columns(3)
        at = split_col.number_input("Split at (s)", min_value=float(turn["start"]), max_value=float(turn["end"]),
                                    value=round((turn["start"] + turn["end"]) / 2, 2), step=0.1, key=f"split-at-{view.task_pk}-{i}")
        if split_col.button("Split at time"):
            _set_turns(state, turn_ops.split_at_time(turns, i, at))
            st.rerun()
        n_words = len(turn["text"].split())
        word = word_col.number_input("Split before word #", min_value=1, max_value=max(1, n_words - 1), value=max(1, n_words // 2),
                                     key=f"split-word-{view.task_pk}-{i}")
        if word_col.button("Split before word", disabled=n_words < 2):
            _set_turns(state, turn_ops.split_at_word(turns, i, int(word)))
            st.rerun()
        speakers = sorted({t["speaker"] for t in turns} | set(view.speakers))
        label = speaker_col.selectbox("Speaker", speakers, index=speakers.index(turn["speaker"]), key=f"relabel-{view.task_pk}-{i}")
        new_label = speaker_col.text_input("…or a new speaker label", key=f"new-label-{view.task_pk}-{i}")
        if speaker_col.button("Relabel"):
            _set_turns(state, turn_ops.relabel(turns, i, new_label or label))
            st.rerun()
        buttons = [*st.columns(4), *st.columns(4)]
        actions = [("Merge with next", lambda: turn_ops.merge_with_next(turns, i)),
                   ("Delete turn", lambda: turn_ops.delete_turn(turns, i)),
                   ("Add turn after", lambda: turn_ops.add_turn(turns, turn["speaker"], turn["end"],
                                                                min(turn["end"] + 1.0, view.duration_s))),
                   ("Start −0.1", lambda: turn_ops.nudge(turns, i, "start", -0.1, limit=view.duration_s)),
                   ("Start +0.1", lambda: turn_ops.nudge(turns, i, "start", 0.1, limit=view.duration_s)),
                   ("End −0.1", lambda: turn_ops.nudge(turns, i, "end", -0.1, limit=view.duration_s)),
                   ("End +0.1", lambda: turn_ops.nudge(turns, i, "end", 0.1, limit=view.duration_s))]
        for column, (name, edit) in zip(buttons, actions):
            if column.button(name):
                _set_turns(state, edit())
                st.rerun()
    except turn_ops.EditError as problem:
        st.error(str(problem))


def _waveform_and_player(view: TaskView, state: dict[str, Any]) -> None:
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


def _navigation(principal: Principal, view: TaskView, state: dict[str, Any]) -> None:
    turns = state["turns"]
    prev_col, pick_col, next_col, accept_col = st.columns([1, 4, 1, 2])
    if prev_col.button(PREV_LABEL, disabled=state["selected"] == 0):
        state["selected"] -= 1
        st.rerun()
    if next_col.button(NEXT_LABEL, disabled=state["selected"] >= len(turns) - 1):
        state["selected"] += 1
        st.rerun()
    picked = pick_col.selectbox("Turn", range(len(turns)), index=state["selected"], format_func=lambda i: _turn_label(i, turns[i]),
                                key=f"pick-{view.task_pk}-{state['gen']}-{state['selected']}", label_visibility="collapsed")
    if picked != state["selected"]:
        state["selected"] = picked
        st.rerun()
    if view.editable and accept_col.button(ACCEPT_LABEL):
        if state["turns"] == state["saved"] or save(principal, view, state):
            state["selected"] = min(state["selected"] + 1, len(state["turns"]) - 1)
        st.rerun()


def _table(view: TaskView, state: dict[str, Any]) -> None:
    frame = pd.DataFrame([{**{c: t[c] for c in COLUMNS},
                           "unsure": ", ".join(t["text"].split()[w] for w in turn_ops.unsure_words(t))} for t in state["turns"]],
                         columns=COLUMNS + ["unsure"])
    edited = st.data_editor(frame, key=f"table-{view.task_pk}-{state['gen']}", hide_index=False, num_rows="fixed",
                            disabled=True if not view.editable else ["unsure"],
                            column_config={"start": st.column_config.NumberColumn(format="%.2f", step=0.01),
                                           "end": st.column_config.NumberColumn(format="%.2f", step=0.01),
                                           "text": st.column_config.TextColumn(width="large"),
                                           "unsure": st.column_config.TextColumn("model unsure of")})
    if view.editable:
        _apply_table(state, edited)


def _history(principal: Principal, view: TaskView) -> None:
    with st.expander("History (diff against the model's pre-annotation)"):
        with get_store().session() as session:
            entries = history(session, principal, view.task_pk)
        if not entries:
            st.write("No saved revisions yet.")
        for entry in reversed(entries):
            st.markdown(f"**{entry.stage}** by {entry.author} at {entry.created_at:%Y-%m-%d %H:%M:%S} "
                        f"— revision {entry.revision_pk}, {entry.changed_lines} changed lines")
            st.code("\n".join(entry.diff[2:]) or "(same as the model)", language="diff")


def _break_reminder(principal: Principal) -> None:
    try:
        from review_ui.quality import needs_break
    except ImportError:
        return
    with get_store().session() as session:
        if needs_break(session, principal.username, _now()):
            st.info("You have been working for 50 minutes without a pause. A short break helps your ears and your accuracy. ☕")


def _save_bar(principal: Principal, view: TaskView, state: dict[str, Any]) -> None:
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
        """Save unsaved edits at most every AUTOSAVE_S seconds (not on every click: each save is a revision)."""
        quiet_since = state["saved_at"] or state["opened_at"]
        due = (_now() - quiet_since).total_seconds() >= AUTOSAVE_S
        if due and state["turns"] != state["saved"] and state["conflict"] is None:
            save(principal, view, state)

    autosave()


def _review_action(action: Callable[[Session], object], done: str) -> None:
    """Run accept / send back in one transaction; a refusal is shown, not stored."""
    from review_ui.review import ReviewStateError

    with get_store().session() as session:
        try:
            action(session)
            session.commit()
        except (PermissionDenied, ReviewStateError, ValueError, LookupError) as refused:
            session.rollback()
            st.error(f"Not done: {refused}")
            return
    st.session_state.pop("task_pk", None)
    st.success(done)
    st.stop()


def _review_panel(principal: Principal, view: TaskView, state: dict[str, Any]) -> None:
    from review_ui.review import accept, send_back

    st.subheader("Review")
    accept_col, back_col = st.columns(2)
    if accept_col.button("Accept transcript", type="primary"):
        _review_action(lambda session: accept(session, principal, view.task_pk), "Accepted.")
    turns = state["turns"]
    pinned = back_col.selectbox("Pin the comment to turn", [None, *range(len(turns))],
                                format_func=lambda i: "(the whole transcript)" if i is None else _turn_label(i, turns[i]))
    comment = back_col.text_area("Comment for the annotator")
    if back_col.button("Send back", disabled=not comment.strip()):
        _review_action(lambda session: send_back(session, principal, view.task_pk, pinned, comment.strip()),
                       "Sent back to the annotator.")


def _comments(principal: Principal, view: TaskView) -> None:
    try:
        from review_ui.review import comments_for
    except ImportError:
        return
    with get_store().session() as session:
        comments = comments_for(session, principal, view.task_pk)
    for c in comments:
        where = "whole transcript" if c.turn_index is None else f"turn {c.turn_index}"
        st.warning(f"Reviewer {c.author} on {where}: {c.text}")


def render_editor() -> None:
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
    state = _edit_state(view)
    st.title(view.title)
    info_col, guide_col = st.columns([4, 1])
    info_col.caption(f"Task {view.task_pk} · {view.state} · language {view.language} · {len(state['turns'])} turns")
    with guide_col.popover("Guidelines"):
        st.markdown(view.guidelines or "This protocol has no written transcription guidelines.")
    _break_reminder(principal)
    if view.editable:
        _comments(principal, view)
    if state["conflict"] is not None:
        _conflict_panel(principal, view, state)
    elif state["stale"]:
        st.warning(f"This task was saved elsewhere since you opened it (now version {view.version}, yours is based on "
                   f"version {state['version']}). Saving will show both versions.")
        if st.button("Load the newest saved version (drops your unsaved changes)"):
            st.session_state[f"edit:{view.task_pk}"] = _fresh_state(view)
            st.rerun()
    if state["turns"]:
        _navigation(principal, view, state)
    _waveform_and_player(view, state)
    if state["turns"]:
        st.markdown(marked_text_html(state["turns"][state["selected"]]), unsafe_allow_html=True)
        if view.editable:
            _operations(view, state)
    _table(view, state)
    if view.editable:
        if not state["turns"] and st.button("Add first turn"):
            _set_turns(state, turn_ops.add_turn([], "spk-1", view.start_s, min(view.start_s + 2.0, view.end_s)), 0)
            st.rerun()
        _save_bar(principal, view, state)
    elif view.reviewable:
        _review_panel(principal, view, state)
    _history(principal, view)


if __name__ == "__main__":
    render_editor()
