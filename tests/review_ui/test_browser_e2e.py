"""End to end in a real browser against a real `streamlit run` server and a temporary SQLite store:
an annotator edits, splits, saves and submits a task; a reviewer accepts it; the revisions are
checked in the database. Screenshots of every page go to tmp_path and to test-artifacts/ui/.

Debian's chromium is driven by Python playwright (playwright's own browser download needs
the internet); the browser runs with background networking off.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from store import models
from store.db import Store, open_store
from store.settings import Settings
from review_ui.serve import REPO_ROOT
from tests.review_ui.conftest import PASSWORD, ReviewStore

ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """SQLite only: the browser flow is about the UI, the store's dialects are covered elsewhere."""
    home = tmp_path / "home"
    opened = open_store(Settings(home=home, database_url=f"sqlite:///{home / 'turnscribe.db'}"))
    yield opened
    opened.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(review_store: ReviewStore, tmp_path: Path) -> Iterator[str]:
    """`turnscribe ui` on a free port (the real console script, serve() and its flags), stopped after the test."""
    port = _free_port()
    env = dict(os.environ, TURNSCRIBE_HOME=str(review_store.store.settings.home),
               TURNSCRIBE_DATABASE_URL=review_store.store.settings.database_url)
    log = open(tmp_path / "streamlit.log", "w")
    command = [str(Path(sys.executable).parent / "turnscribe"), "ui", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "streamlit.log").read_text())
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()  # serve() passes SIGTERM on to the Streamlit server
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)  # the server went down with `turnscribe ui`


def seed_task(rs: ReviewStore, assignee: str) -> tuple[int, int]:
    """A task on dlg001 whose newest pre-annotation was unsure of one word ("table", p=0.31); (task, model revision)."""
    with rs.store.session() as session:
        first = session.get(models.TranscriptRevision, rs.model_revision_pks[rs.recording_pks[0]])
        turns = [dict(t, words=[dict(w) for w in t["words"]]) for t in first.turns]
        table = next(i for i, w in enumerate(turns[0]["words"]) if w["text"] == "table")
        turns[0]["words"][table]["probability"] = 0.31
        model = models.TranscriptRevision(recording_pk=first.recording_pk, author_kind="model", author="unsure-model",
                                          turns=turns, stage="model")
        task = models.Task(kind="annotate", recording_pk=rs.recording_pks[0], assignee=assignee, state="open")
        session.add_all([model, task])
        session.commit()
        return task.pk, model.pk


class Shots:
    """Numbered screenshots under tmp_path, copied to test-artifacts/ui/ (git-ignored) for people to look at."""

    def __init__(self, page, folder: Path) -> None:  # type: ignore[no-untyped-def]
        self.page, self.folder, self.n = page, folder, 0
        folder.mkdir(parents=True, exist_ok=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> None:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        shutil.copy(path, ARTIFACTS / path.name)


def wait_idle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until Streamlit finished the current script run (its status widget disappears)."""
    page.wait_for_timeout(300)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=30000)
    page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')", timeout=30000)


def turn_picker(page):  # type: ignore[no-untyped-def]
    return page.get_by_role("combobox", name="Turn")


def sign_in(page, url: str, username: str, shot: "Shots | None" = None) -> None:  # type: ignore[no-untyped-def]
    page.goto(url)
    page.get_by_role("textbox", name="Username").wait_for()
    if shot is not None:
        shot("sign-in")
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {username}").first.wait_for()
    wait_idle(page)


def test_annotate_submit_and_accept_in_a_browser(review_store: ReviewStore, server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    review_store.add_user("ann1", "annotator")
    review_store.add_user("rev1", "reviewer")
    review_store.add_user("mgr1", "manager")
    task_pk, model_pk = seed_task(review_store, "ann1")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        shot = Shots(page, tmp_path / "screenshots")
        sign_in(page, server, "ann1", shot)
        page.get_by_role("link", name="My queue").click()
        page.get_by_role("button", name=f"Open task {task_pk}").wait_for()
        wait_idle(page)
        shot("queue")
        page.get_by_role("button", name=f"Open task {task_pk}").click()
        page.get_by_text("Text of the selected turn").wait_for()
        wait_idle(page)
        unsure = page.locator("mark.ts-unsure")
        expect(unsure).to_have_text("table")
        assert unsure.get_attribute("title") == "model probability 0.31"
        shot("editor")

        text = page.get_by_label("Text of the selected turn")
        text.fill("Hello, I would like to book a table for five, please.")
        text.press("Tab")
        wait_idle(page)
        page.get_by_label("…or a new speaker label").fill("spk-corrected")
        page.get_by_label("…or a new speaker label").press("Tab")
        wait_idle(page)
        page.get_by_role("button", name="Relabel").click()
        wait_idle(page)
        page.get_by_role("button", name="Split at time").click()
        wait_idle(page)
        shot("edited")
        page.get_by_role("button", name="Save draft").click()
        wait_idle(page)
        page.get_by_text("All changes saved").wait_for()
        shot("draft-saved")
        # the keyboard loop: play / pause, replay, next / previous turn, then ctrl+enter = accept (save) and move on
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.keyboard.press(" ")
        page.wait_for_function("!document.querySelector('audio').paused", timeout=10000)
        page.keyboard.press(" ")
        page.wait_for_function("document.querySelector('audio').paused", timeout=10000)
        page.evaluate("document.querySelector('audio').currentTime = 3.5")
        page.keyboard.press("r")
        replay_at = page.evaluate("window.__turnscribeCfg.replayAt")
        assert page.evaluate("document.querySelector('audio').currentTime") == pytest.approx(replay_at, abs=0.5)
        page.keyboard.press(" ")
        for key, expected in (("j", "1: spk-corrected"), ("j", "2: "), ("k", "1: spk-corrected")):
            page.keyboard.press(key)
            expect(turn_picker(page)).to_have_value(re.compile("^" + re.escape(expected)), timeout=15000)
            wait_idle(page)
        page.get_by_label("…or a new speaker label").fill("spk-0002")
        page.get_by_role("button", name="Relabel").click()
        wait_idle(page)
        page.evaluate("document.activeElement && document.activeElement.blur()")
        page.keyboard.press("Control+Enter")
        wait_idle(page)
        page.get_by_text("All changes saved").wait_for()
        expect(turn_picker(page)).to_have_value(re.compile("^2: "), timeout=15000)  # accepted turn 1 and moved on
        page.get_by_role("button", name="Submit").click()
        page.get_by_text("Submitted. Thank you!").wait_for()
        shot("submitted")

        page.get_by_role("button", name="Sign out").click()
        wait_idle(page)
        sign_in(page, server, "rev1")
        page.get_by_role("link", name="Review queue").click()
        page.get_by_role("button", name="Review task").first.wait_for()
        wait_idle(page)
        shot("review-queue")
        page.get_by_role("button", name="Review task").first.click()
        page.get_by_role("button", name="Accept transcript").wait_for()
        wait_idle(page)
        shot("review")
        page.get_by_role("button", name="Accept transcript").click()
        page.get_by_text("Accepted.").wait_for()
        shot("accepted")

        page.get_by_role("button", name="Sign out").click()
        wait_idle(page)
        sign_in(page, server, "mgr1")
        for link, heading in (("Coverage", "Coverage funnel"), ("Quality", "Quality")):
            page.get_by_role("link", name=link).click()
            page.get_by_role("heading", name=heading).wait_for()
            wait_idle(page)
            assert page.locator('[data-testid="stException"]').count() == 0, f"the {link} page raised"
            page.locator('[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg').first.wait_for()
            shot(link.lower())
        browser.close()

    with review_store.store.session() as session:
        revisions = session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.task_pk == task_pk)
                                    .order_by(models.TranscriptRevision.pk)).all()
        task = session.get(models.Task, task_pk)
    stages = [r.stage for r in revisions]
    assert stages[-2:] == ["submitted", "approved"] and "draft" in stages and task.state == "accepted"
    first_draft = revisions[0]
    assert first_draft.parent_pk == model_pk and first_draft.author == "ann1"
    submitted = revisions[-2].turns
    assert submitted[0]["speaker"] == "spk-corrected" and submitted[1]["speaker"] == "spk-0002", "relabelled, split, relabelled"
    assert len([r for r in revisions if r.stage == "draft"]) == 2, "one draft from 'Save draft', one from ctrl+enter"
    assert submitted[0]["end"] == submitted[1]["start"]
    assert " ".join(t["text"] for t in submitted[:2]) == "Hello, I would like to book a table for five, please."
    assert revisions[-1].author == "rev1" and revisions[-1].turns == submitted
    assert len(list((tmp_path / "screenshots").glob("*.png"))) == 11
