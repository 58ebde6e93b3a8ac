"""The editor in a real browser when the server is slow to answer a save or a submit.

The browser repeats a message the server has not answered within RETRY_MS (5 s); a repeat
of a save that was stored must be answered as that save, never as a conflict with itself.
Here the real `turnscribe ui` server is stopped (SIGSTOP, as a loaded machine stalls it)
right after Ctrl+S and after Submit, for longer than RETRY_MS, then resumed; and the
browser's connection drops while a save is in flight. Each time: stored exactly once, no
conflict shown or audited, the status ends saved/submitted, and a reload shows the text.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select

from store import models
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.helpers import task_locked
from tests.review_ui.test_browser_e2e import (CHROMIUM, _model_turns, editor, eventually, fill_sign_in, head_turns,
                                              new_context, ui_process, wait_saved)

STALL_S = 7.0  # longer than the editor's RETRY_MS (5 s): the browser repeats while the server is stopped


def _tree(pid: int) -> list[int]:
    """The process and its descendants (`turnscribe ui` runs the Streamlit server as its child)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [pid] + [p for c in children for p in _tree(c)]


@contextmanager
def stalled(pid: int) -> Iterator[None]:
    """The server stopped (every process of it), then resumed."""
    pids = _tree(pid)
    for p in pids:
        os.kill(p, signal.SIGSTOP)
    try:
        yield
    finally:
        for p in pids:
            os.kill(p, signal.SIGCONT)


class CuttableLink:
    """A TCP relay between the browser and the server whose open connections can be cut (a dropped connection: the
    browser reconnects at once, to the same server session)."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._relay, args=(a, b), daemon=True).start()

    @staticmethod
    def _relay(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        with self.lock:
            cutting, self.open = self.open, []
        for sock in cutting:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.cut()
        self.listener.close()


def _count(rs: ReviewStore, task_pk: int, stage: str) -> int:
    rev = models.TranscriptRevision
    with rs.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(rev).where(
            rev.task_pk == task_pk, rev.author_kind == "person", rev.stage == stage)) or 0)


def _conflicts(rs: ReviewStore) -> int:
    with rs.store.session() as session:
        return int(session.scalar(select(func.count()).select_from(models.AuditEvent)
                                  .where(models.AuditEvent.action == "save_conflict")) or 0)


def test_a_save_and_a_submit_repeated_while_the_server_stalls_are_stored_once_without_a_conflict(
        review_store: ReviewStore, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    review_store.add_user("ann1", "annotator")
    task_pk, _ = seed(review_store)
    truth = [t["text"] for t in _model_turns(review_store, task_pk)]
    with ui_process(review_store.store, tmp_path) as (url, process), sync_playwright() as pw:
        link = CuttableLink(int(url.rsplit(":", 1)[1]))
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
        chromium.requests = []  # type: ignore[attr-defined]
        page = new_context(chromium).new_page()
        page.goto(f"{link.url}/editor?task={task_pk}")
        fill_sign_in(page, "ann1")
        frame = editor(page)
        wait_saved(frame)
        status = frame.get_by_role("status")
        expected = list(truth)

        def type_into(n: int, words: str) -> None:
            field = frame.get_by_role("textbox", name=f"Turn {n} text")
            field.click()
            field.press("End")
            field.type(words)
            expected[n - 1] += words

        def unanswered() -> None:
            expect(status).to_contain_text("Server not answering", timeout=STALL_S * 1000)  # the browser repeated it
            time.sleep(max(0.0, STALL_S - 5.5))

        # 1. Ctrl+S, and the save waits for a lock past RETRY_MS: the repeat arrives while the first is being handled
        type_into(1, " savedWhileLocked")
        with task_locked(review_store.store, task_pk):
            frame.get_by_role("textbox", name="Turn 1 text").press("Control+s")
            unanswered()
        wait_saved(frame)
        assert [t["text"] for t in head_turns(review_store, task_pk)] == expected
        assert _count(review_store, task_pk, "draft") == 1, "the save and its repeat: one revision"
        assert _conflicts(review_store) == 0, "no save met a conflict with itself"

        # 2. Ctrl+S, and the server stalls (stopped) before it answers
        type_into(2, " savedWhileStalled")
        with stalled(process.pid):
            frame.get_by_role("textbox", name="Turn 2 text").press("Control+s")
            unanswered()
        wait_saved(frame)
        assert [t["text"] for t in head_turns(review_store, task_pk)] == expected
        assert _count(review_store, task_pk, "draft") == 2
        assert _conflicts(review_store) == 0, "no save met a conflict with itself"

        # 3. the connection drops while a slow save is in flight: the browser reconnects at once (a whole-app rerun
        # with the message again) and repeats it once the 5 s are up
        type_into(3, " savedAcrossADrop")
        with task_locked(review_store.store, task_pk):
            frame.get_by_role("textbox", name="Turn 3 text").press("Control+s")
            time.sleep(1.0)
            link.cut()
            unanswered()
        wait_saved(frame)
        eventually(lambda: [t["text"] for t in head_turns(review_store, task_pk)] == expected, "the save across the drop")
        assert _count(review_store, task_pk, "draft") == 3
        assert _conflicts(review_store) == 0, "no save met a conflict with itself"

        # 4. Submit, and it waits for a lock past RETRY_MS
        type_into(4, " submittedWhileLocked")
        with task_locked(review_store.store, task_pk):
            frame.get_by_role("button", name="Submit").click()
            unanswered()
        expect(status).to_have_text("Submitted. Thank you!", timeout=30000)
        expect(frame.locator("#notice.conflict")).to_have_count(0)
        assert _count(review_store, task_pk, "submitted") == 1, "the submit and its repeat: one revision"
        assert [t["text"] for t in head_turns(review_store, task_pk)] == expected
        assert _conflicts(review_store) == 0, "no save met a conflict with itself"

        page.reload()
        frame = editor(page)
        for n in (1, 2, 3, 4):
            expect(frame.get_by_role("textbox", name=f"Turn {n} text")).to_have_value(expected[n - 1])
        chromium.close()
        link.close()


def seed(rs: ReviewStore) -> tuple[int, int]:
    from tests.review_ui.test_browser_e2e import seed_task

    return seed_task(rs, "ann1")
