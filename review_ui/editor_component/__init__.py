"""The turn editor: a bidirectional Streamlit component whose committed production build
(`frontend/build`) is what the package serves; running it needs neither Node nor a network.

The browser runs the whole editing loop; `render` hands it the task, the saved turns, the
audio window in view and the answer to its last message, and returns its newest message
(see `bridge` for what the server does with it). `frontend/` holds the TypeScript source:
`npm ci && npm run build` there rebuilds `frontend/build`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit.components.v1 as components

BUILD_DIR = Path(__file__).resolve().parent / "frontend" / "build"
_component = components.declare_component("turn_editor", path=str(BUILD_DIR))


def render(*, key: str, task: dict[str, Any], doc: dict[str, Any], window: dict[str, Any], audio: bytes | None,
           ack: dict[str, Any] | None, keymap: dict[str, list[str]], initial_turn: int) -> Any:
    """Draw the editor (its iframe stays mounted across runs under the same key); returns its newest message."""
    return _component(key=key, task=task, doc=doc, window=window, audio=audio, ack=ack, keymap=keymap,
                      initial_turn=initial_turn, default=None)
