"""One printer for every listing command: the same rows as a table, JSON or CSV.

Scripts must not parse box-drawn tables, so each listing command builds a `Listing`
(typed JSON values per row) once and `emit` renders it in the format asked for. The JSON
is a stable schema: `{"schema": "turnscribe.<command>/1", "rows": [{key: value, ...}]}`
with the keys in `columns` order; a new key may be added, none is renamed or removed
without bumping the version after the slash.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from store.console import out, shown


class ListFormat(str, Enum):
    """Output of a listing command whose rows fit a CSV file."""

    table = "table"
    json = "json"
    csv = "csv"


class DocFormat(str, Enum):
    """Output of a command that shows one nested document (a card, a plan): no CSV."""

    table = "table"
    json = "json"


def cell_text(value: Any) -> str:
    """How a JSON value reads in a table or CSV cell: lists joined, booleans yes/no, missing as "—"."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(cell_text(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def csv_text(value: Any) -> str:
    """A CSV cell holds the JSON value itself: scalars as written, true/false, empty for null, lists and
    objects as JSON (so a script reads the same data whichever format it asked for)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass(frozen=True)
class Column:
    """A row key, its table header and how its value reads in a cell."""

    key: str
    header: str
    text: Callable[[Any], str] = cell_text


@dataclass
class Listing:
    """The rows of one listing command, with its schema name."""

    schema: str
    columns: list[Column]
    rows: list[dict[str, Any]] = field(default_factory=list)
    title: str | None = None

    def add(self, **values: Any) -> None:
        missing = [c.key for c in self.columns if c.key not in values]
        if missing:
            raise ValueError(f"{self.schema}: row lacks {', '.join(missing)}")
        self.rows.append({c.key: values[c.key] for c in self.columns})

    def document(self) -> dict[str, Any]:
        return {"schema": f"turnscribe.{self.schema}/1", "rows": self.rows}


_C1 = {c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)}


def json_text(document: Any) -> str:
    """JSON as every command prints it: indented, UTF-8 kept, one trailing newline. JSON escapes C0 controls
    itself; C1 controls (0x7f-0x9f, e.g. the 8-bit CSI) are escaped here so no value can drive a terminal."""
    return json.dumps(document, indent=2, ensure_ascii=False, default=str).translate(_C1) + "\n"


def emit(listing: Listing, fmt: ListFormat) -> None:
    """Print `listing` on stdout as a table, JSON (stable schema) or CSV (header = the JSON keys, cells = the JSON values)."""
    if fmt is ListFormat.json:
        sys.stdout.write(json_text(listing.document()))
    elif fmt is ListFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow([c.key for c in listing.columns])
        for row in listing.rows:
            writer.writerow([shown(csv_text(row[c.key])) for c in listing.columns])
        sys.stdout.write(buffer.getvalue())
    else:
        from rich.table import Table

        table = Table(*(c.header for c in listing.columns), title=listing.title, title_justify="left")
        for row in listing.rows:
            table.add_row(*(c.text(row[c.key]) for c in listing.columns))
        out.print(table)
