"""Quality figures, computed from the store: how far the people's work can be trusted.

Definitions (`review_ui.comparison` for the comparisons themselves):

- **Gold accuracy** per annotator: their submitted gold and calibration items against
  the references, over each task's span: corpus WER (errors added over items, divided by
  the reference words), speaker-attribution error (frames), mean boundary deviation (s).
- **Agreement** on double-annotated tasks: the first submission of each task of a pair
  (independent work, before any review): pairwise WER of the secondary against the
  primary, and Krippendorff's alpha (nominal) on frame-level speaker labels, the
  secondary's speakers renamed onto the primary's first; overall figures pool every pair
  (words added up; for alpha all frames together, speakers of different pairs kept apart).
- **Throughput**: audio minutes finished (a task's first submission) per hour worked
  (WorkInterval rows), per annotator and as a daily or weekly trend.
- **Automation bias**: `review_ui.automation_bias` (people's error against gold
  references with and without the pre-annotation, and the model's errors that survive).
- **Time to training**: from a recording's ingest to its first ``approved`` revision.
- **Break reminder**: continuous work is a chain of WorkIntervals with gaps under
  `BREAK_GAP`; after `BREAK_AFTER` of it the workbench suggests a break.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from store import models
from asr.evaluation import WordCounts, word_counts
from review_ui import comparison
from review_ui.tasks import CALIBRATION, GOLD, PRODUCTION, aware, span_of

BREAK_AFTER = dt.timedelta(minutes=50)
BREAK_GAP = dt.timedelta(minutes=5)
FRAME_S = 0.01


def tasks_of_kinds(session: Session, kinds: tuple[str, ...], protocol_pk: int | None) -> list[tuple[models.Task, models.Recording]]:
    task, rec = models.Task, models.Recording
    query = select(task, rec).join(rec, rec.pk == task.recording_pk).where(task.kind.in_(kinds))
    if protocol_pk is not None:
        query = query.where(rec.protocol_pk == protocol_pk)
    return [(t, r) for t, r in session.execute(query.order_by(task.pk)).all()]


def first_submission(session: Session, task_pk: int) -> models.TranscriptRevision | None:
    return first_submissions(session, [task_pk]).get(task_pk)


def first_submissions(session: Session, task_pks: Iterable[int]) -> dict[int, models.TranscriptRevision]:
    """Task pk -> its first submitted revision (the annotator's own work, before any review), in few queries."""
    rev = models.TranscriptRevision
    pks = sorted(set(task_pks))
    out: dict[int, models.TranscriptRevision] = {}
    for i in range(0, len(pks), 500):
        firsts = (select(func.min(rev.pk)).where(rev.task_pk.in_(pks[i:i + 500]), rev.stage == "submitted")
                  .group_by(rev.task_pk))
        for revision in session.scalars(select(rev).where(rev.pk.in_(firsts))):
            out[revision.task_pk] = revision
    return out


def _per_recording(session: Session, recording_pks: Iterable[int], which: Any, pick: Any = func.max,
                   ) -> dict[int, models.TranscriptRevision]:
    """Recording pk -> its newest (or with `pick=func.min`, first) revision matching `which`, 500 recordings per query."""
    rev = models.TranscriptRevision
    pks = sorted(set(recording_pks))
    out: dict[int, models.TranscriptRevision] = {}
    for i in range(0, len(pks), 500):
        chosen = select(pick(rev.pk)).where(rev.recording_pk.in_(pks[i:i + 500]), which).group_by(rev.recording_pk)
        for revision in session.scalars(select(rev).where(rev.pk.in_(chosen))):
            out[revision.recording_pk] = revision
    return out


def first_model_revisions(session: Session, recording_pks: Iterable[int]) -> dict[int, models.TranscriptRevision]:
    """Recording pk -> its first model revision: the pre-annotation people started from."""
    return _per_recording(session, recording_pks, models.TranscriptRevision.author_kind == "model", func.min)


def approved_of(session: Session, recording_pks: Iterable[int]) -> dict[int, models.TranscriptRevision]:
    """Recording pk -> its newest approved revision (what a release would take)."""
    return _per_recording(session, recording_pks, models.TranscriptRevision.stage == "approved")


def references(session: Session, recording_pks: Iterable[int]) -> dict[int, models.TranscriptRevision]:
    """Recording pk -> its newest reference revision."""
    return _per_recording(session, recording_pks, models.TranscriptRevision.stage == "reference")


def models_of(session: Session, recording_pks: Iterable[int]) -> dict[int, models.TranscriptRevision]:
    """Recording pk -> its newest model revision (the pre-annotation)."""
    return _per_recording(session, recording_pks, models.TranscriptRevision.author_kind == "model")


def _first_submissions_against(session: Session, rows: list[tuple[models.Task, models.Recording]],
                               against: dict[int, models.TranscriptRevision], frame_s: float,
                               ) -> Iterator[tuple[models.Task, models.TranscriptRevision, comparison.Comparison]]:
    """Each task's first submission compared with its recording's revision in `against`, over the task's span."""
    firsts = first_submissions(session, [t.pk for t, _ in rows])
    for task, recording in rows:
        revision, reference = firsts.get(task.pk), against.get(recording.pk)
        if revision is not None and reference is not None:
            start, end = span_of(task, recording)
            yield task, revision, comparison.compare(reference.as_turn_json(), revision.as_turn_json(), start, end, frame_s)


# --- gold accuracy -------------------------------------------------------------------------------

@dataclass
class GoldAccuracy:
    annotator: str
    items: int
    reference_words: int
    word_errors: int
    wer: float | None
    speaker_error: float | None
    boundary_s: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def gold_accuracy(session: Session, protocol_pk: int | None = None, frame_s: float = FRAME_S) -> list[GoldAccuracy]:
    """Per annotator: submitted gold and calibration items against their references."""
    totals: dict[str, comparison.Comparison] = defaultdict(comparison.Comparison.nothing)
    rows = tasks_of_kinds(session, (GOLD, CALIBRATION), protocol_pk)
    for task, revision, compared in _first_submissions_against(session, rows, references(session, [r.pk for _, r in rows]), frame_s):
        who = task.assignee or revision.author
        totals[who] = totals[who] + compared
    return [GoldAccuracy(who, t.items, t.words.reference_words, t.words.errors, t.wer, t.speaker_error, t.boundary_s)
            for who, t in sorted(totals.items())]


# --- agreement ----------------------------------------------------------------------------------

@dataclass
class PairAgreement:
    pair_key: str
    task_pks: tuple[int, int]
    annotators: tuple[str | None, str | None]
    reference_words: int
    word_errors: int
    wer: float | None
    alpha: float | None


@dataclass
class Agreement:
    pairs: list[PairAgreement] = field(default_factory=list)
    wer: float | None = None
    alpha: float | None = None
    frame_s: float = FRAME_S

    def rows(self) -> list[dict[str, Any]]:
        return [asdict(p) for p in self.pairs]


PACKAGE_CELLS = 2_000_000  # units × values² up to which the krippendorff package is asked (it allocates that many floats)


def krippendorff_alpha(first: Sequence[Any], second: Sequence[Any]) -> float | None:
    """Nominal alpha of two coders who labelled every unit (None without data; 1.0 when only one value occurs).

    Small inputs go to the `krippendorff` package; large ones (an hour of 10 ms frames,
    or many pairs pooled) would need units × values² floats there, so their coincidence
    matrix is counted directly, which gives the same number (tested against the package).
    """
    if len(first) == 0:
        return None
    values, codes = np.unique(np.concatenate([np.asarray(first, dtype=object).astype(str), np.asarray(second, dtype=object).astype(str)]),
                              return_inverse=True)
    if len(values) < 2:
        return 1.0
    codes = codes.reshape(2, len(first))
    if len(first) * len(values) ** 2 <= PACKAGE_CELLS:
        import krippendorff

        return float(krippendorff.alpha(reliability_data=codes.astype(float), level_of_measurement="nominal"))
    return nominal_alpha(codes[0], codes[1], len(values))


def nominal_alpha(a: np.ndarray, b: np.ndarray, n_values: int) -> float:
    """Krippendorff's alpha, nominal, two coders, no missing values, from the coincidence matrix.

    Each unit adds one to o[a, b] and one to o[b, a]; with n = 2 × units and n_c the row sums,
    alpha = 1 - (n - 1) × (n - trace(o)) / (n² - Σ n_c²).
    """
    pairs = np.bincount(a * n_values + b, minlength=n_values * n_values) + np.bincount(b * n_values + a, minlength=n_values * n_values)
    o = pairs.reshape(n_values, n_values).astype(np.float64)
    n = o.sum()
    n_c = o.sum(axis=1)
    expected = n * n - float(np.sum(n_c * n_c))
    if expected == 0:
        return 1.0
    return float(1 - (n - 1) * (n - np.trace(o)) / expected)


def agreement(session: Session, protocol_pk: int | None = None, frame_s: float = FRAME_S) -> Agreement:
    """Pairwise WER and frame-level speaker alpha on double-annotated tasks both annotators submitted."""
    pairs: dict[str, list[tuple[models.Task, models.Recording]]] = defaultdict(list)
    for task, recording in tasks_of_kinds(session, (PRODUCTION,), protocol_pk):
        if task.pair_key:
            pairs[task.pair_key].append((task, recording))
    firsts = first_submissions(session, [t.pk for members in pairs.values() for t, _ in members])
    report = Agreement(frame_s=frame_s)
    total = WordCounts()
    codes_a: list[np.ndarray] = []
    codes_b: list[np.ndarray] = []
    offset = 0
    for key in sorted(pairs):
        members = sorted(pairs[key], key=lambda tr: (0 if (tr[0].details or {}).get("pair_role") == "primary" else 1, tr[0].pk))
        if len(members) != 2:
            continue
        (ta, recording), (tb, _) = members
        ra, rb = firsts.get(ta.pk), firsts.get(tb.pk)
        if ra is None or rb is None:
            continue
        start, end = span_of(ta, recording)
        turns_a, turns_b = ra.as_turn_json(), rb.as_turn_json()
        counts = word_counts(comparison.text_of(comparison.in_span(turns_a, start, end)),
                             comparison.text_of(comparison.in_span(turns_b, start, end)))
        a, b = comparison.nominal_codes(comparison.activity(turns_a, start, end, frame_s), comparison.activity(turns_b, start, end, frame_s))
        total = total + counts
        codes_a.append(a + offset * (a > 0))  # speakers of different pairs are different people: keep their codes apart
        codes_b.append(b + offset * (b > 0))
        offset += int(max(a.max(initial=0), b.max(initial=0))) + 1
        report.pairs.append(PairAgreement(key, (ta.pk, tb.pk), (ta.assignee, tb.assignee), counts.reference_words,
                                          counts.errors, counts.wer, krippendorff_alpha(a, b)))
    report.wer = total.wer
    report.alpha = krippendorff_alpha(np.concatenate(codes_a), np.concatenate(codes_b)) if codes_a else None
    return report


# --- throughput ---------------------------------------------------------------------------------

@dataclass
class Throughput:
    per_annotator: list[dict[str, Any]]
    trend: list[dict[str, Any]]  # one row per (period start, annotator) and per period for "all"
    period: str
    team: dict[str, Any]  # the whole team over every period, by the same rule as each person


def _period_start(moment: dt.datetime, period: str) -> dt.date:
    day = moment.date()
    return day - dt.timedelta(days=day.weekday()) if period == "week" else day


def throughput(session: Session, protocol_pk: int | None = None, period: str = "week") -> Throughput:
    """Audio minutes finished per hour worked, per annotator and per day or week."""
    if period not in ("day", "week"):
        raise ValueError("period is 'day' or 'week'")
    finished: dict[tuple[dt.date, str], float] = defaultdict(float)
    rows = tasks_of_kinds(session, (PRODUCTION, GOLD, CALIBRATION), protocol_pk)
    firsts = first_submissions(session, [t.pk for t, _ in rows])
    for task, recording in rows:
        revision = firsts.get(task.pk)
        if revision is None:
            continue
        start, end = span_of(task, recording)
        who = task.assignee or revision.author
        finished[(_period_start(aware(revision.created_at), period), who)] += (end - start) / 60
    wi, task, rec = models.WorkInterval, models.Task, models.Recording
    query = select(wi).join(task, task.pk == wi.task_pk).join(rec, rec.pk == task.recording_pk)
    if protocol_pk is not None:
        query = query.where(rec.protocol_pk == protocol_pk)
    worked: dict[tuple[dt.date, str], float] = defaultdict(float)
    for interval in session.scalars(query):
        hours = (aware(interval.ended_at) - aware(interval.started_at)).total_seconds() / 3600
        worked[(_period_start(aware(interval.started_at), period), interval.username)] += max(0.0, hours)

    def row(pairs: list[tuple[dt.date, str]], **key: Any) -> dict[str, Any]:
        """Minutes per hour over the (period, person) pairs given. Minutes finished in a period where the person
        logged no time (`unclocked_minutes`, part of `audio_minutes`) are left out of the rate, for a person and
        the team alike: otherwise the team's rate counts work done in no time and beats every member's."""
        hours = sum(worked.get(pair, 0.0) for pair in pairs)
        clocked = sum(finished.get(pair, 0.0) for pair in pairs if worked.get(pair, 0.0) > 0)
        unclocked = sum(finished.get(pair, 0.0) for pair in pairs if worked.get(pair, 0.0) <= 0)
        return {**key, "audio_minutes": round(clocked + unclocked, 3), "hours_worked": round(hours, 4),
                "minutes_per_hour": round(clocked / hours, 3) if hours > 0 else None,
                "unclocked_minutes": round(unclocked, 3)}

    pairs = sorted(set(finished) | set(worked))
    people = sorted({who for _, who in pairs})
    per_annotator = [row([pair for pair in pairs if pair[1] == who], annotator=who) for who in people]
    trend = []
    for p in sorted({p for p, _ in pairs}):
        trend.append(row([pair for pair in pairs if pair[0] == p], period_start=p, annotator="all"))
        trend += [row([(p, who)], period_start=p, annotator=who) for who in people if (p, who) in pairs]
    return Throughput(per_annotator, trend, period, row(pairs, annotator="all"))


# --- time to training -------------------------------------------------------------------------------

@dataclass
class TimeToTraining:
    rows: list[dict[str, Any]]  # one per accepted recording: ingested_at, approved_at (None: not yet), days
    median_days: float | None
    mean_days: float | None
    approved: int
    pending: int


def time_to_training(session: Session, protocol_pk: int | None = None) -> TimeToTraining:
    """Days from ingest to the first approved revision, per recording."""
    rec, rev = models.Recording, models.TranscriptRevision
    first_approval = (select(rev.recording_pk, func.min(rev.created_at).label("at")).where(rev.stage == "approved")
                      .group_by(rev.recording_pk).subquery())
    query = (select(rec, first_approval.c.at).outerjoin(first_approval, first_approval.c.recording_pk == rec.pk)
             .where(rec.status == "accepted"))
    if protocol_pk is not None:
        query = query.where(rec.protocol_pk == protocol_pk)
    rows = []
    for recording, approved in session.execute(query.order_by(rec.pk)):
        ingested, approved = aware(recording.ingested_at), aware(approved)
        days = (approved - ingested).total_seconds() / 86400 if approved is not None else None
        rows.append({"recording_pk": recording.pk, "source_name": recording.source_name, "ingested_at": ingested,
                     "approved_at": approved, "days": days})
    done = [r["days"] for r in rows if r["days"] is not None]
    return TimeToTraining(rows, statistics.median(done) if done else None, statistics.fmean(done) if done else None,
                          len(done), len(rows) - len(done))


# --- summary for the dataset card ---------------------------------------------------------------------

def corpus_summary(session: Session, protocol_pk: int) -> dict[str, Any]:
    """The quality figures a release's dataset card states."""
    gold = gold_accuracy(session, protocol_pk)
    words = sum(g.reference_words for g in gold)
    errors = sum(g.word_errors for g in gold)
    pairs = agreement(session, protocol_pk)
    worked = tasks_of_kinds(session, (PRODUCTION, GOLD, CALIBRATION), protocol_pk)
    firsts = first_submissions(session, [t.pk for t, _ in worked])
    annotators = {t.assignee for t, _ in worked if t.assignee and t.pk in firsts}
    reviewers = session.scalar(  # counted in SQL: a release of 10,000 recordings need not load their turns
        select(func.count(distinct(models.TranscriptRevision.author))).join(
            models.Recording, models.Recording.pk == models.TranscriptRevision.recording_pk)
        .where(models.Recording.protocol_pk == protocol_pk, models.TranscriptRevision.stage == "approved")) or 0
    ttt = time_to_training(session, protocol_pk)
    return {
        "gold_items": sum(g.items for g in gold),
        "gold_wer": errors / words if words else None,
        "gold_speaker_error": _weighted([(g.speaker_error, g.items) for g in gold]),
        "gold_boundary_s": _weighted([(g.boundary_s, g.items) for g in gold]),
        "double_annotated": len(pairs.pairs),
        "agreement_wer": pairs.wer,
        "agreement_alpha": pairs.alpha,
        "annotators": len(annotators),
        "reviewers": int(reviewers),
        "approved_recordings": ttt.approved,
        "median_days_to_approval": ttt.median_days,
    }


def _weighted(values: list[tuple[float | None, int]]) -> float | None:
    pairs = [(v, n) for v, n in values if v is not None and n]
    return sum(v * n for v, n in pairs) / sum(n for _, n in pairs) if pairs else None


# --- breaks ---------------------------------------------------------------------------------------------

def minutes_worked_continuously(session: Session, username: str, now: dt.datetime, *, gap: dt.timedelta = BREAK_GAP) -> float:
    """Minutes of the current stretch of work: intervals chained by gaps shorter than `gap`, ending near `now`."""
    now = aware(now)
    wi = models.WorkInterval
    intervals = sorted(
        ((aware(i.started_at), aware(i.ended_at)) for i in session.scalars(select(wi).where(wi.username == username, wi.started_at <= now))),
        key=lambda se: se[0],
    )
    stretch: tuple[dt.datetime, dt.datetime] | None = None
    for start, end in intervals:
        end = min(end, now)
        if stretch is not None and start <= stretch[1] + gap:
            stretch = (stretch[0], max(stretch[1], end))
        else:
            stretch = (start, end)
    if stretch is None or now - stretch[1] >= gap:
        return 0.0
    return max(0.0, (stretch[1] - stretch[0]).total_seconds() / 60)


def needs_break(session: Session, username: str, now: dt.datetime, *, after: dt.timedelta = BREAK_AFTER,
                gap: dt.timedelta = BREAK_GAP) -> bool:
    return minutes_worked_continuously(session, username, now, gap=gap) >= after.total_seconds() / 60
