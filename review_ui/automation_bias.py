"""Automation bias, measured on gold items: people's error with and without the pre-annotation.

Comparing how much of the model people keep with how far blind people agree with the
model cannot tell bias from unaided error: a perfect model kept by people who err when
blind gives the same figures as a wrong model whose errors people accept. What matters is
each person's error against a *reference*, and what becomes of the model's own errors.

On gold tasks (mixed unmarked into production queues; a share is served blind, like
production work, and nobody gets the same gold recording twice, so nobody sees both
versions of one item), over each task's span and the task's first submission:

- **WER with and without pre-annotation**: the person's word errors against the gold
  reference on shown items, and on blind items.
- **Accepted model errors** (shown items): of the model's word errors against the
  reference, the share the person's submission repeats exactly (same substituted word at
  the same reference word, same deletion, same insertion at the same place).
- **Coincident model errors** (blind items): the same share for people who never saw the
  model; the rate at which an unaided person happens to make the model's errors. Accepted
  well above coincident is automation bias.

Each figure is a ratio over items (errors added first), with a 95% interval from the
ratio estimator's item-level variance (delta method: items, not words, are the
independent draws) and the number of items behind it. Below `MIN_ITEMS` items in either
arm the verdict says plainly that there are too few to conclude.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from asr.evaluation import normalize  # scored by the same rules as every WER
from review_ui import comparison
from review_ui.quality import first_submissions, models_of, references, tasks_of_kinds
from review_ui.tasks import GOLD, span_of

MIN_ITEMS = 10  # per arm (shown, blind) before the verdict draws a conclusion
Z95 = 1.959963984540054

ErrorEvent = tuple[Any, ...]


def error_events(reference: str, hypothesis: str) -> Counter[ErrorEvent]:
    """The word errors of `hypothesis` against `reference`, each named by where it happens in the reference.

    ("sub", i, word): reference word i became `word`; ("del", i): reference word i is missing;
    ("ins", i, word): `word` was inserted before reference word i. Texts are normalised as for WER.
    """
    import jiwer

    ref, hyp = normalize(reference).split(), normalize(hypothesis).split()
    if not ref:
        return Counter(("ins", 0, w) for w in hyp)
    if not hyp:
        return Counter(("del", i) for i in range(len(ref)))
    out: Counter[ErrorEvent] = Counter()
    for chunk in jiwer.process_words(" ".join(ref), " ".join(hyp)).alignments[0]:
        if chunk.type == "substitute":
            for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
                out[("sub", chunk.ref_start_idx + k, hyp[chunk.hyp_start_idx + k])] += 1
        elif chunk.type == "delete":
            for i in range(chunk.ref_start_idx, chunk.ref_end_idx):
                out[("del", i)] += 1
        elif chunk.type == "insert":
            for j in range(chunk.hyp_start_idx, chunk.hyp_end_idx):
                out[("ins", chunk.ref_start_idx, hyp[j])] += 1
    return out


@dataclass
class Ratio:
    """A ratio over items (numerators and denominators added first) with its 95% interval."""

    numerator: int = 0
    denominator: int = 0
    items: int = 0
    value: float | None = None
    low: float | None = None
    high: float | None = None


def ratio_interval(per_item: list[tuple[int, int]]) -> Ratio:
    """Σe / Σn over items with the delta-method interval R ± z·sqrt(m/(m-1)·Σ(e_i − R·n_i)²)/Σn (clipped at 0).

    Items with n = 0 carry no information and are not counted. One item gives the ratio without an interval.
    """
    used = [(e, n) for e, n in per_item if n > 0]
    numerator, denominator = sum(e for e, _ in used), sum(n for _, n in used)
    if not used:
        return Ratio()
    value = numerator / denominator
    if len(used) < 2:
        return Ratio(numerator, denominator, len(used), value)
    m = len(used)
    variance = m / (m - 1) * sum((e - value * n) ** 2 for e, n in used) / denominator ** 2
    half = Z95 * math.sqrt(variance)
    return Ratio(numerator, denominator, m, value, max(0.0, value - half), value + half)


@dataclass
class Arm:
    """One person's (or everyone's) gold items of one kind: shown with the pre-annotation, or blind."""

    items: int = 0
    wer: Ratio = field(default_factory=Ratio)  # the person's word errors / reference words
    model_errors_repeated: Ratio = field(default_factory=Ratio)  # model errors the person repeated / model errors


@dataclass
class BiasFigures:
    """Shown against blind, for one annotator or for everyone ("all"), with the verdict in words."""

    annotator: str
    shown: Arm
    blind: Arm
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def row(self) -> dict[str, Any]:
        """A flat row for tables: values, intervals and item counts."""
        out: dict[str, Any] = {"annotator": self.annotator}
        for arm_name, arm in (("shown", self.shown), ("blind", self.blind)):
            out[f"{arm_name}_items"] = arm.items
            for name, ratio in (("wer", arm.wer), ("model_errors_repeated", arm.model_errors_repeated)):
                out[f"{arm_name}_{name}"] = ratio.value
                out[f"{arm_name}_{name}_ci"] = (None if ratio.low is None else f"{ratio.low:.3f}–{ratio.high:.3f}")
        out["verdict"] = self.verdict
        return out


@dataclass
class AutomationBias:
    overall: BiasFigures
    per_annotator: list[BiasFigures]
    min_items: int


def _above(a: Ratio, b: Ratio) -> bool:
    """a's interval lies wholly above b's (a ratio without an interval counts as its point)."""
    if a.value is None or b.value is None:
        return False
    low = a.low if a.low is not None else a.value
    high = b.high if b.high is not None else b.value
    return low > high


def verdict(shown: Arm, blind: Arm, min_items: int) -> str:
    """What the figures allow one to say, plainly."""
    if shown.items < min_items or blind.items < min_items:
        return (f"too few items to conclude: {shown.items} shown and {blind.items} blind gold item(s); "
                f"at least {min_items} of each are needed")
    said = []
    accepted, coincident = shown.model_errors_repeated, blind.model_errors_repeated
    if accepted.value is None:
        said.append("the model made no errors on the shown items, so acceptance of its errors cannot be judged")
    elif _above(accepted, coincident):
        said.append(f"automation bias: {accepted.value:.0%} of the model's errors survive correction, while people "
                    f"working blind make the same errors {coincident.value:.0%} of the time")
    else:
        said.append("no sign of automation bias: the model's errors survive correction no more often than people "
                    "working blind make them")
    if _above(blind.wer, shown.wer):
        said.append(f"the pre-annotation lowers people's WER ({shown.wer.value:.3f} with, {blind.wer.value:.3f} without)")
    elif _above(shown.wer, blind.wer):
        said.append(f"the pre-annotation raises people's WER ({shown.wer.value:.3f} with, {blind.wer.value:.3f} without)")
    else:
        said.append("no clear WER difference with and without the pre-annotation")
    return "; ".join(said)


def automation_bias(session: Session, protocol_pk: int | None = None, *, min_items: int = MIN_ITEMS) -> AutomationBias:
    """Shown-versus-blind figures on submitted gold items, per annotator and overall."""
    rows = tasks_of_kinds(session, (GOLD,), protocol_pk)
    firsts = first_submissions(session, [t.pk for t, _ in rows])
    refs = references(session, [r.pk for _, r in rows])
    suggestions = models_of(session, [r.pk for _, r in rows])
    # per (annotator, blind): per item (own errors, reference words), (model errors repeated, model errors)
    wer_items: dict[tuple[str, bool], list[tuple[int, int]]] = defaultdict(list)
    repeat_items: dict[tuple[str, bool], list[tuple[int, int]]] = defaultdict(list)
    for task, recording in rows:
        revision, reference, model = firsts.get(task.pk), refs.get(recording.pk), suggestions.get(recording.pk)
        if revision is None or reference is None or model is None:
            continue
        start, end = span_of(task, recording)
        ref_text = comparison.text_of(comparison.in_span(reference.turns, start, end))
        own = error_events(ref_text, comparison.text_of(comparison.in_span(revision.turns, start, end)))
        model_errors = error_events(ref_text, comparison.text_of(comparison.in_span(model.turns, start, end)))
        repeated = sum((own & model_errors).values())
        key = (task.assignee or revision.author, bool(task.blind))
        wer_items[key].append((sum(own.values()), len(ref_text.split())))
        repeat_items[key].append((repeated, sum(model_errors.values())))

    def arm(keys: list[tuple[str, bool]]) -> Arm:
        wers = [item for k in keys for item in wer_items.get(k, [])]
        repeats = [item for k in keys for item in repeat_items.get(k, [])]
        return Arm(len(wers), ratio_interval(wers), ratio_interval(repeats))

    def figures(who: str, people: list[str]) -> BiasFigures:
        shown, blind = arm([(p, False) for p in people]), arm([(p, True) for p in people])
        return BiasFigures(who, shown, blind, verdict(shown, blind, min_items))

    people = sorted({who for who, _ in wer_items})
    return AutomationBias(figures("all", people), [figures(p, [p]) for p in people], min_items)
