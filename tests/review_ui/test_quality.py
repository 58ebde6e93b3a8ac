"""Quality figures against values computed by hand."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from collection.coverage import compute_coverage
from store import models
from review_ui import automation_bias, comparison, quality
from review_ui.funnel import STAGES, coverage_funnel
from tests.review_ui.helpers import approve_directly, make_gold, turn

UTC = dt.timezone.utc
REFERENCE = [turn("A", 0.0, 2.0, "Hello there."), turn("B", 2.0, 4.0, "Good morning to you!")]


# --- the comparisons themselves --------------------------------------------------------------------

def test_word_counts_normalise_and_count_like_jiwer() -> None:
    c = comparison.word_counts("A b, c.", "a x c d")
    assert (c.hits, c.substitutions, c.deletions, c.insertions) == (2, 1, 0, 1)
    assert c.wer == pytest.approx(2 / 3) and c.kept == pytest.approx(2 / 3)
    assert comparison.word_counts("", "two words").errors == 2 and comparison.word_counts("", "").wer is None
    assert comparison.word_counts("one two", "").wer == 1.0


def test_frames_speaker_error_and_boundaries_by_hand() -> None:
    reference = [turn("A", 0.0, 2.0, ""), turn("B", 2.0, 4.0, "")]
    hypothesis = [turn("X", 0.0, 3.0, ""), turn("Y", 3.0, 4.0, "")]
    ref = comparison.frame_labels(reference, 0.0, 4.0, 1.0)
    hyp = comparison.frame_labels(hypothesis, 0.0, 4.0, 1.0)
    assert ref == ["A", "A", "B", "B"] and hyp == ["X", "X", "X", "Y"]
    assert comparison.speaker_mapping(ref, hyp) == {"X": "A", "Y": "B"}  # 2 + 1 shared frames beat 1 + 0
    assert comparison.speaker_error(ref, hyp) == (1, 4)
    assert comparison.frame_labels([turn("A", 0, 2, ""), turn("B", 1, 3, "")], 0, 4, 1.0) == ["A", "A+B", "B", ""]
    c = comparison.compare(reference, hypothesis, 0.0, 4.0, 1.0)
    assert c.speaker_error == 0.25
    # A [0,2] ~ X [0,3]: (0 + 1) / 2; B [2,4] ~ Y [3,4]: (1 + 0) / 2
    assert c.boundary_deviations == [0.5, 0.5] and c.boundary_s == 0.5


def test_krippendorff_alpha_by_hand() -> None:
    # coincidences: (A,A) 2, (A,B) 1 + 1, (B,B) 4; n_A = 3, n_B = 5, n = 8
    # alpha = 1 - D_o / D_e = 1 - (2/8) / (2*3*5 / (8*7)) = 8/15
    assert quality.krippendorff_alpha(["A", "A", "B", "B"], ["A", "B", "B", "B"]) == pytest.approx(8 / 15)
    assert quality.krippendorff_alpha(["A", "A"], ["A", "A"]) == 1.0
    assert quality.krippendorff_alpha([], []) is None


# --- figures from the store --------------------------------------------------------------------------

def _task(session, recording_pk: int, assignee: str, kind: str = "annotate", **kw) -> models.Task:  # type: ignore[no-untyped-def]
    task = models.Task(kind=kind, recording_pk=recording_pk, assignee=assignee, state="submitted", details=kw.pop("details", {}), **kw)
    session.add(task)
    session.flush()
    return task


def _submitted(session, task: models.Task, turns, at: dt.datetime | None = None) -> models.TranscriptRevision:  # type: ignore[no-untyped-def]
    revision = models.TranscriptRevision(recording_pk=task.recording_pk, author_kind="person", author=task.assignee, turns=turns,
                                         stage="submitted", task_pk=task.pk, **({"created_at": at} if at else {}))
    session.add(revision)
    session.flush()
    return revision


def test_gold_accuracy_per_annotator(review_store) -> None:
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    r1, r2 = rs.recording_pks[:2]
    with rs.store.session() as session:
        make_gold(session, manager, r1, REFERENCE)
        make_gold(session, manager, r2, REFERENCE)
        # ann: "their" for "there" (1 of 6 words); A runs to 3 s over B's 100 of 400 speech frames (10 ms);
        # boundaries: A (0 + 1) / 2, B (1 + 0) / 2
        _submitted(session, _task(session, r1, "ann", "gold"),
                   [turn("A", 0.0, 3.0, "hello their"), turn("B", 3.0, 4.0, "good morning to you")])
        # ...and a perfect calibration item: 0 of 6 words, 0 of 400 frames, boundaries 0 and 0
        _submitted(session, _task(session, r2, "ann", "calibration"), REFERENCE)
        # bob: one gold item, B's turn missing: 4 deletions of 6 words, B's 200 frames wrong, boundary of A only
        _submitted(session, _task(session, r1, "bob", "gold"), [turn("A", 0.0, 2.0, "hello there")])
        # a production task and a gold task without submission count for nothing
        _submitted(session, _task(session, r2, "bob"), REFERENCE)
        _task(session, r2, "bob", "gold")
        session.commit()
        rows = {r.annotator: r for r in quality.gold_accuracy(session, rs.protocol_row.pk)}
    assert set(rows) == {"ann", "bob"}
    assert rows["ann"].items == 2 and rows["ann"].wer == pytest.approx(1 / 12)
    assert rows["ann"].speaker_error == pytest.approx(100 / 800) and rows["ann"].boundary_s == pytest.approx(1 / 4)
    assert rows["bob"].items == 1 and rows["bob"].wer == pytest.approx(4 / 6)
    assert rows["bob"].speaker_error == pytest.approx(200 / 400) and rows["bob"].boundary_s == 0.0


def test_agreement_on_double_annotated_tasks(review_store) -> None:
    rs = review_store
    r1, r2, r3 = rs.recording_pks[:3]
    with rs.store.session() as session:
        span = {"start_s": 0.0, "end_s": 4.0}
        # pair 1: frames (1 s) A A B B vs A B B B; the secondary dropped "to": 1 deletion of 6 words
        p1a = _task(session, r1, "ann", pair_key="p1", details={"pair_role": "primary"}, **span)
        p1b = _task(session, r1, "bob", pair_key="p1", details={"pair_role": "secondary"}, **span)
        _submitted(session, p1a, [turn("A", 0.0, 2.0, "hello there"), turn("B", 2.0, 4.0, "good morning to you")])
        _submitted(session, p1b, [turn("S1", 0.0, 1.0, "hello there"), turn("S2", 1.0, 4.0, "good morning you")])
        # pair 2: both A B B B with the same words (speaker names differ: mapped before comparing)
        p2a = _task(session, r2, "bob", pair_key="p2", details={"pair_role": "primary"}, **span)
        p2b = _task(session, r2, "ann", pair_key="p2", details={"pair_role": "secondary"}, **span)
        _submitted(session, p2a, [turn("A", 0.0, 1.0, "yes"), turn("B", 1.0, 4.0, "no way")])
        first = _submitted(session, p2b, [turn("X", 0.0, 1.0, "yes"), turn("Y", 1.0, 4.0, "no way")])
        _submitted(session, p2b, [turn("X", 0.0, 1.0, "completely different")])  # later submissions do not count
        # pair 3: only one side submitted: left out
        _submitted(session, _task(session, r3, "ann", pair_key="p3", details={"pair_role": "primary"}, **span), REFERENCE)
        _task(session, r3, "bob", pair_key="p3", details={"pair_role": "secondary"}, **span)
        session.commit()
        assert quality.first_submission(session, p2b.pk).pk == first.pk
        report = quality.agreement(session, rs.protocol_row.pk, frame_s=1.0)
    assert [p.pair_key for p in report.pairs] == ["p1", "p2"]
    p1, p2 = report.pairs
    assert p1.annotators == ("ann", "bob") and p1.wer == pytest.approx(1 / 6) and p1.alpha == pytest.approx(8 / 15)
    assert p2.wer == 0.0 and p2.alpha == 1.0
    # pooled: errors 1 of 6 + 3 words. Alpha pools the frames, the speakers of different pairs kept apart
    # (A1 A1 B1 B1 A2 B2 B2 B2 / A1 B1 B1 B1 A2 B2 B2 B2): o_A1A1 = 2, o_A1B1 = o_B1A1 = 1, o_B1B1 = 4,
    # o_A2A2 = 2, o_B2B2 = 6; n = 3, 5, 2, 6 (16 in all); D_o = 2/16, D_e = (16² - 9 - 25 - 4 - 36) / (16*15)
    # alpha = 1 - (2/16) / (182/240) = 76/91
    assert report.wer == pytest.approx(1 / 9)
    assert report.alpha == pytest.approx(76 / 91)


def test_throughput_and_its_weekly_trend(review_store) -> None:
    rs = review_store
    r1 = rs.recording_pks[0]
    monday = dt.datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    with rs.store.session() as session:
        week1 = _task(session, r1, "ann", start_s=0.0, end_s=6.0)  # 0.1 min of audio
        week1b = _task(session, r1, "ann", start_s=6.0, end_s=12.0)
        week2 = _task(session, r1, "ann", start_s=12.0, end_s=24.0)  # 0.2 min
        _submitted(session, week1, [], at=monday + dt.timedelta(hours=1))
        _submitted(session, week1b, [], at=monday + dt.timedelta(days=2))
        _submitted(session, week2, [], at=monday + dt.timedelta(days=7))
        for task, start, minutes in ((week1, monday, 3), (week1b, monday + dt.timedelta(days=2), 3),
                                     (week2, monday + dt.timedelta(days=7), 12)):
            session.add(models.WorkInterval(username="ann", task_pk=task.pk, started_at=start,
                                            ended_at=start + dt.timedelta(minutes=minutes)))
        session.commit()
        report = quality.throughput(session, rs.protocol_row.pk, period="week")
        daily = quality.throughput(session, rs.protocol_row.pk, period="day")
    # 0.4 min of audio in 18 min = 0.3 h: 4/3 min per hour
    assert report.per_annotator == [{"annotator": "ann", "audio_minutes": 0.4, "hours_worked": 0.3,
                                     "minutes_per_hour": pytest.approx(4 / 3, abs=1e-3), "unclocked_minutes": 0.0}]
    weeks = [r for r in report.trend if r["annotator"] == "all"]
    assert [r["period_start"] for r in weeks] == [dt.date(2030, 1, 7), dt.date(2030, 1, 14)]
    assert [r["minutes_per_hour"] for r in weeks] == [pytest.approx(2.0), pytest.approx(1.0)]  # 0.2/0.1 h, 0.2/0.2 h
    assert len([r for r in daily.trend if r["annotator"] == "all"]) == 3
    with pytest.raises(ValueError):
        quality.throughput(session, period="month")


def test_team_throughput_counts_only_minutes_with_time_worked(review_store) -> None:
    """The issue's case: one annotator's minutes were finished with no time logged. Counting them made the team
    (0.6 min / 0.3 h = 2.0 min/h) faster than its only clocked member (0.4 min / 0.3 h = 1.33 min/h)."""
    rs = review_store
    r1 = rs.recording_pks[0]
    monday = dt.datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
    with rs.store.session() as session:
        clocked = _task(session, r1, "ann", start_s=0.0, end_s=24.0)  # 0.4 min of audio
        unclocked = _task(session, r1, "bob", start_s=24.0, end_s=36.0)  # 0.2 min, no work interval
        _submitted(session, clocked, [], at=monday + dt.timedelta(hours=1))
        _submitted(session, unclocked, [], at=monday + dt.timedelta(hours=2))
        session.add(models.WorkInterval(username="ann", task_pk=clocked.pk, started_at=monday,
                                        ended_at=monday + dt.timedelta(minutes=18)))
        session.commit()
        report = quality.throughput(session, rs.protocol_row.pk, period="week")
    ann, bob = report.per_annotator
    assert ann["minutes_per_hour"] == pytest.approx(0.4 / 0.3, abs=1e-3) and ann["unclocked_minutes"] == 0.0
    assert bob["minutes_per_hour"] is None and bob["audio_minutes"] == 0.2 and bob["unclocked_minutes"] == 0.2
    assert report.team["minutes_per_hour"] == pytest.approx(0.4 / 0.3, abs=1e-3)
    assert report.team["audio_minutes"] == pytest.approx(0.6) and report.team["unclocked_minutes"] == pytest.approx(0.2)
    (week,) = [r for r in report.trend if r["annotator"] == "all"]
    assert week["minutes_per_hour"] == report.team["minutes_per_hour"]


THEIR = [turn("A", 0.0, 2.0, "Hello their."), REFERENCE[1]]  # one substitution of six words


def _bias_case(rs, model, shown, blind):  # type: ignore[no-untyped-def]
    """Two gold items; ann sees r1 with the pre-annotation and r2 blind, bob the other way round."""
    manager = rs.add_user("mgr", "manager")
    r1, r2 = rs.recording_pks[:2]
    span = {"start_s": 0.0, "end_s": 4.0}
    with rs.store.session() as session:
        for pk in (r1, r2):
            make_gold(session, manager, pk, REFERENCE)
            session.add(models.TranscriptRevision(recording_pk=pk, author_kind="model", author="m", turns=model, stage="model"))
        for who, shown_pk, blind_pk in (("ann", r1, r2), ("bob", r2, r1)):
            _submitted(session, _task(session, shown_pk, who, "gold", **span), shown)
            _submitted(session, _task(session, blind_pk, who, "gold", blind=True, **span), blind)
        session.commit()
        return automation_bias.automation_bias(session, rs.protocol_row.pk, min_items=2)


def _legacy_figures(model, shown, blind) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """What the old check reported: model words kept when shown, blind agreement with the model."""
    text = comparison.text_of
    return comparison.word_counts(text(model), text(shown)).kept, comparison.word_counts(text(model), text(blind)).kept


def test_automation_bias_case_a_perfect_model_blind_people_err(review_store) -> None:
    """(A) the model is perfect, people keep it when shown and make one error in six words blind."""
    assert _legacy_figures(REFERENCE, REFERENCE, THEIR) == (1.0, pytest.approx(5 / 6))  # the finding: same as case B
    bias = _bias_case(review_store, model=REFERENCE, shown=REFERENCE, blind=THEIR)
    shown, blind = bias.overall.shown, bias.overall.blind
    # shown: 0 errors in 6 + 6 reference words; blind: 1 + 1 errors in 12, each item 1/6, so no spread
    assert (shown.items, shown.wer.numerator, shown.wer.denominator, shown.wer.value) == (2, 0, 12, 0.0)
    assert (shown.wer.low, shown.wer.high) == (0.0, 0.0)
    assert (blind.items, blind.wer.numerator, blind.wer.denominator) == (2, 2, 12)
    assert blind.wer.value == pytest.approx(1 / 6) and blind.wer.low == pytest.approx(1 / 6) == blind.wer.high
    # the model made no errors: nothing to accept or to repeat
    assert shown.model_errors_repeated.value is None and shown.model_errors_repeated.items == 0
    assert blind.model_errors_repeated.value is None
    assert bias.overall.verdict == ("the model made no errors on the shown items, so acceptance of its errors cannot be judged; "
                                    "the pre-annotation lowers people's WER (0.000 with, 0.167 without)")
    ann = next(f for f in bias.per_annotator if f.annotator == "ann")
    assert ann.shown.items == 1 and ann.shown.wer.value == 0.0 and ann.shown.wer.low is None  # one item: no interval
    assert ann.blind.wer.value == pytest.approx(1 / 6) and ann.verdict.startswith("too few items to conclude: 1 shown and 1 blind")


def test_automation_bias_case_b_wrong_model_accepted_blind_people_perfect(review_store) -> None:
    """(B) the model errs once in six words, people keep its error when shown and are perfect blind."""
    assert _legacy_figures(THEIR, THEIR, REFERENCE) == (1.0, pytest.approx(5 / 6))  # the finding: same as case A
    bias = _bias_case(review_store, model=THEIR, shown=THEIR, blind=REFERENCE)
    shown, blind = bias.overall.shown, bias.overall.blind
    assert (shown.wer.numerator, shown.wer.denominator) == (2, 12) and shown.wer.value == pytest.approx(1 / 6)
    assert (blind.wer.numerator, blind.wer.denominator, blind.wer.value) == (0, 12, 0.0)
    # the model's 2 errors (one per item) both survive when shown; blind people repeat neither
    assert (shown.model_errors_repeated.numerator, shown.model_errors_repeated.denominator) == (2, 2)
    assert shown.model_errors_repeated.value == 1.0 and shown.model_errors_repeated.items == 2
    assert (blind.model_errors_repeated.numerator, blind.model_errors_repeated.denominator) == (0, 2)
    assert bias.overall.verdict == ("automation bias: 100% of the model's errors survive correction, while people working "
                                    "blind make the same errors 0% of the time; the pre-annotation raises people's WER "
                                    "(0.167 with, 0.000 without)")
    row = bias.overall.row()
    assert row["shown_items"] == 2 and row["shown_model_errors_repeated"] == 1.0 and row["blind_wer"] == 0.0


def test_automation_bias_needs_enough_items_and_counts_only_repeated_errors(review_store) -> None:
    # the person fixes the model's "their" but writes "thee": an error of their own, not the model's
    bias = _bias_case(review_store, model=THEIR, shown=[turn("A", 0.0, 2.0, "hello thee"), REFERENCE[1]], blind=REFERENCE)
    assert bias.overall.shown.model_errors_repeated.value == 0.0 and bias.overall.shown.wer.value == pytest.approx(1 / 6)
    with review_store.store.session() as session:
        default = automation_bias.automation_bias(session, review_store.protocol_row.pk)
    assert default.min_items == automation_bias.MIN_ITEMS == 10
    assert default.overall.verdict == ("too few items to conclude: 2 shown and 2 blind gold item(s); "
                                       "at least 10 of each are needed")


def test_error_events_and_the_ratio_interval_by_hand() -> None:
    events = automation_bias.error_events("a b c d", "a x c e d")
    assert events == Counter({("sub", 1, "x"): 1, ("ins", 3, "e"): 1})
    other = automation_bias.error_events("a b c d", "A x, d")
    assert other == Counter({("sub", 1, "x"): 1, ("del", 2): 1}) and (events & other) == Counter({("sub", 1, "x"): 1})
    assert automation_bias.error_events("", "two words") == Counter({("ins", 0, "two"): 1, ("ins", 0, "words"): 1})
    # items (1, 6), (3, 6), (0, 4): R = 4/16; residuals -0.5, 1.5, -1: Σ² = 3.5; var = 3/2 · 3.5 / 16² = 5.25/256
    r = automation_bias.ratio_interval([(1, 6), (3, 6), (0, 4), (5, 0)])
    half = 1.959963984540054 * (5.25 / 256) ** 0.5
    assert (r.numerator, r.denominator, r.items, r.value) == (4, 16, 3, 0.25)
    assert r.low == 0.0 and r.high == pytest.approx(0.25 + half)  # 0.25 - 0.2807 clipped at 0
    assert automation_bias.ratio_interval([]).value is None


def test_time_to_training(review_store) -> None:
    rs = review_store
    r1, r2 = rs.recording_pks[:2]
    with rs.store.session() as session:
        ingested = dt.datetime(2030, 1, 1, tzinfo=UTC)
        for pk in rs.recording_pks:
            session.get(models.Recording, pk).ingested_at = ingested
        approve_directly(session, r1, REFERENCE).created_at = ingested + dt.timedelta(days=2)
        approve_directly(session, r2, REFERENCE).created_at = ingested + dt.timedelta(days=5)
        approve_directly(session, r2, REFERENCE).created_at = ingested + dt.timedelta(days=9)  # the first approval counts
        session.commit()
        report = quality.time_to_training(session, rs.protocol_row.pk)
    assert report.approved == 2 and report.pending == 4
    assert report.median_days == pytest.approx(3.5) and report.mean_days == pytest.approx(3.5)
    assert [r["days"] for r in report.rows[:2]] == [pytest.approx(2.0), pytest.approx(5.0)]


def test_break_reminder_after_fifty_minutes_of_continuous_work(review_store) -> None:
    rs = review_store
    at = lambda h, m: dt.datetime(2030, 1, 7, h, m, tzinfo=UTC)  # noqa: E731
    with rs.store.session() as session:
        task = _task(session, rs.recording_pks[0], "ann")
        for start, end in ((at(8, 0), at(8, 30)), (at(9, 0), at(9, 20)), (at(9, 22), at(9, 40)), (at(9, 41), at(9, 52))):
            session.add(models.WorkInterval(username="ann", task_pk=task.pk, started_at=start, ended_at=end))
        session.commit()
        # 9:00-9:52 with gaps of 2 and 1 minutes is one stretch; the 30-minute gap before it was a break
        assert quality.minutes_worked_continuously(session, "ann", at(9, 53)) == pytest.approx(52)
        assert quality.needs_break(session, "ann", at(9, 53))
        assert not quality.needs_break(session, "ann", at(9, 58))  # 6 minutes since: that was a break
        assert quality.minutes_worked_continuously(session, "ann", at(9, 30)) == pytest.approx(30)  # 9:00 to now
        assert not quality.needs_break(session, "ann", at(9, 30))
        assert quality.minutes_worked_continuously(session, "nobody", at(9, 30)) == 0.0


def test_corpus_summary_for_the_dataset_card(review_store) -> None:
    rs = review_store
    manager = rs.add_user("mgr", "manager")
    r1 = rs.recording_pks[0]
    with rs.store.session() as session:
        make_gold(session, manager, r1, REFERENCE)
        _submitted(session, _task(session, r1, "ann", "gold"), [turn("A", 0.0, 2.0, "hello their"), REFERENCE[1]])
        session.commit()
        summary = quality.corpus_summary(session, rs.protocol_row.pk)
    assert summary["gold_items"] == 1 and summary["gold_wer"] == pytest.approx(1 / 6)
    assert summary["agreement_wer"] is None and summary["double_annotated"] == 0
    assert summary["annotators"] == 1 and summary["approved_recordings"] == 1  # make_gold approved r1 first
    assert set(summary) >= {"gold_wer", "agreement_wer", "agreement_alpha", "annotators"}


def test_coverage_funnel_stages_and_gaps_first(review_store) -> None:
    rs = review_store
    r1, r2 = rs.recording_pks[:2]
    with rs.store.session() as session:
        session.add(models.TranscriptRevision(recording_pk=r2, author_kind="person", author="ann", turns=[], stage="draft"))
        approve_directly(session, r1, REFERENCE)
        session.commit()
        rows = coverage_funnel(session, rs.protocol_row, rs.protocol)
        coverage = compute_coverage(session, rs.protocol_row, rs.protocol)
        durations = {pk: session.get(models.Recording, pk).duration_s for pk in (r1, r2)}
    total, cells = rows[0], rows[1:]
    assert total.scope == "total" and total.target_hours == 300
    all_hours = sum(c.hours for c in coverage.scope("total"))
    assert total.hours["collected"] == pytest.approx(all_hours) == total.hours["preannotated"]
    assert total.hours["in_review"] == pytest.approx((durations[r1] + durations[r2]) / 3600)
    assert total.hours["approved"] == pytest.approx(durations[r1] / 3600)
    assert total.speakers == {"collected": 11, "preannotated": 11, "in_review": 4, "approved": 2, "released": 0}
    # collected per cell: the same numbers as the coverage report
    collected = {c.values: (round(c.hours, 9), c.speakers) for c in coverage.scope("cell")}
    assert {c.values: (round(c.hours["collected"], 9), c.speakers["collected"]) for c in cells} == collected
    for row in cells:
        assert [row.hours[s] for s in STAGES] == sorted((row.hours[s] for s in STAGES), reverse=True)
    # gaps first: every cell is far from its target, the least-approved first, largest gap first among equals
    keys = [(c.approved_percent, -(c.gap_hours or 0)) for c in cells]
    assert keys == sorted(keys)
    approved = [c for c in cells if c.hours["approved"] > 0]
    assert {c.values for c in approved} == {("30-44", "male", "west_midlands"), ("18-29", "female", "british_rp")}
    assert cells.index(approved[0]) > len(cells) - 3  # the only cells with approved hours come last
    assert rows[1].as_dict()["gap_hours"] == rows[1].gap_hours


def test_large_inputs_give_the_krippendorff_package_s_alpha() -> None:
    import krippendorff
    import numpy as np

    rng = np.random.default_rng(0)
    for n_values, n_units in ((2, 50), (5, 400), (9, 3000)):
        a = rng.integers(0, n_values, n_units)
        b = np.where(rng.random(n_units) < 0.7, a, rng.integers(0, n_values, n_units))
        expected = krippendorff.alpha(reliability_data=np.stack([a, b]).astype(float), level_of_measurement="nominal")
        assert quality.nominal_alpha(a, b, n_values) == pytest.approx(expected, abs=1e-12)
        assert quality.krippendorff_alpha(list(a), list(b)) == pytest.approx(expected, abs=1e-12)
    # an hour of 10 ms frames: counted directly, never the package's units x values² array
    a = rng.integers(0, 4, 360_000)
    b = np.where(rng.random(360_000) < 0.9, a, 0)
    assert 0.8 < quality.krippendorff_alpha(a, b) < 1.0
    assert quality.nominal_alpha(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2) == pytest.approx(8 / 15)
