"""A stack sampler for a benchmarked server process (py-spy is not installed here): with
TURNSCRIBE_BENCH_SAMPLE=<path> set, every Python process started with this folder on PYTHONPATH
samples every 5 ms the stacks of its threads that the kernel shows running or runnable (state R in
/proc/self/task/<tid>/stat; sleeping and waiting threads are left out) and rewrites <path>.<pid>.json
every 2 s with the counts of each stack (cleared when <path>.reset is touched, so the samples can start
after a warm-up), so `ui_bench.py --ws-sample` can say where the server's time goes.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time



def _running(native_id: int | None) -> bool:
    """Whether the kernel shows this thread running or runnable (not sleeping in a wait, a poll or a sleep)."""
    try:
        with open(f"/proc/self/task/{native_id}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "R"
    except (OSError, IndexError):
        return False


def _sample(path: str) -> None:
    counts: collections.Counter[tuple[str, ...]] = collections.Counter()
    me, last_dump, total, reset_at = threading.get_ident(), time.monotonic(), 0, 0.0
    while True:
        time.sleep(0.005)
        total += 1
        try:
            touched = os.stat(f"{path}.reset").st_mtime
        except OSError:
            touched = 0.0
        if touched > reset_at:
            reset_at, total = touched, 0
            counts.clear()
        natives = {t.ident: t.native_id for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            if ident == me or not _running(natives.get(ident)):
                continue
            stack = []
            while frame is not None and len(stack) < 60:
                code = frame.f_code
                stack.append(f"{code.co_filename.rsplit('site-packages/', 1)[-1]}:{code.co_name}")
                frame = frame.f_back
            counts[tuple(reversed(stack))] += 1
        if time.monotonic() - last_dump > 2:
            last_dump = time.monotonic()
            with open(f"{path}.{os.getpid()}.json", "w") as out:
                json.dump({"ticks": total, "stacks": [[list(s), n] for s, n in counts.most_common(3000)]}, out)


if os.environ.get("TURNSCRIBE_BENCH_SAMPLE"):
    threading.Thread(target=_sample, args=(os.environ["TURNSCRIBE_BENCH_SAMPLE"],), daemon=True, name="bench-sampler").start()
