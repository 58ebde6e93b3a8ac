"""A save from the editor reruns only the editor's fragment (not the app): in a real browser against a
running `turnscribe ui`, each save is still stored and acknowledged, and the sign-in is still checked
on every such rerun (a save's, or a poll's for aligned words): a tab whose session was revoked (signed
out in another tab) stores nothing more and shows the sign-in form.
"""

from __future__ import annotations

from typing import Any

from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_browser_e2e import browser, server, store  # noqa: F401 - the same SQLite store, server and browser
from tests.review_ui.test_browser_e2e import _model_turns, editor, fill_sign_in, head_turns, new_context, wait_saved


def test_saves_are_stored_and_acknowledged_and_a_signed_out_tab_stores_nothing_more(review_store: ReviewStore, server: str,
                                                                                    browser: Any) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    from tests.review_ui.test_browser_e2e import seed_task

    review_store.add_user("ann1", "annotator")
    task_pk, _ = seed_task(review_store, "ann1")
    first_text = _model_turns(review_store, task_pk)[0]["text"]
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{server}/editor?task={task_pk}")
    fill_sign_in(page, "ann1")
    frame = editor(page)
    wait_saved(frame)
    field = frame.get_by_role("textbox", name="Turn 1 text")
    typed = ""
    for n in range(1, 4):  # three saves in a row, each answered by the fragment's rerun with the next version
        field.click()
        field.press("End")
        field.type(f" save{n}")
        typed += f" save{n}"
        field.press("Control+s")
        expect(frame.get_by_role("status")).to_have_text(f"All changes saved · version {n}", timeout=20000)
        assert head_turns(review_store, task_pk)[0]["text"] == first_text + typed
    other = context.new_page()  # another tab of the same browser signs out: the session is revoked
    other.goto(f"{server}/editor?task={task_pk}")
    editor(other)
    other.get_by_role("button", name="Sign out").click()
    expect(other.get_by_text("Please sign in.")).to_be_visible()
    try:  # this tab may have noticed already: its polls for aligned words rerun the fragment as well
        field.click(timeout=5000)
        field.press("End")
        field.type(" afterSignOut")
        field.press("Control+s")
    except PlaywrightTimeout:
        pass
    expect(page.get_by_text("Please sign in.")).to_be_visible(timeout=20000)  # the fragment's rerun checked the sign-in
    page.wait_for_timeout(1500)
    assert head_turns(review_store, task_pk)[0]["text"] == first_text + typed, "nothing stored for a revoked session"
    context.close()
