"""A turn's text with the words the model was unsure of visibly marked (HTML for st.markdown)."""

from __future__ import annotations

import html
from typing import Any

from review_ui.turn_ops import UNSURE_BELOW, unsure_words


def marked_text_html(turn: dict[str, Any], below: float = UNSURE_BELOW) -> str:
    """Each unsure word wrapped in <mark> with its probability as a tooltip."""
    unsure = set(unsure_words(turn, below))
    out = []
    for i, token in enumerate(turn.get("text", "").split()):
        if i in unsure:
            p = float(turn["words"][i].get("probability", 0.0))
            out.append(f'<mark class="ts-unsure" title="model probability {p:.2f}" '
                       f'style="background:#ffd54f;text-decoration:underline wavy #c62828">{html.escape(token)}</mark>')
        else:
            out.append(html.escape(token))
    return " ".join(out) or "<i>(no text)</i>"
