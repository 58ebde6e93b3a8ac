"""Gold items and calibration: passing a set, failing it, falling below the threshold later."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from store import models
from store.accounts import PermissionDenied
from review_ui.realign import Realigner
from review_ui import calibration as cal
from review_ui.assignment import AssignmentRules, assign_tasks
from review_ui.tasks import cut_tasks
from tests.review_ui.helpers import approve_directly, make_gold, submit, tasks_of, turn

REFERENCE = [turn("A", 0.0, 2.0, "hello there"), turn("B", 2.0, 4.0, "good morning to you")]
WRONG = [turn("A", 0.0, 4.0, "yellow hair good mourning")]


def _set_thresholds(rs, **gold) -> None:  # type: ignore[no-untyped-def]
    with rs.store.session() as session:
        row = session.get(models.Protocol, rs.protocol_row.pk)
        row.spec = {**row.spec, "review": {"gold": gold}}
        session.commit()


def _assign(rs) -> list[models.Task]:  # type: ignore[no-untyped-def]
    with rs.store.session() as session:
        given = assign_tasks(session, rs.protocol_row.pk, AssignmentRules(), actor="mgr")
        session.commit()
        return given


def _notices(session) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.details["message"] for e in session.scalars(
        select(models.AuditEvent).where(models.AuditEvent.action == cal.NOTICE).order_by(models.AuditEvent.pk))]


def test_thresholds_come_from_the_protocol_or_defaults(review_store) -> None:
    rs = review_store
    assert cal.thresholds_for(rs.protocol_row) == cal.GoldThresholds()
    _set_thresholds(rs, max_wer=0.3, calibration_items=2, unknown_key=1)
    with rs.store.session() as session:
        limits = cal.thresholds_for(session.get(models.Protocol, rs.protocol_row.pk))
    assert limits.max_wer == 0.3 and limits.calibration_items == 2 and limits.max_speaker_error == 0.10


def test_making_gold_needs_an_approved_transcript_and_a_manager(review_store) -> None:
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    annotator = rs.add_user("ann", "annotator")
    pk = rs.recording_pks[0]
    with rs.store.session() as session:
        with pytest.raises(ValueError):
            cal.make_gold(session, manager, pk)
        approved = approve_directly(session, pk, REFERENCE)
        with pytest.raises(PermissionDenied):
            cal.make_gold(session, annotator, pk)
        reference = cal.make_gold(session, manager, pk)
        assert reference.stage == "reference" and reference.parent_pk == approved.pk and reference.turns == REFERENCE
        assert [g.pk for g in cal.gold_recordings(session, rs.protocol_row.pk)] == [pk]
        with pytest.raises(PermissionDenied):
            cal.start_calibration(session, annotator, "ann", "en")


def test_a_passed_calibration_set_opens_production_work(review_store) -> None:
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    rs.add_user("new", "annotator")
    _set_thresholds(rs, calibration_items=2)
    with rs.store.session() as session:
        for pk in rs.recording_pks[:2]:
            make_gold(session, manager, pk, REFERENCE)
        cal.start_calibration(session, manager, "new", "en")
        cut_tasks(session, rs.protocol_row.pk, double_share=0, blind_share=0, gold_share=0, actor="mgr")
        session.commit()
    given = _assign(rs)
    assert sorted(t.kind for t in given) == ["calibration", "calibration"]
    with rs.store.session() as session:
        first, second = tasks_of(session, kind="calibration")
        submit(session, first, REFERENCE)
        assert cal.skills(session, "new")[("en", "")].state == "calibrating"  # one of two scored: no decision yet
        near = [turn("A", 0.0, 2.1, "hello there"), turn("B", 2.1, 4.0, "good morning to you")]
        submit(session, second, near)
        session.commit()
        row = cal.skills(session, "new")[("en", "")]
        assert row.state == "passed"
        # WER 0 of 12 words; speaker error 10 of 800 frames; boundaries (0+.1)/2 and (.1+0)/2 -> 0.025 s over 4 turns
        assert row.details["wer"] == 0.0
        assert row.details["speaker_error"] == pytest.approx(10 / 800)
        assert row.details["boundary_s"] == pytest.approx(0.025)
        assert first.state == second.state == "submitted"
    production = _assign(rs)
    assert {t.kind for t in production} == {"annotate"} and len(production) == 4


def test_a_failed_set_tells_the_manager_and_keeps_calibrating(review_store) -> None:
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    rs.add_user("new", "annotator")
    _set_thresholds(rs, calibration_items=2)
    with rs.store.session() as session:
        for pk in rs.recording_pks[:4]:
            make_gold(session, manager, pk, REFERENCE)
        cal.start_calibration(session, manager, "new", "en")
        session.commit()
    first_set = {t.recording_pk for t in _assign(rs)}
    assert len(first_set) == 2
    annotator = rs.add_user("ann", "annotator")
    with rs.store.session() as session:
        for task in tasks_of(session, kind="calibration"):
            submit(session, task, WRONG)
        session.commit()
        assert cal.skills(session, "new")[("en", "")].state == "calibrating"
        [message] = _notices(session)
        assert "new failed calibration for en/*" in message and "WER" in message
        assert cal.manager_notices(session, manager)[0]["username"] == "new"
        with pytest.raises(PermissionDenied):
            cal.manager_notices(session, annotator)
    again = _assign(rs)  # a fresh set, on the gold recordings not seen yet
    assert {t.recording_pk for t in again} == set(rs.recording_pks[:4]) - first_set


def test_ongoing_gold_accuracy_below_threshold_returns_to_calibration(review_store) -> None:
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    rs.add_user("ann", "annotator")
    rs.calibrate("ann")
    _set_thresholds(rs, min_items=2, window=3, max_wer=0.3, max_speaker_error=0.2)
    with rs.store.session() as session:
        for pk in rs.recording_pks[:3]:
            make_gold(session, manager, pk, REFERENCE)
        golds = []
        for pk in rs.recording_pks[:3]:
            task = models.Task(kind="gold", recording_pk=pk, assignee="ann", state="open", details={})
            session.add(task)
            golds.append(task)
        session.flush()
        submit(session, golds[0], REFERENCE)
        submit(session, golds[1], REFERENCE)
        assert cal.skills(session, "ann")[("en", "")].state == "passed"
        # WRONG against REFERENCE: 3 substitutions and 2 deletions of 6 words; speaker A over B's 200 of 400
        # speech frames; A's boundaries off by (0 + 2) / 2 = 1 s and B unmatched. Window REF, REF, WRONG:
        # WER 5/18 = 0.28 <= 0.3, speaker error 200/1200 = 0.17 <= 0.2, boundaries 1/5 = 0.2 s <= 0.5 s: still passed
        submit(session, golds[2], WRONG)
        assert cal.skills(session, "ann")[("en", "")].state == "passed"
        session.commit()

    with rs.store.session() as session:
        task = models.Task(kind="gold", recording_pk=rs.recording_pks[0], assignee="ann", state="open", details={})
        session.add(task)
        session.flush()
        submit(session, task, WRONG)  # the window is now REF, WRONG, WRONG: WER 10/18
        session.commit()
        row = cal.skills(session, "ann")[("en", "")]
        assert row.state == "returned" and row.details["wer"] == pytest.approx(10 / 18)
        assert row.details["speaker_error"] == pytest.approx(400 / 1200) and row.details["boundary_s"] == pytest.approx(2 / 4)
        assert "ann returned to calibration" in _notices(session)[-1]
        cut_tasks(session, rs.protocol_row.pk, double_share=0, blind_share=0, gold_share=0, actor="mgr")
        session.commit()
    assert [t for t in _assign(rs) if t.kind == "annotate"] == []  # no production work while returned


def test_returning_someone_to_calibration_pauses_their_production_work(review_store) -> None:
    """The finding: a returned annotator kept their open production tasks and could still submit them to review."""
    from review_ui.editing import open_task, save_draft, submit as editor_submit

    rs = review_store
    manager = rs.add_user("mgr", "manager")
    ann = rs.add_user("ann", "annotator")
    rs.add_user("rev", "reviewer")
    rs.calibrate("ann")
    _set_thresholds(rs, min_items=1, window=1, max_wer=0.3)
    gold_pk = rs.recording_pks[5]
    with rs.store.session() as session:
        make_gold(session, manager, gold_pk, REFERENCE)
        cut_tasks(session, rs.protocol_row.pk, double_share=0, blind_share=0, gold_share=0, actor="mgr")
        session.commit()
    _assign(rs)
    with rs.store.session() as session:
        production = [t.pk for t in tasks_of(session, kind="annotate", assignee="ann")]
        assert len(production) == 5
        view = open_task(session, ann, rs.store.blobs, production[0])
        draft = save_draft(session, ann, production[0], view.version, view.turns[:1], realigner=Realigner.of(rs.store))  # work in progress
        stale = open_task(session, ann, rs.store.blobs, production[1])  # an editor left open on another task
        [gold] = tasks_of(session, kind="gold", assignee="ann")  # mixed into her queue by the assignment
        submit(session, gold, WRONG)  # WER 5/6 > 0.3 on the one-item window: returned
        session.commit()
        assert cal.skills(session, "ann")[("en", "")].state == "returned"
        for pk in production:
            task = session.get(models.Task, pk, populate_existing=True)
            assert (task.assignee, task.state, task.head_revision_pk, task.due_at) == (None, "open", None, None), pk
        kept = session.get(models.TranscriptRevision, draft.pk)
        assert kept.task_pk == production[0] and kept.stage == "draft"  # the draft stays in the history
        notice = _notices(session)[-1]
        assert "ann returned to calibration" in notice and "5 open task(s) went back to the pool" in notice
        with pytest.raises(PermissionDenied):
            editor_submit(session, ann, production[1], stale.version, stale.turns, realigner=Realigner.of(rs.store))
        assert not [t for t in tasks_of(session, kind="review")], "nothing of hers went to review after the return"
        events = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "task_returned_to_pool")).all()
        assert sorted(int(e.subject.split(":")[1]) for e in events) == production
    rs.add_user("bea", "annotator")
    rs.calibrate("bea")
    given = _assign(rs)
    assert sorted(t.pk for t in given if t.kind == "annotate") == production and {t.assignee for t in given} == {"bea"}
    with rs.store.session() as session:
        bea = session.get(models.User, "bea")
        from store.accounts import principal_of

        reopened = open_task(session, principal_of(bea), rs.store.blobs, production[0])
        model_turns = session.get(models.TranscriptRevision, rs.model_revision_pks[rs.recording_pks[0]]).turns
        assert reopened.turns != view.turns[:1] and len(reopened.turns) == len(model_turns)  # starts from the pre-annotation


def _gold_notices(session) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.details["message"] for e in session.scalars(
        select(models.AuditEvent).where(models.AuditEvent.action == cal.NOTICE).order_by(models.AuditEvent.pk))
        if e.details.get("kind") == cal.GOLD_SHORTAGE]


def test_people_whose_skill_no_gold_covers_are_named_to_the_manager(review_store) -> None:
    """The finding: a French and a Scottish-only annotator got no gold, silently, even with a gold share of 0.5."""
    from review_ui.gold_coverage import gold_coverage

    rs = review_store
    manager = rs.add_user("mgr", "manager")
    for name in ("ann", "fr", "fr2", "sco"):
        rs.add_user(name, "annotator")
    rs.calibrate("ann")  # en, every accent
    rs.calibrate("fr", language="fr")
    rs.calibrate("sco", accent="scottish")
    r1, r2, r3, r4, r5, r6 = rs.recording_pks
    with rs.store.session() as session:
        make_gold(session, manager, r1, REFERENCE)  # dlg001: west_midlands + british_rp
        make_gold(session, manager, r3, REFERENCE)  # dlg003: caribbean + us_general
        cal.start_calibration(session, manager, "fr2", "fr")
        cut_tasks(session, rs.protocol_row.pk, double_share=0, blind_share=0, gold_share=0, actor="mgr")
        session.commit()
    with rs.store.session() as session:
        given = assign_tasks(session, rs.protocol_row.pk, AssignmentRules(gold_share=0.5), actor="mgr")
        session.commit()
        assert Counter((t.assignee, t.kind) for t in given) == {("ann", "annotate"): 4, ("ann", "gold"): 2}
        notices = _gold_notices(session)
    assert notices == [
        "no gold recording covers fr/*: fr2 cannot be calibrated or checked for it; add gold recordings of fr/*",
        "ann has 0 unseen gold recording(s) of en/* left, fewer than a calibration set (3) should they be sent back: "
        "add gold recordings of en/*",
        "no gold recording covers fr/*: fr cannot be calibrated or checked for it; add gold recordings of fr/*",
        "no gold recording covers en/scottish: sco cannot be calibrated or checked for it; add gold recordings of en/scottish",
    ]
    _assign(rs)
    with rs.store.session() as session:
        assert _gold_notices(session) == notices, "told once, not at every assignment"
        table = {row.skill: row for row in gold_coverage(session, rs.protocol_row.pk)}
        minutes = round((session.get(models.Recording, r1).duration_s + session.get(models.Recording, r3).duration_s) / 60, 2)
    assert list(table)[:2] == ["en/scottish", "fr/*"]  # skills without gold first
    assert (table["fr/*"].gold_recordings, table["fr/*"].people, table["fr/*"].covered, table["fr/*"].uncovered) == (0, 2, 0, ["fr", "fr2"])
    assert (table["en/scottish"].gold_recordings, table["en/scottish"].uncovered) == (0, ["sco"])
    assert (table["en/*"].gold_recordings, table["en/*"].gold_minutes, table["en/*"].people) == (2, minutes, 1)
    assert table["en/*"].covered == 0 and table["en/*"].uncovered == ["ann"]  # ann has seen both
    assert {k: (v.gold_recordings, v.people) for k, v in table.items() if k not in ("en/*", "fr/*", "en/scottish")} == {
        "en/west_midlands": (1, 0), "en/british_rp": (1, 0), "en/caribbean": (1, 0), "en/us_general": (1, 0)}


def test_a_calibration_set_that_cannot_be_drawn_tells_the_manager_what_to_add(review_store) -> None:
    """The finding: after every gold recording of the skill was seen, a failed set promised a new one and none came."""
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    rs.add_user("new", "annotator")
    _set_thresholds(rs, calibration_items=2)
    r1, r2, r3, r4, r5, r6 = rs.recording_pks
    with rs.store.session() as session:
        make_gold(session, manager, r2, REFERENCE)  # dlg002 and dlg004: the Scottish dialogues
        make_gold(session, manager, r4, REFERENCE)
        cal.start_calibration(session, manager, "new", "en", "scottish")
        session.commit()
    assert sorted(t.recording_pk for t in _assign(rs)) == [r2, r4]
    with rs.store.session() as session:
        assert _gold_notices(session) == []
        for task in tasks_of(session, kind="calibration"):
            submit(session, task, WRONG)
        session.commit()
        failed = _notices(session)[-1]
    assert "new failed calibration for en/scottish" in failed and "a new calibration set follows" not in failed
    assert failed.endswith("only 0 unseen gold recording(s) of en/scottish are left and a set needs 2: "
                           "add gold recordings of en/scottish for a new set")
    assert _assign(rs) == []
    expected = ("new needs a calibration set for en/scottish but only 0 of the 2 gold recording(s) of en/scottish are "
                "unseen and free of conflicts (a set needs 2): add gold recordings of en/scottish")
    with rs.store.session() as session:
        assert _gold_notices(session) == [expected]
    _assign(rs)
    with rs.store.session() as session:
        assert _gold_notices(session) == [expected]
        make_gold(session, manager, r1, REFERENCE)  # new gold, but not Scottish: the manager is told again
        session.commit()
    _assign(rs)
    with rs.store.session() as session:
        assert _gold_notices(session) == [expected, expected]


def test_production_without_any_gold_the_person_may_take_is_named(review_store) -> None:
    """Gold exists for the skill, but only in dialogues the person is not skilled for as a whole."""
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    rs.add_user("nor", "annotator")
    rs.calibrate("nor", accent="northern_english")
    r1, r2, r3, r4, r5, r6 = rs.recording_pks
    with rs.store.session() as session:
        make_gold(session, manager, r6, REFERENCE)  # dlg006: caribbean + northern_english
        cut_tasks(session, rs.protocol_row.pk, double_share=0, blind_share=0, gold_share=0, actor="mgr")
        session.commit()
        given = assign_tasks(session, rs.protocol_row.pk, AssignmentRules(gold_share=0.5), actor="mgr")
        session.commit()
        assert [(t.kind, t.recording_pk) for t in given] == [("annotate", r5)]  # dlg005: both northern_english
        assert _gold_notices(session) == [
            "nor holds production work but gets no gold item: no unseen gold recording matches their skills "
            "(en/northern_english); add gold recordings of en/northern_english",
            "nor has 1 unseen gold recording(s) of en/northern_english left, fewer than a calibration set (3) should they "
            "be sent back: add gold recordings of en/northern_english",
        ]
