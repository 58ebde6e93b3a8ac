"""A long task in the real editor: only the rows near the viewport are built, yet keyboard navigation and
find/replace reach every turn, and moving or zooming the waveform never brings more audio than the window
in view (counted in the bytes the browser receives from the server).

The recording is a dialogue tiled to about twenty minutes (~500 turns), served by a real `turnscribe ui`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from store import models
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_browser_e2e import browser, server, store  # noqa: F401 - the same SQLite store, server and browser
from tests.review_ui.test_browser_e2e import editor, eventually, head_turns, new_context, sign_in, wait_saved

COPIES = 40
WAV_BYTES_PER_S = 16000 * 2  # the window is sent as 16 kHz mono PCM_16
PAGE_SLACK = 250_000  # what a script run sends besides the audio: peaks (100 pairs a second), page deltas


def tiled_task(rs: ReviewStore, assignee: str, folder: Path) -> tuple[int, list[dict[str, Any]], float]:
    """dlg001 repeated COPIES times as one recording with its model turns; (task pk, model turns, duration s)."""
    with rs.store.session() as session:
        first = session.get(models.Recording, rs.recording_pks[0])
        path = rs.store.blobs.path_for(first.working_sha256)
        model = session.get(models.TranscriptRevision, rs.model_revision_pks[first.pk])
        turns0 = list(model.turns)
    samples, rate = sf.read(path, dtype="int16")
    length = len(samples) / rate
    long_path = folder / "long.wav"
    sf.write(long_path, np.tile(samples, COPIES), rate, subtype="PCM_16")
    shift = lambda x, k: round(x + k * length, 3)  # noqa: E731
    turns = [{**t, "start": shift(t["start"], k), "end": shift(t["end"], k),
              "words": [{**w, "start": shift(w["start"], k), "end": shift(w["end"], k)} for w in t["words"]]}
             for k in range(COPIES) for t in turns0]
    with rs.store.session() as session:
        digest = rs.store.blobs.put_file(long_path)
        recording = models.Recording(protocol_pk=rs.protocol_row.pk, status="accepted", sha256=digest, working_sha256=digest,
                                     source_name="long.wav", duration_s=COPIES * length, sample_rate=rate, channels=1)
        session.add(recording)
        session.flush()
        session.add(models.TranscriptRevision(recording_pk=recording.pk, author_kind="model", author="tiled", turns=turns,
                                              stage="model"))
        task = models.Task(kind="annotate", recording_pk=recording.pk, assignee=assignee, state="open")
        session.add(task)
        session.commit()
        return task.pk, turns, COPIES * length


def test_a_long_task_renders_few_rows_reaches_every_turn_and_never_fetches_more_than_the_window(
        review_store: ReviewStore, server: str, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, truth, duration = tiled_task(review_store, "ann1", tmp_path)
    n = len(truth)
    context = new_context(browser)
    page = context.new_page()
    received: list[int] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: received.append(len(payload))))
    sign_in(page, server, "ann1")
    whole_file = int(duration * WAV_BYTES_PER_S)
    received.clear()
    page.goto(f"{server}/editor?task={task_pk}&turn=1")
    frame = editor(page)
    wait_saved(frame)
    opened, turns_json = sum(received), len(json.dumps(truth))
    assert opened < 30 * WAV_BYTES_PER_S + 1.2 * turns_json + PAGE_SLACK, \
        f"opening sent {opened} bytes: more than a 30 s window and the turns (the whole file is {whole_file})"

    rendered = frame.locator(".turn").count()
    assert 5 <= rendered <= 40, f"{rendered} of {n} rows built: only those near the viewport"
    expect(frame.get_by_role("textbox", name=f"Turn {n} text")).to_have_count(0)

    # zoom and scroll the waveform: each step brings at most the window in view
    canvas = frame.locator("canvas#wave")
    for label, span in (("10 s", 10), ("120 s", 120), ("60 s", 60)):
        received.clear()
        frame.get_by_role("combobox", name="Seconds in view").select_option(label=label)
        eventually(lambda: abs(canvas.evaluate("(c) => c.dataset.end - c.dataset.start") - span) < 0.5, f"a {label} window")
        page.wait_for_timeout(300)
        assert sum(received) <= span * WAV_BYTES_PER_S + PAGE_SLACK, f"zoom to {label}: {sum(received)} bytes"
    for _ in range(3):
        before = canvas.get_attribute("data-start")
        received.clear()
        frame.get_by_role("button", name="Show later audio").click()
        expect(canvas).not_to_have_attribute("data-start", before)
        page.wait_for_timeout(300)
        assert sum(received) <= 60 * WAV_BYTES_PER_S + PAGE_SLACK, f"scrolling later: {sum(received)} bytes"
    # scrolling the list of turns asks the server for nothing
    received.clear()
    frame.locator("#turns").hover()
    for _ in range(10):
        page.mouse.wheel(0, 2000)
    page.wait_for_timeout(500)
    assert sum(received) < 20_000, f"scrolling the turns fetched {sum(received)} bytes"
    assert frame.locator(".turn").count() <= 40

    # keyboard navigation reaches every turn, one after the other, down to the last
    frame.get_by_role("textbox", name="Turn 1 text").focus()
    for k in range(2, n + 1):
        page.keyboard.press("Alt+ArrowDown")
        if k % 100 == 0:
            expect(frame.get_by_role("textbox", name=f"Turn {k} text")).to_be_focused()
    last = frame.get_by_role("textbox", name=f"Turn {n} text")
    expect(last).to_be_focused()
    expect(last).to_have_value(truth[-1]["text"])
    expect(frame.locator(".turn.selected .num")).to_have_text(str(n))
    assert frame.locator(".turn").count() <= 40

    # find/replace reaches the turns that have no row now
    word = "three"
    count = sum(t["text"].count(word) for t in truth)
    assert count >= COPIES
    frame.get_by_role("textbox", name="Find").fill(word)
    frame.get_by_role("textbox", name="Replace with").fill("five")
    frame.get_by_role("button", name="Replace all").click()
    expected = [t["text"].replace(word, "five") for t in truth]
    eventually(lambda: [t["text"] for t in head_turns(review_store, task_pk)] == expected, "replaced in every turn", 40)
    page.mouse.wheel(0, -10_000_000)  # back at the top of the list: the first rows show the replacement
    frame.locator("#turns").evaluate("(el) => { el.scrollTop = 0; }")
    first = next(i for i, t in enumerate(truth) if word in t["text"])
    expect(frame.get_by_role("textbox", name=f"Turn {first + 1} text")).to_have_value(expected[first])
    context.close()
