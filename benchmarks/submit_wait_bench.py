"""How long a transcriber waits for Submit after correcting N turns' text, in a real browser.

Run: `.venv/bin/python benchmarks/submit_wait_bench.py [--turns 20] [--think 2] [--browser [--tree DIR]]`.

Issue #11: drafts spread a retyped turn's words; the submission used to align every such turn
with Whisper (about 0.5 s of CPU per turn) while the person waited. Now a background worker
aligns drafts while the person works, and Submit aligns only what is still pending. `--tree`
serves another checkout of the code (e.g. `git archive <before> | tar -x -C DIR`) against the
same store, for the figure before the change.

The task: dlg001 tiled to five minutes (120 turns, `editor_task_bench.build_store`).

By default the bench drives the server's side in this process, as the editor page does: each
correction is a draft save through `bridge.handle` (with the background worker, and again without
it: what the code did before), `--think` seconds apart; then the submit, timed in wall and CPU
seconds (the process's, model threads included; the foreground model is loaded beforehand in both
runs, as in a server that has aligned before). CPU seconds do not depend on what else the machine runs.

With `--browser` it signs in, opens the task, and for each of N consecutive turns moves there with Alt+Down, types
" indeed" at its end and waits `--think` seconds (a person correcting, listening, reading on);
then waits for "All changes saved", counts the stored turns whose words are still spread, clicks
Submit and times it to "Submitted" on the page (the browser's acknowledgement of the stored
submission). It also checks that every corrected turn of the submitted revision has aligned words.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from store import models  # noqa: E402
from review_ui.alignment_worker import AlignmentWorker  # noqa: E402
from review_ui.editing import open_task  # noqa: E402
from review_ui.editor_component.bridge import EditorSession, first_window, handle  # noqa: E402
from review_ui import realign  # noqa: E402
from review_ui.realign import Realigner  # noqa: E402
from store.accounts import Principal  # noqa: E402
from store.db import open_store  # noqa: E402
from store.settings import Settings, enforce_offline  # noqa: E402
from editor_bench import FRAME, serve, signed_in_page  # noqa: E402
from editor_task_bench import build_store  # noqa: E402


def head(home: Path, task_pk: int) -> tuple[str, list[dict[str, Any]]]:
    """(stage, turns) of the task's newest revision."""
    store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'turnscribe.db'}"))
    with store.session() as session:
        task = session.get(models.Task, task_pk)
        revision = session.get(models.TranscriptRevision, task.head_revision_pk)
        out = (revision.stage, list(revision.turns))
    store.close()
    return out


def spread_turns(turns: list[dict[str, Any]], corrected: list[int]) -> int:
    return sum(1 for i in corrected if turns[i]["words"] and all(w.get("spread") for w in turns[i]["words"]))


def run_server_side(n: int, think: float, background: bool) -> dict[str, Any]:
    """N corrections saved as drafts through the bridge, `think` s apart, then the submit timed (see the module)."""
    with tempfile.TemporaryDirectory(prefix="submit-wait-bench-") as tmp:
        home = Path(tmp)
        (task_pk, _), _ = build_store(home)
        store = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'turnscribe.db'}"))
        ann1 = Principal("ann1", frozenset({"annotator"}))
        worker = AlignmentWorker() if background else None
        realign._alignments.clear()  # nothing remembered from the other run (the same audio and texts)
        with store.session() as session:
            view = open_task(session, ann1, store.blobs, task_pk)
            recording = session.get(models.Recording, session.get(models.Task, task_pk).recording_pk)
            Realigner.of(store).model_for(session, recording)  # a server that has aligned before has it loaded
        state = EditorSession(task_pk, first_window(view, 0))
        turns = [dict(t) for t in view.turns]
        began = time.perf_counter()
        for i in range(n):
            turns[i] = {**turns[i], "text": turns[i]["text"] + " indeed", "words": []}
            message = {"mount": "bench", "seq": i + 1, "op": "save", "base_version": i, "turns": turns,
                       "turn_ids": view.turn_ids, "pending": [{"start": t["start"], "end": t["end"], "text": t["text"]}
                                                              for t in turns[:i + 1]]}
            assert handle(store, ann1, view, state, message, worker) and state.ack["ok"], state.ack
            time.sleep(think)
        worked = time.perf_counter() - began
        with store.session() as session:
            head = session.get(models.TranscriptRevision, session.get(models.Task, task_pk).head_revision_pk)
            pending = spread_turns(head.turns, list(range(n)))
        wall0, cpu0 = time.perf_counter(), time.process_time()
        submit = {"mount": "bench", "seq": n + 1, "op": "submit", "base_version": n, "turns": turns, "turn_ids": view.turn_ids}
        assert handle(store, ann1, view, state, submit, worker) and state.ack.get("submitted"), state.ack
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        while worker is not None and not worker.idle():  # (a worker still busy after the submit has nothing to store)
            time.sleep(0.1)
        stage, stored = head_of(store, task_pk)
        aligned = sum(1 for i in range(n) if stored[i]["words"] and not any(w.get("spread") for w in stored[i]["words"]))
        store.close()
    return {"turns": n, "think": think, "worked_s": worked, "pending": pending, "submit_s": wall, "submit_cpu_s": cpu,
            "stage": stage, "aligned": aligned, "background": background}


def head_of(store: Any, task_pk: int) -> tuple[str, list[dict[str, Any]]]:
    with store.session() as session:
        revision = session.get(models.TranscriptRevision, session.get(models.Task, task_pk).head_revision_pk)
        return revision.stage, list(revision.turns)


def run(tree: Path, n: int, think: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="submit-wait-bench-") as tmp:
        home = Path(tmp)
        (task_pk, _), _ = build_store(home)
        process, url = serve(home, tree)
        try:
            with sync_playwright() as pw:
                browser, page = signed_in_page(pw, url)
                page.goto(f"{url}/editor?task={task_pk}&turn=1")
                frame = page.frame_locator(FRAME)
                frame.locator('textarea[aria-label="Turn 1 text"]:focus').wait_for(timeout=60000)
                began = time.perf_counter()
                for i in range(n):
                    if i:
                        page.keyboard.press("Alt+ArrowDown")
                    page.keyboard.press("End")
                    page.keyboard.type(" indeed")
                    time.sleep(think)
                frame.get_by_role("status").filter(has_text="All changes saved").wait_for(timeout=120000)
                worked = time.perf_counter() - began
                _, turns = head(home, task_pk)
                pending = spread_turns(turns, list(range(n)))
                button = frame.get_by_role("button", name="Submit")
                t0 = time.perf_counter()
                button.click()
                frame.get_by_role("status").filter(has_text="Submitted").wait_for(timeout=300000)
                wait = time.perf_counter() - t0
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=30)
        stage, turns = head(home, task_pk)
        aligned = sum(1 for i in range(n) if turns[i]["text"].endswith(" indeed") and turns[i]["words"]
                      and not any(w.get("spread") for w in turns[i]["words"]))
    return {"tree": str(tree), "turns": n, "think": think, "worked_s": worked, "pending": pending, "submit_s": wait,
            "stage": stage, "aligned": aligned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=20, help="turns corrected before Submit")
    parser.add_argument("--think", type=float, default=2.0, help="seconds after each correction")
    parser.add_argument("--browser", action="store_true", help="in a real browser against `turnscribe ui`")
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent, help="the code to serve (--browser)")
    args = parser.parse_args()
    enforce_offline()
    if args.browser:
        r = run(args.tree.resolve(), args.turns, args.think)
        print(f"{r['turns']} corrected turns, {r['think']:.1f} s after each ({r['worked_s']:.1f} s of work), code: {r['tree']}")
        print(f"still spread at Submit: {r['pending']}; Submit -> 'Submitted': {r['submit_s']:.2f} s; "
              f"stored as {r['stage']}, corrected turns with aligned words: {r['aligned']}/{r['turns']}")
        return
    print(f"{args.turns} corrected turns of 120, {args.think:.1f} s after each; submit through the bridge")
    print(f"{'':<28} {'spread at submit':>16} {'submit wall s':>13} {'submit CPU s':>12} {'aligned':>8}")
    for background in (False, True):
        r = run_server_side(args.turns, args.think, background)
        name = "background worker (now)" if background else "submit aligns all (before)"
        print(f"{name:<28} {r['pending']:>16} {r['submit_s']:>13.2f} {r['submit_cpu_s']:>12.2f} {r['aligned']:>5}/{r['turns']}"
              f"   ({r['worked_s']:.1f} s of corrections)")


if __name__ == "__main__":
    main()
