"""The managers' coverage funnel: per demographic cell, how far the collected audio has come.

Stages are cumulative (each is a subset of the one before): **collected**,
**pre-annotated**, **in review**, **approved** and **released**, as
`collection.coverage.STAGES` defines them; `within` narrows every stage to a site, device
or noise condition (`collection.coverage.recordings_where`). Each stage's figures are
`collection.coverage.compute_coverage` over the recordings that reached it, so the
collected column is the coverage report's; targets,
percent and gaps come from its `CoverageRow`s. Rows are ordered gaps first: the
least-approved share of the target, then the largest gap.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from collection.coverage import STAGES, CoverageRow, compute_coverage, narrow, recording_stages, recordings_at_stage
from protocols.schema import Protocol
from store import models


@dataclass(frozen=True)
class FunnelRow:
    scope: str  # "total" or "cell"
    dimensions: tuple[str, ...]
    values: tuple[str, ...]
    hours: dict[str, float]  # stage -> hours
    speakers: dict[str, int]  # stage -> distinct speakers
    target_hours: float | None
    target_speakers: int | None

    @property
    def label(self) -> str:
        return "total" if self.scope == "total" else " × ".join(f"{d}={v}" for d, v in zip(self.dimensions, self.values))

    def stage(self, name: str) -> CoverageRow:
        """One stage of the row as a coverage row (percent of target, gaps)."""
        return CoverageRow(self.scope, self.dimensions, self.values, self.hours[name], self.speakers[name], 0,
                           self.target_hours, self.target_speakers)

    @property
    def approved_percent(self) -> float | None:
        return self.stage("approved").percent

    @property
    def gap_hours(self) -> float | None:
        return self.stage("approved").gap_hours

    @property
    def gap_speakers(self) -> int | None:
        return self.stage("approved").gap_speakers

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"scope": self.scope, "cell": self.label, **dict(zip(self.dimensions, self.values))}
        for name in STAGES:
            out[f"{name}_hours"] = round(self.hours[name], 4)
            out[f"{name}_speakers"] = self.speakers[name]
        out.update(target_hours=self.target_hours, target_speakers=self.target_speakers, approved_percent=self.approved_percent,
                   gap_hours=self.gap_hours, gap_speakers=self.gap_speakers)
        return out


def funnel_dimensions(protocol: Protocol) -> list[str]:
    """The funnel's cells: the protocol's target cells, or its demographic dimensions when it sets none."""
    if protocol.targets.cells is not None:
        return list(protocol.targets.cells.dimensions)
    return [d.name for d in protocol.demographics]


def coverage_funnel(session: Session, protocol_row: models.Protocol, protocol: Protocol,
                    within: AbstractSet[int] | None = None) -> list[FunnelRow]:
    """The total, then every crossed cell of `funnel_dimensions`, gaps first: one coverage per stage."""
    dimensions = funnel_dimensions(protocol)
    stages = recording_stages(session, protocol_row.pk)
    reports = [compute_coverage(session, protocol_row, protocol, narrow(recordings_at_stage(stages, name), within),
                                cells=dimensions) for name in STAGES]
    collected = reports[0]
    by_key = [{(r.scope, r.values): r for r in report.rows if r.scope != "marginal"} for report in reports]

    def make(row: CoverageRow) -> FunnelRow:
        at_stage = [rows.get((row.scope, row.values)) for rows in by_key]  # an untargeted cell may not reach a stage
        values = tuple(str(v) for v in row.values)  # a missing demographic value reads "None", as it always has
        return FunnelRow(row.scope, row.dimensions, values, {n: r.hours if r else 0.0 for n, r in zip(STAGES, at_stage)},
                         {n: r.speakers if r else 0 for n, r in zip(STAGES, at_stage)}, row.target_hours, row.target_speakers)

    def gaps_first(row: FunnelRow) -> tuple[float, float, str]:
        percent = row.approved_percent
        return (percent if percent is not None else float("inf"), -(row.gap_hours or 0), row.label)

    return [make(r) for r in collected.scope("total")] + sorted((make(r) for r in collected.scope("cell")), key=gaps_first)
