"""How a release entry names its recording (``rec-<pk>``), written and read in one place.

Release manifests are read by people and by the ML teams' loaders, so entries carry a
stable key rather than a bare database pk; every module that maps keys back to recordings
(verification, diffs, the card, the coverage funnel's released stage) uses these two
functions.
"""

from __future__ import annotations

PREFIX = "rec-"


def recording_key(pk: int) -> str:
    return f"{PREFIX}{pk}"


def recording_pk(key: object) -> int | None:
    """The recording pk a key names, or None for anything else (an erased entry, a tampered key)."""
    if not isinstance(key, str) or not key.startswith(PREFIX):
        return None
    tail = key.removeprefix(PREFIX)
    return int(tail) if tail.isdigit() else None
