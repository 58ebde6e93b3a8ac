"""Which kind of Streamlit script run this is and when it began.

The editor answers each browser message in a script run: the whole app on a page load,
only the editor's fragment for a component message. It reports how long the server took
from the run's start to handing the acknowledgement to the component (`server_ms` in the
ack), so a benchmark can put the server's share next to the browser's round trip.
"""

from __future__ import annotations

import time

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

RUN_STARTED = "script_run_started"


def mark_run_start() -> None:
    """Called first thing in the app script: a whole run starts here."""
    st.session_state[RUN_STARTED] = time.perf_counter()


def fragment_rerun() -> bool:
    """True in a run that re-executes only fragments (a widget inside a fragment changed), not the whole app."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def run_started() -> float:
    """`time.perf_counter()` at the start of this run: the app's start for a whole run, now for a fragment rerun
    (no app script ran before it); now as well where no app script marked it (a page run on its own, as in tests)."""
    if fragment_rerun():
        return time.perf_counter()
    return float(st.session_state.get(RUN_STARTED, time.perf_counter()))
