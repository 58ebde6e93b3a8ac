"""Speaker-disjoint train/dev/test splits, stratified over demographic values, reproducible by seed.

In a dialogue corpus a speaker's voice is in every session they took part in, so the
unit that goes to one split is a connected component of the speaker–session graph
(speakers linked through the sessions they share). Components are assigned greedily,
in a seeded random order, each to the split whose share of the component's demographic
values (and of all hours) is furthest below its target ratio: iterative stratification
for multi-valued groups. The same input and seed always give the same assignment.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

SPLITS = ("train", "dev", "test")
DEFAULT_RATIOS = {"train": 0.8, "dev": 0.1, "test": 0.1}


class SplitError(ValueError):
    """Ratios that cannot describe a split (negative, unknown name, not summing to 1)."""


@dataclass(frozen=True)
class SplitUnit:
    """One session to place: its hours and its speakers' demographic values."""

    session_id: str
    hours: float
    speakers: dict[str, dict[str, str]]  # speaker_id -> {dimension: value}


@dataclass
class SplitAssignment:
    """Where each session and speaker went, and the shares achieved (for the card)."""

    by_session: dict[str, str]
    by_speaker: dict[str, str]
    ratios: dict[str, float]
    seed: int
    achieved: dict[str, dict[str, float]] = field(default_factory=dict)


def parse_ratios(text: str) -> dict[str, float]:
    """'0.8,0.1,0.1' or 'train=0.8,dev=0.1,test=0.1' -> ratios that sum to 1."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise SplitError("empty split ratios")
    ratios: dict[str, float] = {}
    for i, part in enumerate(parts):
        name, _, value = part.rpartition("=")
        name = name.strip() or (SPLITS[i] if i < len(SPLITS) else "")
        if name not in SPLITS:
            raise SplitError(f"unknown split {name or part!r}; splits are {', '.join(SPLITS)}")
        try:
            ratios[name] = float(value)
        except ValueError:
            raise SplitError(f"split ratio {value!r} is not a number") from None
    return check_ratios(ratios)


def check_ratios(ratios: dict[str, float]) -> dict[str, float]:
    unknown = sorted(set(ratios) - set(SPLITS))
    if unknown:
        raise SplitError(f"unknown split(s) {', '.join(unknown)}; splits are {', '.join(SPLITS)}")
    if any(v < 0 for v in ratios.values()):
        raise SplitError("split ratios must not be negative")
    if abs(sum(ratios.values()) - 1.0) > 1e-6:
        raise SplitError(f"split ratios must sum to 1, got {sum(ratios.values()):g}")
    return {name: float(ratios.get(name, 0.0)) for name in SPLITS}


def _components(units: list[SplitUnit]) -> list[list[SplitUnit]]:
    """Sessions grouped so that no speaker is in two groups (union-find over speakers)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for unit in units:
        ids = sorted(unit.speakers) or [f"session:{unit.session_id}"]
        for other in ids[1:]:
            a, b = find(ids[0]), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[str, list[SplitUnit]] = defaultdict(list)
    for unit in units:
        ids = sorted(unit.speakers) or [f"session:{unit.session_id}"]
        groups[find(ids[0])].append(unit)
    return [sorted(g, key=lambda u: u.session_id) for _, g in sorted(groups.items())]


def _keys(component: list[SplitUnit], dimensions: Iterable[str]) -> dict[tuple[str, str], float]:
    """Hours per (dimension, value) in a component; a session's hours count for each participant's value."""
    out: dict[tuple[str, str], float] = defaultdict(float)
    dims = list(dimensions)
    for unit in component:
        out[("*", "*")] += unit.hours
        for demographics in unit.speakers.values():
            for dim in dims:
                if dim in demographics:
                    out[(dim, demographics[dim])] += unit.hours / max(len(unit.speakers), 1)
    return out


def assign_splits(units: list[SplitUnit], dimensions: list[str], ratios: dict[str, float] | None = None,
                  seed: int = 0) -> SplitAssignment:
    """Assign every session (and so every speaker) to a split; deterministic for (units, ratios, seed)."""
    ratios = check_ratios(ratios or DEFAULT_RATIOS)
    components = _components(sorted(units, key=lambda u: u.session_id))
    random.Random(seed).shuffle(components)
    weights = [_keys(c, dimensions) for c in components]
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for w in weights:
        for key, hours in w.items():
            totals[key] += hours
    filled: dict[str, dict[tuple[str, str], float]] = {s: defaultdict(float) for s in SPLITS}
    by_session: dict[str, str] = {}
    for component, w in zip(components, weights):
        def deficit(split: str) -> float:
            # how far below target this split is, over the values this component carries
            return sum((ratios[split] * totals[k] - filled[split][k]) / totals[k] for k in w if totals[k] > 0)

        candidates = [s for s in SPLITS if ratios[s] > 0]
        best = max(candidates, key=lambda s: (deficit(s), -SPLITS.index(s)))
        for key, hours in w.items():
            filled[best][key] += hours
        for unit in component:
            by_session[unit.session_id] = best
    by_speaker = {spk: by_session[u.session_id] for u in units for spk in u.speakers}
    achieved = {
        "hours": {s: (filled[s][("*", "*")] / totals[("*", "*")] if totals[("*", "*")] else 0.0) for s in SPLITS},
    }
    for (dim, value), total in sorted(totals.items()):
        if dim != "*" and total > 0:
            achieved[f"{dim}={value}"] = {s: filled[s][(dim, value)] / total for s in SPLITS}
    return SplitAssignment(by_session, by_speaker, ratios, seed, achieved)
