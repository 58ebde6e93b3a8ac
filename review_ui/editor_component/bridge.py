"""What the server does with the editor component's messages: save, submit, and the audio window.

The browser holds the working turns; it sends one message at a time and waits for the
acknowledgement before the next (so its own saves never race), and repeats a message the
server did not answer. A message is therefore handled at most once, by its (mount, seq):
a repeat gets the stored acknowledgement again. That memory is this server session's only, and
a repeat can arrive while the first copy is still being handled (Streamlit starts a new script
run for it at once), so a save or submit also names itself to the store: "mount:seq" is its
`save_id`, and a repeat of a save the store already holds is answered with that revision, never
as a conflict with itself. Saves go through `editing.save_draft` /
`editing.submit` with the optimistic version check; a conflict is answered with their
version, never stored over it. A "pii" message marks or unmarks personal data in the words
of the saved revision the tab holds (`store.pii_spans`; saved first when the tab's turns are
not saved yet), and every save's answer carries the spans that hold for the new revision.
A draft that leaves spread words is queued for the background aligner (`alignment_worker`); a
message may name the turns the tab shows without true word times (`pending`), and its answer
carries the aligned words the task holds for them by now (`aligned`) and whether more are coming
(`aligning`: the tab asks again with a "words" message, which changes nothing). A save also leaves
the task as it now stands (`EditorSession.saved_view`, what `open_task` would show), so the page's
rerun checks one task row (`editing.refresh_view`) instead of reading the whole task again, and
while the worker is on the draft the save's aligned words come from that draft, not a second read.
No Streamlit here, so this is tested on both databases.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from store import models
from store.accounts import PermissionDenied, Principal
from store.clock import utcnow
from store.db import Store
from store.pii_spans import KINDS, PiiError, mark_span, spans_for_revision, unmark_span
from review_ui.alignment_worker import AlignmentWorker
from review_ui.components.audio_window import clip_wav, envelope
from review_ui.draft_alignment import TurnSpec, aligned_among, aligned_for_tab, spec_of
from review_ui.editing import (SaveConflict, TaskView, TurnValidationError, marking_revision, save_draft, submit,
                               view_after_save)
from review_ui.realign import Realigner, pending

MAX_WINDOW_S = 120.0  # the most audio the browser is sent at once
DEFAULT_WINDOW_S = 30.0
PEAKS_PER_S = 100  # min/max pairs per second of the window
MAX_INTERVAL = dt.timedelta(minutes=5)  # longer gaps between saves are not counted as work
MAX_MOUNT_CHARS = 64  # a tab's name (and the audio window's), as the component makes them
OPS = ("save", "submit", "pii", "window", "words")  # what the component sends; anything else is refused


@dataclass
class EditorSession:
    """The server's side of one task open in one browser tab."""

    task_pk: int
    window: tuple[float, float]
    handled: dict[str, int] = field(default_factory=dict)  # mount -> newest seq handled
    ack: dict[str, Any] | None = None
    since: dt.datetime = field(default_factory=utcnow)  # start of the current stretch of work
    have: str | None = None  # the audio window the tab says it holds (`window_key`); not sent again
    doc_version: int | None = None  # the saved version the tab says it holds; its turns are not sent again
    submitted: bool = False  # this tab submitted the task: the page says so until it is left (later acks answer polls)
    saved_view: TaskView | None = None  # the task as the last message's save left it (None: that message saved nothing)

    def needs_audio(self, window: dict[str, Any]) -> bool:
        return self.have != window_key(window)

    def needs_turns(self, version: int) -> bool:
        return self.doc_version != version


def _js_number(x: float) -> str:
    """A number as JavaScript's String() writes it (3.0 -> "3", 2.5 -> "2.5")."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def window_key(window: dict[str, Any]) -> str:
    """How the browser names the audio window it holds: "start-end"."""
    return f"{_js_number(window['start'])}-{_js_number(window['end'])}"


def clamp_window(view: TaskView, start: float, end: float) -> tuple[float, float]:
    """The asked-for window inside the task's audio (its context), at most MAX_WINDOW_S long."""
    lo = view.context_start_s
    hi = min(view.context_end_s, view.duration_s) if view.duration_s else view.context_end_s
    span = min(max(end - start, 1.0), MAX_WINDOW_S, max(hi - lo, 0.0))
    start = min(max(start, lo), max(lo, hi - span))
    return round(start, 3), round(start + span, 3)


def first_window(view: TaskView, turn_index: int) -> tuple[float, float]:
    """The window the editor opens on: around the turn it opens at."""
    turn = view.turns[turn_index] if 0 <= turn_index < len(view.turns) else None
    at = (turn["start"] if turn else view.start_s) - 2.0
    return clamp_window(view, at, at + DEFAULT_WINDOW_S)


@functools.lru_cache(maxsize=16)
def window_audio(path: Path, start: float, end: float) -> tuple[bytes, dict[str, Any]]:
    """The window's WAV and its min/max peaks (int8 scale, min and max interleaved), read by seeking."""
    columns = max(1, int(round((end - start) * PEAKS_PER_S)))
    env = envelope(path, start, end, columns=columns)
    pairs = np.empty(2 * len(env.mins), dtype=np.int16)
    pairs[0::2] = np.clip(np.round(env.mins * 127), -127, 127)
    pairs[1::2] = np.clip(np.round(env.maxs * 127), -127, 127)
    covered = max(env.end_s - env.start_s, 1e-6)
    peaks = {"start": env.start_s, "end": env.end_s, "peaks": pairs.tolist(), "per_second": len(env.mins) / covered}
    return clip_wav(path, start, end), peaks


def handle(store: Store, principal: Principal, view: TaskView, state: EditorSession, message: Any,
           worker: AlignmentWorker | None = None) -> bool:
    """Apply one message from the component and remember its acknowledgement in `state`; False for a repeat.

    `worker` (the server's; none in tests that align by hand) aligns a saved draft's spread words."""
    if (not isinstance(message, dict) or not _integer(message.get("seq")) or not isinstance(message.get("mount"), str)
            or not 0 < len(message["mount"]) <= MAX_MOUNT_CHARS):
        return False  # not the component's message: nothing to answer it by (the tab matches answers by mount and seq)
    mount, seq = message["mount"], message["seq"]
    if worker is not None and message.get("op") in ("save", "submit", "pii"):
        worker.note_activity()  # background alignment waits while people are saving (a tab's poll for words is not)
    if seq <= state.handled.get(mount, 0):
        return False  # a repeat (the browser did not see our answer yet): the stored ack answers it
    op = message.get("op")
    ack: dict[str, Any] = {"mount": mount, "seq": seq, "op": op if op in OPS else None, "ok": True}
    if op not in OPS:
        ack.update(ok=False, error=f"unknown message {str(op)[:40]!r}: the editor sends {', '.join(OPS)}")
    if isinstance(message.get("have"), str) and len(message["have"]) <= MAX_MOUNT_CHARS:
        state.have = message["have"]
    if _integer(message.get("doc_version")):
        state.doc_version = message["doc_version"]
    window = message.get("window")
    if isinstance(window, dict) and all(_seconds(window.get(k)) for k in ("start", "end")):
        state.window = clamp_window(view, float(window["start"]), float(window["end"]))
    state.saved_view = None
    if op in ("save", "submit", "pii"):
        ack.update((_pii if op == "pii" else _save)(store, principal, view, state, op, message))
        if ack["ok"]:
            state.doc_version = ack["version"]  # the tab holds what it just saved: its turns are not sent back
            if ack.pop("spread", False) and op in ("save", "pii") and worker is not None:
                worker.enqueue(store, view.task_pk)  # a draft, a mark's draft or a reviewer's edit: words in the background
    if op in ("save", "words") and ack["ok"]:
        words = _words(store, principal, view, message, worker, state.saved_view if op == "save" else None)
        if op == "words" or words.get("ok", True):  # a save stored is answered as stored, aligned words or not
            ack.update(words)
    state.handled[mount] = seq
    state.ack = ack
    state.submitted = state.submitted or bool(ack.get("submitted"))
    return True


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _seconds(value: Any) -> bool:
    """A finite number (not a boolean): NaN or infinity never reach the audio window or a turn."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def save_id_of(message: dict[str, Any]) -> str:
    """The save's name in the store: the tab (mount) and its message number, the same in every repeat."""
    return f"{message['mount']}:{message['seq']}"


def _save(store: Store, principal: Principal, view: TaskView, state: EditorSession, op: str,
          message: dict[str, Any]) -> dict[str, Any]:
    base = message.get("base_version")
    if not _integer(base):
        return {"ok": False, "error": "the save names no base version"}
    started = max(state.since, utcnow() - MAX_INTERVAL)
    action = submit if op == "submit" else save_draft
    with store.session() as session:
        try:
            revision = action(session, principal, view.task_pk, base, message.get("turns"), realigner=Realigner.of(store),
                              started_at=started, turn_ids=message.get("turn_ids"), save_id=save_id_of(message))
        except SaveConflict as conflict:
            return _conflict(conflict)
        except (TurnValidationError, PermissionDenied) as problem:
            session.rollback()
            return {"ok": False, "error": str(problem)}
        version = int(revision.author_params["task_version"])
        task = session.get(models.Task, view.task_pk)  # as this save left it (the session holds it)
        if task is not None and task.head_revision_pk == revision.pk:
            state.saved_view = view_after_save(view, revision, task.state)
        pii = [s.to_json() for s in spans_for_revision(session, revision.pk)]
        spread = any(pending(t.get("words") or []) for t in revision.turns or [])
    state.since = utcnow()
    return {"ok": True, "version": version, "submitted": op == "submit", "pii": pii, "spread": spread}


def _wanted(message: dict[str, Any]) -> list[TurnSpec]:
    """The turns a message names as shown without true word times: [{start, end, text}, ...] (others ignored)."""
    listed = message.get("pending")
    if not isinstance(listed, list):
        return []
    return [spec_of(t) for t in listed[:10000] if isinstance(t, dict) and isinstance(t.get("text"), str)
            and all(_seconds(t.get(k)) for k in ("start", "end"))]


def _words(store: Store, principal: Principal, view: TaskView, message: dict[str, Any],
           worker: AlignmentWorker | None, saved: TaskView | None = None) -> dict[str, Any]:
    """The aligned words the task holds for the tab's pending turns, and whether the worker is still on them;
    `saved`: the task as this message's save left it (its head draft is not read again while the worker is busy;
    the save itself checked that this person may change it)."""
    wanted = _wanted(message)
    if not wanted:
        return {}
    busy = worker is not None and worker.busy(store, view.task_pk)  # asked first: a worker that finishes now has stored
    if saved is not None and busy:  # the draft this save stored is the head; what the worker stores meanwhile comes
        aligned, waiting = aligned_among(saved.turns, wanted)  # with the tab's next poll (it polls while aligning)
        return {"aligned": aligned, "aligning": waiting}
    try:
        aligned, waiting = aligned_for_tab(store, view.task_pk, wanted, principal)
    except (PermissionDenied, LookupError) as refused:
        return {"ok": False, "error": str(refused)}
    return {"aligned": aligned, "aligning": busy and waiting}


def _conflict(conflict: SaveConflict) -> dict[str, Any]:
    return {"ok": False, "conflict": {"theirs_version": conflict.theirs_version, "theirs_author": conflict.theirs_author,
                                      "theirs_turns": conflict.theirs_turns}}


def _pii(store: Store, principal: Principal, view: TaskView, state: EditorSession, op: str,
         message: dict[str, Any]) -> dict[str, Any]:
    """Mark or unmark words [word_start, word_end) of one turn (0-based, as the tab holds them) as personal data."""
    base, pii = message.get("base_version"), message.get("pii")
    if not _integer(base):
        return {"ok": False, "error": "the mark names no base version"}
    if (not isinstance(pii, dict) or pii.get("action") not in ("mark", "unmark")
            or not all(isinstance(pii.get(k), int) and not isinstance(pii.get(k), bool) for k in ("turn", "word_start", "word_end"))
            or (pii["action"] == "mark" and pii.get("kind") not in KINDS)):
        return {"ok": False, "error": f"a mark needs action mark/unmark, turn, word_start, word_end and a kind ({', '.join(KINDS)})"}
    with store.session() as session:
        try:
            revision = marking_revision(session, principal, view.task_pk, base, message.get("turns"),
                                        realigner=Realigner.of(store), turn_ids=message.get("turn_ids"),
                                        started_at=max(state.since, utcnow() - MAX_INTERVAL), save_id=save_id_of(message))
            if pii["action"] == "mark":
                mark_span(session, principal, revision.pk, pii["turn"], pii["word_start"], pii["word_end"], pii["kind"])
            else:
                unmark_span(session, principal, revision.pk, pii["turn"], pii["word_start"], pii["word_end"])
            session.flush()
            spans = [s.to_json() for s in spans_for_revision(session, revision.pk)]
            version = int((revision.author_params or {}).get("task_version", base))
            spread = any(pending(t.get("words") or []) for t in revision.turns or [])
            session.commit()
        except SaveConflict as conflict:
            return _conflict(conflict)
        except (TurnValidationError, PermissionDenied, PiiError) as problem:
            session.rollback()
            return {"ok": False, "error": str(problem)}
    state.since = utcnow()
    return {"ok": True, "version": version, "pii": spans, "spread": spread}
