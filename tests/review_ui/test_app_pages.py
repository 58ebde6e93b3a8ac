"""Page logic with Streamlit's AppTest: sign-in, whose tasks a page shows, role checks that
hold whatever the session state or URL says, and saving from the editor page (on SQLite and
PostgreSQL: the pages open the store the environment names, as the real server does)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from store import models
from store.accounts import Principal, load_principal
from review_ui.realign import Realigner
from review_ui.editing import open_task, save_draft, submit
from review_ui.review import accept, review_queue
from review_ui.session_auth import TOKEN_KEY, USER_KEY
from tests.review_ui.conftest import PASSWORD, ReviewStore
from tests.review_ui.test_editing import make_task

TIMEOUT = 60


def sign_in_page() -> None:
    from review_ui.views.sign_in import render_sign_in

    render_sign_in()


def queue_page() -> None:
    from review_ui.views.my_queue import render_my_queue

    render_my_queue()


def editor_page() -> None:
    from review_ui.views.editor import render_editor

    render_editor()


def coverage_page() -> None:
    from review_ui.views.coverage_funnel import render_coverage_funnel

    render_coverage_funnel()


def quality_page() -> None:
    from review_ui.views.quality import render_quality

    render_quality()


@pytest.fixture
def app_env(review_store: ReviewStore, monkeypatch: pytest.MonkeyPatch) -> ReviewStore:
    """Point the pages at the test store the same way `turnscribe ui` does: through the environment."""
    monkeypatch.setenv("TURNSCRIBE_HOME", str(review_store.store.settings.home))
    monkeypatch.setenv("TURNSCRIBE_DATABASE_URL", review_store.store.settings.database_url)
    return review_store


def page_as(script, username: str | None, **state: object) -> AppTest:  # type: ignore[no-untyped-def]
    at = AppTest.from_function(script, default_timeout=TIMEOUT)
    if username is not None:
        at.session_state[USER_KEY] = username
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def texts(at: AppTest) -> str:
    return " ".join(e.value for kind in (at.error, at.warning, at.info, at.markdown, at.title) for e in kind)


def test_sign_in_refuses_a_wrong_password_and_remembers_only_the_username(
        app_env: ReviewStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from store.accounts import set_active

    monkeypatch.setenv("TURNSCRIBE_SIGN_IN_FIRST_DELAY_S", "30")  # long enough never to run out during the test
    app_env.add_user("ann1", "annotator")
    at = page_as(sign_in_page, None)
    at.text_input[0].input("ann1")
    at.text_input[1].input("not the password")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Unknown user or wrong password."] and USER_KEY not in at.session_state
    at.text_input[1].input(PASSWORD)
    at.button[0].click().run()  # the right password inside the delay: refused, and told how long to wait
    assert len(at.error) == 1 and "too many wrong passwords for 'ann1': try again in" in at.error[0].value
    assert USER_KEY not in at.session_state
    with app_env.store.session() as session:  # an admin lifts it
        set_active(session, "admin", "ann1", True)
        session.commit()
    at.button[0].click().run()
    assert at.session_state[USER_KEY] == "ann1"
    token = at.session_state[TOKEN_KEY]
    with app_env.store.session() as session:
        actions = session.scalars(select(models.AuditEvent.action).where(models.AuditEvent.subject == "user:ann1")
                                  .order_by(models.AuditEvent.pk)).all()
        (row,) = session.scalars(select(models.WebSession)).all()
    assert actions[-5:] == ["sign_in_failed", "sign_in_throttled", "user_enabled", "sign_in", "web_session_opened"]
    assert row.username == "ann1" and row.token_sha256 == hashlib.sha256(token.encode()).hexdigest() != token, \
        "the store keeps only the token's hash"
    next(b for b in at.button if b.label == "Sign out").click().run()
    assert USER_KEY not in at.session_state
    with app_env.store.session() as session:
        assert session.get(models.WebSession, row.token_sha256).revoked_at is not None, "signing out revokes the session"


def test_an_annotator_sees_only_their_own_queue(app_env: ReviewStore) -> None:
    app_env.add_user("ann1", "annotator")
    app_env.add_user("ann2", "annotator")
    mine = [make_task(app_env, "ann1", 0), make_task(app_env, "ann1", 1)]
    theirs = make_task(app_env, "ann2", 2)
    at = page_as(queue_page, "ann1")
    shown = list(at.dataframe[0].value["task"])
    assert sorted(shown) == sorted(mine) and theirs not in shown
    assert sorted(b.label for b in at.button) == sorted(f"Open task {pk}: dlg00{i + 1}.flac 0:00–0:{d}"
                                                         for i, pk, d in zip((0, 1), mine, _durations(app_env, (0, 1))))


def _durations(rs: ReviewStore, indices: tuple[int, ...]) -> list[str]:
    with rs.store.session() as session:
        return [f"{round(session.get(models.Recording, rs.recording_pks[i]).duration_s):02d}" for i in indices]


def test_another_annotators_task_cannot_be_opened_by_session_state_or_url(app_env: ReviewStore) -> None:
    app_env.add_user("ann1", "annotator")
    app_env.add_user("ann2", "annotator")
    theirs = make_task(app_env, "ann2")
    by_state = page_as(editor_page, "ann1", task_pk=theirs)
    assert "This task cannot be opened" in texts(by_state) and not by_state.get("arrow_data_frame")
    by_url = AppTest.from_function(editor_page, default_timeout=TIMEOUT)
    by_url.session_state[USER_KEY] = "ann1"
    by_url.query_params["task"] = str(theirs)
    by_url.run()
    assert "This task cannot be opened" in texts(by_url) and not by_url.text_area


def _submit_and_accept(rs: ReviewStore, annotator: Principal, task_pk: int, reviewer: str = "rev1") -> None:
    """Finish a task through the same domain calls the pages make (submit, then the reviewer accepts)."""
    with rs.store.session() as session:
        view = open_task(session, annotator, rs.store.blobs, task_pk)
        submit(session, annotator, task_pk, view.version, view.turns, realigner=Realigner.of(rs.store))
        principal = load_principal(session, reviewer)
        (item,) = review_queue(session, principal)
        accept(session, principal, item.task_pk, realigner=Realigner.of(rs.store))
        session.commit()


def test_manager_pages_refuse_annotators_and_roles_are_reread_every_run(app_env: ReviewStore) -> None:
    app_env.add_user("ann1", "annotator")
    app_env.add_user("mgr1", "manager")
    for page in (coverage_page, quality_page):
        refused = page_as(page, "ann1")
        assert [e.value for e in refused.error] and "may not see" in refused.error[0].value
    with app_env.store.session() as session:  # the workbench audits refusals as the CLI does
        denied = session.execute(select(models.AuditEvent.actor, models.AuditEvent.subject)
                                 .where(models.AuditEvent.action == "permission_denied").order_by(models.AuditEvent.pk)).all()
    assert [tuple(d) for d in denied] == [("ann1", "permission:see_coverage"), ("ann1", "permission:see_quality")]
    coverage = page_as(coverage_page, "mgr1")
    assert not coverage.error and coverage.title[0].value == "Coverage funnel" and coverage.dataframe
    ann2 = app_env.add_user("ann2", "annotator")
    app_env.add_user("rev1", "reviewer")
    _submit_and_accept(app_env, ann2, make_task(app_env, "ann2"))
    quality = page_as(quality_page, "mgr1")
    assert quality.title[0].value == "Quality" and not quality.exception
    throughput = next(d.value for d in quality.dataframe if "minutes_per_hour" in d.value.columns)
    assert list(throughput["annotator"]) == ["ann2"] and throughput["audio_minutes"][0] > 0
    # ann2 logged no time: no rate, shown as "—" like every missing figure (never "None" or "nan")
    assert throughput["minutes_per_hour"][0] == "—" and throughput["unclocked_minutes"][0] == throughput["audio_minutes"][0]
    assert all(not frame.value.isna().any().any() for frame in quality.dataframe)
    approved = next(m for m in quality.metric if m.label == "approved recordings")
    assert approved.value == "1"
    with app_env.store.session() as session:
        session.get(models.User, "mgr1").roles = ["consumer"]
        session.commit()
    demoted = page_as(coverage_page, "mgr1")
    assert "may not see coverage" in demoted.error[0].value, "a removed role takes effect on the next run"
    assert "Please sign in." in texts(page_as(queue_page, "nobody"))


def test_the_editor_page_draws_the_component_with_the_task_and_its_audio_window(app_env: ReviewStore) -> None:
    app_env.add_user("ann1", "annotator")
    task_pk = make_task(app_env, "ann1")
    at = AppTest.from_function(editor_page, default_timeout=TIMEOUT)
    at.session_state[USER_KEY] = "ann1"
    at.query_params["task"] = str(task_pk)
    at.query_params["turn"] = "3"
    at.run()
    assert not at.error and not at.exception and at.title[0].value.startswith("dlg001.flac")
    (editor,) = [node for node in _walk(at.main) if node.type == "component_instance"]
    args = json.loads(editor.proto.json_args)
    with app_env.store.session() as session:
        view = open_task(session, load_principal(session, "ann1"), app_env.store.blobs, task_pk)
    assert args["task"]["pk"] == task_pk and args["task"]["editable"] and args["initial_turn"] == 3
    assert args["doc"] == {"version": 0, "turns": view.turns, "turn_ids": view.turn_ids, "pii": []}
    span = min(30.0, view.duration_s)  # 30 s around the asked-for turn, inside the recording
    start = max(0.0, min(view.turns[2]["start"] - 2.0, view.duration_s - span))
    assert (args["window"]["start"], args["window"]["end"]) == (pytest.approx(start, abs=1e-3), pytest.approx(start + span, abs=1e-3))
    assert len(args["window"]["peaks"]) == 2 * round(span * 100), "100 min/max pairs per second of the window"
    (audio,) = [a for a in editor.proto.special_args if a.key == "audio"]
    assert audio.bytes[:4] == b"RIFF", "the window's audio goes to the browser as WAV bytes, not a file path"
    assert args["keymap"]["accept_next"] == ["Ctrl+Enter"]
    assert not at.code, "the history is computed only when asked for"
    with app_env.store.session() as session:
        save_draft(session, load_principal(session, "ann1"), task_pk, 0, [{**view.turns[0], "text": "Hello there."}, *view.turns[1:]], realigner=Realigner.of(app_env.store))
    next(t for t in at.toggle if t.label.startswith("History")).set_value(True).run()
    (diff,) = at.code
    assert "+" + view.turns[0]["speaker"] in diff.value and "Hello there." in diff.value
    next(t for t in at.toggle if t.label.startswith("History")).set_value(False).run()
    assert not at.code, "hidden again: not computed on the runs each save causes"


def test_a_save_from_a_tab_holding_the_window_and_version_reads_no_audio_and_sends_back_only_the_answer(
        app_env: ReviewStore) -> None:
    from review_ui.editor_component.bridge import window_audio

    app_env.add_user("ann1", "annotator")
    task_pk = make_task(app_env, "ann1")
    at = AppTest.from_function(editor_page, default_timeout=TIMEOUT)
    at.session_state[USER_KEY] = "ann1"
    at.query_params["task"] = str(task_pk)
    at.run()
    (editor,) = [node for node in _walk(at.main) if node.type == "component_instance"]
    args = json.loads(editor.proto.json_args)
    window, turns, ids = args["window"], args["doc"]["turns"], args["doc"]["turn_ids"]
    js = lambda x: str(int(x)) if float(x).is_integer() else repr(float(x))  # noqa: E731 - JavaScript's String(x)
    held = f"{js(window['start'])}-{js(window['end'])}"  # how the browser names the window it holds
    edited = [{**turns[0], "text": "Hello there."}, *turns[1:]]
    at.session_state[f"turn-editor-{task_pk}"] = {
        "mount": "tab", "seq": 1, "attempt": 0, "op": "save", "base_version": 0, "turns": edited, "turn_ids": ids,
        "pii": None, "window": {"start": window["start"], "end": window["end"]}, "turn": 1, "have": held, "doc_version": 0}
    reads = window_audio.cache_info()
    at.run()
    assert window_audio.cache_info()[:2] == reads[:2], "the window the tab holds is not read again (not even from the cache)"
    (editor,) = [node for node in _walk(at.main) if node.type == "component_instance"]
    args = json.loads(editor.proto.json_args)
    assert args["window"] is None and not [a for a in editor.proto.special_args if a.key == "audio"]
    assert args["doc"] == {"version": 1, "turns": None, "turn_ids": None, "pii": None}, "the tab holds what it saved"
    assert args["ack"]["ok"] and args["ack"]["version"] == 1 and args["ack"]["server_ms"] > 0
    with app_env.store.session() as session:
        task = session.get(models.Task, task_pk)
        assert session.get(models.TranscriptRevision, task.head_revision_pk).turns[0]["text"] == "Hello there."
    at.session_state[f"turn-editor-{task_pk}"] = {
        "mount": "tab", "seq": 2, "attempt": 0, "op": "window", "base_version": 1, "turns": None, "turn_ids": None,
        "pii": None, "window": {"start": window["start"] + 5, "end": window["start"] + 15}, "turn": 1, "have": held,
        "doc_version": 1}
    at.run()
    (editor,) = [node for node in _walk(at.main) if node.type == "component_instance"]
    args = json.loads(editor.proto.json_args)
    assert args["window"]["start"] != window["start"] and [a for a in editor.proto.special_args if a.key == "audio"], \
        "another window is read and sent"


def _walk(node):  # type: ignore[no-untyped-def]
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def _signature(at: AppTest, task_pk: int) -> list[tuple[str, str]]:
    """Every element's type and visible content, with the task number masked."""
    out = []
    for node in _walk(at.main):
        content = getattr(node, "value", None) if node.type not in ("button",) else None
        label = getattr(node, "label", None)
        key = getattr(node, "key", None)
        out.append((node.type, str(label), str(key).replace(str(task_pk), "#"), str(content).replace(f"Task {task_pk}", "Task #")))
    return out


def test_a_gold_item_renders_exactly_like_production_work(app_env: ReviewStore) -> None:
    app_env.add_user("ann1", "annotator")
    production = make_task(app_env, "ann1", 0)
    gold = make_task(app_env, "ann1", 0, kind="gold", details={"gold_revision": 1, "reference": "approved"})
    seen = [page_as(editor_page, "ann1", task_pk=pk) for pk in (production, gold)]
    assert not seen[0].error and _signature(seen[0], production) == _signature(seen[1], gold)


def test_a_break_is_suggested_after_fifty_minutes_of_continuous_work(app_env: ReviewStore) -> None:
    app_env.add_user("ann1", "annotator")
    task_pk = make_task(app_env, "ann1")
    assert not any("break" in i.value for i in page_as(editor_page, "ann1", task_pk=task_pk).info)
    now = dt.datetime.now(dt.timezone.utc)
    with app_env.store.session() as session:
        for minutes_ago in range(55, 0, -5):  # eleven five-minute stretches back to back
            session.add(models.WorkInterval(username="ann1", task_pk=task_pk, started_at=now - dt.timedelta(minutes=minutes_ago),
                                            ended_at=now - dt.timedelta(minutes=minutes_ago - 5)))
        session.commit()
    assert any("short break" in i.value for i in page_as(editor_page, "ann1", task_pk=task_pk).info)


def test_a_reviewer_sends_back_with_a_comment_pinned_to_a_turn_and_then_accepts(app_env: ReviewStore) -> None:
    ann1 = app_env.add_user("ann1", "annotator")
    rev1 = app_env.add_user("rev1", "reviewer")
    task_pk = make_task(app_env, "ann1")
    with app_env.store.session() as session:
        view = open_task(session, ann1, app_env.store.blobs, task_pk)
        submit(session, ann1, task_pk, view.version, view.turns, realigner=Realigner.of(app_env.store))
        (item,) = review_queue(session, rev1)
    annotator_view = page_as(editor_page, "ann1", task_pk=task_pk)
    assert not any(b.label in ("Accept transcript", "Send back") for b in annotator_view.button), "no review controls for the annotator"
    at = page_as(editor_page, "rev1", task_pk=item.task_pk)
    pin = next(s for s in at.selectbox if s.label == "Pin the comment to turn")
    pin.set_value(2)
    next(t for t in at.text_area if t.label == "Comment for the annotator").input("Speaker is wrong here.")
    at.run()
    next(b for b in at.button if b.label == "Send back").click().run()
    assert any("Sent back" in s.value for s in at.success)
    with app_env.store.session() as session:
        note = session.scalars(select(models.ReviewComment)).one()
        assert (note.task_pk, note.turn_index, note.author, note.text) == (task_pk, 2, "rev1", "Speaker is wrong here.")
        assert session.get(models.Task, task_pk).state == "sent_back"
    back = page_as(editor_page, "ann1", task_pk=task_pk)
    assert any(w.value == "Reviewer rev1 on Turn 3: Speaker is wrong here." for w in back.warning), "1-based, as the editor shows turns"
    assert any(f'href="?task={task_pk}&amp;turn=3"' in m.value for m in back.markdown), "a link that opens the editor there"
    with app_env.store.session() as session:
        submit(session, ann1, task_pk, session.get(models.Task, task_pk).version, view.turns, realigner=Realigner.of(app_env.store))
    with app_env.store.session() as session:
        (item,) = review_queue(session, rev1)
    again = page_as(editor_page, "rev1", task_pk=item.task_pk)
    next(b for b in again.button if b.label == "Accept transcript").click().run()
    with app_env.store.session() as session:
        stages = session.scalars(select(models.TranscriptRevision.stage).where(models.TranscriptRevision.task_pk == task_pk)
                                 .order_by(models.TranscriptRevision.pk)).all()
        assert stages == ["submitted", "submitted", "approved"] and session.get(models.Task, task_pk).state == "accepted"
