"""In a real browser against a real `turnscribe ui` (the fixtures of test_browser_e2e): a transcriber
marks personal data from a text selection with the advertised key and unmarks it, and the marks are in
the store and back after a reload; a reviewer pins a comment to Turn 5, the transcriber follows it,
splits turn 2 and the comment names Turn 6, the same words; the reviewer edits, then accepts, and the
history names the reviewer; the spectrogram of the window in view is drawn from the window's own
samples. Screenshots at 1440x900 go to test-artifacts/ui/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from sqlalchemy import select

from store import models
from store.pii_spans import Span, spans_for_revision
from review_ui.editing import REVIEW_EDIT, open_task, submit
from review_ui.realign import Realigner
from review_ui.review import review_queue
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_browser_e2e import (  # noqa: F401  (browser, server and store are fixtures: SQLite only)
    Shots, browser, editor, eventually, fill_sign_in, new_context, seed_task, server, sign_in, store, wait_idle,
    wait_saved,
)


def _spans(rs: ReviewStore, task_pk: int) -> list[Span]:
    with rs.store.session() as session:
        return spans_for_revision(session, session.get(models.Task, task_pk).head_revision_pk)


def test_personal_data_marked_from_a_selection_with_the_key_survives_a_reload_and_is_unmarked(
        review_store: ReviewStore, server: str, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, _ = seed_task(review_store, "ann1")
    shot = Shots(tmp_path / "screenshots")
    page = new_context(browser).new_page()
    page.goto(f"{server}/editor?task={task_pk}&turn=2")
    fill_sign_in(page, "ann1")
    frame = editor(page)
    field = frame.get_by_role("textbox", name="Turn 2 text")
    text = field.input_value()
    words = text.split()
    assert len(words) >= 3
    # select the second and third words with the mouse's result (a character range), choose the kind, press Alt+M
    start = text.index(words[1], len(words[0]))
    end = text.index(words[2], start + len(words[1])) + len(words[2])
    frame.get_by_role("combobox", name="Kind of personal data").select_option("name")
    field.click()
    field.evaluate(f"(el) => el.setSelectionRange({start}, {end})")
    field.press("Alt+m")
    marked = frame.locator('.turn[data-i="1"] .pii-marks mark')
    expect(marked).to_have_text(f"{words[1]} {words[2]}")
    wait_saved(frame)
    assert _spans(review_store, task_pk) == [Span(1, 1, 3, "name", "ann1")], "words 1-2 (0-based) of the second turn"
    frame.locator("details summary").click()
    expect(frame.locator("#keys")).to_contain_text("Alt+M mark the selected words as personal data")
    shot(page, "editor-personal-data")

    page.reload()  # stored, not just drawn: back after a reload
    frame = editor(page)
    expect(frame.locator('.turn[data-i="1"] .pii-marks mark')).to_have_text(f"{words[1]} {words[2]}")
    # a text edit in front of the words: the mark follows them
    field = frame.get_by_role("textbox", name="Turn 2 text")
    field.click()
    field.press("Home")
    field.type("Well ")
    wait_saved(frame)
    eventually(lambda: _spans(review_store, task_pk) == [Span(1, 2, 4, "name", "ann1")], "the mark carried to the saved edit")
    expect(frame.locator('.turn[data-i="1"] .pii-marks mark')).to_have_text(f"{words[1]} {words[2]}")
    # unmark from a selection of one of the words, with the toolbar button
    text = field.input_value()
    at = text.index(words[2], text.index(words[1]) + len(words[1]))
    field.evaluate(f"(el) => el.setSelectionRange({at}, {at + 2})")
    frame.get_by_role("button", name="Unmark personal data in selected words").click()
    expect(frame.locator('.turn[data-i="1"] .pii-marks mark')).to_have_count(0)
    eventually(lambda: _spans(review_store, task_pk) == [], "unmarked in the store")
    page.reload()
    frame = editor(page)
    expect(frame.get_by_role("textbox", name="Turn 2 text")).to_have_value(f"Well {' '.join(words)}")
    expect(frame.locator(".pii-marks mark")).to_have_count(0)


def test_reviewer_pins_a_comment_to_turn_5_it_follows_a_split_and_the_reviewer_edits_then_accepts(
        review_store: ReviewStore, server: str, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    ann1 = review_store.add_user("ann1", "annotator")
    rev1 = review_store.add_user("rev1", "reviewer")
    task_pk, _ = seed_task(review_store, "ann1")
    with review_store.store.session() as session:
        view = open_task(session, ann1, review_store.store.blobs, task_pk)
        submit(session, ann1, task_pk, view.version, view.turns, turn_ids=view.turn_ids,
               realigner=Realigner.of(review_store.store))
        (item,) = review_queue(session, rev1)
    pinned_text = view.turns[4]["text"]
    shot = Shots(tmp_path / "screenshots")
    context = new_context(browser)
    page = context.new_page()

    # the reviewer pins a comment to Turn 5 (numbered as the editor shows it) and sends the work back
    sign_in(page, server, "rev1")
    page.get_by_role("button", name="Review task").first.click()
    frame = editor(page)
    expect(frame.get_by_role("textbox", name="Turn 5 text")).to_be_editable()  # the same editor, editable
    expect(frame.get_by_role("button", name="Submit")).to_be_hidden()
    page.get_by_role("combobox", name="Pin the comment to turn").click()
    page.keyboard.type("Turn 5: ")
    page.keyboard.press("Enter")
    wait_idle(page)
    expect(page.get_by_role("combobox", name="Pin the comment to turn")).to_have_value(re.compile(r"^Turn 5: .*" + re.escape(pinned_text[:20])))
    page.get_by_role("textbox", name="Comment for the annotator").fill("The speaker changes here.")
    page.get_by_role("textbox", name="Comment for the annotator").press("Control+Enter")
    wait_idle(page)
    page.get_by_role("button", name="Send back").click()
    page.get_by_text("Sent back to the annotator.").wait_for()
    page.get_by_role("button", name="Sign out").click()
    wait_idle(page)

    # the transcriber sees it on Turn 5, follows the link there, splits turn 2: it now says Turn 6, the same words
    sign_in(page, server, "ann1")
    page.goto(f"{server}/editor?task={task_pk}")
    frame = editor(page)
    expect(page.get_by_text("Reviewer rev1 on Turn 5: The speaker changes here.")).to_be_visible()
    expect(page.get_by_role("button", name="Accept transcript")).to_have_count(0)  # a transcriber cannot accept
    page.get_by_role("link", name="Go to Turn 5").click()
    frame = editor(page)
    expect(frame.locator(".turn.selected .num")).to_have_text("5")
    expect(frame.get_by_role("textbox", name="Turn 5 text")).to_have_value(pinned_text)
    turn2 = frame.get_by_role("textbox", name="Turn 2 text")
    turn2.click()
    cut = turn2.input_value().index(" ") + 1
    turn2.evaluate(f"(el) => el.setSelectionRange({cut}, {cut})")
    turn2.press("Alt+Enter")
    wait_saved(frame)
    wait_idle(page)
    expect(page.get_by_text("Reviewer rev1 on Turn 6: The speaker changes here.")).to_be_visible()
    shot(page, "editor-comment-pinned")
    page.get_by_role("link", name="Go to Turn 6").click()
    frame = editor(page)
    expect(frame.locator(".turn.selected .num")).to_have_text("6")
    expect(frame.get_by_role("textbox", name="Turn 6 text")).to_have_value(pinned_text)
    frame.get_by_role("button", name="Submit").click()
    expect(frame.get_by_role("status")).to_have_text("Submitted. Thank you!", timeout=60000)  # the split turns are aligned
    page.get_by_role("button", name="Sign out").click()
    wait_idle(page)

    # the reviewer edits turn 1, then accepts: the edit is what is approved, and the history names the reviewer
    sign_in(page, server, "rev1")
    page.get_by_role("button", name="Review task").first.click()
    frame = editor(page)
    turn1 = frame.get_by_role("textbox", name="Turn 1 text")
    turn1.click()
    turn1.press("End")
    turn1.type(" (checked)")
    wait_saved(frame)
    wait_idle(page)
    page.get_by_text("History (diff against the model's pre-annotation)").click()
    wait_idle(page)
    expect(page.locator('[data-testid="stMarkdownContainer"]', has_text=re.compile(r"^review_edit by rev1 at "))).to_be_visible()
    shot(page, "review-edit")
    page.get_by_role("button", name="Accept transcript").click()
    # the reviewer's edited turn is aligned by the model at acceptance (`review.accept`, align_now): as for Submit
    # above, 60 s (under a loaded 2-core machine the default 30 s ran out once)
    page.get_by_text("Accepted.").wait_for(timeout=60000)
    context.close()
    with review_store.store.session() as session:
        revisions = session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.task_pk == task_pk)
                                    .order_by(models.TranscriptRevision.pk)).all()
        # the background aligner may add its revision of the reviewer's edit (author_kind "aligner") before the accept
        by_people = [(r.stage, r.author) for r in revisions if r.author_kind != "aligner"]
        assert by_people[-2:] == [(REVIEW_EDIT, "rev1"), ("approved", "rev1")], by_people
        since_edit = revisions[[r.author for r in revisions].index("rev1"):]
        assert all(r.author == "rev1" or r.author_kind == "aligner" for r in since_edit), [(r.stage, r.author) for r in since_edit]
        assert revisions[-1].turns[0]["text"].endswith(" (checked)") and session.get(models.Task, task_pk).state == "accepted"
        assert revisions[-1].turns[5]["text"] == pinned_text


def test_the_spectrogram_of_the_window_in_view_is_drawn_from_its_samples(review_store: ReviewStore, server: str, browser: Any,
                                                                         tmp_path: Path) -> None:
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, _ = seed_task(review_store, "ann1")
    page = new_context(browser).new_page()
    page.goto(f"{server}/editor?task={task_pk}")
    fill_sign_in(page, "ann1")
    frame = editor(page)
    toggle = frame.get_by_role("button", name="Show spectrogram of the audio in view")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(frame.get_by_role("img", name=re.compile("Spectrogram"))).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    canvas = frame.locator("#spectrogram")
    expect(canvas).to_be_visible()
    expect(canvas).to_have_attribute("data-rate", "16000")
    start, end = float(canvas.get_attribute("data-start")), float(canvas.get_attribute("data-end"))
    pixels = canvas.evaluate("""(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height);
        return {w: c.width, h: c.height, grey: Array.from(d.data.filter((_, i) => i % 4 === 0))}; }""")
    image = np.array(pixels["grey"], dtype=float).reshape(pixels["h"], pixels["w"])
    Shots(tmp_path / "screenshots")(page, "editor-spectrogram")

    # independently, from the stored working copy: each column's loudness (RMS in dB over the same 512 samples)
    with review_store.store.session() as session:
        recording = session.get(models.Recording, session.get(models.Task, task_pk).recording_pk)
        path = review_store.store.blobs.path_for(recording.working_sha256)
    samples, rate = sf.read(path, start=int(round(start * 16000)), stop=int(round(end * 16000)), dtype="float32")
    assert rate == 16000
    centres = ((np.arange(pixels["w"]) + 0.5) / pixels["w"] * samples.size).astype(int)
    padded = np.pad(samples, 256)
    loudness = np.array([10 * np.log10(np.mean(padded[c:c + 512] ** 2) + 1e-10) for c in centres])
    brightness = image[image.shape[0] // 2:].mean(axis=0)  # 0-4 kHz, where speech's energy is (row 0 is the top: 8 kHz)
    assert np.corrcoef(brightness, loudness)[0, 1] > 0.8, "bright where the window is loud, dark where it is quiet"
    speech = loudness > np.percentile(loudness, 70)
    low, high = image[-image.shape[0] // 4:, speech].mean(), image[: image.shape[0] // 4, speech].mean()
    assert low > high + 10, f"speech is strongest at the bottom (0-2 kHz: {low:.0f}) rather than the top (6-8 kHz: {high:.0f})"
