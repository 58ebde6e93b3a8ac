"""The one clock: aware UTC time for every stored timestamp, so SQLite and PostgreSQL rows compare alike."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Now, timezone-aware in UTC (naive datetimes would be read as local time somewhere)."""
    return dt.datetime.now(dt.timezone.utc)
