"""Reading the CSV and JSONL files people hand in (manifests, consent lists), row by row."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Row:
    """One record with its 1-based line number (CSV: the header is line 1)."""

    line: int
    data: dict[str, Any] | None
    error: str | None = None


def read_rows(path: Path) -> Iterator[Row]:
    """Yield rows of a `.csv` or `.jsonl` file; a malformed row becomes an error row, never an abort."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            while True:
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:  # a field over csv.field_size_limit() (128 KiB), a NUL byte
                    # the reader has not counted the line it failed on
                    yield Row(reader.line_num + 1, None, f"unreadable CSV row: {exc}")
                    continue
                if None in record:
                    yield Row(reader.line_num, None, "more fields than the header has columns")
                    continue
                yield Row(reader.line_num, {k.strip(): (v or "").strip() for k, v in record.items()})
    elif suffix in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8") as handle:
            for number, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    data = json.loads(text)
                except json.JSONDecodeError as exc:
                    yield Row(number, None, f"not valid JSON: {exc.msg} at column {exc.colno}")
                    continue
                if not isinstance(data, dict):
                    yield Row(number, None, "each line must be a JSON object")
                    continue
                yield Row(number, data)
    else:
        raise ValueError(f"{path}: expected a .csv or .jsonl file, got '{suffix or 'no extension'}'")
