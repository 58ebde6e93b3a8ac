"""In a real browser against a real `turnscribe ui` (the fixtures of test_browser_e2e): a transcriber
retypes a word of a turn, keeps the page open, and the turn's word times change from none to the ones
the server aligned in the background (tiny.en) without a reload; the played word is highlighted by
them and a click on a word plays from its aligned start; after a reload the words are the stored ones.
A screenshot at 1440x900 goes to test-artifacts/ui/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asr.alignment import spread
from store import models
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_browser_e2e import (  # noqa: F401  (browser, server and store are fixtures: SQLite only)
    Shots, browser, editor, eventually, fill_sign_in, new_context, seed_task, server, store, wait_saved,
)

CORRECTED = "Hello, I would like to book a table for three, please."  # dlg001's first turn says "I'd"


def _head(rs: ReviewStore, task_pk: int) -> models.TranscriptRevision:
    with rs.store.session() as session:
        head = session.get(models.TranscriptRevision, session.get(models.Task, task_pk).head_revision_pk)
        session.expunge(head)
        return head


def _shown(frame: Any, turn: int) -> list[tuple[str, float, float]]:
    """The words turn `turn` (0-based) shows: their text and the times they play from (data-start/data-end)."""
    return [(w["text"], float(w["start"]), float(w["end"])) for w in frame.locator(f'.turn[data-i="{turn}"] .words span').evaluate_all(
        "(spans) => spans.map((s) => ({text: s.textContent, start: s.dataset.start, end: s.dataset.end}))")]


def test_a_corrected_turn_shows_its_aligned_word_times_without_a_reload(
        review_store: ReviewStore, server: str, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, _ = seed_task(review_store, "ann1")
    shot = Shots(tmp_path / "screenshots")
    page = new_context(browser).new_page()
    page.goto(f"{server}/editor?task={task_pk}&turn=1")
    fill_sign_in(page, "ann1")
    frame = editor(page)
    field = frame.get_by_role("textbox", name="Turn 1 text")
    assert field.input_value() == "Hello, I'd like to book a table for three, please."
    frame.locator("body").evaluate("(body) => { window.sameDocument = true; }")
    field.fill(CORRECTED)
    wait_saved(frame)
    assert _shown(frame, 0) == [], "retyped words have no times until they are aligned"

    # the server aligns the draft in the background; the editor takes the words while the page stays open
    words = frame.locator('.turn[data-i="0"] .words span')
    expect(words).to_have_count(len(CORRECTED.split()), timeout=90000)
    head = _head(review_store, task_pk)
    assert head.author_kind == "aligner" and head.turns[0]["text"] == CORRECTED
    stored = [(w["text"], w["start"], w["end"]) for w in head.turns[0]["words"]]
    assert not any(w.get("spread") for w in head.turns[0]["words"])
    assert _shown(frame, 0) == stored, "the aligned words, as stored"
    laid = [(w.text, w.start, w.end) for w in spread(CORRECTED, head.turns[0]["start"], head.turns[0]["end"])]
    assert stored != laid, "aligned, not spread by length"
    would = next(w for w in stored if w[0] == "would")
    assert head.turns[0]["start"] < 2.0, "the first audio window starts at 0 s (player times are the recording's)"
    assert 1.2 < would[1] < would[2] < 2.0, "'would' lies where 'I'd' is said (1.53-1.73 s)"
    assert frame.locator("body").evaluate("() => window.sameDocument === true"), "no reload"
    expect(frame.get_by_role("status")).to_contain_text("All changes saved")

    # playback uses them: the word under the playhead is highlighted, a click plays from the word's start
    frame.locator("#player").evaluate(f"(p) => {{ p.pause(); p.currentTime = {(would[1] + would[2]) / 2}; }}")
    expect(frame.locator('.turn[data-i="0"] .words span.playing')).to_have_text("would")
    shot(page, "editor-aligned-words")
    frame.locator('.turn[data-i="0"] .words span', has_text="would").click()
    eventually(lambda: frame.locator("#player").evaluate("(p) => p.currentTime") >= would[1] - 0.01,
               "playing from the aligned start", timeout=10)
    assert frame.locator("#player").evaluate("(p) => p.currentTime") < would[1] + 1.0
    frame.locator("#player").evaluate("(p) => p.pause()")

    page.reload()  # after a reload: the stored words
    frame = editor(page)
    expect(frame.get_by_role("textbox", name="Turn 1 text")).to_have_value(CORRECTED)
    expect(frame.locator('.turn[data-i="0"] .words span')).to_have_count(len(CORRECTED.split()))
    assert _shown(frame, 0) == [(w["text"], w["start"], w["end"]) for w in _head(review_store, task_pk).turns[0]["words"]] == stored
