"""The background aligner starts a job only once saves pause (it shares the server's GIL with them).

A nice-19 thread that holds the GIL when the kernel sets it aside holds up every save; in a 20-way save burst the
aligner working through the burst put the burst's p95 round trip at 291-321 ms. The worker's own scheduling is
what is checked here: the job it runs records when it started.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from review_ui.alignment_worker import AlignmentWorker


class _Started:
    """The job: notes when each task's alignment started."""

    def __init__(self) -> None:
        self.at: list[tuple[int, float]] = []
        self.event = threading.Event()

    def __call__(self, store: Any, task_pk: int) -> None:
        self.at.append((task_pk, time.monotonic()))
        self.event.set()


def _saving(worker: AlignmentWorker, seconds: float, every: float = 0.1) -> float:
    """Tabs save every `every` s for `seconds`; the time of the last save."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        worker.note_activity()
        time.sleep(every)
    worker.note_activity()
    return time.monotonic()


def test_a_job_waits_while_saves_keep_coming_and_starts_once_they_pause() -> None:
    job = _Started()
    worker = AlignmentWorker(align=job, quiet_s=0.3, max_defer_s=30)
    assert worker.enqueue(object(), 1)  # type: ignore[arg-type]
    last_save = _saving(worker, 1.5)
    assert job.at == [], "the job started while saves were still coming"
    assert job.event.wait(5)
    started = job.at[0][1] - last_save
    assert 0.25 <= started < 1.5, f"started {started:.2f} s after the last save (quiet: 0.3 s)"
    assert _eventually(worker.idle)


def test_a_job_starts_anyway_on_a_server_that_is_never_quiet() -> None:
    job = _Started()
    worker = AlignmentWorker(align=job, quiet_s=0.3, max_defer_s=1.0)
    queued = time.monotonic()
    assert worker.enqueue(object(), 2)  # type: ignore[arg-type]
    _saving(worker, 3.0)
    assert len(job.at) == 1
    waited = job.at[0][1] - queued
    assert 0.9 <= waited < 2.0, f"waited {waited:.2f} s for quiet (at most 1.0 s)"


def _eventually(check: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
