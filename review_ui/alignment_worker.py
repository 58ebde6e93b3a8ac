"""One background thread per server process that aligns drafts' spread words while people keep working.

A save only puts the task on a bounded queue (`enqueue` never blocks and never fails: when the
queue is full the task is left for the submission to align, as before). The thread runs at the
lowest CPU priority the system gives (nice 19; on Linux per thread, and the model's own compute
threads, started by this thread, inherit it) with its own one-thread copy of the model, so on a
busy machine saves are served first. A task is queued at most once at a time; `busy` says
whether it is queued or being aligned, so a tab knows whether to ask again.

Priority alone does not keep the thread out of the saves' way: it shares the server's GIL, and
a nice-19 thread that holds it when the kernel sets it aside holds up every save (20 people
saving at once: burst p95 291-321 ms with the aligner working through the burst). So a job
starts only once no save has come for `QUIET_S` (each save, submit or mark `note_activity`s), or
after `MAX_DEFER_S` on a server that is never quiet, so the words still come.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable

from store.db import Store
from review_ui.draft_alignment import align_pending_draft
from review_ui.realign import Realigner

log = logging.getLogger(__name__)

QUEUE_SIZE = 256  # tasks waiting; more are left to their submission
QUIET_S = 0.3  # a job starts after this long without a save from any tab (a 20-way burst lasts about that long)...
MAX_DEFER_S = 5.0  # ...or after this long waiting for quiet


def align_in_background(store: Store, task_pk: int) -> None:
    """The job: align the task's head draft with the background (one-thread) copy of its model."""
    align_pending_draft(store, task_pk, Realigner.of(store, background=True))


class AlignmentWorker:
    """The queue of tasks whose head draft has spread words, and the thread that aligns them."""

    def __init__(self, queue_size: int = QUEUE_SIZE, align: Callable[[Store, int], None] = align_in_background,
                 quiet_s: float = QUIET_S, max_defer_s: float = MAX_DEFER_S) -> None:
        self._align, self._quiet_s, self._max_defer_s = align, quiet_s, max_defer_s
        self._last_activity = time.monotonic()
        self._queue: queue.Queue[tuple[Store, int]] = queue.Queue(maxsize=queue_size)
        self._busy: set[tuple[int, int]] = set()  # (id of the store, task) queued or being aligned
        self._again: set[tuple[int, int]] = set()  # saved again while being aligned: aligned once more after
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="draft-alignment", daemon=True)
        self._thread.start()

    def note_activity(self) -> None:
        """A tab saved: jobs wait until no save has come for a while."""
        self._last_activity = time.monotonic()

    def enqueue(self, store: Store, task_pk: int) -> bool:
        """Ask for the task's head draft to be aligned; False when it is already queued or the queue is full."""
        self.note_activity()
        key = (id(store), task_pk)
        with self._lock:
            if key in self._busy:
                self._again.add(key)
                return False
            try:
                self._queue.put_nowait((store, task_pk))
            except queue.Full:
                return False
            self._busy.add(key)
        return True

    def busy(self, store: Store, task_pk: int) -> bool:
        """Whether the task is queued or being aligned now."""
        with self._lock:
            return (id(store), task_pk) in self._busy

    def idle(self) -> bool:
        with self._lock:
            return not self._busy

    def _run(self) -> None:
        lowest_priority()
        while True:
            store, task_pk = self._queue.get()
            key, again = (id(store), task_pk), True
            while again:
                self._wait_for_quiet()
                with self._lock:
                    self._again.discard(key)
                try:
                    self._align(store, task_pk)
                except Exception:  # noqa: BLE001 - a failed background alignment is left to the submission
                    log.exception("aligning task %s's draft in the background failed; the submission will align it", task_pk)
                with self._lock:
                    again = key in self._again
                    if not again:
                        self._busy.discard(key)


    def _wait_for_quiet(self) -> None:
        """Sleep (the GIL released) until no save came for `quiet_s`, at most `max_defer_s`."""
        give_up = time.monotonic() + self._max_defer_s
        while (now := time.monotonic()) < give_up:
            quiet_for = now - self._last_activity
            if quiet_for >= self._quiet_s:
                return
            time.sleep(min(self._quiet_s - quiet_for, give_up - now))


def lowest_priority() -> None:
    """This thread (on Linux: only it, and threads it starts) at nice 19; the process as it is elsewhere."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # no per-thread priority here: the worker runs at normal priority
        log.info("could not lower the alignment thread's priority")


_worker: AlignmentWorker | None = None
_worker_lock = threading.Lock()


def alignment_worker() -> AlignmentWorker:
    """The process's one worker, started on first use (by the editor page)."""
    global _worker
    with _worker_lock:
        if _worker is None:
            _worker = AlignmentWorker()
        return _worker
