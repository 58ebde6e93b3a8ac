"""The editor in a real browser when things go wrong: the server goes away for 10 s while the person
types, and two tabs save the same task (a three-way conflict resolved turn by turn).

The same real `turnscribe ui` server and Debian chromium as test_browser_e2e; what the store
holds afterwards is derived from the model's turns and the edits made here.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_browser_e2e import browser, server, store  # noqa: F401 - the same SQLite store, server and browser
from tests.review_ui.test_browser_e2e import (CHROMIUM, _free_port, _model_turns, editor, eventually, fill_sign_in,
                                              head_turns, new_context, running_ui, seed_task, wait_saved)

DOWN_S = 10.0


def test_typing_before_and_while_the_server_is_gone_for_10_s_is_saved_once_it_is_back(review_store: ReviewStore,
                                                                                     tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    review_store.add_user("ann1", "annotator")
    task_pk, _ = seed_task(review_store, "ann1")
    truth = _model_turns(review_store, task_pk)
    port = _free_port()
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"])
        chromium.requests = []  # type: ignore[attr-defined]
        context = new_context(chromium)
        page = context.new_page()
        first = running_ui(review_store.store, tmp_path, port)
        url = first.__enter__()
        try:
            page.goto(f"{url}/editor?task={task_pk}&turn=2")
            fill_sign_in(page, "ann1")
            frame = editor(page)
            wait_saved(frame)
            field = frame.get_by_role("textbox", name="Turn 2 text")
            field.click()
            field.press("End")
            field.type(" beforeLoss")
        finally:
            first.__exit__(None, None, None)  # the server goes at once: before the debounced save of that typing
        gone_at = time.monotonic()
        field.type(" duringLoss", delay=30)  # keep typing (at a brisk person's pace), in this turn and another, then save
        third = frame.get_by_role("textbox", name="Turn 3 text")
        third.click()
        third.press("End")
        third.type(" whileGone", delay=30)
        third.press("Control+s")
        expect(frame.get_by_role("status")).to_contain_text("Server not answering", timeout=DOWN_S * 1000)
        assert [t["text"] for t in head_turns(review_store, task_pk)] in ([], [t["text"] for t in truth]), "nothing new while gone"
        time.sleep(max(0.0, DOWN_S - (time.monotonic() - gone_at)))
        with running_ui(review_store.store, tmp_path, port):
            expected = [t["text"] for t in truth]
            expected[1] += " beforeLoss duringLoss"
            expected[2] += " whileGone"
            eventually(lambda: [t["text"] for t in head_turns(review_store, task_pk)] == expected,
                       "the typing from before and during the outage", timeout=90)
            wait_saved(frame)
            expect(frame.get_by_role("textbox", name="Turn 2 text")).to_have_value(expected[1])
        saved = head_turns(review_store, task_pk)
        assert [(t["speaker"], t["start"], t["end"]) for t in saved] == [(t["speaker"], t["start"], t["end"]) for t in truth]
        context.close()
        chromium.close()
    outside = [u for u in chromium.requests if not u.startswith((url, "blob:", "data:", "about:"))]
    assert outside == [], f"the workbench reached outside its server: {outside[:5]}"


def test_two_tabs_conflict_and_the_three_way_view_stores_exactly_the_versions_chosen_per_turn(
        review_store: ReviewStore, server: str, browser: Any) -> None:
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, _ = seed_task(review_store, "ann1")
    truth = _model_turns(review_store, task_pk)
    context = new_context(browser)
    tab_a = context.new_page()
    tab_a.goto(f"{server}/editor?task={task_pk}")
    fill_sign_in(tab_a, "ann1")
    frame_a = editor(tab_a)
    tab_b = context.new_page()  # the same person, a second tab on the same task (signed in by the shared session)
    tab_b.goto(f"{server}/editor?task={task_pk}")
    frame_b = editor(tab_b)
    wait_saved(frame_b)

    for n, text in ((1, "theirs one"), (3, "theirs three")):  # tab A changes turns 1 and 3 and saves first
        frame_a.get_by_role("textbox", name=f"Turn {n} text").fill(text)
    frame_a.get_by_role("textbox", name="Turn 3 text").press("Control+s")
    wait_saved(frame_a)
    assert [t["text"] for t in head_turns(review_store, task_pk)[:3]] == ["theirs one", truth[1]["text"], "theirs three"]

    mine_two = truth[1]["text"].replace("Which", "What", 1)  # one word of turn 2
    assert mine_two != truth[1]["text"]
    for n, text in ((1, "mine one"), (2, mine_two)):  # tab B, still on version 0, changes turns 1 and 2
        frame_b.get_by_role("textbox", name=f"Turn {n} text").fill(text)
    frame_b.get_by_role("textbox", name="Turn 2 text").press("Control+s")
    notice = frame_b.locator("#notice.conflict")
    expect(notice).to_be_visible(timeout=20000)
    expect(notice).to_contain_text("ann1 saved version 1 after the version 0")
    cells = notice.locator(".diff > div")
    expect(cells).to_have_count(3 * 4)  # turns 1, 2 and 3 differ between mine and theirs: number, base, mine, theirs
    assert [cells.nth(4 * r + 1).inner_text().split(": ", 1)[1] for r in range(3)] == [t["text"] for t in truth[:3]], "base"
    assert [cells.nth(4 * r + c).get_attribute("class") for r in range(3) for c in (2, 3)] == \
        ["changed", "changed", "changed", "", "", "changed"], "each side is highlighted where it differs from the base"
    marks = [cells.nth(4 * r + c).locator("mark").all_inner_texts() for r in range(3) for c in (2, 3)]
    assert marks == [["mine", "one"], ["theirs", "one"], ["What"], [], [], ["theirs", "three"]], \
        "and within it, the words that side changed"
    # preselected: the side that changed the turn; where both did, mine until the person chooses
    expect(frame_b.get_by_role("radio", name="Turn 1: keep mine")).to_be_checked()
    expect(frame_b.get_by_role("radio", name="Turn 2: keep mine")).to_be_checked()
    expect(frame_b.get_by_role("radio", name="Turn 3: take theirs")).to_be_checked()
    frame_b.get_by_role("radio", name="Turn 1: take theirs").check()
    frame_b.get_by_role("button", name="Save my choices per turn").click()
    wait_saved(frame_b)
    expect(frame_b.get_by_role("textbox", name="Turn 1 text")).to_have_value("theirs one")

    saved = head_turns(review_store, task_pk)
    expected = [dict(t) for t in truth]
    expected[0]["text"], expected[1]["text"], expected[2]["text"] = "theirs one", mine_two, "theirs three"
    assert [(t["speaker"], t["start"], t["end"], t["text"]) for t in saved] == \
        [(t["speaker"], t["start"], t["end"], t["text"]) for t in expected]
    assert saved[3:] == truth[3:], "turns nobody touched keep their words and times"
    context.close()

