"""benchmarks/der_breakdown.py puts each missed or falsely detected second where it falls:
hand-made turns whose errors are known by construction."""

from __future__ import annotations

import pytest

from benchmarks.der_breakdown import breakdown
from store.turns import Turn


def test_missed_and_false_alarm_seconds_fall_where_they_were_made() -> None:
    reference = [Turn("A", 0.0, 4.0), Turn("B", 3.0, 5.0), Turn("A", 6.0, 8.0), Turn("B", 10.0, 12.0)]
    hypothesis = [
        Turn("x", 0.0, 4.0),  # A's first turn, exactly
        Turn("y", 4.0, 5.0),  # B's first second, overlapped by A, is missed: 1.0 s in overlap
        Turn("x", 6.1, 9.0),  # starts 0.1 s late (a missed edge), runs 1.0 s on: 0.3 s near the edge, 0.7 s away
        Turn("y", 10.0, 10.5), Turn("y", 11.5, 12.0),  # the middle second of B's last turn is missed: inside
    ]
    where = breakdown(hypothesis, reference, {"x": "A", "y": "B"})
    assert where == pytest.approx({"miss_overlap": 1.0, "miss_edge": 0.1, "miss_inside": 1.0,
                                   "fa_edge": 0.3, "fa_away": 0.7, "overlap_s": 1.0}, abs=1e-6)
