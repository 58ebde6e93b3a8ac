"""Import, in the background, the libraries Streamlit's component call loads on first use (pandas, pyarrow).

Streamlit checks every argument of a custom component for being a data frame, which imports
pandas and pyarrow the first time: about 1.5 s that the first editor opened after a server
start would otherwise wait for. The workbench starts this on its first page (the sign-in
form), so the import is done by the time a person opens a task.
"""

from __future__ import annotations

import threading

_started = threading.Event()


def _load() -> None:
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401


def start() -> None:
    """Begin the imports once per server process (later calls do nothing)."""
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_load, name="warm-imports", daemon=True).start()
