"""The editor's key map: defaults modelled on transcription tools, overridable per installation.

Keys are written as in the editor's help ("Ctrl+Enter", "Alt+1", "Space") and matched on
the physical key, so they hold on any keyboard layout. A combination with Ctrl or Alt works
while typing in a turn; a plain key (space, j, k, r) only when no text field has the focus,
so typing "jk r" into a turn is just text. `$TURNSCRIBE_HOME/editor-keys.json` may replace
the combinations of any action, e.g. `{"play_pause": ["Ctrl+Space", "F4"]}`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

DEFAULT_KEYMAP: dict[str, list[str]] = {
    "play_pause": ["Ctrl+Space", "Space"],
    "replay_turn": ["Alt+R", "R"],
    "skip_back": ["Alt+B"],
    "loop": ["Alt+L"],
    "accept_next": ["Ctrl+Enter"],
    "next_turn": ["Alt+ArrowDown", "J"],
    "prev_turn": ["Alt+ArrowUp", "K"],
    "split": ["Alt+Enter"],
    "merge_prev": ["Alt+Backspace"],
    "undo": ["Ctrl+Z"],
    "redo": ["Ctrl+Shift+Z", "Ctrl+Y"],
    "save": ["Ctrl+S"],
    "nudge_start_earlier": ["Alt+Q"],
    "nudge_start_later": ["Alt+W"],
    "nudge_end_earlier": ["Alt+O"],
    "nudge_end_later": ["Alt+P"],
    "mark_pii": ["Alt+M"],
    "unmark_pii": ["Alt+Shift+M"],
    **{f"speaker_{n}": [f"Alt+{n}"] for n in range(1, 10)},
}
KEYS_FILE = "editor-keys.json"
_COMBO = re.compile(r"^((Ctrl|Alt|Shift)\+)*[A-Za-z0-9]+$|^((Ctrl|Alt|Shift)\+)*[A-Z][A-Za-z]+$")


class KeyMapError(ValueError):
    """An override file that names an unknown action or writes a combination the editor cannot match."""


def load_keymap(home: Path) -> dict[str, list[str]]:
    """The defaults with the installation's overrides from `home/editor-keys.json` (if present) applied."""
    path = home / KEYS_FILE
    if not path.exists():
        return dict(DEFAULT_KEYMAP)
    try:
        overrides = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as problem:
        raise KeyMapError(f"{path}: not readable JSON: {problem}") from problem
    if not isinstance(overrides, dict):
        raise KeyMapError(f"{path}: must be an object of action -> list of key combinations")
    problems = []
    for action, combos in overrides.items():
        if action not in DEFAULT_KEYMAP:
            problems.append(f"unknown action {action!r} (known: {', '.join(DEFAULT_KEYMAP)})")
        elif not isinstance(combos, list) or not all(isinstance(c, str) and _COMBO.match(c) for c in combos):
            problems.append(f"{action}: needs a list of combinations like \"Ctrl+Enter\" or \"Alt+1\"")
    if problems:
        raise KeyMapError(f"{path}: " + "; ".join(problems))
    return {**DEFAULT_KEYMAP, **overrides}
