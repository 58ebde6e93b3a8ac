"""The floor under `ui_bench.py` part 5: the same 20 websocket clients, pinning and burst/paced modes against a
Streamlit app whose editor fragment only acknowledges each save (no store, no sign-in, no task): what Streamlit's
own fragment rerun, its websocket and the component's args cost per save, next to part 5's figures.

Run: `.venv/bin/python benchmarks/fragment_floor.py [--clients 20] [--rounds 10] [--paced-seconds 30] [--post-script-gc]`
(`--post-script-gc`: keep Streamlit's default full garbage collection after every script run, which `turnscribe ui`
turns off).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from collection.synthetic import DIALOGUES_DIR  # noqa: E402
from ui_bench import pin, process_tree_cpu_s, summarize  # noqa: E402
from ui_ws_clients import run_clients  # noqa: E402

APP = """import streamlit as st
st.navigation([st.Page("views/editor.py", title="Editor", url_path="editor", default=True)], position="hidden").run()
"""
PAGE = """import json, time
import streamlit as st
from review_ui import editor_component

TURNS = json.loads(open({turns!r}).read())


@st.fragment
def frag(task_pk: int) -> None:
    started = time.perf_counter()
    key = f"turn-editor-{{task_pk}}"
    msg = st.session_state.get(key)
    ack = None
    if isinstance(msg, dict):
        ack = {{"mount": msg["mount"], "seq": msg["seq"], "op": msg.get("op"), "ok": True, "version": msg["base_version"] + 1,
               "pii": [], "server_ms": round((time.perf_counter() - started) * 1000, 1)}}
    editor_component.render(key=key, task={{"pk": task_pk, "title": "floor", "editable": True, "duration": 60.0, "lo": 0.0,
                                           "hi": 60.0, "reviewing": False, "pii_kinds": []}},
                            doc={{"version": 0, "turns": TURNS if ack is None else None, "turn_ids": None, "pii": None}},
                            window=None, audio=None, ack=ack, keymap={{}}, initial_turn=1)


frag(int(st.query_params.get("task", 1)))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--paced-seconds", type=float, default=30.0)
    parser.add_argument("--post-script-gc", action="store_true", help="keep Streamlit's gc.collect(2) after every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fragment-floor-") as tmp:
        app = Path(tmp)
        turns = app / "turns.json"
        turns.write_text(json.dumps([{**t, "words": []} for t in json.loads((DIALOGUES_DIR / "dlg001.turns.json").read_text())]))
        (app / "views").mkdir()
        (app / "app.py").write_text(APP)
        (app / "views" / "editor.py").write_text(PAGE.format(turns=str(turns)))
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        own = os.sched_getaffinity(0)
        server_cpus = {min(own)} if len(own) >= 2 else own
        pin(server_cpus)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent),
                                                                         os.environ.get("PYTHONPATH")])))
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(app / "app.py"), "--server.address", "127.0.0.1",
             "--server.port", str(port), "--browser.gatherUsageStats", "false", "--server.headless", "true",
             "--server.fileWatcherType", "none", "--global.developmentMode", "false",
             "--runner.postScriptGC", "true" if args.post_script_gc else "false"],
            cwd=app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                    break
                except OSError:
                    time.sleep(0.3)
            if len(own) >= 2:
                pin(own - server_cpus)
            people = [(f"floor{i}", "no-sign-in", i + 1) for i in range(args.clients)]
            trips, _, walls = asyncio.run(run_clients(url, people, args.rounds, args.paced_seconds,
                                                      server_cpu=lambda: sum(process_tree_cpu_s(process.pid))))
        finally:
            process.terminate()
            process.wait(timeout=30)
            pin(own)
    print(f"Fragment floor: {args.clients} clients, a fragment that only acknowledges, postScriptGC "
          f"{'on' if args.post_script_gc else 'off'}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'mode':<6} {'saves':>6} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'CPU/save ms':>11}")
    for mode in ("burst", "paced"):
        r = summarize([{**t, "ok": True} for t in trips[mode]])
        print(f"{mode:<6} {r['saves']:>6} {r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f} {r['max_ms']:>7.0f} "
              f"{1000 * walls[mode + '_cpu'] / max(1, r['saves']):>11.1f}")


if __name__ == "__main__":
    main()
