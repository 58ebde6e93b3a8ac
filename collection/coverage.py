"""Coverage: what was collected against the plan, per dimension and per crossed cell.

This is the one coverage computation: the CLI, the review UI's funnel
(`review_ui/funnel.py`) and the dataset card (`corpus/releases/card.py`) all call
`compute_coverage`, the last two with a recording filter (the recordings that reached a
review stage, or those a release holds) instead of grouping participations themselves.

The participations (one row per speaker of an accepted recording) are joined in the
database and read once; every view is then grouped in numpy. A dialogue's duration is
shared equally among its participants: a cell's hours are the speaker-hours of its
members, and the cells of one dimension add up to the total hours.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from store import models
from store.release_keys import recording_pk
from protocols.schema import RECORDING_DIMENSIONS, Protocol, Target


@dataclass(frozen=True)
class CoverageRow:
    """One line of the coverage table: a marginal value, a crossed cell, or the total."""

    scope: str  # total | marginal | cell
    dimensions: tuple[str, ...]
    values: tuple[str, ...]
    hours: float
    speakers: int
    sessions: int
    target_hours: float | None
    target_speakers: int | None

    @property
    def label(self) -> str:
        if self.scope == "total":
            return "total"
        return " × ".join(f"{d}={v}" for d, v in zip(self.dimensions, self.values))

    @property
    def percent(self) -> float | None:
        """The least-achieved share of the hours and speakers targets (100 = done)."""
        shares = []
        if self.target_hours:
            shares.append(100 * self.hours / self.target_hours)
        if self.target_speakers:
            shares.append(100 * self.speakers / self.target_speakers)
        return min(shares) if shares else None

    @property
    def gap_hours(self) -> float | None:
        return None if self.target_hours is None else max(0.0, self.target_hours - self.hours)

    @property
    def gap_speakers(self) -> int | None:
        return None if self.target_speakers is None else max(0, self.target_speakers - self.speakers)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(label=self.label, percent=self.percent, gap_hours=self.gap_hours, gap_speakers=self.gap_speakers)
        return out


@dataclass
class CoverageReport:
    protocol_id: str
    protocol_version: int
    rows: list[CoverageRow]
    rejected: dict[str, int] = field(default_factory=dict)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    other_versions: dict[int, int] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)  # the RecordingFilter's set fields

    def scope(self, scope: str) -> list[CoverageRow]:
        return [r for r in self.rows if r.scope == scope]


STAGES = ("collected", "preannotated", "in_review", "approved", "released")
"""How far an accepted recording has come, each stage a subset of the one before: accepted at
intake; a model revision exists; a person has worked on it (any person-authored revision but
a reference); an ``approved`` revision exists (what a release can take); a release of the
protocol holds it (an entry erased since no longer counts)."""


def recording_stages(session: Session, protocol_pk: int) -> dict[int, int]:
    """Accepted recording pk -> the furthest stage it reached (an index into STAGES)."""
    rec, rev = models.Recording, models.TranscriptRevision
    stage = {pk: 0 for pk in session.scalars(select(rec.pk).where(rec.protocol_pk == protocol_pk, rec.status == "accepted"))}
    rows = session.execute(
        select(rev.recording_pk, rev.author_kind, rev.stage).join(rec, rec.pk == rev.recording_pk)
        .where(rec.protocol_pk == protocol_pk, rec.status == "accepted").distinct()
    ).all()
    for pk, author_kind, revision_stage in rows:
        if revision_stage == "approved":
            reached = 3
        elif author_kind == "person" and revision_stage != "reference":
            reached = 2
        elif author_kind == "model":
            reached = 1
        else:
            reached = 0
        stage[pk] = max(stage.get(pk, 0), reached)
    for pk in released_recordings(session, protocol_pk):
        if pk in stage:
            stage[pk] = STAGES.index("released")
    return stage


def released_recordings(session: Session, protocol_pk: int) -> set[int]:
    """Recording pks held by any release of the protocol version (entries key them ``rec-<pk>``)."""
    rel, entry = models.Release, models.ReleaseEntry
    query = (select(entry.entry).join(rel, rel.pk == entry.release_pk)
             .where(rel.protocol_pk == protocol_pk).execution_options(yield_per=2000))
    held = set()
    for (value,) in session.execute(query):
        pk = recording_pk(value.get("recording")) if isinstance(value, dict) else None
        if pk is not None:
            held.add(pk)
    return held


def recordings_at_stage(stages: dict[int, int], stage: str) -> frozenset[int]:
    """The recordings of `recording_stages` that reached `stage` (a coverage filter)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}: use one of {', '.join(STAGES)}")
    floor = STAGES.index(stage)
    return frozenset(pk for pk, reached in stages.items() if reached >= floor)


FILTERS = ("site", "device", "noise_condition")
"""What a manager may narrow coverage to: the session's declared site (a manifest attribute), and
the recording-level conditions (device, noise condition)."""


@dataclass(frozen=True)
class RecordingFilter:
    """Accepted recordings of one site, device and/or noise condition (None = any)."""

    site: str | None = None
    device: str | None = None
    noise_condition: str | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, name) is not None for name in FILTERS)

    def describe(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)}" for name in FILTERS if getattr(self, name) is not None) or "all recordings"


def _filter_rows(session: Session, protocol_pk: int) -> list[tuple[int, str | None, str, str]]:
    rec, se = models.Recording, models.Session
    rows = session.execute(
        select(rec.pk, rec.declared, se.device, se.noise_condition).join(se, se.pk == rec.session_pk)
        .where(rec.protocol_pk == protocol_pk, rec.status == "accepted")
    ).all()
    return [(pk, (declared or {}).get("site"), device, noise) for pk, declared, device, noise in rows]


def filter_choices(session: Session, protocol_pk: int) -> dict[str, list[str]]:
    """The values each filter can take among the accepted recordings (for pickers)."""
    rows = _filter_rows(session, protocol_pk)
    return {name: sorted({str(row[i + 1]) for row in rows if row[i + 1] is not None}) for i, name in enumerate(FILTERS)}


def recordings_where(session: Session, protocol_pk: int, where: RecordingFilter) -> frozenset[int] | None:
    """The accepted recordings `where` selects, or None when it selects everything (no filter set)."""
    if not where:
        return None
    wanted = [getattr(where, name) for name in FILTERS]
    return frozenset(row[0] for row in _filter_rows(session, protocol_pk)
                     if all(w is None or str(v) == w for w, v in zip(wanted, row[1:])))


def narrow(recordings: AbstractSet[int] | None, within: AbstractSet[int] | None) -> AbstractSet[int] | None:
    """Both recording filters at once (None = no restriction)."""
    if recordings is None:
        return within
    return recordings if within is None else frozenset(recordings) & frozenset(within)


def participants_query(protocol_pk: int) -> Select[Any]:
    """One row per participant of an accepted recording: recording, session, speaker and speaker-hours share."""
    rec, sp = models.Recording, models.SessionParticipant
    return (
        select(rec.pk, sp.session_pk, sp.speaker_id, (rec.duration_s / rec.n_speakers))
        .select_from(rec).join(sp, sp.session_pk == rec.session_pk)
        .where(rec.protocol_pk == protocol_pk, rec.status == "accepted")
        .order_by(sp.session_pk)
    )


def _speaker_values(dimensions: list[str]) -> Select[Any]:
    """Speakers' demographics pivoted once: one row per speaker, a column per dimension."""
    sd = models.SpeakerDemographic
    return select(
        sd.speaker_id, *(func.max(case((sd.dimension == d, sd.value))) for d in dimensions)
    ).group_by(sd.speaker_id)


def _session_values(protocol_pk: int, dimensions: list[str]) -> Select[Any]:
    """Recording-level dimensions (noise condition, device) of the sessions with accepted recordings."""
    rec, se = models.Recording, models.Session
    return (
        select(se.pk, *(getattr(se, d) for d in dimensions)).join(rec, rec.session_pk == se.pk)
        .where(rec.protocol_pk == protocol_pk, rec.status == "accepted").distinct()
    )


def fetch_rows(session: Session, query: Select[Any]) -> list[tuple[Any, ...]]:
    """Rows as plain tuples from the driver's cursor (no ORM rows for hundreds of thousands of rows)."""
    sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    cursor = session.connection().connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


class _Facts:
    """Participations read once as integer codes, then every view grouped in numpy.

    In SQL each view is a GROUP BY with two COUNT(DISTINCT)s: eight sorts of the same
    200,000 rows per 100,000 recordings (2 s on SQLite and PostgreSQL alike). Here the
    participants, the speakers' demographics and the sessions' conditions are read
    separately (narrow rows), joined by integer code, and each view costs a few bincounts.
    """

    def __init__(self, session: Session, protocol_pk: int, dimensions: list[str],
                 recordings: AbstractSet[int] | None = None) -> None:
        speaker_dims = [d for d in dimensions if d not in RECORDING_DIMENSIONS]
        session_dims = [d for d in dimensions if d in RECORDING_DIMENSIONS]
        rows = fetch_rows(session, participants_query(protocol_pk))
        frame = pd.DataFrame.from_records(rows, columns=["recording", "session", "speaker", "share"])
        if recordings is not None:  # masking keeps the rows ordered by session
            frame = frame[frame["recording"].isin(list(recordings))]
        self.share = frame["share"].to_numpy(dtype=np.float64)
        self.sessions = pd.factorize(frame["session"])[0]  # rows come ordered by session
        self.speakers, speaker_ids = pd.factorize(frame["speaker"])
        self.n_speakers, self.n_sessions = len(speaker_ids), int(self.sessions.max(initial=-1)) + 1
        self.max_participants = int(np.bincount(self.sessions).max(initial=0)) if len(frame) else 0
        self.values: dict[str, tuple[np.ndarray, list[Any]]] = {}
        speakers = pd.DataFrame.from_records(fetch_rows(session, _speaker_values(speaker_dims)),
                                             columns=["speaker", *speaker_dims]).set_index("speaker")
        speaker_rows = speakers.index.get_indexer(speaker_ids)
        for dim in speaker_dims:
            self.values[dim] = _per_row(speakers[dim], speaker_rows, self.speakers)
        sessions = pd.DataFrame.from_records(fetch_rows(session, _session_values(protocol_pk, session_dims)),
                                             columns=["session", *session_dims]).set_index("session")
        session_rows = sessions.index.get_indexer(pd.unique(frame["session"]))
        for dim in session_dims:
            self.values[dim] = _per_row(sessions[dim], session_rows, self.sessions)

    def grouped(self, dimensions: list[str]) -> list[tuple[float, int, int, tuple[str, ...]]]:
        """(hours, distinct speakers, distinct sessions, key) per collected key of `dimensions`."""
        if not len(self.share):
            return []
        group = np.zeros(len(self.share), dtype=np.int64)
        radix = [len(self.values[d][1]) + 1 for d in dimensions]
        for dim, base in zip(dimensions, radix):
            group = group * base + self.values[dim][0]
        keys, group = np.unique(group, return_inverse=True)
        n = len(keys)
        hours = np.bincount(group, weights=self.share, minlength=n) / 3600.0
        speakers = _distinct(group, self.speakers, n, self.n_speakers)
        # rows are ordered by session: a session repeats a group only within its own few rows
        repeat = np.zeros(len(group), dtype=bool)
        for shift in range(1, self.max_participants):
            repeat[shift:] |= (self.sessions[shift:] == self.sessions[:-shift]) & (group[shift:] == group[:-shift])
        sessions = np.bincount(group[~repeat], minlength=n)
        out = []
        for g, packed in enumerate(keys.tolist()):
            key = []
            for dim, base in zip(reversed(dimensions), reversed(radix)):
                packed, code = divmod(packed, base)
                key.append(self.values[dim][1][code])
            out.append((float(hours[g]), int(speakers[g]), int(sessions[g]), tuple(reversed(key))))
        return out


def _per_row(column: pd.Series, owner_rows: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, list[Any]]:
    """A speaker- or session-level column spread onto the participation rows as codes (None = missing)."""
    codes, labels = pd.factorize(column, use_na_sentinel=True)
    labels = [*labels.tolist(), None]  # code -1 (missing, or the owner has no row) becomes the last label
    codes = np.where(codes < 0, len(labels) - 1, codes)
    per_owner = np.where(owner_rows < 0, len(labels) - 1, codes[owner_rows])
    return per_owner[owners], labels


def _distinct(group: np.ndarray, member: np.ndarray, n_groups: int, n_members: int) -> np.ndarray:
    """How many distinct members each group has (an occupancy bitmap, or a sort when that is too big)."""
    if n_groups * n_members <= 50_000_000:
        seen = np.zeros(n_groups * n_members, dtype=bool)
        seen[group * n_members + member] = True
        return seen.reshape(n_groups, n_members).sum(axis=1)
    pairs = np.unique(group * n_members + member)
    return np.bincount(pairs // n_members, minlength=n_groups)


def _rows(facts: _Facts, scope: str, dimensions: list[str],
          targets: dict[tuple[str, ...], Target | None]) -> list[CoverageRow]:
    """Every targeted key (collected or not) plus any collected key without a target."""
    found = {key: (hours, speakers, sessions) for hours, speakers, sessions, key in facts.grouped(dimensions)}
    keys = list(targets) + [k for k in found if k not in targets]
    out = []
    for key in keys:
        hours, speakers, sessions = found.get(key, (0.0, 0, 0))
        target = targets.get(key)
        out.append(CoverageRow(
            scope=scope, dimensions=tuple(dimensions), values=key,
            hours=hours, speakers=speakers, sessions=sessions,
            target_hours=target.hours if target else None, target_speakers=target.speakers if target else None,
        ))
    return out


def _behind_first(row: CoverageRow) -> tuple[float, float]:
    percent = row.percent
    return (percent if percent is not None else float("inf"), -(row.gap_hours or 0))


def coverage_targets(protocol: Protocol, cells: Sequence[str] | None = None
                     ) -> list[tuple[str, list[str], dict[tuple[str, ...], Target | None]]]:
    """(scope, dimensions, targets in the plan's order) of every view: the total, each dimension, the crossed cells.

    The cells cross the protocol's target-cell dimensions; `cells` crosses other
    dimensions instead (every combination of their values, untargeted unless they are
    the target cells). No cells when the protocol sets none and `cells` is not given.
    """
    allowed = protocol.allowed_values()
    views: list[tuple[str, list[str], dict[tuple[str, ...], Target | None]]] = [("total", [], {(): protocol.targets.total})]
    marginal_targets = {m.dimension: {(v,): t for v, t in m.values.items()} for m in protocol.targets.marginals}
    for dim in allowed:
        views.append(("marginal", [dim], dict(marginal_targets.get(dim) or {(v,): None for v in allowed[dim]})))
    target_cells = list(protocol.targets.cells.dimensions) if protocol.targets.cells is not None else None
    crossed = list(cells) if cells is not None else target_cells
    if crossed is not None:
        if crossed == target_cells:
            views.append(("cell", crossed, dict(protocol.cell_targets())))
        else:
            views.append(("cell", crossed, {combo: None for combo in itertools.product(*(allowed[d] for d in crossed))}))
    return views


def compute_coverage(session: Session, protocol_row: models.Protocol, protocol: Protocol,
                     recordings: AbstractSet[int] | None = None, *, cells: Sequence[str] | None = None,
                     where: RecordingFilter = RecordingFilter()) -> CoverageReport:
    """Coverage of one protocol version, most-behind first within each scope.

    `recordings` restricts the count to those accepted recordings (pks), e.g.
    `recordings_at_stage(...)` or a release's; None counts every accepted recording.
    `where` narrows further to a site, device or noise condition.
    `cells` crosses other dimensions than the protocol's target cells (coverage_targets).
    """
    recordings = narrow(recordings, recordings_where(session, protocol_row.pk, where))
    views = coverage_targets(protocol, cells)
    dimensions = list(dict.fromkeys(d for _, dims, _ in views for d in dims))
    facts = _Facts(session, protocol_row.pk, dimensions, recordings)
    rows: list[CoverageRow] = []
    for scope, dims, targets in views:
        found = _rows(facts, scope, dims, targets)
        rows += found if scope == "total" else sorted(found, key=_behind_first)
    return CoverageReport(
        protocol.id, protocol.version, rows,
        rejected=_rejections(session, protocol_row.pk), mismatches=_mismatches(session, protocol_row.pk),
        other_versions=_other_versions(session, protocol_row),
        where={name: getattr(where, name) for name in FILTERS if getattr(where, name) is not None},
    )


def _rejections(session: Session, protocol_pk: int) -> dict[str, int]:
    rec = models.Recording
    counts: dict[str, int] = {}
    for (reasons,) in session.execute(select(rec.reasons).where(rec.protocol_pk == protocol_pk, rec.status == "rejected")):
        for code in {r["code"] for r in reasons}:
            counts[code] = counts.get(code, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _mismatches(session: Session, protocol_pk: int) -> list[dict[str, Any]]:
    rec, se = models.Recording, models.Session
    query = (
        select(rec.pk, se.session_id, rec.source_name, se.noise_condition, rec.snr_db, rec.noise_mismatch)
        .join(se, se.pk == rec.session_pk)
        .where(rec.protocol_pk == protocol_pk, rec.status == "accepted", rec.noise_mismatch.is_not(None))
        .order_by(rec.pk)
    )
    return [dict(row._mapping) for row in session.execute(query)]


def _other_versions(session: Session, protocol_row: models.Protocol) -> dict[int, int]:
    """Accepted recordings counted under the protocol's other versions (they stay tied to those)."""
    rec, pr = models.Recording, models.Protocol
    query = (
        select(pr.version, func.count(rec.pk)).join(rec, rec.protocol_pk == pr.pk)
        .where(pr.protocol_id == protocol_row.protocol_id, pr.pk != protocol_row.pk, rec.status == "accepted")
        .group_by(pr.version)
    )
    return {int(v): int(n) for v, n in session.execute(query)}
