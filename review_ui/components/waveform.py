"""The waveform of the window in view with the speaker timeline drawn over it, as inline SVG.

Drawn server-side from a min/max envelope of the visible window only, so what is shown
and what is played always come from the same samples and offsets (no client-side
decoding of a long file, which is where waveforms drift out of sync).
"""

from __future__ import annotations

import html
from typing import Any

from review_ui.components.audio_window import Envelope

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
WAVE_H = 110
LANE_H = 20
AXIS_H = 18


def speaker_colours(speakers: list[str]) -> dict[str, str]:
    """A stable colour per speaker label (sorted, so the same label keeps its colour)."""
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(sorted(set(speakers)))}


def _tick_step(span: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60):
        if span / step <= 12:
            return step
    return 120


def waveform_svg(env: Envelope, turns: list[dict[str, Any]], selected: int | None, *, width: int = 1000) -> str:
    """SVG: envelope, one lane per speaker with its turns, the selected turn outlined, a time axis, a playhead."""
    span = max(env.end_s - env.start_s, 1e-6)
    colours = speaker_colours([t["speaker"] for t in turns])
    lanes = {s: i for i, s in enumerate(sorted(colours))}
    height = WAVE_H + LANE_H * max(1, len(lanes)) + AXIS_H

    def x(t: float) -> float:
        return round((min(max(t, env.start_s), env.end_s) - env.start_s) / span * width, 1)

    mid, amp, n = WAVE_H / 2, WAVE_H / 2 - 2, len(env.mins)
    top = " ".join(f"{i / max(n, 1) * width:.1f},{mid - float(v) * amp:.1f}" for i, v in enumerate(env.maxs))
    bottom = " ".join(f"{i / max(n, 1) * width:.1f},{mid - float(v) * amp:.1f}" for i, v in reversed(list(enumerate(env.mins))))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="ts-wave" width="100%" height="{height}" viewBox="0 0 {width} {height}" '
             f'preserveAspectRatio="none" data-start="{env.start_s}" data-end="{env.end_s}" style="background:#fafafa">']
    for i, turn in enumerate(turns):
        if turn["end"] <= env.start_s or turn["start"] >= env.end_s:
            continue
        x0, x1 = x(turn["start"]), x(turn["end"])
        colour = colours[turn["speaker"]]
        lane_y = WAVE_H + lanes[turn["speaker"]] * LANE_H
        outline = ' stroke="#000" stroke-width="2"' if i == selected else ""
        label = html.escape(f"{i}: {turn['speaker']} {turn['start']:.2f}-{turn['end']:.2f}")
        parts.append(f'<rect x="{x0}" y="0" width="{max(x1 - x0, 1)}" height="{WAVE_H}" fill="{colour}" '
                     f'fill-opacity="{0.28 if i == selected else 0.12}"><title>{label}</title></rect>')
        parts.append(f'<rect class="ts-turn" data-index="{i}" x="{x0}" y="{lane_y + 2}" width="{max(x1 - x0, 1)}" '
                     f'height="{LANE_H - 4}" fill="{colour}"{outline}><title>{label}</title></rect>')
    parts.append(f'<polygon points="{top} {bottom}" fill="#444" />')
    for speaker, lane in lanes.items():
        parts.append(f'<text x="3" y="{WAVE_H + lane * LANE_H + 14}" font-size="11" fill="#222" stroke="#fff" stroke-width="3" paint-order="stroke">{html.escape(speaker)}</text>')
    step = _tick_step(span)
    tick = (int(env.start_s / step) + 1) * step
    while tick < env.end_s:
        parts.append(f'<line x1="{x(tick)}" x2="{x(tick)}" y1="{height - AXIS_H}" y2="{height - AXIS_H + 4}" stroke="#666"/>'
                     f'<text x="{x(tick) + 2}" y="{height - 4}" font-size="10" fill="#666">{tick:g}s</text>')
        tick += step
    parts.append(f'<line id="ts-playhead" x1="-5" x2="-5" y1="0" y2="{height - AXIS_H}" stroke="#e00" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def svg_height(turns: list[dict[str, Any]]) -> int:
    return WAVE_H + LANE_H * max(1, len({t["speaker"] for t in turns})) + AXIS_H
