"""What made keys slow on a long task, checked as a person sees it in the real editor (a dialogue tiled to ~500
turns, served by a real `turnscribe ui`; see test_browser_long_task):

- walking back turn by turn loads a new audio window only once the turns before the window are reached (a window
  that began 2 s before the selected turn made nearly every "previous turn" key load one);
- the editor's frame keeps its height while the status changes between "Unsaved changes" and "All changes saved"
  (the toolbar wrapped with the longer text: every edit and save resized the frame, which Streamlit then laid out
  and repainted);
- a merge keeps the focus in the field the person is typing in (that field shows the merged turn): moving the
  focus to another text field costs a layout, most of a merge's time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_browser_e2e import browser, server, store  # noqa: F401 - the same SQLite store, server and browser
from tests.review_ui.test_browser_e2e import EDITOR_FRAME, eventually, head_turns, new_context, sign_in, wait_saved
from tests.review_ui.test_browser_long_task import tiled_task

SPAN_S = 30  # the window in view by default ("30 s")


def open_at(page: Any, server: str, task_pk: int, turn: int) -> Any:
    """The editor opened at `turn` (its text field focused), once the audio window is drawn."""
    frame = page.frame_locator(EDITOR_FRAME)
    page.goto(f"{server}/editor?task={task_pk}&turn={turn}")
    frame.locator(f'textarea[aria-label="Turn {turn} text"]:focus').wait_for(timeout=60000)
    frame.locator("canvas#wave[data-start]").wait_for(timeout=30000)
    return frame


def window_of(frame: Any) -> tuple[float, float]:
    return tuple(frame.locator("canvas#wave").evaluate("(c) => [Number(c.dataset.start), Number(c.dataset.end)]"))  # type: ignore[return-value]


def test_walking_back_turn_by_turn_loads_a_window_only_when_the_turns_leave_it(
        review_store: ReviewStore, server: str, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, truth, _ = tiled_task(review_store, "ann1", tmp_path)
    start, steps = 300, 24
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, server, "ann1")
    frame = open_at(page, server, task_pk, start)
    windows = [window_of(frame)]
    for k in range(start - 1, start - 1 - steps, -1):
        page.keyboard.press("Alt+ArrowUp")
        expect(frame.locator(f'textarea[aria-label="Turn {k} text"]')).to_be_focused()
        turn = truth[k - 1]
        # the selected turn's audio is in view (the window follows the selection), whichever rule placed it
        eventually(lambda: window_of(frame)[0] <= turn["start"] < window_of(frame)[1], f"turn {k} in the window", 15)
        if window_of(frame) != windows[-1]:
            windows.append(window_of(frame))
    walked = truth[start - 1]["end"] - truth[start - 1 - steps]["start"]
    # each window loaded while walking back holds ~SPAN_S - 4 s of turns before the one that asked for it
    most = 1 + math.ceil(walked / (SPAN_S - 4))
    assert len(windows) - 1 <= most, (f"{len(windows) - 1} windows loaded walking back {steps} turns ({walked:.0f} s of "
                                      f"audio, at most {most} needed): {windows}")
    context.close()


def test_the_frame_keeps_its_height_while_the_status_changes(review_store: ReviewStore, server: str, browser: Any,
                                                              tmp_path: Path) -> None:
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, truth, _ = tiled_task(review_store, "ann1", tmp_path)
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, server, "ann1")
    frame = open_at(page, server, task_pk, 3)
    wait_saved(frame)
    iframe = page.locator(EDITOR_FRAME)
    heights = {"saved": iframe.bounding_box()["height"]}
    field = frame.locator('textarea[aria-label="Turn 3 text"]')
    field.press("End")
    field.press_sequentially(" ok")
    expect(frame.get_by_role("status")).to_have_text("Unsaved changes")
    page.wait_for_timeout(300)  # a resize would reach the page within a frame or two
    heights["unsaved"] = iframe.bounding_box()["height"]
    wait_saved(frame)
    eventually(lambda: head_turns(review_store, task_pk)[2]["text"] == truth[2]["text"] + " ok", "the typing saved")
    page.wait_for_timeout(300)
    heights["saved again"] = iframe.bounding_box()["height"]
    assert len(set(heights.values())) == 1, f"the editor's frame changed its height with the status: {heights}"
    context.close()


def test_a_merge_keeps_the_focus_in_the_field_being_typed_in(review_store: ReviewStore, server: str, browser: Any,
                                                              tmp_path: Path) -> None:
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, truth, _ = tiled_task(review_store, "ann1", tmp_path)
    at = 200
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, server, "ann1")
    frame = open_at(page, server, task_pk, at)
    field = frame.locator(f'textarea[aria-label="Turn {at} text"]')
    field.evaluate("(el) => { el.dataset.probe = 'typed-in'; }")  # the element itself, wherever its row goes
    field.press("Alt+Backspace")
    merged = frame.locator('textarea[data-probe="typed-in"]')
    expect(merged).to_have_attribute("aria-label", f"Turn {at - 1} text")
    expect(merged).to_be_focused()
    joined = f'{truth[at - 2]["text"].strip()} {truth[at - 1]["text"].strip()}'
    expect(merged).to_have_value(joined)
    assert merged.evaluate("(el) => [el.selectionStart, el.selectionEnd]") == [len(truth[at - 2]["text"].strip()) + 1] * 2
    expect(frame.locator(f'textarea[aria-label="Turn {at - 1} text"]')).to_have_count(1)  # the earlier turn's row went
    page.keyboard.type("and ")
    typed = f'{truth[at - 2]["text"].strip()} and {truth[at - 1]["text"].strip()}'
    expect(merged).to_have_value(typed)
    eventually(lambda: [t["text"] for t in head_turns(review_store, task_pk)][at - 2:at] == [typed, truth[at]["text"]],
               "the merged turn, typed in, saved")
    page.keyboard.press("Control+z")  # undo the typing, then the merge: both turns and their rows are back
    page.keyboard.press("Control+z")
    expect(frame.locator(f'textarea[aria-label="Turn {at} text"]')).to_have_value(truth[at - 1]["text"])
    expect(frame.locator(f'textarea[aria-label="Turn {at - 1} text"]')).to_have_value(truth[at - 2]["text"])
    eventually(lambda: [t["text"] for t in head_turns(review_store, task_pk)] == [t["text"] for t in truth],
               "the merge undone is saved")
    context.close()
