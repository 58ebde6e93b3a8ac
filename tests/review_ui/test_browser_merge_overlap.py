"""Merging a backchannel into the turn it overlaps still saves (a real browser against `turnscribe ui`).

The diarizer keeps overlapped speech as overlapping turns: a "mm-hmm" under the other speaker's turn is a turn of
its own whose words lie inside the earlier turn's. Merging it into that turn used to join the two word lists as
they were, so the merged turn's words went back in time; the server refuses such words (`edit_limits`), and every
save of the task was refused until the person undid the merge. The merged turn's words are now spread again
(and aligned on the server) when they would not follow one another.
"""

from __future__ import annotations

from typing import Any

from store import models
from tests.review_ui.conftest import ReviewStore
from tests.review_ui.test_browser_e2e import browser, server, store  # noqa: F401 - the same SQLite store, server and browser
from tests.review_ui.test_browser_e2e import eventually, head_turns, new_context, sign_in, wait_saved
from tests.review_ui.test_browser_long_task_keys import open_at

BACKCHANNEL = "mm-hmm"


def _task_with_a_backchannel(rs: ReviewStore, assignee: str) -> tuple[int, list[dict[str, Any]]]:
    """dlg001's model turns with the other speaker's "mm-hmm" inside the first turn, as turn 2; (task, model turns)."""
    with rs.store.session() as session:
        first = session.get(models.TranscriptRevision, rs.model_revision_pks[rs.recording_pks[0]])
        turns = [dict(t, words=[dict(w) for w in t["words"]]) for t in first.turns]
        host, other = turns[0], next(t["speaker"] for t in turns if t["speaker"] != turns[0]["speaker"])
        start = host["words"][1]["start"]  # under the host's second word
        assert host["words"][-1]["end"] > start + 0.5, "the host turn outlasts the backchannel"
        turns.insert(1, {"speaker": other, "start": start, "end": round(start + 0.4, 3), "text": BACKCHANNEL,
                         "words": [{"text": BACKCHANNEL, "start": start, "end": round(start + 0.4, 3), "probability": 0.8}]})
        model = models.TranscriptRevision(recording_pk=first.recording_pk, author_kind="model", author="overlap-model",
                                          turns=turns, stage="model")
        task = models.Task(kind="annotate", recording_pk=rs.recording_pks[0], assignee=assignee, state="open")
        session.add_all([model, task])
        session.commit()
        return task.pk, turns


def test_merging_a_backchannel_into_the_turn_it_overlaps_saves_with_words_in_time_order(
        review_store: ReviewStore, server: str, browser: Any) -> None:
    from playwright.sync_api import expect

    review_store.add_user("ann1", "annotator")
    task_pk, truth = _task_with_a_backchannel(review_store, "ann1")
    context = new_context(browser)
    page = context.new_page()
    sign_in(page, server, "ann1")
    frame = open_at(page, server, task_pk, 2)  # the backchannel's field has the focus
    page.keyboard.press("Alt+Backspace")  # the advertised "merge with the previous turn"
    joined = f'{truth[0]["text"].strip()} {BACKCHANNEL}'
    expect(frame.locator('textarea[aria-label="Turn 1 text"]')).to_have_value(joined)
    page.keyboard.press("Control+s")
    wait_saved(frame)
    eventually(lambda: [t["text"] for t in head_turns(review_store, task_pk)][:2] == [joined, truth[2]["text"]],
               "the merged turn saved")
    merged = head_turns(review_store, task_pk)[0]
    starts = [w["start"] for w in merged["words"]]
    assert starts == sorted(starts) and [w["text"] for w in merged["words"]] == joined.split(), merged["words"]
    assert (merged["start"], merged["end"]) == (truth[0]["start"], truth[0]["end"]), "the host's bounds hold both"
    context.close()
