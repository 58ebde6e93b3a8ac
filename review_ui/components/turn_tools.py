"""The editor's turn controls: previous / next / accept, the turn operations, and the editable table."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from store.accounts import Principal
from review_ui import turn_ops
from review_ui.components.draft import COLUMNS, save, set_turns
from review_ui.components.shortcuts import ACCEPT_LABEL, NEXT_LABEL, PREV_LABEL
from review_ui.editing import TaskView


def turn_label(i: int, turn: dict[str, Any]) -> str:
    """How a turn is named in pickers: index, speaker, times, start of the text."""
    return f"{i}: {turn['speaker']} {turn['start']:.2f}-{turn['end']:.2f}  {turn['text'][:50]}"


def navigation(principal: Principal, view: TaskView, state: dict[str, Any]) -> None:
    """Previous / next turn, a picker, and "accept & next" (saves, then moves on): the keyboard loop's buttons."""
    turns = state["turns"]
    prev_col, pick_col, next_col, accept_col = st.columns([1, 4, 1, 2])
    if prev_col.button(PREV_LABEL, disabled=state["selected"] == 0):
        state["selected"] -= 1
        st.rerun()
    if next_col.button(NEXT_LABEL, disabled=state["selected"] >= len(turns) - 1):
        state["selected"] += 1
        st.rerun()
    picked = pick_col.selectbox("Turn", range(len(turns)), index=state["selected"], format_func=lambda i: turn_label(i, turns[i]),
                                key=f"pick-{view.task_pk}-{state['gen']}-{state['selected']}", label_visibility="collapsed")
    if picked != state["selected"]:
        state["selected"] = picked
        st.rerun()
    if view.editable and accept_col.button(ACCEPT_LABEL):
        if state["turns"] == state["saved"] or save(principal, view, state):
            state["selected"] = min(state["selected"] + 1, len(state["turns"]) - 1)
        st.rerun()


def operations(view: TaskView, state: dict[str, Any]) -> None:
    """Text, split (at a time or before a word), relabel, merge, delete, add and nudge for the selected turn."""
    turns, i = state["turns"], state["selected"]
    turn = turns[i]
    try:
        text = st.text_area("Text of the selected turn", value=turn["text"], key=f"text-{view.task_pk}-{i}-{state['gen']}")
        if text.strip() != turn["text"]:
            set_turns(state, turns[:i] + [turn_ops.with_text(turn, text)] + turns[i + 1 :])
            st.rerun()
        split_col, word_col, speaker_col = st.columns(3)
        at = split_col.number_input("Split at (s)", min_value=float(turn["start"]), max_value=float(turn["end"]),
                                    value=round((turn["start"] + turn["end"]) / 2, 2), step=0.1, key=f"split-at-{view.task_pk}-{i}")
        if split_col.button("Split at time"):
            set_turns(state, turn_ops.split_at_time(turns, i, at))
            st.rerun()
        n_words = len(turn["text"].split())
        word = word_col.number_input("Split before word #", min_value=1, max_value=max(1, n_words - 1), value=max(1, n_words // 2),
                                     key=f"split-word-{view.task_pk}-{i}")
        if word_col.button("Split before word", disabled=n_words < 2):
            set_turns(state, turn_ops.split_at_word(turns, i, int(word)))
            st.rerun()
        speakers = sorted({t["speaker"] for t in turns} | set(view.speakers))
        label = speaker_col.selectbox("Speaker", speakers, index=speakers.index(turn["speaker"]), key=f"relabel-{view.task_pk}-{i}")
        new_label = speaker_col.text_input("…or a new speaker label", key=f"new-label-{view.task_pk}-{i}")
        if speaker_col.button("Relabel"):
            set_turns(state, turn_ops.relabel(turns, i, new_label or label))
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
                set_turns(state, edit())
                st.rerun()
    except turn_ops.EditError as problem:
        st.error(str(problem))


def apply_table(state: dict[str, Any], edited: pd.DataFrame) -> None:
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
        set_turns(state, turns)


def turn_table(view: TaskView, state: dict[str, Any]) -> None:
    """All turns as an editable table (read-only for reviewers), with the words the model was unsure of."""
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
        apply_table(state, edited)
