"""How long a transcriber waits for Submit after correcting N turns' text, in a real browser.

Run: `.venv/bin/python benchmarks/submit_wait_bench.py [--turns 20] [--think 2] [--tree DIR]`.

Issue #11: drafts spread a retyped turn's words; the submission used to align every such turn
with Whisper (about 0.5 s of CPU per turn) while the person waited. Now a background worker
aligns drafts while the person works, and Submit aligns only what is still pending. `--tree`
serves another checkout of the code (e.g. `git archive <before> | tar -x -C DIR`) against the
same store, for the figure before the change.

The task: dlg001 tiled to five minutes (120 turns, `editor_task_bench.build_store`). The bench
signs in, opens the task, and for each of N consecutive turns moves there with Alt+Down, types
" indeed" at its end and waits `--think` seconds (a person correcting, listening, reading on);
then waits for "All changes saved", counts the stored turns whose words are still spread, clicks
Submit and times it to "Submitted" on the page (the browser's acknowledgement of the stored
submission). It also checks that every corrected turn of the submitted revision has aligned words.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from store import models  # noqa: E402
from store.db import open_store  # noqa: E402
from store.settings import Settings, enforce_offline  # noqa: E402
from editor_bench import FRAME, signed_in_page  # noqa: E402
from editor_task_bench import build_store  # noqa: E402


def serve(home: Path, tree: Path) -> tuple[subprocess.Popen, str]:
    """`turnscribe ui` for the store at `home`, importing the code of `tree`."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, TURNSCRIBE_HOME=str(home), TURNSCRIBE_DATABASE_URL=f"sqlite:///{home / 'turnscribe.db'}",
               PYTHONPATH=str(tree))
    log = open(home / "ui.log", "w")
    process = subprocess.Popen([str(Path(sys.executable).parent / "turnscribe"), "ui", "--port", str(port)], env=env,
                               cwd=tree, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
            return process, url
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise RuntimeError("the workbench did not start")


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
                try:
                    frame.get_by_role("status").filter(has_text="Submitted").wait_for(timeout=60000)
                except Exception:
                    print("status:", frame.get_by_role("status").text_content(), (home / "ui.log").read_text()[-3000:])
                    import sqlite3
                    c = sqlite3.connect(home / "turnscribe.db")
                    for r in c.execute("select pk, author_kind, stage, task_pk, json_extract(author_params, '$.task_version'), parent_pk from transcript_revisions"):
                        print(r)
                    print(list(c.execute("select pk, version, head_revision_pk, state from tasks")))
                    print(list(c.execute("select actor, action, target, details from audit_events order by pk desc limit 8")))
                    raise
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
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent, help="the code to serve")
    args = parser.parse_args()
    enforce_offline()
    r = run(args.tree.resolve(), args.turns, args.think)
    print(f"{r['turns']} corrected turns, {r['think']:.1f} s after each ({r['worked_s']:.1f} s of work), code: {r['tree']}")
    print(f"still spread at Submit: {r['pending']}; Submit -> 'Submitted': {r['submit_s']:.2f} s; "
          f"stored as {r['stage']}, corrected turns with aligned words: {r['aligned']}/{r['turns']}")


if __name__ == "__main__":
    main()
