"""The editor's side panels: history with diffs, the break reminder, reviewer comments, accept / send back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st
from sqlalchemy.orm import Session

from store.accounts import PermissionDenied, Principal
from store.clock import utcnow
from review_ui.editing import TaskView, history
from review_ui.session_auth import get_store


def history_panel(principal: Principal, view: TaskView) -> None:
    """Who saved what and when, each revision diffed against the pre-annotation.

    Computed only while shown: it is drawn in the editor's fragment, which every save re-runs (so
    the newest revision shows without a page load), and diffing every revision of an hour-long task
    on each save would cost the server more than the save itself.
    """
    if not st.toggle("History (diff against the model's pre-annotation)", key=f"history-{view.task_pk}"):
        return
    with get_store().session() as session:
        entries = history(session, principal, view.task_pk)
    if not entries:
        st.write("No saved revisions yet.")
    for entry in reversed(entries):
        st.markdown(f"**{entry.stage}** by {entry.author} at {entry.created_at:%Y-%m-%d %H:%M:%S} "
                    f"— revision {entry.revision_pk}, {entry.changed_lines} changed lines")
        st.code("\n".join(entry.diff[2:]) or "(same as the model)", language="diff")


def break_reminder(principal: Principal, *, due: bool | None = None) -> bool:
    """A gentle note after 50 minutes of continuous work (work intervals come from the saves); whether it is shown.

    `due` given: shown or not as said, without asking the store (the editor's saves ask at most once a minute).
    """
    if due is None:
        try:
            from review_ui.quality import needs_break
        except ImportError:
            return False
        with get_store().session() as session:
            due = needs_break(session, principal.username, utcnow())
    if due:
        st.info("You have been working for 50 minutes without a pause. A short break helps your ears and your accuracy. ☕")
    return due


def comments_panel(principal: Principal, view: TaskView) -> None:
    """The reviewer's comments on this task, each on the turn it was pinned to wherever that turn is now
    (numbered as the editor shows it), with a link that opens the editor at that turn."""
    from review_ui.review import comment_pins, comments_for, pinned_turn

    with get_store().session() as session:
        pins = comment_pins(session, comments_for(session, principal, view.task_pk))
    for pin in pins:
        index = pinned_turn(pin, view.turn_ids, view.turns)
        if index is None:
            st.warning(f"Reviewer {pin.author} on the whole transcript: {pin.text}")
        else:
            st.warning(f"Reviewer {pin.author} on Turn {index + 1}: {pin.text}")
            st.markdown(f'<a href="?task={view.task_pk}&amp;turn={index + 1}" target="_self">Go to Turn {index + 1}</a>',
                        unsafe_allow_html=True)  # the same tab: the deep link opens the editor at that turn


def review_action(action: Callable[[Session], object], done: str) -> None:
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


def review_panel(principal: Principal, view: TaskView, state: dict[str, Any]) -> None:
    """Accept, or send back with a comment pinned to one turn (or the whole transcript)."""
    from review_ui.realign import Realigner
    from review_ui.review import accept, send_back

    st.subheader("Review")
    accept_col, back_col = st.columns(2)
    accept_col.caption("Edits you make in the editor above are saved as your review edit; accepting takes them.")
    if accept_col.button("Accept transcript", type="primary"):
        realigner = Realigner.of(get_store())
        review_action(lambda session: accept(session, principal, view.task_pk, realigner=realigner, version=view.version),
                      "Accepted.")
    turns = state["turns"]
    pinned = back_col.selectbox("Pin the comment to turn", [None, *range(len(turns))],
                                format_func=lambda i: "(the whole transcript)" if i is None else
                                f"Turn {i + 1}: {turns[i]['speaker']} {turns[i]['start']:.2f}-{turns[i]['end']:.2f}  {turns[i]['text'][:50]}")
    comment = back_col.text_area("Comment for the annotator")
    if back_col.button("Send back", disabled=not comment.strip()):
        review_action(lambda session: send_back(session, principal, view.task_pk, pinned, comment.strip()),
                       "Sent back to the annotator.")
