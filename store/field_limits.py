"""Limits on user-supplied fields, checked before anything is stored, the same on every database.

SQLite stores a 100 KB string in a `String(128)` column and a 2**70 integer nowhere
PostgreSQL would; checking against the model's own column lengths before storing gives
one answer on both. Identifiers that end up in Kaldi, RTTM and file names (speaker and
session ids) may not hold whitespace, control characters or slashes.
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import Column, String

INT32_MAX = 2**31 - 1
MAX_CHANNEL = 1024  # a 1-based audio channel; no recorder has more
_UNSAFE_ID = re.compile(r"[\s/\\]")


def column_length(column: Column) -> int:  # type: ignore[type-arg]
    """The declared length of a `String(n)` column."""
    kind = column.type
    if not isinstance(kind, String) or kind.length is None:
        raise TypeError(f"{column} has no declared length")
    return int(kind.length)


def _control_characters(value: str) -> bool:
    # Cs: a lone surrogate (JSON "\ud800") cannot be encoded for either database
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in value)


def text_problem(name: str, value: str, column: Column) -> str | None:  # type: ignore[type-arg]
    """Why `value` cannot be stored in `column` (too long, control characters), or None."""
    limit = column_length(column)
    if len(value) > limit:
        return f"{name} is {len(value)} characters long; the limit is {limit}"
    if _control_characters(value):
        return f"{name} {value[:40]!r} holds control characters"
    return None


def identifier_problem(name: str, value: str, column: Column) -> str | None:  # type: ignore[type-arg]
    """`text_problem`, and no whitespace or slashes (they break Kaldi, RTTM and file names)."""
    problem = text_problem(name, value, column)
    if problem is None and _UNSAFE_ID.search(value):
        return f"{name} {value[:40]!r} holds whitespace or a slash; identifiers may not"
    return problem
