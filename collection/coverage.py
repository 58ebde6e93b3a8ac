"""Coverage: what was collected against the plan, per dimension and per crossed cell.

Computed in the database (the participations are materialised once in a temporary
table, then one GROUP BY per view), so the CLI, the benchmarks and the
review UI's coverage page read the same numbers. A dialogue's duration is shared
equally among its participants: a cell's hours are the speaker-hours of its members,
and the cells of one dimension add up to the total hours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import uuid

from sqlalchemy import Select, case, column, func, select, table, text
from sqlalchemy.orm import Session, aliased

from corpus import models
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

    def scope(self, scope: str) -> list[CoverageRow]:
        return [r for r in self.rows if r.scope == scope]


def _participation(protocol_pk: int, dimensions: list[str]) -> Select[Any]:
    """One row per participant of an accepted recording: its speaker-hours share and every dimension's value.

    Speakers' demographics are pivoted once (one row per speaker, a column per
    dimension) and joined by key; `noise_condition` and `device` are session columns.
    """
    rec, sp, se, sd = models.Recording, models.SessionParticipant, models.Session, models.SpeakerDemographic
    demographic = [d for d in dimensions if d not in RECORDING_DIMENSIONS]
    pivot = select(
        sd.speaker_id,
        *(func.max(case((sd.dimension == d, sd.value))).label(f"p{i}") for i, d in enumerate(demographic)),
    ).group_by(sd.speaker_id).subquery("pivot")
    columns: list[Any] = [sp.session_pk, sp.speaker_id, (rec.duration_s / rec.n_speakers).label("share")]
    for i, dim in enumerate(dimensions):
        source = getattr(se, dim) if dim in RECORDING_DIMENSIONS else pivot.c[f"p{demographic.index(dim)}"]
        columns.append(source.label(f"c{i}"))
    return (
        select(*columns).select_from(rec).join(sp, sp.session_pk == rec.session_pk).join(se, se.pk == rec.session_pk)
        .join(pivot, pivot.c.speaker_id == sp.speaker_id)
        .where(rec.protocol_pk == protocol_pk, rec.status == "accepted")
    )


class _Facts:
    """The participation rows materialised once in a temporary table, then grouped per view.

    Eight GROUP BYs over one narrow table beat eight five-way joins by an order of
    magnitude on SQLite and PostgreSQL alike; the table lives only inside the caller's transaction.
    """

    def __init__(self, session: Session, protocol_pk: int, dimensions: list[str]) -> None:
        self.session = session
        self.columns = {dim: f"c{i}" for i, dim in enumerate(dimensions)}
        self.name = f"coverage_facts_{uuid.uuid4().hex[:12]}"
        bind = session.get_bind()
        if bind.dialect.name == "postgresql":  # room for the DISTINCT sorts in memory, this transaction only
            session.execute(text("SET LOCAL work_mem = '64MB'"))
        body = _participation(protocol_pk, dimensions).compile(bind, compile_kwargs={"literal_binds": True})
        session.execute(text(f"CREATE TEMPORARY TABLE {self.name} AS {body}"))
        self.table = table(self.name, column("session_pk"), column("speaker_id"), column("share"),
                           *(column(c) for c in self.columns.values()))

    def grouped(self, dimensions: list[str]) -> list[Any]:
        t = self.table
        keys = [t.c[self.columns[d]] for d in dimensions]
        query = select(
            (func.sum(t.c.share) / 3600.0).label("hours"),
            func.count(func.distinct(t.c.speaker_id)).label("speakers"),
            func.count(func.distinct(t.c.session_pk)).label("sessions"),
            *keys,
        ).group_by(*keys)
        return list(self.session.execute(query).all())

    def drop(self) -> None:
        self.session.execute(text(f"DROP TABLE {self.name}"))


def _rows(facts: _Facts, scope: str, dimensions: list[str],
          targets: dict[tuple[str, ...], Target | None]) -> list[CoverageRow]:
    """Every targeted key (collected or not) plus any collected key without a target."""
    found = {tuple(row[3:]): row for row in facts.grouped(dimensions) if row.hours is not None}
    keys = list(targets) + [k for k in found if k not in targets]
    out = []
    for key in keys:
        row = found.get(key)
        target = targets.get(key)
        out.append(CoverageRow(
            scope=scope, dimensions=tuple(dimensions), values=key,
            hours=float(row.hours or 0) if row else 0.0, speakers=int(row.speakers) if row else 0,
            sessions=int(row.sessions) if row else 0,
            target_hours=target.hours if target else None, target_speakers=target.speakers if target else None,
        ))
    return out


def _behind_first(row: CoverageRow) -> tuple[float, float]:
    percent = row.percent
    return (percent if percent is not None else float("inf"), -(row.gap_hours or 0))


def compute_coverage(session: Session, protocol_row: models.Protocol, protocol: Protocol) -> CoverageReport:
    """Coverage of one protocol version, most-behind first within each scope."""
    allowed = protocol.allowed_values()
    facts = _Facts(session, protocol_row.pk, list(allowed))
    try:
        rows = _rows(facts, "total", [], {(): protocol.targets.total})
        marginal_targets = {m.dimension: {(v,): t for v, t in m.values.items()} for m in protocol.targets.marginals}
        for dim in allowed:
            targets: dict[tuple[str, ...], Target | None] = dict(marginal_targets.get(dim) or {(v,): None for v in allowed[dim]})
            rows += sorted(_rows(facts, "marginal", [dim], targets), key=_behind_first)
        if protocol.targets.cells is not None:
            cell_targets = dict(protocol.cell_targets())
            rows += sorted(_rows(facts, "cell", list(protocol.targets.cells.dimensions), cell_targets), key=_behind_first)
    finally:
        facts.drop()
    return CoverageReport(
        protocol.id, protocol.version, rows,
        rejected=_rejections(session, protocol_row.pk), mismatches=_mismatches(session, protocol_row.pk),
        other_versions=_other_versions(session, protocol_row),
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
