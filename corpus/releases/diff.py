"""What changed between two releases' entries: pure functions, used by release building, the card and `corpus diff`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from store.release_keys import recording_pk


@dataclass
class ManifestDiff:
    """Recordings and speakers added, removed or changed between two releases (erased entries count as removed)."""

    added: list[str]
    removed: list[str]
    transcript_changed: list[str]
    audio_changed: list[str]
    split_changed: list[str]
    speakers_added: int
    speakers_removed: int
    hours_before: float
    hours_after: float

    def summary(self, before: str, after: str, limit: int = 50) -> dict[str, Any]:
        """Counts plus the first `limit` recording keys of each change (recording keys are not personal data)."""
        lists = {k: getattr(self, k) for k in ("added", "removed", "transcript_changed", "audio_changed", "split_changed")}
        return {
            "from": before, "to": after,
            "counts": {**{f"recordings {k.replace('_', ' ')}": len(v) for k, v in lists.items()},
                       "speakers added": self.speakers_added, "speakers removed": self.speakers_removed,
                       "hours before": round(self.hours_before, 4), "hours after": round(self.hours_after, 4)},
            "recordings": {k: v[:limit] for k, v in lists.items()},
        }


_DIFFED = ("revision_sha256", "sha256", "working_sha256", "split", "duration_s")


def _by_key(entries: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Live entries by recording key, cut to the fields a diff compares (a diff holds both releases' keys at once)."""
    return {e["recording"]: {**{k: e[k] for k in _DIFFED}, "speakers": [{"speaker_id": s["speaker_id"]} for s in e["speakers"]]}
            for e in entries if "erased" not in e}


def diff_entries(before: Iterable[dict[str, Any]], after: Iterable[dict[str, Any]]) -> ManifestDiff:
    """What changed from one release's entries to another's (either may be an iterator over rows)."""
    a, b = _by_key(before), _by_key(after)
    common = sorted(set(a) & set(b), key=_order)
    speakers_a = {s["speaker_id"] for e in a.values() for s in e["speakers"]}
    speakers_b = {s["speaker_id"] for e in b.values() for s in e["speakers"]}
    return ManifestDiff(
        added=sorted(set(b) - set(a), key=_order), removed=sorted(set(a) - set(b), key=_order),
        transcript_changed=[k for k in common if a[k]["revision_sha256"] != b[k]["revision_sha256"]],
        audio_changed=[k for k in common if (a[k]["sha256"], a[k]["working_sha256"]) != (b[k]["sha256"], b[k]["working_sha256"])],
        split_changed=[k for k in common if a[k]["split"] != b[k]["split"]],
        speakers_added=len(speakers_b - speakers_a), speakers_removed=len(speakers_a - speakers_b),
        hours_before=sum(e["duration_s"] for e in a.values()) / 3600.0, hours_after=sum(e["duration_s"] for e in b.values()) / 3600.0,
    )


def _order(key: str) -> tuple[int, str]:
    pk = recording_pk(key)
    return (pk, key) if pk is not None else (0, key)
