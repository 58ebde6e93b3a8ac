"""Pre-annotation scores per demographic value, crossed cell and recording condition.

A manager asks which speakers the models serve worst; the dataset card answers the same
question for a release. Both build the same groups here: each scored recording counts
under its noise condition and device and under every demographic value (and crossed
cell) of each of its speakers, so a dialogue between two cells counts in both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from asr.evaluation import Score

CONDITIONS = ("noise_condition", "device")


def group_keys(conditions: Mapping[str, str | None], speakers: Sequence[Mapping[str, str]],
               cell_dimensions: Sequence[str] = ()) -> set[tuple[str, str]]:
    """(dimension, value) groups of one recording: its conditions, each speaker's values and crossed cell."""
    keys = {(name, str(value)) for name, value in conditions.items() if value is not None}
    for demographics in speakers:
        keys |= {(d, str(v)) for d, v in demographics.items() if v is not None}
        if cell_dimensions:
            values = [conditions.get(d) if d in CONDITIONS else demographics.get(d) for d in cell_dimensions]
            if None not in values:
                keys.add((" × ".join(cell_dimensions), " × ".join(str(v) for v in values)))
    return keys


def figures(score: Score) -> dict[str, Any]:
    """A score's summary with floats rounded for tables and cards."""
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in score.summary().items()}


@dataclass
class GroupedScores:
    overall: Score = field(default_factory=Score)
    groups: dict[tuple[str, str], Score] = field(default_factory=lambda: defaultdict(Score))

    def add(self, score: Score, keys: set[tuple[str, str]]) -> None:
        self.overall.add(score)
        for key in keys:
            self.groups[key].add(score)

    def ranked(self) -> list[dict[str, Any]]:
        """One row per group, the worst word error rate first."""
        rows = sorted(self.groups.items(), key=lambda kv: (-(kv[1].summary()["wer"] or 0), kv[0]))
        return [{"dimension": d, "value": v, **figures(s)} for (d, v), s in rows]
