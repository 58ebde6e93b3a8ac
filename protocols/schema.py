"""The protocol format, as a pydantic schema: every mistake gets a field path.

Demographic dimensions are declared by the protocol (never hard-coded here). Two
recording-level dimensions always exist: ``noise_condition`` (from `noise_conditions`)
and ``device`` (from `devices`), so targets can be set on them too.
"""

from __future__ import annotations

import datetime as dt
import itertools
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

RECORDING_DIMENSIONS = ("noise_condition", "device")
SLUG = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
ATTRIBUTE_NAME = r"^[a-z][a-z0-9_]{0,63}$"
# session attributes every manifest may carry (conflict-of-interest inputs); a protocol declares others
STANDARD_SESSION_ATTRIBUTES = ("recorded_by", "site")
MANIFEST_FIELDS = ("path", "session_id", "device", "noise_condition", "scenario", "language", "recorded_on",
                   "speakers", "speaker_id", "consent_ref", "channel", "line")


MAX_TERM_CHARS = 64
MAX_VOCABULARY_CHARS = 600
"""The vocabulary reaches Whisper as one comma-separated text before each 30 s window; faster-whisper keeps
at most 223 tokens of it and drops the rest silently, and 600 characters of names stay under that."""


def _check_term(term: str) -> str:
    """A vocabulary term: one name, place or term as it should be written, nothing silently trimmed."""
    if not term.strip():
        raise ValueError("an empty term")
    if term != term.strip():
        raise ValueError(f"term {term!r} starts or ends with white space")
    if len(term) > MAX_TERM_CHARS:
        raise ValueError(f"term {term[:20]!r}... has {len(term)} characters (at most {MAX_TERM_CHARS}: a name, place or term)")
    if any(unicodedata.category(c).startswith("C") for c in term):
        raise ValueError(f"term {term!r} holds a control character (a line break?)")
    return term


Term = Annotated[str, AfterValidator(_check_term)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionDesign(Strict):
    kind: Literal["dialogue", "monologue", "multi_party"] = "dialogue"
    speakers_per_session: int = Field(2, ge=1, le=32)
    min_duration_s: float = Field(0.0, ge=0)
    max_duration_s: float | None = Field(None, gt=0)
    style: Literal["scripted", "spontaneous", "mixed"] = "spontaneous"
    scenarios: list[str] = Field(default_factory=list)
    prompts: list[str] = Field(default_factory=list)
    # further session attributes manifests may declare (e.g. group, room), beside recorded_by and site;
    # a person in group "<attribute>:<value>" never gets a session that declared that value
    attributes: list[str] = Field(default_factory=list)

    @field_validator("attributes")
    @classmethod
    def _attribute_names(cls, names: list[str]) -> list[str]:
        import re

        for name in names:
            if not re.fullmatch(ATTRIBUTE_NAME, name):
                raise ValueError(f"session attribute {name!r}: use lower-case letters, digits and '_', starting with a letter")
            if name in MANIFEST_FIELDS or name in STANDARD_SESSION_ATTRIBUTES:
                raise ValueError(f"session attribute {name!r} is already a manifest field")
        if len(set(names)) != len(names):
            raise ValueError("a session attribute is listed twice")
        return names

    def session_attributes(self) -> tuple[str, ...]:
        """Every attribute a manifest may declare for a session: the standard ones, then the protocol's."""
        return STANDARD_SESSION_ATTRIBUTES + tuple(self.attributes)

    @model_validator(mode="after")
    def _bounds(self) -> SessionDesign:
        if self.max_duration_s is not None and self.max_duration_s < self.min_duration_s:
            raise ValueError("max_duration_s is below min_duration_s")
        return self


class Dimension(Strict):
    """A demographic dimension and the values a speaker may declare for it."""

    name: str = Field(pattern=SLUG)
    description: str = ""
    values: list[str] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RECORDING_DIMENSIONS:
            raise ValueError(f"'{name}' is a recording dimension; declare it under noise_conditions/devices")
        return name

    @field_validator("values")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"values listed twice: {repeated}")
        return values


class SnrRange(Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SnrRange:
        if self.min is not None and self.max is not None and self.max < self.min:
            raise ValueError("snr_db.max is below snr_db.min")
        return self

    def contains(self, snr_db: float) -> bool:
        return (self.min is None or snr_db >= self.min) and (self.max is None or snr_db <= self.max)


class NoiseCondition(Strict):
    name: str = Field(pattern=SLUG)
    description: str = ""
    snr_db: SnrRange = SnrRange()


class Target(Strict):
    """Hours and/or distinct speakers wanted."""

    hours: float | None = Field(None, ge=0)
    speakers: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _something(self) -> Target:
        if self.hours is None and self.speakers is None:
            raise ValueError("a target needs hours, speakers or both")
        return self


class MarginalTargets(Strict):
    """Targets per value of one dimension."""

    dimension: str
    values: dict[str, Target]


class CellOverride(Strict):
    cell: dict[str, str]
    target: Target


class CellTargets(Strict):
    """Targets per crossed cell of several dimensions: a default plus overrides."""

    dimensions: list[str] = Field(min_length=2)
    default: Target
    overrides: list[CellOverride] = Field(default_factory=list)


class Targets(Strict):
    total: Target | None = None
    marginals: list[MarginalTargets] = Field(default_factory=list)
    cells: CellTargets | None = None


class QualityGates(Strict):
    min_sample_rate: int = Field(16000, ge=1)
    max_clipping_ratio: float = Field(0.001, ge=0, le=1)
    min_snr_db: float | None = None
    max_silence_ratio: float = Field(0.9, ge=0, le=1)
    min_duration_s: float = Field(1.0, ge=0)
    max_duration_s: float | None = Field(None, gt=0)


class Retention(Strict):
    days: int = Field(gt=0)


class ConsentRequirements(Strict):
    form_versions: list[str] = Field(min_length=1)
    permitted_uses: list[str] = Field(min_length=1)
    retention: Retention


class GoldSettings(Strict):
    """When an annotator's gold items pass (calibration) and when they send them back to it."""

    max_wer: float = Field(0.15, ge=0)
    max_speaker_error: float = Field(0.10, ge=0, le=1)
    max_boundary_s: float = Field(0.5, ge=0)
    calibration_items: int = Field(3, ge=1)  # gold items in a calibration set
    window: int = Field(5, ge=1)  # ongoing accuracy over the person's last `window` gold items
    min_items: int = Field(3, ge=1)  # ... judged once this many are scored
    queues_per_recording: int = Field(1, ge=1)  # how many queues may hold one gold recording at a time


class ReviewSettings(Strict):
    gold: GoldSettings = GoldSettings()


class ReleaseSettings(Strict):
    """How far a release's split shares of hours may drift from the target ratios before the card flags it."""

    split_tolerance: float = Field(0.05, ge=0, le=1)


class Protocol(Strict):
    id: str = Field(pattern=SLUG, max_length=128)  # the limits of models.Protocol's columns, on every database
    version: int = Field(ge=1, le=2**31 - 1)
    title: str = Field("", max_length=512)
    description: str = ""
    languages: list[str] = Field(min_length=1)
    session: SessionDesign = SessionDesign()
    demographics: list[Dimension] = Field(min_length=1)
    noise_conditions: list[NoiseCondition] = Field(min_length=1)
    devices: list[str] = Field(min_length=1)
    targets: Targets = Targets()
    quality_gates: QualityGates = QualityGates()
    consent: ConsentRequirements
    guidelines: str = ""
    review: ReviewSettings | None = None  # None: the workbench's default gold thresholds
    # the day every target should be met; coverage projections list the cells that will miss it first
    deadline: dt.date | None = None
    release: ReleaseSettings = ReleaseSettings()
    # names, places and terms the recordings use; shown to the speech recogniser (asr.transcriber)
    vocabulary: list[Term] = Field(default_factory=list)

    @field_validator("vocabulary")
    @classmethod
    def _vocabulary_fits(cls, terms: list[str]) -> list[str]:
        length = len(", ".join(terms))
        if length > MAX_VOCABULARY_CHARS:
            raise ValueError(f"the terms take {length} characters together (at most {MAX_VOCABULARY_CHARS}: the "
                             "recogniser reads only about 220 tokens of them); keep the words it gets wrong")
        return terms

    def allowed_values(self) -> dict[str, list[str]]:
        """Every countable dimension (demographic and recording-level) and its values."""
        allowed = {d.name: list(d.values) for d in self.demographics}
        allowed["noise_condition"] = [n.name for n in self.noise_conditions]
        allowed["device"] = list(self.devices)
        return allowed

    def noise_condition(self, name: str) -> NoiseCondition:
        return next(n for n in self.noise_conditions if n.name == name)

    def cell_targets(self) -> dict[tuple[str, ...], Target]:
        """The crossed cells' targets, every combination spelled out."""
        cells = self.targets.cells
        if cells is None:
            return {}
        allowed = self.allowed_values()
        out = {combo: cells.default for combo in itertools.product(*(allowed[d] for d in cells.dimensions))}
        for override in cells.overrides:
            out[tuple(override.cell[d] for d in cells.dimensions)] = override.target
        return out


Loc = tuple[str | int, ...]


def semantic_problems(protocol: Protocol) -> list[tuple[Loc, str]]:
    """Cross-field mistakes (unknown dimensions or values, repeats), each at its field path."""
    problems: list[tuple[Loc, str]] = []
    problems += _repeats([d.name for d in protocol.demographics], ("demographics",), "name", "demographic dimension")
    problems += _repeats([n.name for n in protocol.noise_conditions], ("noise_conditions",), "name", "noise condition")
    problems += _repeats(protocol.devices, ("devices",), None, "device")
    first: dict[str, str] = {}
    for i, term in enumerate(protocol.vocabulary):
        if term.casefold() in first:
            problems.append((("vocabulary", i), f"vocabulary term '{term}' is listed twice (as '{first[term.casefold()]}' before)"))
        first.setdefault(term.casefold(), term)
    clashes = sorted(set(protocol.session.session_attributes()) & {d.name for d in protocol.demographics})
    for name in clashes:
        problems.append((("session", "attributes"), f"'{name}' is both a session attribute and a demographic dimension "
                                                    "(their CSV columns would clash)"))
    allowed = protocol.allowed_values()
    for i, marginal in enumerate(protocol.targets.marginals):
        loc: Loc = ("targets", "marginals", i)
        if marginal.dimension not in allowed:
            problems.append((loc + ("dimension",), _unknown_dimension(marginal.dimension, allowed)))
            continue
        for value in marginal.values:
            if value not in allowed[marginal.dimension]:
                problems.append((loc + ("values", value), _unknown_value(marginal.dimension, value, allowed)))
    cells = protocol.targets.cells
    if cells is not None:
        problems += _repeats(cells.dimensions, ("targets", "cells", "dimensions"), None, "cell dimension")
        for i, dim in enumerate(cells.dimensions):
            if dim not in allowed:
                problems.append((("targets", "cells", "dimensions", i), _unknown_dimension(dim, allowed)))
        for i, override in enumerate(cells.overrides):
            loc = ("targets", "cells", "overrides", i, "cell")
            if set(override.cell) != set(cells.dimensions):
                problems.append((loc, f"an override must name exactly the cell dimensions {cells.dimensions}"))
            for dim, value in override.cell.items():
                if dim in allowed and value not in allowed[dim]:
                    problems.append((loc + (dim,), _unknown_value(dim, value, allowed)))
    return problems


def _repeats(items: list[str], loc: Loc, field: str | None, what: str) -> list[tuple[Loc, str]]:
    seen: set[str] = set()
    out: list[tuple[Loc, str]] = []
    for i, item in enumerate(items):
        if item in seen:
            out.append((loc + ((i, field) if field else (i,)), f"{what} '{item}' is listed twice"))
        seen.add(item)
    return out


def _unknown_dimension(dimension: str, allowed: dict[str, list[str]]) -> str:
    return f"unknown dimension '{dimension}' (known: {', '.join(allowed)})"


def _unknown_value(dimension: str, value: str, allowed: dict[str, list[str]]) -> str:
    return f"'{value}' is not a value of '{dimension}' (allowed: {', '.join(allowed[dimension])})"
