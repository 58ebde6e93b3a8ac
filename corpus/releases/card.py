"""The dataset card of a release (JSON stored with the release, Markdown rendered from it).

It says what a model trained on the release will and will not have seen: hours,
sessions and speakers; coverage against the protocol's targets for the released
recordings only; noise and device distributions; the split shares achieved; quality
figures at release time; which pre-annotation models were used and where they were
weak (their WER against the approved transcripts per demographic value, crossed cell,
noise condition and device); consent scopes; what was left out and why; and the diff
against the previous release. It names no speaker (erasure scrubs cards with the headers all
the same, in case a value does).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from collection.coverage import compute_coverage, coverage_targets
from corpus.releases.splits import SPLITS
from protocols.schema import Protocol
from store import models
from store.turns import load_stored
from store.release_keys import recording_pk

log = logging.getLogger(__name__)


def live_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recording entries not replaced by an erasure marker."""
    return [e for e in entries if "erased" not in e]


def _recording_pk(entry: dict[str, Any]) -> int:
    """The store pk of a live release entry's recording."""
    pk = recording_pk(entry["recording"])
    if pk is None:
        raise ValueError(f"release entry key {entry['recording']!r} names no recording")
    return pk


def coverage(session: Session, protocol_row: models.Protocol, protocol: Protocol,
             entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The released recordings against the protocol's total, marginal and cell targets (collection/coverage.py).

    Rows keep the plan's order (targeted keys, then the others sorted); a speaker without
    a value for a dimension is not counted under it.
    """
    report = compute_coverage(session, protocol_row, protocol, {_recording_pk(e) for e in entries})
    rows = []
    for scope, dims, targets in coverage_targets(protocol):
        found = {r.values: r for r in report.rows if (r.scope, r.dimensions) == (scope, tuple(dims)) and None not in r.values}
        for key in list(targets) + sorted(k for k in found if k not in targets):
            row = found[key]
            rows.append({
                "scope": scope, "label": row.label, "hours": round(row.hours, 4), "speakers": row.speakers,
                "sessions": row.sessions, "target_hours": row.target_hours, "target_speakers": row.target_speakers,
                "percent": None if row.percent is None else round(row.percent, 1),
            })
    return rows


def distributions(entries: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for dim in ("noise_condition", "device", "scenario"):
        counts: dict[str, dict[str, float]] = defaultdict(lambda: {"recordings": 0, "hours": 0.0})
        for e in entries:
            counts[e.get(dim) or "-"]["recordings"] += 1
            counts[e.get(dim) or "-"]["hours"] += e["duration_s"] / 3600.0
        out[dim] = {k: {"recordings": v["recordings"], "hours": round(v["hours"], 4)} for k, v in sorted(counts.items())}
    return out


def split_summary(session: Session, protocol_row: models.Protocol, protocol: Protocol, manifest: dict[str, Any],
                  entries: list[dict[str, Any]], history: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per split: sizes and share of hours, against the header's target ratios; per demographic value: the shares achieved.

    `history` (from the build): speakers kept from earlier releases, new to each split, and
    any who crossed; a split with a target share but no recording is named in `empty`.
    """
    entries = live_entries(entries)
    total = sum(e["duration_s"] for e in entries) or 1.0
    sizes = {}
    marginals: dict[str, dict[tuple[str, str], float]] = {}
    for split in SPLITS:
        mine = [e for e in entries if e["split"] == split]
        hours = sum(e["duration_s"] for e in mine)
        sizes[split] = {
            "recordings": len(mine), "sessions": len({e["session_id"] for e in mine}),
            "speakers": len({s["speaker_id"] for e in mine for s in e["speakers"]}),
            "hours": round(hours / 3600.0, 4), "share": round(hours / total, 4),
        }
        report = compute_coverage(session, protocol_row, protocol, {_recording_pk(e) for e in mine})
        marginals[split] = {(r.dimensions[0], r.values[0]): r.hours for r in report.scope("marginal")
                            if r.speakers and r.values[0] is not None}
    by_value: dict[str, dict[str, float]] = {}
    for dim in [d.name for d in protocol.demographics]:
        values = sorted({value for found in marginals.values() for d, value in found if d == dim})
        for value in values:
            hours = {split: marginals[split].get((dim, value), 0.0) for split in SPLITS}
            whole = sum(hours.values()) or 1.0
            by_value[f"{dim}={value}"] = {split: round(h / whole, 4) for split, h in hours.items()}
    targets = manifest["created_from"]["split_ratios"]
    empty = [split for split in SPLITS if targets.get(split, 0) > 0 and sizes[split]["recordings"] == 0]
    tolerance = protocol.release.split_tolerance
    outside = [split for split in SPLITS if abs(sizes[split]["share"] - targets.get(split, 0)) > tolerance]
    return {"target_ratios": targets, "seed": manifest["seed"], "tolerance": tolerance, "outside_tolerance": outside,
            "speaker_disjoint": True, "sizes": sizes, "share_by_value": by_value, "empty": empty,
            "history": history or {}}


def split_notes(splits: dict[str, Any]) -> list[str]:
    """What the card and the release command say about split stability and empty splits, in sentences."""
    notes = []
    history = splits.get("history") or {}
    if history:
        new = history.get("new_speakers") or {}
        earlier = history.get("earlier_releases") or []
        notes.append(f"Speakers new to each split: {', '.join(f'{s} {new.get(s, 0)}' for s in SPLITS)}; "
                     f"{history.get('kept_speakers', 0)} kept the split of an earlier release"
                     + (f" ({', '.join(earlier)})." if earlier else " (this is the first release)."))
        crossed = history.get("crossed") or {}
        if crossed:
            notes.append(f"Splits reassigned at a manager's request (--reassign-splits): {sum(crossed.values())} speaker(s) "
                         f"changed split ({', '.join(f'{k}: {v}' for k, v in crossed.items())}).")
        elif earlier:
            notes.append("No speaker changed split: every speaker of an earlier release is in the same split as before"
                         + (" (reassigned at a manager's request, yet nobody moved)." if history.get("reassigned") else "."))
        if history.get("left_out_sessions"):
            notes.append(f"{history['left_out_sessions']} session(s) left out: each would join speakers kept in different splits.")
    for split in [s for s in splits.get("outside_tolerance") or [] if s not in (splits.get("empty") or [])]:
        notes.append(f"The {split} split holds {splits['sizes'][split]['share']:.1%} of the hours against a target of "
                     f"{splits['target_ratios'][split]:.0%} (tolerance {splits['tolerance']:g}).")
    for split in splits.get("empty") or []:
        notes.append(f"The {split} split is empty: too few speaker groups for its target share of "
                     f"{splits['target_ratios'][split]:g}.")
    return notes


def quality_figures(session: Session, protocol_pk: int) -> dict[str, Any]:
    """The review workflow's quality summary at release time, if that module is installed."""
    try:
        from review_ui.quality import corpus_summary
    except ImportError as exc:
        return {"available": False, "reason": f"quality figures unavailable ({exc})"}
    try:
        return {"available": True, **corpus_summary(session, protocol_pk)}
    except Exception as exc:  # noqa: BLE001 - a card without quality figures beats no release; the card says why
        log.warning("quality figures failed: %s", exc)
        return {"available": False, "reason": f"quality figures unavailable ({type(exc).__name__}: {exc})"}


def preannotation(session: Session, entries: list[dict[str, Any]], protocol: Protocol) -> dict[str, Any]:
    """Which models pre-annotated the release and their WER/DER against the approved transcripts, per group."""
    from asr.evaluation import score_recording
    from asr.group_scores import GroupedScores, figures, group_keys
    from review_ui.quality import first_model_revisions

    pks = [_recording_pk(e) for e in entries]
    firsts = first_model_revisions(session, pks)
    rev = models.TranscriptRevision
    used: dict[str, dict[str, Any]] = {}
    scores = GroupedScores()
    cell_dims = list(protocol.targets.cells.dimensions) if protocol.targets.cells else []
    for start in range(0, len(entries), 500):
        chunk = [e for e in entries[start:start + 500] if _recording_pk(e) in firsts]
        if not chunk:
            continue
        approved = dict(session.execute(select(rev.pk, rev.turns).where(rev.pk.in_([e["revision_pk"] for e in chunk]))).all())
        for entry in chunk:
            model = firsts.get(_recording_pk(entry))
            if model is None:
                continue
            # the same author name over other model files (a re-imported bundle) is another model
            key = f"{model.author} @{model.asr_bundle_sha256[:12]}" if model.asr_bundle_sha256 else model.author
            info = used.setdefault(key, {"recordings": 0, "params": model.author_params})
            info["recordings"] += 1
            score = score_recording(model.as_turns(), load_stored(approved[entry["revision_pk"]]), entry["recording"])
            conditions = {"noise_condition": entry["noise_condition"], "device": entry["device"]}
            scores.add(score, group_keys(conditions, [s["demographics"] for s in entry["speakers"]], cell_dims))
    return {
        "models": dict(sorted(used.items())), "recordings_scored": scores.overall.files,
        "recordings_without_model_revision": len(entries) - scores.overall.files,
        "against": "the approved transcripts of this release",
        "overall": figures(scores.overall) if scores.overall.files else None,
        "by_group": scores.ranked(),
    }


def consent_scopes(entries: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Speakers per consent form version and per set of permitted uses."""
    seen: dict[str, dict[str, Any]] = {}
    for e in entries:
        for s in e["speakers"]:
            seen[s["speaker_id"]] = s
    forms = Counter(str(s["form_version"]) for s in seen.values())
    uses = Counter(", ".join(s["permitted_uses"]) for s in seen.values())
    return {"form_versions": dict(sorted(forms.items())), "permitted_uses": dict(sorted(uses.items()))}


def build_card(session: Session, protocol_row: models.Protocol, protocol: Protocol, manifest: dict[str, Any],
               all_entries: list[dict[str, Any]], excluded: dict[str, int], *, parent: models.Release | None, on: dt.date,
               name: str, release_id: str, same_content_as: list[str], diff: dict[str, Any] | None,
               split_history: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything the card states, computed from the manifest header, the entries and the store at release time.

    `diff` is the summary against `parent` (corpus.releases.diff), computed by the caller from the parent's rows.
    """
    entries = live_entries(all_entries)
    return {
        "release": {"name": name, "release_id": release_id, "protocol": manifest["protocol"], "title": protocol.title,
                    "release_date": on.isoformat(), "seed": manifest["seed"], "redact_pii": manifest["created_from"]["redact_pii"],
                    "previous": parent.name if parent else None, "same_content_as": same_content_as,
                    "selection": manifest["created_from"]["selection"]},
        "totals": {"recordings": len(entries), "sessions": len({e["session_id"] for e in entries}),
                   "speakers": len(manifest["speakers"]), "hours": round(sum(e["duration_s"] for e in entries) / 3600.0, 4)},
        "excluded": excluded,
        "splits": split_summary(session, protocol_row, protocol, manifest, entries, split_history),
        "coverage": coverage(session, protocol_row, protocol, entries),
        "distributions": distributions(entries),
        "quality": quality_figures(session, protocol_row.pk),
        "preannotation": preannotation(session, entries, protocol),
        "consent": consent_scopes(entries),
        "diff": diff,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return lines + [""]


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown (README-style dataset card)."""
    r, t = card["release"], card["totals"]
    lines = [f"# {r['name']}", "", f"{r.get('title') or ''}", "",
             f"- Release id: `{r['release_id']}`", f"- Protocol: {r['protocol']['id']} v{r['protocol']['version']}",
             f"- Released on: {r['release_date']}; split seed {r['seed']}; PII redacted: {'yes' if r['redact_pii'] else 'no'}",
             f"- Previous release: {r['previous'] or 'none'}"]
    if r.get("same_content_as"):
        lines.append(f"- Same content (same id) as: {', '.join(r['same_content_as'])}")
    lines += [f"- Selection: {r['selection']}", "", "## Size", ""]
    lines += _table(["recordings", "sessions", "speakers", "hours"], [[t["recordings"], t["sessions"], t["speakers"], t["hours"]]])
    lines += ["## Left out", "", "A recording left out for several reasons counts under each.", ""]
    lines += _table(["reason", "recordings"], [[k, v] for k, v in card["excluded"].items()]) if card["excluded"] else ["Nothing.", ""]
    splits = card["splits"]
    lines += ["## Splits (speaker-disjoint)", "", f"Target shares of hours: {splits['target_ratios']}", ""]
    lines += _table(["split", "recordings", "sessions", "speakers", "hours", "share"],
                    [[s, v["recordings"], v["sessions"], v["speakers"], v["hours"], v["share"]] for s, v in splits["sizes"].items()])
    lines += _table(["value", *SPLITS], [[k, *(v[s] for s in SPLITS)] for k, v in splits["share_by_value"].items()])
    notes = split_notes(splits)
    lines += [*(f"- {n}" for n in notes), ""] if notes else []
    lines += ["## Coverage against the protocol", ""]
    lines += _table(["scope", "group", "hours", "target h", "speakers", "target spk", "sessions", "%"],
                    [[c["scope"], c["label"], c["hours"], c["target_hours"], c["speakers"], c["target_speakers"], c["sessions"], c["percent"]]
                     for c in card["coverage"] if c["hours"] or c["scope"] != "cell"])
    for dim, values in card["distributions"].items():
        lines += [f"## {dim.replace('_', ' ').capitalize()} distribution", ""]
        lines += _table([dim, "recordings", "hours"], [[k, v["recordings"], v["hours"]] for k, v in values.items()])
    q = card["quality"]
    lines += ["## Quality at release time", ""]
    if q.get("available"):
        lines += _table(["figure", "value"], [[k, v] for k, v in q.items() if k != "available"])
    else:
        lines += [q.get("reason", "quality figures unavailable"), ""]
    p = card["preannotation"]
    lines += ["## Pre-annotation models", ""]
    lines += _table(["model", "recordings", "parameters"], [[m, v["recordings"], v["params"]] for m, v in p["models"].items()])
    if p["overall"]:
        lines += [f"WER against {p['against']}, weakest groups first (overall WER {_fmt(p['overall']['wer'])}, "
                  f"DER {_fmt(p['overall']['der'])}, {p['recordings_scored']} recordings):", ""]
        lines += _table(["dimension", "value", "recordings", "WER", "cpWER", "DER"],
                        [[g["dimension"], g["value"], g["files"], g["wer"], g["cpwer"], g["der"]] for g in p["by_group"]])
    else:
        lines += ["No released recording has a model pre-annotation to score.", ""]
    c = card["consent"]
    lines += ["## Consent scopes (speakers)", ""]
    lines += _table(["form version", "speakers"], [[k, v] for k, v in c["form_versions"].items()])
    lines += _table(["permitted uses", "speakers"], [[k, v] for k, v in c["permitted_uses"].items()])
    lines += ["## Changes since the previous release", ""]
    d = card.get("diff")
    if d:
        lines += _table(["", "count"], [[k, v] for k, v in d["counts"].items()])
    else:
        lines += ["First release of this protocol.", ""]
    return "\n".join(lines).rstrip() + "\n"
