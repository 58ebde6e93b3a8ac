"""Coverage as a manager reads it: a rich table, CSV, JSON, and a PNG heatmap for reports."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from collection.coverage import CoverageReport, CoverageRow

CSV_COLUMNS = ["scope", "label", "hours", "target_hours", "gap_hours", "speakers", "target_speakers",
               "gap_speakers", "sessions", "percent"]


def _fmt(value: float | int | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _style(percent: float | None) -> str:
    if percent is None:
        return ""
    return "red" if percent < 25 else "yellow" if percent < 75 else "green"


def coverage_tables(report: CoverageReport, limit: int | None = None) -> list[Table]:
    """One table per scope, a column per dimension, the most-behind rows first."""
    tables = []
    for scope, title in (("total", "Total"), ("marginal", "Per dimension"), ("cell", "Crossed cells")):
        rows = report.scope(scope)
        if not rows:
            continue
        narrowed = "".join(f", {k}={v}" for k, v in report.where.items())
        table = Table(title=f"{report.protocol_id} v{report.protocol_version}{narrowed} — {title}", title_justify="left")
        keys = ["dimension", "value"] if scope == "marginal" else list(rows[0].dimensions)
        for column in keys:
            table.add_column(column)
        for column in ("hours", "target h", "gap h", "speakers", "target spk", "sessions", "%"):
            table.add_column(column, justify="right")
        for row in rows[:limit] if limit else rows:
            names = [row.dimensions[0], row.values[0]] if scope == "marginal" else list(row.values)
            table.add_row(
                *names, _fmt(row.hours, 3), _fmt(row.target_hours), _fmt(row.gap_hours), _fmt(row.speakers),
                _fmt(row.target_speakers), _fmt(row.sessions), _fmt(row.percent, 1), style=_style(row.percent),
            )
        if limit and len(rows) > limit:
            table.caption = f"{len(rows) - limit} more rows (use --format csv for all)"
        tables.append(table)
    return tables


def print_coverage(report: CoverageReport, console: Console, limit: int | None = 20) -> None:
    for table in coverage_tables(report, limit):
        console.print(table)
    if report.mismatches:
        table = Table(title="Declared vs measured noise condition", title_justify="left")
        for column in ("recording", "session", "file", "declared", "SNR dB", "why"):
            table.add_column(column)
        for m in report.mismatches:
            table.add_row(str(m["pk"]), m["session_id"], m["source_name"], m["noise_condition"],
                          _fmt(m["snr_db"], 1), m["noise_mismatch"])
        console.print(table)
    if report.rejected:
        console.print("Rejected (not counted): " + ", ".join(f"{code} {n}" for code, n in report.rejected.items()))
    for version, count in report.other_versions.items():
        console.print(f"[dim]{count} accepted recording(s) are counted under version {version} of this protocol.[/dim]")


def coverage_csv(report: CoverageReport) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in report.rows:
        writer.writerow(row.as_dict())
    return buffer.getvalue()


def coverage_json(report: CoverageReport) -> str:
    return json.dumps({
        "protocol": report.protocol_id, "version": report.protocol_version,
        "rows": [row.as_dict() for row in report.rows], "rejected": report.rejected,
        "mismatches": report.mismatches, "other_versions": report.other_versions, "where": report.where,
    }, indent=2, default=str)


def coverage_heatmap(report: CoverageReport, out: Path) -> Path:
    """A PNG of the crossed cells (percent of target, hours written in each), or the marginals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cells = report.scope("cell")
    if cells:
        row_labels = sorted({" / ".join(c.values[:-1]) for c in cells})
        col_labels = sorted({c.values[-1] for c in cells})
        y_title, x_title = " / ".join(cells[0].dimensions[:-1]), cells[0].dimensions[-1]
        lookup: dict[tuple[str, str], CoverageRow] = {(" / ".join(c.values[:-1]), c.values[-1]): c for c in cells}
    else:
        marginals = report.scope("marginal")
        row_labels = sorted({m.dimensions[0] for m in marginals})
        col_labels = sorted({m.values[0] for m in marginals})
        y_title, x_title = "dimension", "value"
        lookup = {(m.dimensions[0], m.values[0]): m for m in marginals}
    grid = np.full((len(row_labels), len(col_labels)), np.nan)
    for (r, c), cell in lookup.items():
        if cell.percent is not None:
            grid[row_labels.index(r), col_labels.index(c)] = min(cell.percent, 100)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(col_labels) + 3), max(3, 0.45 * len(row_labels) + 2)))
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(col_labels)), col_labels, rotation=30, ha="right")
    ax.set_yticks(range(len(row_labels)), row_labels)
    ax.set_xlabel(x_title)
    ax.set_ylabel(y_title)
    for (r, c), cell in lookup.items():
        amount = f"{cell.hours:.1f} h" if cell.hours >= 1 else f"{cell.hours * 60:.0f} min"
        ax.text(col_labels.index(c), row_labels.index(r), f"{amount}\n{cell.speakers} spk",
                ha="center", va="center", fontsize=7)
    fig.colorbar(image, ax=ax, label="% of target reached")
    ax.set_title(f"{report.protocol_id} v{report.protocol_version}: coverage against targets")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
