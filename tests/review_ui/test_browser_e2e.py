"""End to end in a real browser against a real `turnscribe ui` server and a temporary SQLite store.

The turn editor is the bundled component (an iframe): corrections are typed and a shortcut
is pressed at once (no blur, no Tab), the page is reloaded, the tab closed and reopened, and
every time the correction must be in the store. Then the editing loop, a deep link signed out,
the reviewer's accept and the managers' pages. Screenshots at 1440x900 go to tmp_path and to
test-artifacts/ui/.

Debian's chromium is driven by Python playwright (playwright's own browser download needs
the internet); the browser runs with background networking off, and every request the
pages make is checked to stay on the server.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from store import models
from store.db import Store, open_store
from store.settings import Settings
from review_ui.serve import REPO_ROOT
from tests.review_ui.conftest import PASSWORD, ReviewStore

ARTIFACTS = REPO_ROOT / "test-artifacts" / "ui"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1440, "height": 900}
EDITOR_FRAME = 'iframe[title*="turn_editor"]'
FIRST_LOAD_MS = 60000  # a freshly started server's first page (imports, the first script run) on a loaded machine


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


@contextmanager
def running_ui(store: Store, tmp_path: Path, port: int | None = None) -> Iterator[str]:
    """`turnscribe ui` on `port` or a free one (the real console script, serve() and its flags) for `store`, stopped after."""
    with ui_process(store, tmp_path, port) as (url, _):
        yield url


@contextmanager
def ui_process(store: Store, tmp_path: Path, port: int | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`turnscribe ui` as `running_ui` starts it, with its process (a test stalls it)."""
    port = port or _free_port()
    env = dict(os.environ, TURNSCRIBE_HOME=str(store.settings.home), TURNSCRIBE_DATABASE_URL=store.settings.database_url)
    log = open(tmp_path / "streamlit.log", "a")
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
        yield url, process
    finally:
        process.terminate()  # serve() passes SIGTERM on to the Streamlit server
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def server(review_store: ReviewStore, tmp_path: Path) -> Iterator[str]:
    """The workbench on the review store."""
    with running_ui(review_store.store, tmp_path) as url:
        yield url
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)  # the server went down with `turnscribe ui`


@pytest.fixture
def browser(server: str) -> Iterator[Any]:
    """Debian's chromium; every request any page makes is recorded to check that none leaves the server."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
        chromium.requests = []  # type: ignore[attr-defined]
        yield chromium
        chromium.close()
    outside = [u for u in chromium.requests if not u.startswith((server, "blob:", "data:", "about:"))]
    assert outside == [], f"the workbench reached outside its server: {outside[:5]}"


def new_context(browser: Any) -> Any:
    context = browser.new_context(viewport=VIEWPORT)
    context.on("request", lambda request: browser.requests.append(request.url))
    context.on("console", lambda m: print("CONSOLE", m.type, m.text) if m.type in ("error", "log") else None)
    return context


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


def head_turns(rs: ReviewStore, task_pk: int) -> list[dict[str, Any]]:
    """The turns of the task's newest saved revision ([] before the first save)."""
    with rs.store.session() as session:
        task = session.get(models.Task, task_pk)
        head = session.get(models.TranscriptRevision, task.head_revision_pk) if task.head_revision_pk else None
        return list(head.turns) if head is not None else []


def person_turns(rs: ReviewStore, task_pk: int) -> list[dict[str, Any]]:
    """The turns of the task's newest revision saved by a person (not by the background aligner)."""
    with rs.store.session() as session:
        rev = models.TranscriptRevision
        newest = session.scalars(select(rev).where(rev.task_pk == task_pk, rev.author_kind == "person")
                                 .order_by(rev.pk.desc())).first()
        return list(newest.turns) if newest is not None else []


def eventually(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll the store until `check` holds (a save is acknowledged asynchronously)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not stored within {timeout:.0f} s: {what}")
        time.sleep(0.2)


class Shots:
    """Numbered screenshots under tmp_path, copied to test-artifacts/ui/ for people to look at."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.n = folder, 0
        folder.mkdir(parents=True, exist_ok=True)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Any, name: str) -> None:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{name}.png"
        page.screenshot(path=str(path))
        shutil.copy(path, ARTIFACTS / f"{name}.png")  # one name per view, so the committed set is replaced in place


def wait_idle(page: Any) -> None:
    """Wait until Streamlit finished the current script run (its status widget disappears)."""
    page.wait_for_timeout(300)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=30000)
    page.wait_for_function("!document.querySelector('[data-stale=\"true\"]')", timeout=30000)


def sign_in(page: Any, url: str, username: str) -> None:
    page.goto(url)
    fill_sign_in(page, username)


def fill_sign_in(page: Any, username: str) -> None:
    page.get_by_role("textbox", name="Username").fill(username)
    page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {username}").first.wait_for()
    wait_idle(page)


def editor(page: Any) -> Any:
    """The editor component's frame, once it shows its turns."""
    frame = page.frame_locator(EDITOR_FRAME)
    frame.get_by_role("textbox", name="Turn 1 text").wait_for(timeout=30000)
    return frame


def wait_saved(frame: Any) -> None:
    from playwright.sync_api import expect

    expect(frame.get_by_role("status")).to_contain_text("All changes saved", timeout=20000)


def test_typed_corrections_survive_every_shortcut_next_reload_and_a_closed_tab(review_store: ReviewStore, server: str,
                                                                               browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, _ = seed_task(review_store, "ann1")
    shot = Shots(tmp_path / "screenshots")
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, server, "ann1")
    expect(page.get_by_role("heading", name="My queue")).to_be_visible()  # signing in lands on the queue
    page.get_by_role("button", name=f"Open task {task_pk}").click()
    frame = editor(page)
    wait_idle(page)
    expect(page).to_have_url(re.compile(rf"/editor\?task={task_pk}&turn=1$"))
    expect(frame.locator(".words span.unsure")).to_have_text("table")
    shot(page, "editor")
    original = [t["text"] for t in head_turns(review_store, task_pk) or _model_turns(review_store, task_pk)]

    # type, then at once press each advertised shortcut (no blur, no Tab): the typing is kept and saved
    moves = {"Control+Enter": 1, "Alt+ArrowDown": 1, "Alt+ArrowUp": -1}
    shortcuts = ["Control+Enter", "Alt+w", "Alt+q", "Alt+p", "Alt+o", "Alt+2", "Alt+1", "Control+Space", "Alt+r", "Alt+b",
                 "Alt+l", "Control+s", "Alt+ArrowDown", "Alt+ArrowUp"]
    corrections: dict[int, str] = {}
    n = 1
    frame.get_by_role("textbox", name="Turn 1 text").click()
    for i, key in enumerate(shortcuts):
        field = frame.get_by_role("textbox", name=f"Turn {n} text")
        expect(field).to_be_focused()
        field.press("End")
        field.type(f" k{i}")
        corrections[n] = f"{corrections.get(n, original[n - 1])} k{i}"
        field.press(key)
        expect(field).to_have_value(corrections[n])
        n += moves.get(key, 0)
    wait_saved(frame)
    saved = head_turns(review_store, task_pk)
    assert {n: saved[n - 1]["text"] for n in corrections} == corrections

    # the Next button right after typing
    field = frame.get_by_role("textbox", name="Turn 4 text")
    field.click()
    field.press("End")
    field.type(" viaNext")
    frame.get_by_role("button", name="Next turn").click()
    expect(page).to_have_url(re.compile(rf"task={task_pk}&turn=5$"))
    eventually(lambda: head_turns(review_store, task_pk)[3]["text"] == f"{original[3]} viaNext", "typed, then Next")

    # keys that are shortcuts outside a field are text inside one
    frame.locator("#player").evaluate("(a) => a.pause()")  # Ctrl+Space / Alt+R above played it
    field = frame.get_by_role("textbox", name="Turn 5 text")
    field.click()
    field.press("End")
    before = field.input_value()
    field.type("jk r")
    expect(field).to_have_value(before + "jk r")
    expect(field).to_be_focused()
    expect(frame.locator(".turn.selected .num")).to_have_text("5")
    expect(page).to_have_url(re.compile(r"turn=5$"))
    assert frame.locator("#player").evaluate("(a) => a.paused"), "space and r did not play"
    wait_saved(frame)

    # reload straight after typing (before the debounced save): restored from the browser and saved
    field.type(" beforeReload")
    page.reload()
    frame = editor(page)
    expect(frame.get_by_role("textbox", name="Turn 5 text")).to_have_value(before + "jk r beforeReload")
    wait_saved(frame)
    assert head_turns(review_store, task_pk)[4]["text"] == f"{original[4]}jk r beforeReload"

    # close the tab straight after typing, open the task again: still signed in, the typing is there and saved
    field = frame.get_by_role("textbox", name="Turn 6 text")
    field.click()
    field.press("End")
    field.type(" closedTab")
    page.close()
    page = context.new_page()
    page.goto(f"{server}/editor?task={task_pk}&turn=6")
    frame = editor(page)
    expect(frame.get_by_role("textbox", name="Turn 6 text")).to_have_value(f"{original[5]} closedTab")
    expect(frame.locator(".turn.selected .num")).to_have_text("6")
    wait_saved(frame)
    assert head_turns(review_store, task_pk)[5]["text"] == f"{original[5]} closedTab"
    shot(page, "editor-after-reopen")
    context.close()


def _model_turns(rs: ReviewStore, task_pk: int) -> list[dict[str, Any]]:
    with rs.store.session() as session:
        task = session.get(models.Task, task_pk)
        model = session.scalars(select(models.TranscriptRevision).where(
            models.TranscriptRevision.recording_pk == task.recording_pk, models.TranscriptRevision.stage == "model")
            .order_by(models.TranscriptRevision.pk.desc())).first()
        return list(model.turns)


def test_deep_link_signed_out_then_the_session_survives_a_reload_until_signing_out(review_store: ReviewStore, server: str,
                                                                                   browser: Any) -> None:
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, _ = seed_task(review_store, "ann1")
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{server}/editor?task={task_pk}&turn=3")
    expect(page.get_by_text("Please sign in.")).to_be_visible(timeout=FIRST_LOAD_MS)  # the server's first page
    fill_sign_in(page, "ann1")
    frame = editor(page)
    expect(frame.locator(".turn.selected .num")).to_have_text("3")
    expect(frame.get_by_role("textbox", name="Turn 3 text")).to_be_focused()
    expect(page).to_have_url(f"{server}/editor?task={task_pk}&turn=3")
    frame.get_by_role("textbox", name="Turn 3 text").press("Alt+ArrowDown")
    expect(page).to_have_url(f"{server}/editor?task={task_pk}&turn=4")  # the address bar follows the open turn
    page.reload()
    frame = editor(page)  # still signed in: no sign-in form
    expect(frame.locator(".turn.selected .num")).to_have_text("4")
    second = context.new_page()  # another tab of the same browser shares the session
    second.goto(f"{server}/editor?task={task_pk}")
    editor(second)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("Please sign in.")).to_be_visible()
    second.reload()
    expect(second.get_by_text("Please sign in.")).to_be_visible()  # signed out everywhere: the session was revoked
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    with review_store.store.session() as session:
        (row,) = session.scalars(select(models.WebSession)).all()
        assert row.revoked_at is not None
    context.close()


def canvas_point(frame: Any, t: float, lane: int) -> tuple[float, float]:
    """Where time `t` in speaker lane `lane` is on the waveform, in page coordinates (from the window it shows)."""
    canvas = frame.locator("canvas#wave")
    box = canvas.bounding_box()
    start, end = (float(canvas.get_attribute(f"data-{edge}")) for edge in ("start", "end"))
    return box["x"] + (t - start) / (end - start) * box["width"], box["y"] + 90 + 18 * lane + 9


def spread_over(words: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    """`words` laid end to end over start..end, each a share by its length plus one, marked spread (the rule the
    editor and asr.alignment.spread share)."""
    total = sum(len(w["text"]) + 1 for w in words)
    out, at = [], start
    for w in words:
        step = (end - start) * (len(w["text"]) + 1) / total
        out.append({**w, "start": round(at, 3), "end": round(min(at + step, end), 3), "spread": True})
        at += step
    return out


def outside(turns: list[dict[str, Any]]) -> list[str]:
    """The stored words that do not lie within their turn."""
    return [f"{t['start']}-{t['end']}: {w}" for t in turns for w in t["words"] if not t["start"] <= w["start"] <= w["end"] <= t["end"]]


def test_boundary_drags_and_nudges_keep_the_words_inside_their_turn(review_store: ReviewStore, server: str, browser: Any) -> None:
    """Drag turn 1's end back past its last words and nudge turn 3's start into its first word: the words cut
    are clipped, the words passed are spread over the turn (marked spread); that is what is saved, the background
    aligner then times the spread words to the audio, a reload shows those, and Submit (clicked) keeps them."""
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, _ = seed_task(review_store, "ann1")
    truth = _model_turns(review_store, task_pk)
    first, third = truth[0], truth[2]
    page = new_context(browser).new_page()
    page.goto(f"{server}/editor?task={task_pk}")
    fill_sign_in(page, "ann1")
    frame = editor(page)
    x0, y = canvas_point(frame, first["end"], lane=0)
    x1, _ = canvas_point(frame, first["words"][6]["start"] - 0.1, lane=0)  # back past "table for three, please."
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, y)
    page.mouse.move(x1, y)
    page.mouse.up()
    field = frame.get_by_role("textbox", name="Turn 3 text")
    field.click()
    field.evaluate("(el) => { el.kept = true; }")
    field.press("Alt+w")  # start 0.1 s later: into "Could"
    expect(frame.locator('.turn[data-i="2"] .times')).to_have_text(f"{third['start'] + 0.1:.2f}–{third['end']:.2f} s")
    assert field.evaluate("(el) => el.kept === true && document.activeElement === el"), \
        "the row was patched in place: the same field, still focused (rebuilding it cost most of a nudge's time)"
    wait_saved(frame)

    saved = person_turns(review_store, task_pk)  # the draft as saved (the background aligner may have followed it)
    assert outside(saved) == []
    end = saved[0]["end"]
    assert end < first["words"][6]["start"] - 0.05, "dragged back past the last four words"
    want = spread_over(first["words"], first["start"], end)
    assert [(w["text"], w["probability"], w.get("spread")) for w in saved[0]["words"]] == \
        [(w["text"], w["probability"], True) for w in want]
    assert max(abs(a[k] - b[k]) for a, b in zip(saved[0]["words"], want) for k in ("start", "end")) <= 0.0011
    start = round(third["start"] + 0.1, 3)
    assert third["words"][0]["start"] < start < third["words"][0]["end"], "the nudge cuts the first word"
    assert saved[2]["start"] == start
    assert saved[2]["words"] == [dict(third["words"][0], start=start), *third["words"][1:]], "the cut word is clipped"

    # the background aligner times the spread words to the audio; after a reload the browser holds the stored words
    eventually(lambda: not any(w.get("spread") for w in head_turns(review_store, task_pk)[0]["words"]),
               "the spread words aligned in the background", timeout=120)
    aligned = head_turns(review_store, task_pk)
    assert aligned[1:] == saved[1:] and [w["text"] for w in aligned[0]["words"]] == [w["text"] for w in saved[0]["words"]]
    page.reload()
    frame = editor(page)
    titles = frame.locator('.turn[data-i="0"] .words span').evaluate_all("(spans) => spans.map((s) => s.title.split(' ')[0])")
    assert titles == [f"{w['start']:.2f}" for w in aligned[0]["words"]], "the browser holds the stored words after a reload"
    expect(frame.get_by_role("status")).to_contain_text("All changes saved")

    # Submit, as a person clicks it: the task is handed on with the words the browser holds (the aligned ones)
    frame.get_by_role("button", name="Submit").click()
    expect(frame.get_by_role("status")).to_have_text("Submitted. Thank you!", timeout=60000)
    expect(frame.get_by_role("textbox", name="Turn 1 text")).not_to_be_editable()
    with review_store.store.session() as session:
        task = session.get(models.Task, task_pk)
        head = session.get(models.TranscriptRevision, task.head_revision_pk)
        assert task.state == "submitted" and head.stage == "submitted" and head.author == "ann1"
        assert len(session.scalars(select(models.TranscriptRevision).where(
            models.TranscriptRevision.task_pk == task_pk, models.TranscriptRevision.stage == "submitted")).all()) == 1
    submitted = head_turns(review_store, task_pk)
    assert outside(submitted) == []
    assert [w["text"] for w in submitted[0]["words"]] == [w["text"] for w in first["words"]]
    assert submitted[0]["words"] == aligned[0]["words"], "the spread words the browser sent give way to the aligned ones"
    assert submitted[2]["words"] == saved[2]["words"], "clipped words are timed words: kept"


def test_the_editing_loop_then_submit_review_and_the_managers_pages(review_store: ReviewStore, server: str, browser: Any,
                                                                    tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from tests.review_ui.conftest import words_for

    review_store.add_user("ann1", "annotator")
    review_store.add_user("rev1", "reviewer")
    review_store.add_user("mgr1", "manager")
    task_pk, _ = seed_task(review_store, "ann1")
    truth = _model_turns(review_store, task_pk)
    shot = Shots(tmp_path / "screenshots")
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{server}/editor?task={task_pk}")
    fill_sign_in(page, "ann1")
    frame = editor(page)
    turn = lambda n: frame.get_by_role("textbox", name=f"Turn {n} text")  # noqa: E731

    # split turn 1 at the text cursor (after "Hello,"): at the start of the second word's timing
    turn(1).click()
    turn(1).evaluate("(el) => el.setSelectionRange(6, 6)")
    turn(1).press("Alt+Enter")
    expect(turn(1)).to_have_value("Hello,")
    expect(turn(2)).to_have_value("I'd like to book a table for three, please.")
    expect(turn(2)).to_be_focused()
    # speaker by number, undo and redo
    turn(2).press("Alt+2")
    expect(frame.get_by_role("combobox", name="Turn 2 speaker")).to_have_value("spk-0002")
    turn(2).press("Control+z")
    expect(frame.get_by_role("combobox", name="Turn 2 speaker")).to_have_value("spk-0001")
    turn(2).press("Control+Shift+z")
    expect(frame.get_by_role("combobox", name="Turn 2 speaker")).to_have_value("spk-0002")
    # merge with the previous turn, then undo it
    turn(2).press("Alt+Backspace")
    expect(turn(1)).to_have_value("Hello, I'd like to book a table for three, please.")
    expect(frame.locator(".turn")).to_have_count(len(truth))
    frame.get_by_role("button", name="Undo").click()
    expect(frame.locator(".turn")).to_have_count(len(truth) + 1)
    # nudge turn 4's start (0.1 s later), drag turn 5's end (lane 2) on the waveform to 11.0 s
    turn(4).click()
    turn(4).press("Alt+w")
    x0, y = canvas_point(frame, truth[3]["end"], lane=1)
    x1, _ = canvas_point(frame, 11.0, lane=1)
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, y)
    page.mouse.move(x1, y)
    page.mouse.up()
    expect(frame.locator('.turn[data-i="4"] .meta')).to_contain_text(re.compile(r"–(10\.9[5-9]|11\.0[0-5]) s"))
    # find / replace across the task, rename a speaker everywhere
    frame.get_by_role("textbox", name="Find").fill("three")
    frame.get_by_role("textbox", name="Replace with").fill("five")
    frame.get_by_role("button", name="Replace all").click()
    expect(turn(2)).to_have_value("I'd like to book a table for five, please.")
    frame.get_by_role("combobox", name="Speaker to rename").select_option("spk-0001")
    frame.get_by_role("textbox", name="New speaker name").fill("Guest")
    frame.get_by_role("button", name="Rename speaker").click()
    expect(frame.get_by_role("combobox", name="Turn 1 speaker")).to_have_value("Guest")
    # playback speed, then play from a click on the waveform
    frame.get_by_role("combobox", name="Playback speed").select_option("1.5")
    x, y = canvas_point(frame, 2.0, lane=0)
    page.mouse.click(x, y - 60)
    frame.locator("#player").evaluate("(a) => new Promise((ok) => a.addEventListener('timeupdate', ok, {once: true}))")
    assert frame.locator("#player").evaluate("(a) => [a.playbackRate, a.paused]") == [1.5, False]
    assert frame.locator("#player").evaluate("(a) => a.currentTime") >= 1.9, "played from the clicked time"
    frame.get_by_role("button", name="Play or pause").click()
    wait_saved(frame)
    shot(page, "editor-edited")

    # what the store holds, derived from the model's turns by the edits above
    split_at = words_for(truth[0])[1]["start"]
    expected = [dict(truth[0], speaker="Guest", end=split_at, text="Hello,"),
                dict(truth[0], speaker="spk-0002", start=split_at, text="I'd like to book a table for five, please."),
                dict(truth[1]), dict(truth[2], speaker="Guest", start=round(truth[2]["start"] + 0.1, 3)), dict(truth[3]),
                *[dict(t, speaker="Guest" if t["speaker"] == "spk-0001" else t["speaker"]) for t in truth[4:]]]
    saved = head_turns(review_store, task_pk)
    assert [(t["speaker"], t["start"], t["text"]) for t in saved] == [(t["speaker"], t["start"], t["text"]) for t in expected]
    assert [t["end"] for t in saved[:4]] == [e["end"] for e in expected[:4]]
    assert abs(saved[4]["end"] - 11.0) < 0.05, "dragged to 11.0 s (one pixel is about 0.02 s here)"
    assert saved[2]["words"] == truth[1]["words"], "untouched turns keep their word timings"

    frame.get_by_role("button", name="Submit").click()  # aligns the words of the split turns: seconds on a busy CPU
    expect(frame.get_by_role("status")).to_have_text("Submitted. Thank you!", timeout=60000)
    expect(page.get_by_text("Submitted. Thank you!").first).to_be_visible(timeout=30000)
    expect(turn(1)).not_to_be_editable()
    shot(page, "submitted")
    page.get_by_role("button", name="Sign out").click()
    wait_idle(page)

    sign_in(page, server, "rev1")
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    page.get_by_role("button", name="Review task").first.click()
    frame = editor(page)
    expect(frame.get_by_role("textbox", name="Turn 2 text")).to_have_value("I'd like to book a table for five, please.")
    expect(frame.get_by_role("textbox", name="Turn 2 text")).to_be_editable()  # a reviewer may edit before accepting
    expect(frame.get_by_role("button", name="Submit")).to_be_hidden()
    shot(page, "review")
    page.get_by_role("button", name="Accept transcript").click()
    page.get_by_text("Accepted.").wait_for()
    page.get_by_role("button", name="Sign out").click()
    wait_idle(page)

    sign_in(page, server, "mgr1")
    chart = '[data-testid="stVegaLiteChart"] canvas, [data-testid="stVegaLiteChart"] svg'
    for link, heading, drawn in (("Coverage", "Coverage funnel", '[data-testid="stTable"] table'), ("Quality", "Quality", chart)):
        page.get_by_role("link", name=link).click()
        page.get_by_role("heading", name=heading).wait_for()
        wait_idle(page)
        assert page.locator('[data-testid="stException"]').count() == 0, f"the {link} page raised"
        page.locator(drawn).first.wait_for()
        shot(page, link.lower())
    context.close()
    with review_store.store.session() as session:
        stages = session.scalars(select(models.TranscriptRevision.stage).where(models.TranscriptRevision.task_pk == task_pk)
                                 .order_by(models.TranscriptRevision.pk)).all()
        assert stages[-2:] == ["submitted", "approved"] and session.get(models.Task, task_pk).state == "accepted"
