"""The coverage heatmap's numbers: crossed cells folded onto two chosen dimensions.

A protocol's crossed cells may span more than two dimensions (age band × gender × accent);
a manager picks two and each heatmap cell sums the crossed cells under it. Hours add up
(a dialogue's duration is shared among its speakers), targets add up, and the gap is the
sum of the crossed cells' own gaps: hours over target in one cell never fill another's.
The rows come from `collection.coverage` (collected, the figures of `collect coverage`)
or the review funnel's approved stage, so the page never computes coverage itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collection.coverage import CoverageRow


@dataclass
class HeatCell:
    hours: float = 0.0
    target_hours: float | None = None
    gap_hours: float | None = None

    @property
    def share(self) -> float | None:
        """Hours as a share of the target (1.0 = met), None without a target."""
        return self.hours / self.target_hours if self.target_hours else None

    def text(self) -> str:
        """What the cell says: share, amount against target, and the hours still missing."""
        if self.target_hours is None:
            return f"{amount(self.hours)} (no target)"
        gap = f"gap {self.gap_hours:.2f} h" if self.gap_hours else "target met"
        percent = 100 * (self.share or 0.0)
        return f"{percent:.1f}% · {amount(self.hours)} of {self.target_hours:g} h · {gap}"


def amount(hours: float) -> str:
    """Hours under one hour read as minutes (the first dialogues of a 300 h plan are minutes, not 0.00 h)."""
    return f"{hours:.2f} h" if hours >= 1 else f"{60 * hours:.1f} min"


@dataclass
class Heatmap:
    row_dimension: str
    column_dimension: str
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], HeatCell]


def _add(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else a + b


def fold_cells(cells: Iterable[CoverageRow], row_dimension: str, column_dimension: str,
               row_values: list[str], column_values: list[str]) -> Heatmap:
    """Sum crossed-cell rows onto (row value, column value); every value pair gets a cell, collected or not."""
    if row_dimension == column_dimension:
        raise ValueError("pick two different dimensions")
    grid = {(r, c): HeatCell() for r in row_values for c in column_values}
    for row in cells:
        where = dict(zip(row.dimensions, row.values))
        if row_dimension not in where or column_dimension not in where:
            raise ValueError(f"the crossed cells have no {row_dimension!r} or {column_dimension!r} dimension")
        cell = grid.setdefault((where[row_dimension], where[column_dimension]), HeatCell())
        cell.hours += row.hours
        cell.target_hours = _add(cell.target_hours, row.target_hours)
        cell.gap_hours = _add(cell.gap_hours, row.gap_hours)
    return Heatmap(row_dimension, column_dimension, row_values, column_values, grid)
