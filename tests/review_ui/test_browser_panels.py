"""The panels beside the editor show the saved state after a save, without a page load (a real browser against a
running `turnscribe ui`): the history lists the new revision, the caption the task's new state; and a tab whose
session expired stores nothing more and shows the sign-in form."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from store import models
from store.clock import utcnow
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_browser_e2e import browser, server, store  # noqa: F401 - the same SQLite store, server and browser
from tests.review_ui.test_browser_e2e import (FIRST_LOAD_MS, _model_turns, editor, fill_sign_in, head_turns, new_context,
                                              seed_task, wait_saved)

HISTORY = "History (diff against the model's pre-annotation)"


def test_the_history_and_the_caption_show_a_save_without_a_reload_and_an_expired_session_stores_nothing(
        review_store: ReviewStore, server: str, browser: Any) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, _ = seed_task(review_store, "ann1")
    first_text = _model_turns(review_store, task_pk)[0]["text"]
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{server}/editor?task={task_pk}")
    page.get_by_role("textbox", name="Username").wait_for(timeout=FIRST_LOAD_MS)
    fill_sign_in(page, "ann1")
    frame = editor(page)
    wait_saved(frame)
    expect(page.get_by_text(f"Task {task_pk} · open ·")).to_be_visible()
    page.get_by_text(HISTORY).click()
    expect(page.get_by_text("No saved revisions yet.")).to_be_visible(timeout=20000)
    page_loads = page.evaluate("performance.getEntriesByType('navigation').length")

    field = frame.get_by_role("textbox", name="Turn 1 text")
    field.click()
    field.press("End")
    field.type(" panels")
    field.press("Control+s")
    expect(frame.get_by_role("status")).to_have_text("All changes saved · version 1", timeout=20000)
    with review_store.store.session() as session:
        head = session.get(models.Task, task_pk).head_revision_pk
    expect(page.get_by_text(f"revision {head},")).to_be_visible(timeout=20000)  # "draft by ann1 at ... — revision N, 1 changed lines"
    expect(page.get_by_text("draft", exact=True).first).to_be_visible()
    expect(page.get_by_text(f"Task {task_pk} · in_progress ·")).to_be_visible()
    expect(page.get_by_text("No saved revisions yet.")).to_have_count(0)
    assert page.evaluate("performance.getEntriesByType('navigation').length") == page_loads
    assert page.evaluate("performance.getEntriesByType('navigation')[0].type") == "navigate", "no reload happened"

    # the session expires (as after its lifetime): the next save's rerun finds no sign-in and stores nothing
    with review_store.store.session() as session:
        session.execute(update(models.WebSession).values(expires_at=utcnow() - dt.timedelta(minutes=1)))
        session.commit()
    try:
        field.click(timeout=5000)
        field.press("End")
        field.type(" expired")
        field.press("Control+s")
    except PlaywrightTimeout:
        pass  # this tab may have noticed already (a poll for aligned words reruns the fragment too)
    expect(page.get_by_text("Please sign in.")).to_be_visible(timeout=20000)
    page.wait_for_timeout(1500)
    assert head_turns(review_store, task_pk)[0]["text"] == first_text + " panels", "nothing stored for an expired session"
    with review_store.store.session() as session:  # (the background aligner may have added its words on top)
        rev = models.TranscriptRevision
        assert session.scalars(select(rev.pk).where(rev.task_pk == task_pk, rev.author_kind == "person")).all() == [head]
        assert session.get(models.Task, task_pk).version == 1
    context.close()
