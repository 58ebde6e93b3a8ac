"""A whole five-minute task corrected in a real browser: keyboard only, then the same corrections with the mouse.

Run: `.venv/bin/python benchmarks/editor_task_bench.py`.
Issue #11 asks for the keys and the wall time of a keyboard-only correction of a five-minute task
next to the same corrections done the other way. The widget editor that came before is gone, so
the comparison is inside this editor: its key map against its buttons, drop-downs and clicks.

The task: dlg001 tiled to five minutes (120 turns). The fixed list of corrections, one set per
copy of the dialogue: append a word to one turn, give another turn the other speaker, split a
third before its fourth word, merge a fourth into the turn before it, move a fifth turn's end
0.2 s later. Both runs start from the same model turns (two tasks) and must store the same turns.
Typed text counts as keys in both runs; the mouse run counts clicks separately. Wall time runs
from the first action to the saved acknowledgement, driven by Playwright without think time, so it
measures what the editor makes a person do (keys, clicks, waits), not how fast a person is.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from collection.synthetic import DIALOGUES_DIR  # noqa: E402
from protocols.loader import load_protocol  # noqa: E402
from protocols.registry import register_protocol  # noqa: E402
from store import models  # noqa: E402
from store.accounts import add_user  # noqa: E402
from store.db import open_store  # noqa: E402
from store.settings import Settings, enforce_offline  # noqa: E402
from editor_bench import FRAME, PASSWORD, PROTOCOL, serve, signed_in_page  # noqa: E402

TASK_S = 300.0


@dataclass(frozen=True)
class Correction:
    turn: int  # 0-based index in the turns as they are when this correction is made
    kind: str  # append | speaker | split | merge | end_later
    arg: Any = None


def build_store(home: Path) -> tuple[list[int], list[dict[str, Any]]]:
    """dlg001 tiled to TASK_S seconds, one recording, two tasks on it (one per run); (task pks, model turns)."""
    from collection.decoding import to_working_rate

    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'turnscribe.db'}"))
    dialogue = json.loads((DIALOGUES_DIR / "dlg001.turns.json").read_text())
    samples, rate = sf.read(DIALOGUES_DIR / "dlg001.flac", dtype="float32")
    samples = to_working_rate(samples.mean(axis=1) if samples.ndim == 2 else samples, rate)
    length = len(samples) / 16000
    copies = int(TASK_S // length)
    path = home / "five-minutes.wav"
    sf.write(path, np.tile(samples, copies), 16000, subtype="PCM_16")
    turns = [{**t, "start": round(t["start"] + k * length, 3), "end": round(t["end"] + k * length, 3), "words": []}
             for k in range(copies) for t in dialogue]
    with store.session() as session:
        row = register_protocol(session, load_protocol(PROTOCOL), actor="bench").row
        digest = store.blobs.put_file(path)
        recording = models.Recording(protocol_pk=row.pk, status="accepted", sha256=digest, working_sha256=digest,
                                     source_name=path.name, duration_s=copies * length, sample_rate=16000, channels=1)
        session.add(recording)
        session.flush()
        session.add(models.TranscriptRevision(recording_pk=recording.pk, author_kind="model", author="tiled", turns=turns,
                                              stage="model"))
        add_user(session, "ann1", PASSWORD, ["annotator"], actor="bench")
        tasks = [models.Task(kind="annotate", recording_pk=recording.pk, assignee="ann1", state="open") for _ in range(2)]
        session.add_all(tasks)
        session.commit()
        pks = [t.pk for t in tasks]
    store.close()
    return pks, turns


def corrections(turns: list[dict[str, Any]]) -> list[Correction]:
    """Five corrections in each copy of the dialogue (12 turns), indices adjusted for the splits and merges before."""
    out: list[Correction] = []
    shift = 0  # splits minus merges made so far: how far the later turns have moved
    for base in range(0, len(turns) - 11, 12):
        for turn, kind, arg in ((1, "append", "indeed"), (3, "speaker", None), (5, "split", 3), (8, "merge", None),
                                (10, "end_later", None)):
            out.append(Correction(base + turn + shift, kind, arg))
            shift += {"split": 1, "merge": -1}.get(kind, 0)
    return out


def expected_turns(turns: list[dict[str, Any]], fixes: list[Correction]) -> list[tuple[str, str]]:
    """(speaker, text) of every turn after the corrections (derived here, independently of the editor)."""
    out = [(t["speaker"], t["text"]) for t in turns]
    others = sorted({t["speaker"] for t in turns})
    for fix in fixes:
        speaker, text = out[fix.turn]
        if fix.kind == "append":
            out[fix.turn] = (speaker, f"{text} {fix.arg}")
        elif fix.kind == "speaker":
            out[fix.turn] = (next(s for s in others if s != speaker), text)
        elif fix.kind == "split":
            words = text.split()
            out[fix.turn:fix.turn + 1] = [(speaker, " ".join(words[:fix.arg])), (speaker, " ".join(words[fix.arg:]))]
        elif fix.kind == "merge":
            prev_speaker, prev_text = out[fix.turn - 1]
            out[fix.turn - 1:fix.turn + 1] = [(prev_speaker, f"{prev_text} {text}")]
    return out


class Counter:
    """Keys and clicks a run used."""

    def __init__(self, page: Any) -> None:
        self.page, self.keys, self.clicks = page, 0, 0

    def press(self, key: str, times: int = 1) -> None:
        for _ in range(times):
            self.page.keyboard.press(key)
            self.keys += 1

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)
        self.keys += len(text)

    def click(self, locator: Any) -> None:
        locator.click()
        self.clicks += 1


def keyboard_run(page: Any, frame: Any, fixes: list[Correction], speakers: list[str]) -> Counter:
    """Every correction with the key map only: Alt+Down/Up to the turn, then the action's keys."""
    c = Counter(page)
    frame.locator('textarea[aria-label="Turn 1 text"]:focus').wait_for()
    at = 0
    for fix in fixes:
        c.press("Alt+ArrowDown" if fix.turn > at else "Alt+ArrowUp", abs(fix.turn - at))
        at = fix.turn
        if fix.kind == "append":
            c.press("End")
            c.type(f" {fix.arg}")
        elif fix.kind == "speaker":
            current = frame.locator(f'select[aria-label="Turn {at + 1} speaker"]').input_value()
            c.press(f"Alt+{next(k + 1 for k, s in enumerate(speakers) if s != current)}")
        elif fix.kind == "split":  # from the end, word by word back to the start of word `arg`, as a person watching the cursor
            area = frame.locator(f'textarea[aria-label="Turn {at + 1} text"]')
            cut = len(" ".join(area.input_value().split()[:fix.arg])) + 1
            c.press("End")
            while area.evaluate("(el) => el.selectionStart") > cut:
                c.press("Control+ArrowLeft")
            c.press("Alt+Enter")
            at += 1
        elif fix.kind == "merge":
            c.press("Alt+Backspace")
            at -= 1
        elif fix.kind == "end_later":
            c.press("Alt+p", 2)
    c.press("Control+s")
    return c


def mouse_run(page: Any, frame: Any, fixes: list[Correction], speakers: list[str]) -> Counter:
    """The same corrections with the mouse: click the turn's text, then buttons and drop-downs (text still typed)."""
    c = Counter(page)
    for fix in fixes:
        area = frame.locator(f'textarea[aria-label="Turn {fix.turn + 1} text"]')
        while area.count() == 0:  # scroll the list with the wheel until the turn's row is built
            frame.locator("#turns").hover()
            page.mouse.wheel(0, 300)
            page.wait_for_timeout(30)
        if fix.kind == "append":
            c.click(area)  # a click puts the cursor at the end of a short text
            c.press("End")
            c.type(f" {fix.arg}")
        elif fix.kind == "speaker":
            box = frame.locator(f'select[aria-label="Turn {fix.turn + 1} speaker"]')
            box.select_option(next(s for s in speakers if s != box.input_value()))
            c.clicks += 2  # open the drop-down, choose the speaker
        elif fix.kind == "split":
            c.click(area)
            text = area.input_value()
            cut = len(" ".join(text.split()[:fix.arg]))
            area.evaluate("(el, at) => el.setSelectionRange(at, at)", cut)  # the click between the two words
            c.clicks += 1
            c.click(frame.get_by_role("button", name="Split at cursor"))
        elif fix.kind == "merge":
            c.click(area)
            c.click(frame.get_by_role("button", name="Merge with previous"))
        elif fix.kind == "end_later":
            c.click(area)
            c.click(frame.get_by_role("button", name="End 0.1 s later"))
            c.click(frame.get_by_role("button", name="End 0.1 s later"))
    c.click(frame.get_by_role("button", name="Save"))
    return c


def wait_stored(home: Path, task_pk: int, expected: list[tuple[str, str]], timeout: float = 120.0) -> bool:
    """Poll the store until the task's newest revision holds `expected` (the save is acknowledged asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stored(home, task_pk) == expected:
            return True
        time.sleep(0.1)
    return False


def stored(home: Path, task_pk: int) -> list[tuple[str, str]]:
    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'turnscribe.db'}"))
    with store.session() as session:
        task = session.get(models.Task, task_pk)
        head = session.get(models.TranscriptRevision, task.head_revision_pk) if task.head_revision_pk else None
        out = [(t["speaker"], t["text"]) for t in head.turns] if head else []
    store.close()
    return out


def main() -> None:
    from playwright.sync_api import sync_playwright

    enforce_offline()
    with tempfile.TemporaryDirectory(prefix="editor-task-bench-") as tmp:
        home = Path(tmp)
        (keyboard_task, mouse_task), turns = build_store(home)
        fixes = corrections(turns)
        expected = expected_turns(turns, fixes)
        speakers = sorted({t["speaker"] for t in turns})
        process, url = serve(home)
        rows = []
        try:
            with sync_playwright() as pw:
                browser, page = signed_in_page(pw, url)
                for name, task_pk, run in (("keyboard only", keyboard_task, keyboard_run), ("mouse", mouse_task, mouse_run)):
                    page.goto(f"{url}/editor?task={task_pk}&turn=1")
                    frame = page.frame_locator(FRAME)
                    frame.get_by_role("status").filter(has_text="All changes saved").wait_for(timeout=60000)
                    began = time.perf_counter()
                    counter = run(page, frame, fixes, speakers)
                    ok = wait_stored(home, task_pk, expected)
                    if not ok:
                        got = stored(home, task_pk)
                        print(f"{name}: stored differs at", [(i, g, e) for i, (g, e) in enumerate(zip(got, expected)) if g != e][:3])
                    wall = time.perf_counter() - began
                    rows.append((name, counter.keys, counter.clicks, wall, ok))
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"five-minute task ({len(turns)} turns, {TASK_S:.0f} s), {len(fixes)} corrections "
          f"(append a word, change a speaker, split, merge, end +0.2 s; per copy of the dialogue)")
    print(f"{'run':<14} {'keys':>6} {'clicks':>7} {'wall s':>7}  stored as expected")
    for name, keys, clicks, wall, ok in rows:
        print(f"{name:<14} {keys:>6} {clicks:>7} {wall:>7.1f}  {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
