"""`turnscribe models list|import|verify|eval|use`: model bundles, their checksums and the evidence to choose one.

Importing and choosing change what pre-annotates a protocol (managers, `manage_models`,
audited); listing, verifying and evaluating expose figures (`see_quality`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from protocols.cli import protocol_for_cli
from store.console import Exit, err, fail, out, principal_for_cli, store_for_cli
from store.listing import Column, DocFormat, ListFormat, Listing, emit, json_text

app = typer.Typer(help="Model bundles: list, import, verify, evaluate on approved transcripts, choose per protocol.",
                  no_args_is_help=True)


def _models_dir() -> Path:
    from store.settings import load_settings

    return load_settings().models_dir


def _short(value: str | None) -> str:
    return "—" if not value else value[:16]


@app.command("list")
def list_models(fmt: Annotated[ListFormat, typer.Option("--format", help="table, json or csv.")] = ListFormat.table) -> None:
    """The embedded defaults and the imported bundles: kind, checksum, protocols using them, pre-annotations made."""
    from asr.model_bundles import BundleError, all_bundles
    from asr.model_choice import preannotations_by_checksum, protocols_using

    store = store_for_cli()
    principal_for_cli(store, "see_quality")
    try:
        bundles = all_bundles(_models_dir())
    except BundleError as exc:
        fail(str(exc), Exit.FAILED)
    with store.session() as session:
        using, made = protocols_using(session), preannotations_by_checksum(session)
    listing = Listing("models.list", [
        Column("name", "name"), Column("kind", "kind"), Column("role", "role"), Column("origin", "origin"),
        Column("checksum", "checksum", _short), Column("files", "files"), Column("protocols", "default for"),
        Column("preannotations", "pre-annotations"), Column("path", "path"),
    ], title="Model bundles")
    for b in bundles:
        listing.add(name=b.name, kind=b.kind, role=b.role, origin=b.origin, checksum=b.checksum, files=len(b.files),
                    protocols=using.get(b.name, []), preannotations=made.get(b.checksum, 0),
                    path=str(b.path) if b.path else None)
    emit(listing, fmt)


@app.command("import")
def import_model(
    path: Annotated[Path, typer.Argument(help="A CTranslate2 Whisper directory or a pyannote pipeline directory.",
                                         exists=True, file_okay=False)],
    name: Annotated[str | None, typer.Option("--name", help="Bundle name (default: the directory's name).")] = None,
) -> None:
    """Copy a model directory into $TURNSCRIBE_HOME/models/NAME with a SHA-256 manifest (refuses an incomplete one)."""
    from asr.model_bundles import BundleError, import_bundle
    from store.audit import record_event

    store = store_for_cli()
    principal = principal_for_cli(store, "manage_models")
    bundle_name = name or path.resolve().name
    try:
        bundle = import_bundle(path, bundle_name, _models_dir(), imported_by=principal.username)
    except BundleError as exc:
        fail(str(exc), Exit.REJECTED, label="refused")
    except OSError as exc:
        from store.console import fault_text

        fail(f"nothing was imported: {fault_text(exc)}", Exit.FAULT)
    with store.session() as session:
        record_event(session, principal.username, "models_import", f"model:{bundle.name}",
                     {"kind": bundle.kind, "checksum": bundle.checksum, "files": len(bundle.files), "source": str(path.resolve())})
        session.commit()
    out.print(f"imported {bundle.name}: {bundle.kind} ({bundle.role}), {len(bundle.files)} files, checksum {bundle.checksum}")


@app.command()
def verify(name: Annotated[str | None, typer.Argument(help="One bundle (default: every imported bundle).")] = None) -> None:
    """Re-hash imported bundles against their manifests; any changed, missing or added file exits 1."""
    from asr.model_bundles import BundleError, find_bundle, imported_bundles, verify_bundle

    store = store_for_cli()
    principal_for_cli(store, "see_quality")
    models_dir = _models_dir()
    try:
        bundles = [find_bundle(name, models_dir)] if name else imported_bundles(models_dir)
    except BundleError as exc:
        fail(str(exc), Exit.USAGE)
    if name and bundles[0].origin != "imported":
        out.print(f"{name}: embedded default (files from its installed package; checksum {bundles[0].checksum})")
        raise typer.Exit(Exit.OK)
    if not bundles:
        out.print("no imported bundles")
    broken = 0
    for bundle in bundles:
        problems = verify_bundle(bundle)
        if problems:
            broken += 1
            err.print(f"[red]{bundle.name}[/red]: {len(problems)} problem(s)")
            for problem in problems:
                err.print(f"  {problem}")
        else:
            out.print(f"{bundle.name}: ok ({len(bundle.files)} files, checksum {bundle.checksum})")
    raise typer.Exit(Exit.REJECTED if broken else Exit.OK)


@app.command()
def use(
    name: Annotated[str, typer.Argument(help="Bundle name ('tiny.en', 'base', 'embedded' or an imported bundle).")],
    protocol: Annotated[str, typer.Option("--protocol", help="Registered protocol id.")],
) -> None:
    """Make NAME the protocol's default for its role (ASR or diarization); `pretranscribe` then uses it."""
    from asr.model_bundles import BundleError, find_bundle, verify_bundle
    from asr.model_choice import set_choice

    store = store_for_cli()
    principal = principal_for_cli(store, "manage_models")
    row, _ = protocol_for_cli(store, protocol, None)
    try:
        bundle = find_bundle(name, _models_dir())
    except BundleError as exc:
        fail(str(exc), Exit.USAGE)
    problems = verify_bundle(bundle)
    if problems:
        fail(f"{name} changed since it was imported ({'; '.join(problems)}); import it again", Exit.REJECTED, label="refused")
    with store.session() as session:
        set_choice(session, row.protocol_id, bundle, actor=principal.username)
        session.commit()
    out.print(f"{row.protocol_id}: {bundle.role} model is now {bundle.name} (checksum {bundle.checksum})")


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


@app.command("eval")
def evaluate_models(
    protocol: Annotated[str, typer.Option("--protocol", help="Registered protocol id.")],
    candidates: Annotated[list[str] | None, typer.Argument(
        help="ASR, DIARIZER or ASR+DIARIZER bundle names (default: the protocol's current models).")] = None,
    version: Annotated[int | None, typer.Option(help="Protocol version (default: newest).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Score only the first N approved recordings.")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    fmt: Annotated[DocFormat, typer.Option("--format", help="table or json.")] = DocFormat.table,
) -> None:
    """Run candidate models on the protocol's approved transcripts: WER, cpWER, DER (FA/miss/confusion), JER per group."""
    from asr.batch import speaker_count
    from asr.model_bundles import BundleError, diarizer_choice
    from asr.model_choice import protocol_choices
    from asr.model_eval import approved_gold, evaluate_candidates, parse_candidates
    from asr.models import ModelUnavailable
    from asr.preannotate import PreannotationSettings, Preannotator
    from collection.decoding import load_working_copy

    store = store_for_cli()
    principal_for_cli(store, "see_quality")
    row, spec = protocol_for_cli(store, protocol, version)
    models_dir = _models_dir()
    with store.session() as session:
        choices = protocol_choices(session, row.protocol_id)
        gold = approved_gold(session, row, spec, limit)
    try:
        chosen = parse_candidates(candidates or [], choices["asr"].bundle, choices["diarization"].bundle, models_dir)
    except BundleError as exc:
        fail(str(exc), Exit.USAGE)
    if not gold:
        fail(f"{row.protocol_id} v{row.version} has no approved transcript to score against", Exit.REJECTED,
             label="nothing to score")

    def make(candidate):  # type: ignore[no-untyped-def]
        backend, pipeline = diarizer_choice(candidate.diarizer, models_dir)
        try:
            return Preannotator(PreannotationSettings(asr_model=candidate.asr, diarizer=backend, pipeline_dir=pipeline,
                                                      device=device), models_dir)
        except (ModelUnavailable, BundleError, RuntimeError, ValueError) as exc:
            fail(f"{candidate.label}: {exc}", Exit.USAGE)

    language = spec.languages[0] if len(spec.languages) == 1 else None
    err.print(f"scoring {len(chosen)} candidate(s) on {len(gold)} approved recording(s) of {row.protocol_id} v{row.version}")
    unedited = [g for g in gold if g.repeats_model]
    if unedited:
        err.print(f"warning: {len(unedited)} of {len(gold)} approved transcript(s) repeat a pre-annotation word for word "
                  f"({', '.join(f'{g.name}: {g.repeats_model}' for g in unedited[:5])}"
                  f"{', ...' if len(unedited) > 5 else ''}): they are a model's output approved without a correction, "
                  "and score that model as perfect there")
    results = evaluate_candidates(
        chosen, gold, lambda g: load_working_copy(store.blobs.path_for(g.working_sha256)), make,
        num_speakers=speaker_count(spec), language=language,
        on_progress=lambda c, g: err.print(f"  {c.label}: {g.name}"))
    figures = ("wer", "cpwer", "der", "der_false_alarm", "der_miss", "der_confusion", "jer")
    document = {
        "schema": "turnscribe.models.eval/1", "protocol": row.protocol_id, "version": row.version,
        "gold": "newest approved revision of each accepted recording", "recordings": [g.name for g in gold],
        "unedited_gold": [{"recording": g.name, "repeats_model": g.repeats_model} for g in unedited],
        "candidates": [{"label": r.candidate.label, "bundles": r.bundles, "seconds": round(r.seconds, 3),
                        "real_time_factor": round(r.seconds / r.audio_seconds, 4) if r.audio_seconds else None}
                       for r in results],
        "rows": [],
    }
    groups = sorted({key for r in results for key in r.report.groups})
    for dimension, value in [("overall", ""), *groups]:
        for r in results:
            score = r.report.overall if dimension == "overall" else r.report.groups[(dimension, value)]
            s = score.summary()
            document["rows"].append({"dimension": dimension, "value": value, "model": r.candidate.label,
                                     "files": s["files"], **{k: s[k] for k in figures}})
    document["files"] = {r.candidate.label: {name: {k: sc.summary()[k] for k in ("files", "reference_words", "reference_speech_s", *figures)}
                                             for name, sc in r.report.per_file.items()} for r in results}
    if fmt is DocFormat.json:
        import sys

        sys.stdout.write(json_text(document))
        return
    from rich.table import Table

    table = Table("group", "model", "files", "WER", "cpWER", "DER", "false alarm", "miss", "confusion", "JER",
                  title=f"{row.protocol_id} v{row.version}: candidates on {len(gold)} approved transcript(s)",
                  title_justify="left")
    previous = None
    for r in document["rows"]:
        group = "overall" if r["dimension"] == "overall" else f"{r['dimension']}={r['value']}"
        table.add_row(group if group != previous else "", r["model"], str(r["files"]),
                      *(_pct(r[k]) for k in figures), end_section=False)
        previous = group
    out.print(table)
    for r in results:
        bundles = ", ".join(f"{role} {b['name']} {b['checksum'][:16]}" for role, b in r.bundles.items())
        out.print(f"{r.candidate.label}: {bundles}; RTF {document['candidates'][results.index(r)]['real_time_factor']}")
