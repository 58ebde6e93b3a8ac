"""Submitting, reviewing, accepting and sending back; who may do which."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from store import models
from store.accounts import PermissionDenied
from review_ui import review
from review_ui.assignment import AssignmentRules, assign_tasks
from review_ui.realign import Realigner
from review_ui.review import ReviewStateError, accept, comments_for, review_queue, send_back
from review_ui.tasks import cut_tasks, queue_for
from tests.review_ui.helpers import submit, tasks_of, turn


def _setup(rs, **cut):  # type: ignore[no-untyped-def]
    people = {
        "ann": rs.add_user("ann", "annotator"),
        "ann2": rs.add_user("ann2", "annotator"),
        "rev": rs.add_user("rev", "reviewer"),
        "rev2": rs.add_user("rev2", "reviewer"),
        "mgr": rs.add_user("mgr", "manager"),
        "ml": rs.add_user("ml", "consumer"),
    }
    rs.calibrate("ann")
    rs.calibrate("ann2")
    with rs.store.session() as session:
        cut_tasks(session, rs.protocol_row.pk, **{"double_share": 0, "blind_share": 0, **cut}, actor="mgr")
        assign_tasks(session, rs.protocol_row.pk, AssignmentRules(), actor="mgr")
        session.commit()
    return people


def _model_turns(session, task: models.Task):  # type: ignore[no-untyped-def]
    from review_ui.tasks import model_revision

    return list(model_revision(session, task.recording_pk).turns)


def test_submit_review_accept_writes_the_approved_revision(review_store) -> None:
    rs = review_store
    p = _setup(rs)
    with rs.store.session() as session:
        task = tasks_of(session, assignee="ann")[0]
        turns = _model_turns(session, task)
        turns[0] = {**turns[0], "text": "corrected"}
        submitted = submit(session, task, turns)
        session.commit()
        assert task.state == "submitted" and not [i for i in queue_for(session, p["ann"]) if i.task_pk == task.pk]
        reviews = tasks_of(session, kind="review")
        assert len(reviews) == 1 and reviews[0].assignee in ("rev", "rev2")
        reviewer = p[reviews[0].assignee]
        other = p["rev2" if reviews[0].assignee == "rev" else "rev"]
        [item] = review_queue(session, reviewer)
        assert item.annotate_task_pk == task.pk and item.annotator == "ann" and item.revision_pk == submitted.pk
        assert review_queue(session, other) == []
        assert [i.task_pk for i in review_queue(session, p["mgr"])] == []  # assigned: not in the manager's unassigned list

        with pytest.raises(PermissionDenied):
            accept(session, other, item.task_pk, realigner=Realigner.of(review_store.store))  # someone else's review
        with pytest.raises(PermissionDenied):
            accept(session, p["ann2"], item.task_pk, realigner=Realigner.of(review_store.store))  # annotators do not review
        with pytest.raises(PermissionDenied):
            accept(session, p["ml"], item.task_pk, realigner=Realigner.of(review_store.store))
        approved = accept(session, reviewer, item.task_pk, realigner=Realigner.of(review_store.store))
        session.commit()
        assert approved.stage == "approved" and approved.parent_pk == submitted.pk
        assert approved.author == reviewer.username and approved.author_kind == "person"
        assert approved.turns == turns and approved.recording_pk == task.recording_pk
        assert task.state == "accepted" and reviews[0].state == "done"
        with pytest.raises(ReviewStateError):
            accept(session, reviewer, item.task_pk, realigner=Realigner.of(review_store.store))
        assert review_queue(session, reviewer) == []


def test_send_back_pins_a_comment_and_returns_the_task(review_store) -> None:
    rs = review_store
    p = _setup(rs)
    with rs.store.session() as session:
        task = tasks_of(session, assignee="ann")[0]
        first = submit(session, task, _model_turns(session, task))
        [review_task] = tasks_of(session, kind="review")
        reviewer = p[review_task.assignee]
        with pytest.raises(ValueError):
            send_back(session, reviewer, task.pk, 0, "  ")
        with pytest.raises(ValueError):
            send_back(session, reviewer, task.pk, 999, "no such turn")
        note = send_back(session, reviewer, task.pk, 1, "speaker of turn 2 is wrong")  # by the production task's pk
        session.commit()
        assert note.turn_index == 1 and note.revision_pk == first.pk and note.author == reviewer.username
        assert task.state == "sent_back"
        queue = queue_for(session, p["ann"])
        assert queue[0].task_pk == task.pk and queue[0].state == "sent_back"  # sent-back work first
        assert [c.text for c in comments_for(session, p["ann"], task.pk)] == ["speaker of turn 2 is wrong"]
        assert [c.pk for c in comments_for(session, reviewer, review_task.pk)] == [note.pk]
        with pytest.raises(PermissionDenied):
            comments_for(session, p["ann2"], task.pk)  # not their task
        with pytest.raises(PermissionDenied):
            comments_for(session, p["ml"], task.pk)

        second = submit(session, task, _model_turns(session, task))
        session.commit()
        reviews = tasks_of(session, kind="review")
        assert len(reviews) == 2 and reviews[1].assignee == review_task.assignee  # the same reviewer again
        assert reviews[1].details["round"] == 2 and reviews[1].details["revision"] == second.pk
        assert accept(session, reviewer, reviews[1].pk, realigner=Realigner.of(review_store.store)).parent_pk == second.pk


def test_nobody_reviews_their_own_work_and_managers_take_over(review_store) -> None:
    rs = review_store
    p = _setup(rs)
    both = rs.add_user("both", "annotator", "reviewer")
    with rs.store.session() as session:
        task = tasks_of(session, assignee="ann")[0]
        task.assignee = "both"
        submit(session, task, _model_turns(session, task))
        [review_task] = tasks_of(session, kind="review")
        assert review_task.assignee in ("rev", "rev2")
        with pytest.raises(PermissionDenied):
            accept(session, both, review_task.pk, realigner=Realigner.of(review_store.store))
        assert accept(session, p["mgr"], review_task.pk, realigner=Realigner.of(review_store.store)).stage == "approved"  # a manager may take over


def test_unassigned_review_goes_to_managers_with_a_notice(review_store) -> None:
    rs = review_store
    ann = rs.add_user("ann", "annotator")
    mgr = rs.add_user("mgr", "manager")
    rs.calibrate("ann")
    with rs.store.session() as session:
        cut_tasks(session, rs.protocol_row.pk, double_share=0, blind_share=0, actor="mgr")
        assign_tasks(session, rs.protocol_row.pk, AssignmentRules(), actor="mgr")
        task = tasks_of(session, assignee="ann")[0]
        submit(session, task, _model_turns(session, task))
        session.commit()
        [item] = review_queue(session, mgr)
        assert item.assigned_to is None
        notices = [n for n in session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "manager_notice"))
                   if n.details.get("kind") != "gold_shortage"]  # no gold exists: that has its own notice
        assert len(notices) == 1 and "no reviewer" in notices[0].details["message"]
        with pytest.raises(PermissionDenied):
            review_queue(session, ann)


def test_secondary_of_a_pair_only_measures_agreement(review_store) -> None:
    rs = review_store
    _setup(rs, double_share=1.0)
    rev3 = rs.add_user("rev3", "reviewer")
    with rs.store.session() as session:
        secondary = next(t for t in tasks_of(session, kind="annotate") if t.details.get("pair_role") == "secondary" and t.assignee)
        submit(session, secondary, _model_turns(session, secondary))
        assert secondary.state == "done" and tasks_of(session, kind="review") == []
        with pytest.raises(ReviewStateError):
            review.accept(session, rev3, secondary.pk, realigner=Realigner.of(review_store.store))


def test_chunks_are_merged_and_approved_when_the_last_one_is_accepted(review_store) -> None:
    rs = review_store
    p = _setup(rs, max_chunk_s=10.0)
    with rs.store.session() as session:
        recording_pk = rs.recording_pks[0]
        chunks = sorted((t for t in tasks_of(session, kind="annotate") if t.recording_pk == recording_pk), key=lambda t: t.start_s)
        model = _model_turns(session, chunks[0])
        stages = []
        for i, chunk in enumerate(chunks):
            mid = lambda t: (t["start"] + t["end"]) / 2  # noqa: E731
            mine = [dict(t, text=f"chunk {i}") for t in model if chunk.start_s <= mid(t) < chunk.end_s]
            submit(session, chunk, mine)
            reviewer = p[tasks_of(session, kind="review")[-1].assignee]
            stages.append(accept(session, reviewer, chunk.pk, realigner=Realigner.of(review_store.store)))
        session.commit()
        assert [r.stage for r in stages] == ["accepted"] * (len(chunks) - 1) + ["approved"]
        final = stages[-1].turns
        assert len(final) == len(model)
        assert [t["start"] for t in final] == [t["start"] for t in sorted(model, key=lambda t: (t["start"], t["end"]))]
        assert {t["text"] for t in final} == {f"chunk {i}" for i in range(len(chunks))}


def test_gold_submission_ends_like_production_work(review_store) -> None:
    from tests.review_ui.helpers import make_gold

    rs = review_store
    p = _setup(rs)
    with rs.store.session() as session:
        make_gold(session, p["mgr"], rs.recording_pks[0], [turn("A", 0.0, 2.0, "hello there")])
        gold = models.Task(kind="gold", recording_pk=rs.recording_pks[0], assignee="ann", state="open", details={})
        session.add(gold)
        session.flush()
        submit(session, gold, [turn("A", 0.0, 2.0, "hello their")])
        session.commit()
        assert gold.state == "submitted"
        assert comments_for(session, p["ann"], gold.pk) == []
        assert [t for t in tasks_of(session, kind="review") if t.recording_pk == gold.recording_pk] == []
        scored = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "gold_scored")).one()
        assert scored.details["wer"] == pytest.approx(0.5)


def test_demo_accounts_queues_and_approval_through_the_review_path(review_store) -> None:
    from store.accounts import authenticate, load_principal
    from demo.accounts import approve_for_demo, calibrate_demo_people, queue_demo, seed_demo_accounts

    rs = review_store
    with rs.store.session() as session:
        accounts = seed_demo_accounts(session)
        assert seed_demo_accounts(session) == accounts  # once only
        session.commit()
        assert {(u, r) for u, _, r in accounts} == {("admin", "admin"), ("mgr1", "manager"), ("ann1", "annotator"),
                                                    ("ann2", "annotator"), ("rev1", "reviewer"), ("ml1", "consumer")}
        for username, password, _ in accounts:
            assert authenticate(session, username, password).username == username
        calibrate_demo_people(session)
        given = queue_demo(session, rs.protocol_row.pk, "demo")
        session.commit()
        assert {t.assignee for t in given} == {"ann1", "ann2"}
        half = set(rs.recording_pks[:3])
        assert approve_for_demo(session, rs.protocol_row.pk, Realigner.of(rs.store), recording_pks=half) == 3
        assert approve_for_demo(session, rs.protocol_row.pk, Realigner.of(rs.store), recording_pks=half) == 0
        session.commit()
        approved = session.scalars(select(models.TranscriptRevision).where(models.TranscriptRevision.stage == "approved")).all()
        assert {r.recording_pk for r in approved} == half and {r.author for r in approved} == {"rev1"}
        for revision in approved:  # submitted by the annotator, accepted by the reviewer: the ordinary path
            parent = session.get(models.TranscriptRevision, revision.parent_pk)
            assert parent.stage == "submitted" and parent.author in ("ann1", "ann2")
        left = [i for who in ("ann1", "ann2") for i in queue_for(session, load_principal(session, who))]
        assert {session.get(models.Task, i.task_pk).recording_pk for i in left} == set(rs.recording_pks[3:])
        assert approve_for_demo(session, rs.protocol_row.pk, Realigner.of(rs.store)) == 3
