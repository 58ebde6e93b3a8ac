"""Cutting recordings into tasks, and what an annotator's queue shows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections import Counter

import pytest
from sqlalchemy import select

from store import models
from store.accounts import PermissionDenied
from review_ui import tasks
from review_ui.assignment import AssignmentReport, AssignmentRules, assign_tasks
from review_ui.tasks import chunk_bounds, cut_tasks, queue_for
from tests.review_ui.helpers import make_gold, submit, tasks_of, turn


def test_whole_dialogues_cut_once_with_exact_double_and_blind_shares(review_store) -> None:
    rs = review_store
    with rs.store.session() as session:
        created = cut_tasks(session, rs.protocol_row.pk, double_share=0.5, blind_share=0.34, actor="mgr")
        session.commit()
        # 6 units: round(0.5 * 6) = 3 doubled (two tasks each), round(0.34 * 6) = 2 blind units
        assert len(created) == 9
        assert {t.recording_pk for t in created} == set(rs.recording_pks)
        pairs: dict[str, list[models.Task]] = {}
        for t in created:
            assert t.kind == "annotate" and t.state == "open" and t.assignee is None
            assert t.start_s is None and t.end_s is None and "context_start_s" not in t.details
            if t.pair_key:
                pairs.setdefault(t.pair_key, []).append(t)
        assert len(pairs) == 3
        for pair in pairs.values():
            assert sorted(t.details["pair_role"] for t in pair) == ["primary", "secondary"]
            assert len({t.recording_pk for t in pair}) == 1 and len({t.blind for t in pair}) == 1
        blind_units = {(t.recording_pk, t.pair_key) for t in created if t.blind}
        assert len(blind_units) == 2
        # idempotent, and the shares stay exact over the whole backlog
        assert cut_tasks(session, rs.protocol_row.pk, double_share=0.5, blind_share=0.34, actor="mgr") == []


def test_only_accepted_pre_annotated_non_gold_recordings_are_cut(review_store) -> None:
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    with rs.store.session() as session:
        bare = models.Recording(protocol_pk=rs.protocol_row.pk, status="accepted", source_name="bare.flac", duration_s=12.0,
                                n_speakers=2, declared={})
        rejected = models.Recording(protocol_pk=rs.protocol_row.pk, status="rejected", source_name="bad.flac", duration_s=12.0,
                                    n_speakers=2, declared={})
        session.add_all([bare, rejected])
        session.flush()
        session.add(models.TranscriptRevision(recording_pk=rejected.pk, author_kind="model", author="m", turns=[]))
        make_gold(session, manager, rs.recording_pks[0], [turn("A", 0.0, 2.0, "hello there")])
        created = cut_tasks(session, rs.protocol_row.pk, double_share=0, blind_share=0, gold_share=0, actor="mgr")
        session.commit()
    assert sorted(t.recording_pk for t in created) == rs.recording_pks[1:]


def test_chunks_are_cut_in_pauses_and_carry_their_context() -> None:
    turns = [turn("A", 0.0, 4.0, "a"), turn("B", 5.0, 9.5, "b"), turn("A", 10.5, 14.0, "c"),
             turn("B", 16.0, 20.0, "d"), turn("A", 21.0, 29.0, "e")]
    # first chunk: the only pause in its last third (6.67-10 s) is 9.5-10.5, cut in the middle of its part before
    # 10 s (9.75); second: no pause in 16.42-19.75, cut at the limit; third: likewise (pauses lie between speech).
    assert chunk_bounds(30.0, turns, 10.0) == [(0.0, 9.75), (9.75, 19.75), (19.75, 29.75), (29.75, 30.0)]
    assert chunk_bounds(30.0, turns, None) == [(0.0, 30.0)]
    assert chunk_bounds(30.0, turns, 45.0) == [(0.0, 30.0)]


def test_chunk_tasks_tile_the_recording_and_never_cut_inside_a_turn_when_a_pause_exists(review_store) -> None:
    rs = review_store
    with rs.store.session() as session:
        created = cut_tasks(session, rs.protocol_row.pk, max_chunk_s=10.0, context_s=2.0, double_share=0, blind_share=0,
                            actor="mgr")
        session.commit()
        for pk in rs.recording_pks:
            recording = session.get(models.Recording, pk)
            mine = sorted((t for t in created if t.recording_pk == pk), key=lambda t: t.start_s)
            assert len(mine) >= 3
            assert mine[0].start_s == 0.0 and mine[-1].end_s == pytest.approx(recording.duration_s, abs=1e-3)
            for a, b in zip(mine, mine[1:]):
                assert a.end_s == b.start_s
            for t in mine:
                assert t.end_s - t.start_s <= 10.0 + 1e-9
                assert t.details["context_start_s"] == pytest.approx(max(0.0, t.start_s - 2.0))
                assert t.details["context_end_s"] == pytest.approx(min(recording.duration_s, t.end_s + 2.0), abs=1e-3)


def test_queue_shows_own_open_work_and_gold_looks_like_any_other_task(review_store) -> None:
    rs = review_store
    ann = rs.add_user("ann", "annotator")
    rs.add_user("ann2", "annotator")
    manager = rs.add_user("mgr", "manager")
    rs.calibrate("ann")
    rs.calibrate("ann2")
    with rs.store.session() as session:
        gold_turns = [turn("spk-0001", 0.9, 4.1, "Hello, I'd like to book a table for five, please.")]
        make_gold(session, manager, rs.recording_pks[0], gold_turns)
        cut_tasks(session, rs.protocol_row.pk, double_share=0, blind_share=0, gold_share=0.5, actor="mgr")
        report = AssignmentReport()
        given = assign_tasks(session, rs.protocol_row.pk, AssignmentRules(gold_share=0.5), actor="mgr", report=report)
        session.commit()
        gold = [t for t in given if t.kind == "gold"]
        # one gold recording: in one queue at a time (it used to sit in both), taken from the cut's pool
        assert len(gold) == 1 and gold[0].assignee == "ann" and report.gold_created_after_cut == 0
        items = queue_for(session, ann)
        mine = [t for t in given if t.assignee == "ann"]
        assert sorted(i.task_pk for i in items) == sorted(t.pk for t in mine)
        gold_item = next(i for i in items if i.task_pk == next(t.pk for t in gold if t.assignee == "ann"))
        other = next(i for i in items if i.task_pk != gold_item.task_pk)
        assert [f.name for f in dataclasses.fields(gold_item)] == ["task_pk", "title", "audio_s", "due_at", "state", "overdue"]
        for item in items:
            assert re.fullmatch(r"dlg\d{3}\.flac \d+:\d{2}–\d+:\d{2}", item.title)
            assert "gold" not in repr(item).lower() and "calibration" not in repr(item).lower()
        assert gold_item.state == other.state == "open" and gold_item.due_at == other.due_at
        # the gold tasks were cut in among the production tasks: their ids do not stand out
        production_pks = sorted(t.pk for t in tasks_of(session, kind="annotate"))
        assert all(production_pks[0] < t.pk < production_pks[-1] for t in gold)
        assert set(gold[0].details) <= {"chunk", "context_start_s", "context_end_s"}

        with pytest.raises(PermissionDenied):
            queue_for(session, manager)
        submit(session, gold[0], gold_turns)  # out of ann's queue: now it may go to ann2
        session.commit()
        again = assign_tasks(session, rs.protocol_row.pk, AssignmentRules(gold_share=0.5), actor="mgr", report=report)
        session.commit()
        assert [(t.kind, t.assignee) for t in again] == [("gold", "ann2")] and report.gold_created_after_cut == 0
        assert production_pks[0] < again[0].pk < production_pks[-1]


def test_gold_pool_tasks_are_re_pointed_and_queues_per_recording_follow_the_protocol(review_store) -> None:
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    for name in ("a1", "a2", "a3"):
        rs.add_user(name, "annotator")
        rs.calibrate(name)
    r1, r2 = rs.recording_pks[:2]
    with rs.store.session() as session:
        make_gold(session, manager, r1, [turn("spk-0001", 0.9, 4.1, "hello")])
        cut_tasks(session, rs.protocol_row.pk, double_share=0, blind_share=0, gold_share=0.5, actor="mgr")
        pool = {t.pk: t.created_at for t in tasks_of(session, kind="gold")}
        assert {t.recording_pk for t in tasks_of(session, kind="gold")} == {r1}
        make_gold(session, manager, r2, [turn("spk-0003", 0.5, 2.0, "hi")])  # gold made after the cut
        row = session.get(models.Protocol, rs.protocol_row.pk)
        row.spec = {**row.spec, "review": {"gold": {"queues_per_recording": 3}}}
        session.commit()
        report = AssignmentReport()
        given = assign_tasks(session, rs.protocol_row.pk, AssignmentRules(gold_share=1.0), actor="mgr", report=report)
        session.commit()
        gold = [t for t in given if t.kind == "gold"]
        production = Counter(t.assignee for t in given if t.kind == "annotate")
        assert sum(production.values()) == 5  # r2 became gold after the cut: its production task stays
        seen_r2 = {t.assignee for t in given if t.kind == "annotate" and t.recording_pk == r2}
        # as much gold as production work, from both gold recordings if need be (never one a person worked on)
        wants = {p: min(n, 1 if p in seen_r2 else 2) for p, n in production.items()}
        assert Counter(t.assignee for t in gold) == wants and report.gold_created_after_cut == 0
        per_recording = Counter(t.recording_pk for t in gold)
        assert per_recording[r1] == 3 and per_recording[r2] == sum(wants.values()) - 3 >= 1  # 3 queues may hold one at once
        # r2's task is a pool row re-pointed at it: its id and creation time are the cut's
        assert {t.pk for t in gold} <= set(pool) and all(t.created_at == pool[t.pk] for t in gold)


def test_overdue_and_sent_back_first(review_store) -> None:
    rs = review_store
    ann = rs.add_user("ann", "annotator")
    with rs.store.session() as session:
        created = cut_tasks(session, rs.protocol_row.pk, double_share=0, blind_share=0, actor="mgr")
        now = dt.datetime(2030, 1, 10, tzinfo=dt.timezone.utc)
        for i, t in enumerate(created[:3]):
            t.assignee = "ann"
            t.due_at = now + dt.timedelta(days=i - 1)
        created[2].state = "sent_back"
        created[3].assignee, created[3].state = "ann", "submitted"  # finished work leaves the queue
        session.commit()
        items = queue_for(session, ann, now=now)
    assert [i.task_pk for i in items] == [created[2].pk, created[0].pk, created[1].pk]
    assert [i.overdue for i in items] == [False, True, False]


def test_task_counts(review_store) -> None:
    rs = review_store
    with rs.store.session() as session:
        cut_tasks(session, rs.protocol_row.pk, double_share=0, blind_share=0, actor="mgr")
        session.commit()
        assert tasks.task_counts(session, rs.protocol_row.pk) == {("annotate", "open"): 6}
        assert session.scalar(select(models.AuditEvent.details).where(models.AuditEvent.action == "review_tasks_cut"))["tasks"] == 6


def test_gold_tasks_are_cut_like_production_work_blind_as_often(review_store) -> None:
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    with rs.store.session() as session:
        make_gold(session, manager, rs.recording_pks[0], [turn("spk-0001", 0.9, 4.1, "hello")])
        created = cut_tasks(session, rs.protocol_row.pk, max_chunk_s=10.0, double_share=0, blind_share=1.0, gold_share=0.5,
                            actor="mgr")
        session.commit()
        gold = tasks_of(session, kind="gold")
        # ceil(0.5 × units) plus one per active annotator (none here): each person's gold is rounded up
        assert len(gold) == math.ceil(0.5 * len(created)) and all(t.blind for t in gold) and all(t.blind for t in created)
        for t in gold:  # chunks of the gold recording, with the same context fields
            assert t.assignee is None and t.end_s - t.start_s <= 10.0
            assert set(t.details) == {"chunk", "context_start_s", "context_end_s"}
