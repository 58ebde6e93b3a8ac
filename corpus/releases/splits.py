"""Speaker-disjoint train/dev/test splits, stratified over demographic values, reproducible by seed.

In a dialogue corpus a speaker's voice is in every session they took part in, so the
unit that goes to one split is a connected component of the speaker–session graph
(speakers linked through the sessions they share). Components are assigned greedily,
in a seeded random order, each to the split whose share of the component's demographic
values (and of all hours) is furthest below its target ratio: iterative stratification
for multi-valued groups. The same input and seed always give the same assignment.

Across releases a speaker keeps the split of the first release they appeared in
(`kept`): a model trained on a later release must never have heard an earlier release's
dev or test voices. A component holding kept speakers goes where they are; its hours
fill that split first, and only the new components are placed by deficit, so the shares
and strata stay close to the targets as the corpus grows. A session that would join
speakers kept in different splits cannot be placed without one of them crossing: it is
left out (`SplitAssignment.left_out`) unless a manager asks for a fresh assignment.
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
    left_out: dict[str, list[str]] = field(default_factory=dict)  # session id -> the kept splits it would join
    kept: dict[str, str] = field(default_factory=dict)  # speaker -> split kept from earlier releases (those present)


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


def _components(units: list[SplitUnit], kept: dict[str, str]) -> tuple[list[tuple[str | None, list[SplitUnit]]], dict[str, list[str]]]:
    """Sessions grouped so that no speaker is in two groups (union-find over speakers), each with its kept split.

    Sessions are joined in session-id order; one that would join groups kept in different
    splits is left out instead (returned with those splits).
    """
    parent: dict[str, str] = {}
    pin: dict[str, str] = {}  # root -> the split its kept speakers are in

    def find(x: str) -> str:
        if x not in parent:
            parent[x] = x
            if x in kept:
                pin[x] = kept[x]
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    left_out: dict[str, list[str]] = {}
    placed: list[tuple[SplitUnit, str]] = []
    for unit in units:
        ids = sorted(unit.speakers) or [f"session:{unit.session_id}"]
        roots = sorted({find(i) for i in ids})
        pins = sorted({pin[r] for r in roots if r in pin})
        if len(pins) > 1:
            left_out[unit.session_id] = pins
            continue
        root = roots[0]
        for other in roots[1:]:
            parent[other] = root
        if pins:
            pin[root] = pins[0]
        placed.append((unit, ids[0]))
    groups: dict[str, list[SplitUnit]] = defaultdict(list)
    for unit, first in placed:
        groups[find(first)].append(unit)
    return ([(pin.get(root), sorted(g, key=lambda u: u.session_id)) for root, g in sorted(groups.items())], left_out)


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
                  seed: int = 0, kept: dict[str, str] | None = None) -> SplitAssignment:
    """Assign every session (and so every speaker) to a split; deterministic for (units, ratios, seed, kept).

    `kept`: speaker -> the split an earlier release gave them (None or empty: a fresh assignment).
    """
    ratios = check_ratios(ratios or DEFAULT_RATIOS)
    kept = dict(kept or {})
    unknown = sorted({split for split in kept.values() if split not in SPLITS})
    if unknown:
        raise SplitError(f"earlier split(s) {', '.join(unknown)} unknown; splits are {', '.join(SPLITS)}")
    grouped, left_out = _components(sorted(units, key=lambda u: u.session_id), kept)
    pinned = [(split, c) for split, c in grouped if split is not None]
    free = [c for split, c in grouped if split is None]
    random.Random(seed).shuffle(free)
    components = [c for _, c in pinned] + free
    weights = [_keys(c, dimensions) for c in components]
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for w in weights:
        for key, hours in w.items():
            totals[key] += hours
    filled: dict[str, dict[tuple[str, str], float]] = {s: defaultdict(float) for s in SPLITS}
    by_session: dict[str, str] = {}
    for index, (component, w) in enumerate(zip(components, weights)):
        def deficit(split: str) -> float:
            # how far below target this split is, over the values this component carries
            return sum((ratios[split] * totals[k] - filled[split][k]) / totals[k] for k in w if totals[k] > 0)

        if index < len(pinned):
            best = pinned[index][0]
        else:
            candidates = [s for s in SPLITS if ratios[s] > 0]
            best = max(candidates, key=lambda s: (deficit(s), -SPLITS.index(s)))
        for key, hours in w.items():
            filled[best][key] += hours
        for unit in component:
            by_session[unit.session_id] = best
    by_speaker = {spk: by_session[u.session_id] for u in units if u.session_id in by_session for spk in u.speakers}
    achieved = {
        "hours": {s: (filled[s][("*", "*")] / totals[("*", "*")] if totals[("*", "*")] else 0.0) for s in SPLITS},
    }
    for (dim, value), total in sorted(totals.items()):
        if dim != "*" and total > 0:
            achieved[f"{dim}={value}"] = {s: filled[s][(dim, value)] / total for s in SPLITS}
    present = {spk: split for spk, split in kept.items() if spk in by_speaker}
    return SplitAssignment(by_session, by_speaker, ratios, seed, achieved, left_out, present)
