"""Assignment: skills, workload balance, conflicts of interest, pairs, calibration sets."""

from __future__ import annotations

from collections import Counter

import pytest

from store import models
from review_ui.assignment import AssignmentRules, assign_tasks, choose_reviewer, conflicts
from review_ui.calibration import start_calibration
from review_ui.tasks import cut_tasks
from tests.review_ui.helpers import make_gold, tasks_of, turn


def _cut(rs, **kw) -> list[models.Task]:  # type: ignore[no-untyped-def]
    with rs.store.session() as session:
        created = cut_tasks(session, rs.protocol_row.pk, **{"double_share": 0, "blind_share": 0, **kw}, actor="mgr")
        session.commit()
        return created


def _assign(rs, rules: AssignmentRules | None = None) -> list[models.Task]:  # type: ignore[no-untyped-def]
    with rs.store.session() as session:
        given = assign_tasks(session, rs.protocol_row.pk, rules or AssignmentRules(), actor="mgr")
        session.commit()
        return given


def _declare(rs, recording_pk: int, **extra: str) -> None:  # type: ignore[no-untyped-def]
    with rs.store.session() as session:
        recording = session.get(models.Recording, recording_pk)
        recording.declared = {**recording.declared, **extra}
        session.commit()


def test_nobody_uncalibrated_gets_production_work_and_load_is_balanced(review_store) -> None:
    rs = review_store
    for name in ("ann1", "ann2", "ann3"):
        rs.add_user(name, "annotator")
    rs.add_user("rev", "reviewer")
    rs.calibrate("ann1")
    rs.calibrate("ann2")
    rs.calibrate("ann3", state="calibrating")
    _cut(rs)
    given = _assign(rs)
    assert len(given) == 6 and {t.assignee for t in given} == {"ann1", "ann2"}
    with rs.store.session() as session:
        audio = Counter()
        for t in given:
            audio[t.assignee] += session.get(models.Recording, t.recording_pk).duration_s
    # greedy by open audio: the two loads differ by less than one dialogue (all are 24-28 s long)
    assert abs(audio["ann1"] - audio["ann2"]) < 28.1
    assert Counter(t.assignee for t in given) == {"ann1": 3, "ann2": 3}
    assert all(t.due_at is not None for t in given)
    assert _assign(rs) == []  # nothing left to give


def test_max_open_and_pairs_go_to_two_different_people(review_store) -> None:
    rs = review_store
    rs.add_user("ann1", "annotator")
    rs.add_user("ann2", "annotator")
    rs.calibrate("ann1")
    rs.calibrate("ann2")
    created = _cut(rs, double_share=1.0)
    assert len(created) == 12
    given = _assign(rs, AssignmentRules(max_open_per_person=4))
    assert Counter(t.assignee for t in given) == {"ann1": 4, "ann2": 4}
    pairs: dict[str, set[str]] = {}
    for t in given:
        pairs.setdefault(t.pair_key, set()).add(t.assignee)
    with rs.store.session() as session:
        for t in tasks_of(session, kind="annotate"):
            if t.assignee:
                partner = [o for o in tasks_of(session, kind="annotate") if o.pair_key == t.pair_key and o.pk != t.pk][0]
                assert partner.assignee != t.assignee


def test_accent_skills(review_store) -> None:
    rs = review_store
    rs.add_user("scot", "annotator")
    rs.calibrate("scot", accent="scottish")
    rs.calibrate("scot", accent="us_general")
    rs.calibrate("scot", language="fr")  # another language's calibration covers nothing here
    _cut(rs)
    given = _assign(rs)
    # dlg002 and dlg004 are the dialogues between a Scottish and a US speaker
    assert sorted(t.recording_pk for t in given) == [rs.recording_pks[1], rs.recording_pks[3]]


def test_conflicts_of_interest(review_store) -> None:
    rs = review_store
    rs.add_user("ann1", "annotator", groups=["site:lyon", "speaker:spk-0003"])
    rs.add_user("ann2", "annotator", groups=["group:acme"])
    rs.calibrate("ann1")
    rs.calibrate("ann2")
    r1, r2, r3, r4, r5, r6 = rs.recording_pks
    _declare(rs, r1, site="lyon")  # ann1's site
    _declare(rs, r3, recorded_by="ann1")  # ann1 recorded it
    _declare(rs, r4, group="acme")  # ann2's group
    _declare(rs, r5, recorded_by="ann2", site="lyon")  # neither may take it
    with rs.store.session() as session:
        user = session.get(models.User, "ann1")
        assert conflicts(user, session.get(models.Recording, r2), {"spk-0003", "spk-0004"}) == ["is speaker spk-0003"]
    _cut(rs)
    given = {t.recording_pk: t.assignee for t in _assign(rs)}
    assert given[r1] == "ann2" and given[r2] == "ann2" and given[r3] == "ann2"  # r2: ann1 is speaker spk-0003
    assert given[r4] == "ann1"
    assert r5 not in given
    assert given[r6] in ("ann1", "ann2")
    # rules are configurable: without the site rule ann1 may take r5's site but ann2 still recorded it
    with rs.store.session() as session:
        assert not conflicts(session.get(models.User, "ann1"), session.get(models.Recording, r5), set(), conflict_keys=())


def test_calibration_sets_go_to_people_calibrating(review_store) -> None:
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    rs.add_user("new", "annotator")
    rs.add_user("old", "annotator")
    rs.calibrate("old")
    with rs.store.session() as session:
        for pk in rs.recording_pks[:4]:
            make_gold(session, manager, pk, [turn("A", 0.0, 2.0, "hello there")])
        start_calibration(session, manager, "new", "en", "scottish")
        session.commit()
    _cut(rs, gold_share=0)
    given = _assign(rs)
    calibration = [t for t in given if t.kind == "calibration"]
    # a set of 3 (the default), on gold recordings with a Scottish speaker: dlg002 and dlg004 only
    assert {t.assignee for t in calibration} == {"new"}
    assert sorted(t.recording_pk for t in calibration) == [rs.recording_pks[1], rs.recording_pks[3]]
    assert not [t for t in given if t.assignee == "new" and t.kind != "calibration"]
    # old gets the two non-gold dialogues and, with gold_share 0.1 of 2 tasks, one gold item
    assert Counter(t.kind for t in given if t.assignee == "old") == {"annotate": 2, "gold": 1}
    assert _assign(rs) == []  # never the same gold recording twice, no duplicate calibration tasks


def test_reviewer_choice_respects_conflicts_and_own_work(review_store) -> None:
    rs = review_store
    rs.add_user("both", "annotator", "reviewer")
    rs.add_user("rev1", "reviewer", groups=["site:lyon"])
    rs.add_user("rev2", "reviewer")
    r1 = rs.recording_pks[0]
    _declare(rs, r1, site="lyon")
    with rs.store.session() as session:
        recording = session.get(models.Recording, r1)
        assert choose_reviewer(session, recording, exclude={"both"}) == "rev2"
        assert choose_reviewer(session, recording, exclude={"both", "rev2"}) is None


def test_conflict_inputs_from_manifest_and_groups_feed_assignment_and_its_report(store, dialogues) -> None:  # type: ignore[no-untyped-def]
    """Manifest attributes and groups changed after `users add` reach the rules; the report names rule and person."""
    from pathlib import Path

    from sqlalchemy import select

    from collection.intake import ingest_manifest
    from store.accounts import AccountError, add_user, update_groups
    from review_ui.assignment import AssignmentReport, KeptFrom
    from tests.factories import import_consent_file, manifest_rows, register_en, write_manifest
    from tests.conftest import EN_PROTOCOL
    from tests.review_ui.conftest import truth_turns

    text = EN_PROTOCOL.read_text().replace("  style: spontaneous\n", "  style: spontaneous\n  attributes: [group]\n")
    row, _ = register_en(store, text)
    import_consent_file(store, dialogues / "consent.csv")
    rows = manifest_rows(dialogues)
    rows[0].update(site="lyon")
    rows[2].update(recorded_by="ann1")
    rows[3].update(group="acme")
    assert ingest_manifest(store, "en-dialogue-accents", write_manifest(dialogues / "m.jsonl", rows), actor="test").ok
    with store.session() as session:
        recordings = {Path(r.source_name).stem: r.pk for r in session.scalars(select(models.Recording))}
        for stem, pk in recordings.items():
            session.add(models.TranscriptRevision(recording_pk=pk, author_kind="model", author="m",
                                                  turns=truth_turns(dialogues, stem), stage="model"))
        for name in ("ann1", "ann2"):
            add_user(session, name, "password-123", ["annotator"], actor="test")
        session.flush()
        session.add_all([models.Calibration(username=name, language="en", accent="", state="passed") for name in ("ann1", "ann2")])
        session.flush()
        update_groups(session, "ann1", add=["site:lyon", "speaker:spk-0003"], remove=[], actor="boss")
        update_groups(session, "ann2", add=["group:acme"], remove=[], actor="boss")
        with pytest.raises(AccountError, match="write <kind>:<value>"):
            update_groups(session, "ann2", add=["acme"], remove=[], actor="boss")
        with pytest.raises(AccountError, match="not in group"):
            update_groups(session, "ann2", add=[], remove=["site:paris"], actor="boss")
        cut_tasks(session, row.pk, double_share=0, blind_share=0, actor="mgr")
        report = AssignmentReport()
        given = {t.recording_pk: t.assignee for t in assign_tasks(session, row.pk, AssignmentRules(), actor="mgr", report=report)}
        session.commit()
    with store.session() as session:
        event = session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == "user_groups_changed")
                                .order_by(models.AuditEvent.pk)).all()
    assert [(e.actor, e.subject, e.details["added"]) for e in event] == [
        ("boss", "user:ann1", ["site:lyon", "speaker:spk-0003"]), ("boss", "user:ann2", ["group:acme"])]
    assert given[recordings["dlg001"]] == "ann2"  # site:lyon
    assert given[recordings["dlg002"]] == "ann2"  # ann1 is speaker spk-0003
    assert given[recordings["dlg003"]] == "ann2"  # recorded by ann1
    assert given[recordings["dlg004"]] == "ann1"  # group acme, a protocol-declared attribute
    kept = {(k.recording_pk, k.username): k.reasons for k in report.kept}
    assert kept == {(recordings["dlg001"], "ann1"): ("same site (lyon)",), (recordings["dlg002"], "ann1"): ("is speaker spk-0003",),
                    (recordings["dlg003"], "ann1"): ("recorded the session",), (recordings["dlg004"], "ann2"): ("same group (acme)",)}
    assert all(isinstance(k, KeptFrom) for k in report.kept) and report.unassigned == {}
