"""The managers' coverage funnel: per demographic cell, how far the collected audio has come.

Stages are cumulative (each is a subset of the one before): **collected** (accepted
recordings: the same numbers as `collection.coverage`), **pre-annotated** (a model
revision exists), **in review** (a person has worked on it: any person-authored revision),
and **approved** (an ``approved`` revision exists: what a release can take). Counting
follows `collection.coverage`'s rule (a dialogue's duration shared equally among its
speakers, so the cells of a dimension add up to the total), targets come from the
protocol's `cell_targets`, and percent and gaps from coverage's `CoverageRow`. Rows are
ordered gaps first: the least-approved share of the target, then the largest gap.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collection.coverage import CoverageRow
from store import models
from protocols.schema import RECORDING_DIMENSIONS, Protocol, Target

STAGES = ("collected", "preannotated", "in_review", "approved")


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


def recording_stages(session: Session, protocol_pk: int) -> dict[int, int]:
    """Accepted recording pk -> the furthest stage reached (index into STAGES)."""
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
    return stage


def coverage_funnel(session: Session, protocol_row: models.Protocol, protocol: Protocol) -> list[FunnelRow]:
    """The total, then every crossed cell of the protocol's targets (its demographic dimensions when it sets no
    cells), gaps first."""
    if protocol.targets.cells is not None:
        dimensions = list(protocol.targets.cells.dimensions)
        targets: dict[tuple[str, ...], Target | None] = dict(protocol.cell_targets())
    else:
        import itertools

        dimensions = [d.name for d in protocol.demographics]
        targets = {combo: None for combo in itertools.product(*(d.values for d in protocol.demographics))}
    stages = recording_stages(session, protocol_row.pk)
    hours: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0] * len(STAGES))
    speakers: dict[tuple[str, ...], list[set[str]]] = defaultdict(lambda: [set() for _ in STAGES])
    total_hours = [0.0] * len(STAGES)
    total_speakers: list[set[str]] = [set() for _ in STAGES]
    for recording_pk, speaker_id, share, values in _participations(session, protocol_row.pk, dimensions):
        reached = stages.get(recording_pk, 0)
        for s in range(reached + 1):
            hours[values][s] += share / 3600
            speakers[values][s].add(speaker_id)
            total_hours[s] += share / 3600
            total_speakers[s].add(speaker_id)

    def make(scope: str, dims: tuple[str, ...], values: tuple[str, ...], h: list[float], sp: list[set[str]],
             target: Target | None) -> FunnelRow:
        return FunnelRow(scope, dims, values, dict(zip(STAGES, h)), {n: len(s) for n, s in zip(STAGES, sp)},
                         target.hours if target else None, target.speakers if target else None)

    total = make("total", (), (), total_hours, total_speakers, protocol.targets.total)
    keys = list(targets) + [k for k in hours if k not in targets]
    cells = [make("cell", tuple(dimensions), k, hours.get(k, [0.0] * len(STAGES)),
                  speakers.get(k, [set() for _ in STAGES]), targets.get(k)) for k in keys]

    def gaps_first(row: FunnelRow) -> tuple[float, float, str]:
        percent = row.approved_percent
        return (percent if percent is not None else float("inf"), -(row.gap_hours or 0), row.label)

    return [total] + sorted(cells, key=gaps_first)


def _participations(session: Session, protocol_pk: int, dimensions: list[str]):  # type: ignore[no-untyped-def]
    """(recording pk, speaker, speaker-hours share in s, cell values) per participant of an accepted recording."""
    rec, sp, se, sd = models.Recording, models.SessionParticipant, models.Session, models.SpeakerDemographic
    speaker_dims = [d for d in dimensions if d not in RECORDING_DIMENSIONS]
    rows = session.execute(
        select(rec.pk, sp.speaker_id, rec.duration_s, rec.n_speakers, *(getattr(se, d) for d in dimensions if d in RECORDING_DIMENSIONS))
        .join(sp, sp.session_pk == rec.session_pk).join(se, se.pk == rec.session_pk)
        .where(rec.protocol_pk == protocol_pk, rec.status == "accepted")
    ).all()
    demographics: dict[str, dict[str, str]] = defaultdict(dict)
    ids = sorted({row[1] for row in rows})
    for start in range(0, len(ids), 500):
        for speaker_id, dimension, value in session.execute(
            select(sd.speaker_id, sd.dimension, sd.value).where(sd.speaker_id.in_(ids[start:start + 500]), sd.dimension.in_(speaker_dims))
        ):
            demographics[speaker_id][dimension] = value
    for row in rows:
        recording_pk, speaker_id, duration, n_speakers = row[:4]
        session_values = dict(zip([d for d in dimensions if d in RECORDING_DIMENSIONS], row[4:]))
        values = tuple(str(session_values[d]) if d in RECORDING_DIMENSIONS else str(demographics[speaker_id].get(d)) for d in dimensions)
        yield recording_pk, speaker_id, float(duration or 0.0) / max(1, int(n_speakers or 1)), values
