"""Coverage: what was collected against the plan, per dimension and per crossed cell.

Computed in the database (one GROUP BY per view), so the CLI, the benchmarks and the
review UI's coverage page read the same numbers. A dialogue's duration is shared
equally among its participants: a cell's hours are the speaker-hours of its members,
and the cells of one dimension add up to the total hours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Select, func, literal, select, union_all
from sqlalchemy.orm import Session

from corpus import models
from protocols.schema import Protocol, Target


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


def _attributes(protocol_pk: int) -> Any:
    """(session, speaker, dimension, value) for every participant: demographics + recording dimensions."""
    sp, sd, se = models.SessionParticipant, models.SpeakerDemographic, models.Session
    demographic = select(sp.session_pk, sp.speaker_id, sd.dimension, sd.value).join(sd, sd.speaker_id == sp.speaker_id)
    recording_level = [
        select(sp.session_pk, sp.speaker_id, literal(name).label("dimension"), getattr(se, name).label("value"))
        .join(se, se.pk == sp.session_pk).where(se.protocol_pk == protocol_pk)
        for name in ("noise_condition", "device")
    ]
    return union_all(demographic, *recording_level).subquery("attrs")


def _grouped(protocol_pk: int, dimensions: list[str]) -> Select[Any]:
    """Hours, distinct speakers and sessions of accepted recordings grouped by `dimensions`' values."""
    rec, sp = models.Recording, models.SessionParticipant
    query = select(
        (func.sum(rec.duration_s / rec.n_speakers) / 3600.0).label("hours"),
        func.count(func.distinct(sp.speaker_id)).label("speakers"),
        func.count(func.distinct(sp.session_pk)).label("sessions"),
    ).select_from(rec).join(sp, sp.session_pk == rec.session_pk).where(
        rec.protocol_pk == protocol_pk, rec.status == "accepted"
    )
    if dimensions:
        attrs = _attributes(protocol_pk)
        for i, dim in enumerate(dimensions):
            alias = attrs.alias(f"a{i}")
            query = query.join(
                alias, (alias.c.session_pk == sp.session_pk) & (alias.c.speaker_id == sp.speaker_id) & (alias.c.dimension == dim)
            ).add_columns(alias.c.value.label(f"v{i}"))
        query = query.group_by(*[f"v{i}" for i in range(len(dimensions))])
    return query


def _rows(session: Session, protocol_pk: int, scope: str, dimensions: list[str],
          targets: dict[tuple[str, ...], Target | None]) -> list[CoverageRow]:
    """Every targeted key (collected or not) plus any collected key without a target."""
    found = {
        tuple(row[3:]): row for row in session.execute(_grouped(protocol_pk, dimensions)).all()
    }
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
    rows = _rows(session, protocol_row.pk, "total", [], {(): protocol.targets.total})
    marginal_targets = {m.dimension: {(v,): t for v, t in m.values.items()} for m in protocol.targets.marginals}
    for dim in allowed:
        targets: dict[tuple[str, ...], Target | None] = dict(marginal_targets.get(dim) or {(v,): None for v in allowed[dim]})
        rows += sorted(_rows(session, protocol_row.pk, "marginal", [dim], targets), key=_behind_first)
    if protocol.targets.cells is not None:
        cell_rows = _rows(session, protocol_row.pk, "cell", list(protocol.targets.cells.dimensions), dict(protocol.cell_targets()))
        rows += sorted(cell_rows, key=_behind_first)
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
