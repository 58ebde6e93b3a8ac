"""When each cell will meet its hours target at the recent collection rate, and which will miss the deadline.

A manager's question is not only "what is missing" but "will we make it". The rate of a
cell is the hours of its recordings ingested over the last `weeks` weeks up to and
including the day of the projection, divided by `weeks`; the projected day is that day plus the gap in
hours over the rate, rounded up to a whole day. A cell with a gap and no recent hours is
never met at this rate. Hours come from `collection.coverage.compute_coverage` (the
figures of `collect coverage`), once over every accepted recording and once over those
ingested in the window, so the projection never counts differently from the coverage
report; the weekly intake chart adds durations (the coverage total's hours) from one read of the
recordings. Ingestion time, not the declared recording day, is the rate's clock: it is when
the audio became usable, and every recording has one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collection.coverage import CoverageRow, RecordingFilter, compute_coverage, recordings_where
from protocols.schema import Protocol
from store import models

STATUSES = ("will miss", "never at this rate", "on track", "no deadline", "met", "no hours target")


@dataclass(frozen=True)
class CellProjection:
    scope: str  # "total" or "cell"
    dimensions: tuple[str, ...]
    values: tuple[str, ...]
    hours: float
    target_hours: float | None
    gap_hours: float | None
    recent_hours: float  # ingested in the window
    rate_hours_per_week: float
    projected_on: dt.date | None  # None: met, no target, or never at this rate
    deadline: dt.date | None
    status: str  # one of STATUSES

    @property
    def label(self) -> str:
        return "total" if self.scope == "total" else " × ".join(f"{d}={v}" for d, v in zip(self.dimensions, self.values))

    @property
    def misses_deadline(self) -> bool:
        return self.status in ("will miss", "never at this rate") and self.deadline is not None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(label=self.label, misses_deadline=self.misses_deadline,
                   projected_on=self.projected_on.isoformat() if self.projected_on else None,
                   deadline=self.deadline.isoformat() if self.deadline else None)
        return out


@dataclass(frozen=True)
class Projection:
    protocol_id: str
    protocol_version: int
    as_of: dt.date
    weeks: int
    deadline: dt.date | None
    weekly_hours: list[tuple[dt.date, float]]  # (week start, hours ingested that week), oldest first
    rows: list[CellProjection]  # the total, then the cells: those missing the deadline first

    def as_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol_id, "version": self.protocol_version, "as_of": self.as_of.isoformat(),
                "weeks": self.weeks, "deadline": self.deadline.isoformat() if self.deadline else None,
                "weekly_hours": [{"week_start": w.isoformat(), "hours": round(h, 6)} for w, h in self.weekly_hours],
                "rows": [r.as_dict() for r in self.rows]}


def _window_end(as_of: dt.date) -> dt.datetime:
    """The window ends with the day of the projection, included (today's intake counts today)."""
    return dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)


def _intake(session: Session, protocol_pk: int) -> list[tuple[int, dt.datetime, float]]:
    """(pk, ingestion time, duration in seconds) of every accepted recording, read once per projection."""
    rec = models.Recording
    query = select(rec.pk, rec.ingested_at, rec.duration_s).where(rec.protocol_pk == protocol_pk, rec.status == "accepted")
    return [(pk, _aware(at), float(seconds or 0.0)) for pk, at, seconds in session.execute(query)]


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; every stored time is UTC (store/clock.py)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def project(row: CoverageRow, recent_hours: float, weeks: int, as_of: dt.date, deadline: dt.date | None) -> CellProjection:
    """One cell's projected day and status from its coverage now and its hours in the window."""
    rate = recent_hours / weeks
    gap = row.gap_hours
    projected: dt.date | None = None
    if row.target_hours is None:
        status = "no hours target"
    elif not gap:
        status = "met"
    elif rate <= 0:
        status = "never at this rate"
    elif (days := math.ceil(7 * gap / rate)) > dt.date.max.toordinal() - as_of.toordinal():
        status = "never at this rate"  # not before the year 9999
    else:
        projected = as_of + dt.timedelta(days=days)
        status = "no deadline" if deadline is None else ("will miss" if projected > deadline else "on track")
    return CellProjection(row.scope, row.dimensions, tuple(str(v) for v in row.values), row.hours, row.target_hours, gap,
                          recent_hours, rate, projected, deadline, status)


def _misses_first(cell: CellProjection) -> tuple[int, float, str]:
    """Cells that miss the deadline (never first), then by projected day, latest first; met and untargeted last."""
    rank = {"never at this rate": 0, "will miss": 1, "on track": 2, "no deadline": 2, "met": 3, "no hours target": 4}[cell.status]
    later_first = -cell.projected_on.toordinal() if cell.projected_on else 0
    return (rank, later_first, cell.label)


def coverage_projection(session: Session, protocol_row: models.Protocol, protocol: Protocol, *, as_of: dt.date,
                        weeks: int = 4, where: RecordingFilter = RecordingFilter(),
                        cells: Sequence[str] | None = None) -> Projection:
    """The total and every crossed cell projected from the last `weeks` weeks of intake up to `as_of`."""
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    end = _window_end(as_of)
    start = end - dt.timedelta(weeks=weeks)
    chosen = recordings_where(session, protocol_row.pk, where)
    intake = [(pk, at, seconds) for pk, at, seconds in _intake(session, protocol_row.pk) if chosen is None or pk in chosen]
    now = compute_coverage(session, protocol_row, protocol, chosen, cells=cells)
    recent = compute_coverage(session, protocol_row, protocol, frozenset(pk for pk, at, _ in intake if start <= at < end),
                              cells=cells)
    recent_hours = {(r.scope, r.values): r.hours for r in recent.rows}
    rows = [project(r, recent_hours.get((r.scope, r.values), 0.0), weeks, as_of, protocol.deadline)
            for r in now.rows if r.scope in ("total", "cell")]
    weekly = [0.0] * weeks  # a dialogue's hours are its duration, as the coverage total counts them
    for _, at, seconds in intake:
        if start <= at < end:
            weekly[int((at - start) // dt.timedelta(weeks=1))] += seconds / 3600
    weekly_hours = [((start + dt.timedelta(weeks=k)).date(), hours) for k, hours in enumerate(weekly)]
    totals = [r for r in rows if r.scope == "total"]
    return Projection(protocol.id, protocol.version, as_of, weeks, protocol.deadline, weekly_hours,
                      totals + sorted((r for r in rows if r.scope == "cell"), key=_misses_first))
