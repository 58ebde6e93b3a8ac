"""Keyboard shortcuts for the transcriber's common loop, and the playhead over the waveform.

One inline HTML component (no CDN, no network): its script listens on the page around it
and drives the page's own audio element and buttons, so every action still goes through
the same server-side checks as a click.

    space        play / pause
    r            replay the selected turn
    j / k        next / previous turn
    ctrl+enter   accept the turn (save) and move to the next one
"""

from __future__ import annotations

import json

import streamlit as st

NEXT_LABEL = "Next turn ▸"
PREV_LABEL = "◂ Previous turn"
ACCEPT_LABEL = "Accept turn & next"
SHORTCUT_HELP = "space play/pause · r replay turn · j/k next/previous turn · ctrl+enter accept & next"

# Installed once into the page around the component (the parent's own realm), so the keys keep
# working while the component's iframe reloads; each render only updates the settings it reads.
_HANDLER = """
(() => {
  const doc = document;
  const click = (label) => {
    const button = [...doc.querySelectorAll('button')].find((b) => b.innerText.trim() === label);
    if (button) button.click();
  };
  doc.addEventListener('keydown', (e) => {
    const cfg = window.__turnscribeCfg;
    if (!cfg || !doc.querySelector('iframe')) return;
    const t = e.target;
    const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable ||
      (t.closest && t.closest('[data-testid="stDataFrame"],[data-testid="stDataFrameResizable"]')));
    if (e.ctrlKey && e.key === 'Enter') { e.preventDefault(); click(cfg.accept); return; }
    if (typing || e.altKey || e.metaKey || e.ctrlKey) return;
    const a = doc.querySelector('audio');
    if (e.key === ' ') { e.preventDefault(); if (a) { a.paused ? a.play() : a.pause(); } }
    else if (e.key === 'r') { if (a) { a.currentTime = cfg.replayAt; a.play(); } }
    else if (e.key === 'j') { click(cfg.next); }
    else if (e.key === 'k') { click(cfg.prev); }
  });
})();
"""

_SCRIPT = """
<script>
(() => {
  const cfg = %(cfg)s;
  const parent = window.parent;
  parent.__turnscribeCfg = cfg;
  if (!parent.__turnscribeKeys) {
    parent.__turnscribeKeys = true;
    const script = parent.document.createElement('script');
    script.textContent = %(handler)s;
    parent.document.head.appendChild(script);
  }
  // keys pressed while the focus is inside this frame go to the page's handler too
  document.addEventListener('keydown', (e) => parent.document.dispatchEvent(new KeyboardEvent('keydown', e)));
  const line = document.getElementById('ts-playhead');
  const tick = () => {
    const a = parent.document.querySelector('audio');
    if (a && line) {
      const x = (cfg.clipStart + a.currentTime - cfg.viewStart) / (cfg.viewEnd - cfg.viewStart) * cfg.width;
      line.setAttribute('x1', x); line.setAttribute('x2', x);
    }
    window.requestAnimationFrame(tick);
  };
  window.requestAnimationFrame(tick);
})();
</script>
"""


def editor_surface(svg: str, height: int, *, clip_start_s: float, replay_at_s: float, view_start_s: float,
                   view_end_s: float, width: int = 1000) -> None:
    """Render the waveform SVG with the playhead and install the keyboard shortcuts."""
    cfg = {"next": NEXT_LABEL, "prev": PREV_LABEL, "accept": ACCEPT_LABEL, "clipStart": clip_start_s,
           "replayAt": max(0.0, replay_at_s), "viewStart": view_start_s, "viewEnd": max(view_end_s, view_start_s + 1e-3),
           "width": width}
    body = f'<div style="margin:0;font-family:sans-serif">{svg}</div>' + _SCRIPT % {"cfg": json.dumps(cfg), "handler": json.dumps(_HANDLER)}
    st.iframe(body, height=height + 8)
